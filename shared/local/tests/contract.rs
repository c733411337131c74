//! The storage contract, run against the SQLite adapter.

use std::sync::Arc;

use vigilo_app::store::Table;
use vigilo_local::SqliteTable;

fn fresh() -> (Arc<dyn Table>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let table = SqliteTable::open(&dir.path().join("t.db")).unwrap();
    (Arc::new(table), dir)
}

vigilo_app::table_contract_tests!(fresh());

#[tokio::test]
async fn commits_survive_reopening_the_file() {
    use serde_json::json;
    use vigilo_app::store::{Item, Key, WriteOp};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let t = SqliteTable::open(&path).unwrap();
        let item = Item::new(Key::new("P", "a"), json!({"v": 1})).index("by_x", Key::new("X", "1"));
        t.transact(vec![WriteOp::Put { item, condition: None }]).await.unwrap();
    }
    let t = SqliteTable::open(&path).unwrap();
    assert_eq!(t.get(&Key::new("P", "a")).await.unwrap().unwrap().data["v"], 1);
    let q = vigilo_app::store::Query::index("by_x", "X");
    assert_eq!(t.query(&q).await.unwrap().items.len(), 1);
}
