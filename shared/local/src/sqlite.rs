//! The table on SQLite: the same semantics as DynamoDB's item model, in one file.
//! Writes go to one writer thread, which commits them in groups: it takes every
//! transaction waiting (up to [`GROUP_MAX`]), applies each in turn (each sees the ones
//! before it, as if committed one by one), and makes the group durable with one fully
//! synchronous commit (WAL). Racing writers so share the disk's flushes instead of
//! queueing for one each. A transaction checks all its conditions before it writes
//! anything, so one that fails leaves nothing to undo and needs no savepoint (whose
//! journal of page copies cost a tenth of the writer's time). Reads use a small pool of
//! connections that WAL lets run beside the writer, on tokio's blocking pool.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::Value;
use vigilo_app::seal::Sealed;
use vigilo_app::store::{
    check_snapshot_shape, check_transaction_shape, condition_holds, InPlace, Item, Key, Page, Position, Query,
    SortKeyCondition, StoreError, Table, TextItem, TextPage, WriteOp,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    data TEXT NOT NULL,
    indexes TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS index_entries (
    name TEXT NOT NULL,
    ipk TEXT NOT NULL,
    isk TEXT NOT NULL,
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    PRIMARY KEY (name, ipk, isk, pk, sk)
) WITHOUT ROWID;
DROP INDEX IF EXISTS index_entries_by_item;
";

const READERS: usize = 4;

/// The writer's settings: durable commits (WAL, `synchronous=FULL`), and pages of
/// 16 KiB, set when the file is made (a file made with other pages keeps them). The
/// items table is keyed by (pk, sk) without a rowid, and such a table keeps at most
/// about a quarter of a page of a row in place, the rest in overflow pages of its own:
/// with 4 KiB pages every audit row (about 1.5 KiB) took a whole overflow page, for
/// files 2.3 times the size and chains read 8 times slower (`vigilo bench --suite
/// verify` prints the reading alone). Pages cost the writer too, since every page a
/// commit touches goes whole into the WAL and through the flush: 8 KiB pages were
/// measured at a tenth more transitions a second but chains read a quarter slower
/// (611,000 rows/s against 802,000), so the reading, which an auditor waits on, wins.
const WRITER_PRAGMAS: &str =
    "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;";

/// A reader waits for a lock rather than failing at once. (A memory map of the file
/// was measured: no faster here, and its pages count against the process's memory
/// while verifying.)
const READER_PRAGMAS: &str = "PRAGMA busy_timeout = 5000;";

/// Transactions committed together at most.
pub const GROUP_MAX: usize = 256;

/// One piece of work for the writer thread, with where its answer goes.
enum Job {
    /// A transaction, and the workspace whose audit queue to seal in its commit.
    Transact(Vec<WriteOp>, Option<String>, tokio::sync::oneshot::Sender<Result<Option<Sealed>, StoreError>>),
    Add(Key, String, u64, tokio::sync::oneshot::Sender<Result<u64, StoreError>>),
}

/// What a job did, once its group is durable.
enum Outcome {
    Added(u64),
    Written(Option<Sealed>),
}

struct Inner {
    writer: std::sync::mpsc::Sender<Job>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

/// A [`Table`] in one SQLite file.
#[derive(Clone)]
pub struct SqliteTable {
    inner: Arc<Inner>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock cannot leave SQLite half-written (the transaction
    // rolls back when dropped), so a poisoned lock is safe to keep using.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SqliteTable {
    /// Opens (creating if needed) the table at `path`.
    pub fn open(path: &Path) -> Result<SqliteTable, StoreError> {
        let writer = Connection::open(path).map_err(backend)?;
        stable_plans(&writer)?;
        writer.execute_batch(WRITER_PRAGMAS).map_err(backend)?;
        writer.execute_batch(SCHEMA).map_err(backend)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
            let r = Connection::open_with_flags(path, flags).map_err(backend)?;
            stable_plans(&r)?;
            r.execute_batch(READER_PRAGMAS).map_err(backend)?;
            readers.push(Mutex::new(r));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("vigilo-sqlite-writer".into())
            .spawn(move || write_groups(writer, rx))
            .map_err(backend)?;
        Ok(SqliteTable { inner: Arc::new(Inner { writer: tx, readers, next_reader: AtomicUsize::new(0) }) })
    }

    /// Runs `f` right here on a free reader connection.
    /// Only for brief reads (a few keys, a short page): from the page cache they take
    /// microseconds, less than the two thread hand-offs of tokio's blocking pool, which
    /// cost a request with a dozen reads a fifth of its time.
    /// Gives `f` back when every connection is busy.
    fn here<T, F: FnOnce(&Connection) -> Result<T, StoreError>>(&self, f: F) -> Result<Result<T, StoreError>, F> {
        let n = self.inner.readers.len();
        let start = self.inner.next_reader.fetch_add(1, Ordering::Relaxed);
        match (0..n).find_map(|i| self.inner.readers[(start + i) % n].try_lock().ok()) {
            Some(conn) => Ok(f(&conn)),
            None => Err(f),
        }
    }

    /// Runs `f` on a reader connection in tokio's blocking pool, waiting there for one.
    async fn pooled<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            f(&lock(&inner.readers[i]))
        })
        .await
        .map_err(backend)?
    }

    /// A brief read here when a connection is free, else in the pool.
    async fn read<T: Send + 'static>(
        &self,
        brief: bool,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if !brief {
            return self.pooled(f).await;
        }
        match self.here(f) {
            Ok(done) => done,
            Err(f) => self.pooled(f).await,
        }
    }

    /// Runs a query whose limit may be long: its first [`BRIEF`] items here (most
    /// queries end within them), and only what follows in the pool, as the next page
    /// would be read.
    async fn paged<P: Paged + Send + 'static>(
        &self,
        q: &Query,
        run: fn(&Connection, &Query) -> Result<P, StoreError>,
    ) -> Result<P, StoreError> {
        let head = q.clone().limit(q.limit.clamp(1, BRIEF));
        let mut page = match self.here(|conn| run(conn, &head)) {
            Ok(page) => page?,
            Err(_) => {
                let q = q.clone();
                return self.pooled(move |conn| run(conn, &q)).await;
            }
        };
        let taken = page.len();
        if let (Some(last), true) = (page.more(), q.limit > taken) {
            let rest = q.clone().after(Some(last)).limit(q.limit - taken);
            page.extend(self.pooled(move |conn| run(conn, &rest)).await?);
        }
        Ok(page)
    }
}

/// A page of a query, which [`SqliteTable::paged`] may read in two parts.
trait Paged {
    fn len(&self) -> usize;
    fn more(&self) -> Option<Position>;
    /// Appends the page that follows this one.
    fn extend(&mut self, next: Self);
}

/// Both page types keep their items and the position after them alike.
macro_rules! paged {
    ($($page:ty),+) => {$(
        impl Paged for $page {
            fn len(&self) -> usize {
                self.items.len()
            }
            fn more(&self) -> Option<Position> {
                self.last.clone()
            }
            fn extend(&mut self, next: $page) {
                self.items.extend(next.items);
                self.last = next.last;
            }
        }
    )+};
}

paged!(Page, TextPage);

/// What a brief read is: at most this many keys or items.
const BRIEF: usize = 25;

/// Plans that do not depend on the values bound: the bundled SQLite keeps statistics
/// (STAT4), and without this a cached statement whose range bound changes is prepared
/// again on every run.
fn stable_plans(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map(drop).map_err(backend)
}

fn decode_item(pk: String, sk: String, data: &str, indexes: &str) -> Result<Item, StoreError> {
    let data: Value = serde_json::from_str(data).map_err(backend)?;
    let indexes: BTreeMap<String, Key> = serde_json::from_str(indexes).map_err(backend)?;
    Ok(Item { key: Key { pk, sk }, indexes, data, expires: None })
}

/// SQL for a sort-key condition on `col`, with its parameters appended to `args`.
fn sort_condition(col: &str, cond: &SortKeyCondition, args: &mut Vec<String>) -> String {
    match cond {
        SortKeyCondition::Any => String::new(),
        SortKeyCondition::BeginsWith(prefix) => {
            // The range lets SQLite use the key; substr makes it exact.
            args.push(prefix.clone());
            args.push(format!("{prefix}\u{10FFFF}"));
            args.push(prefix.clone());
            let n = args.len();
            format!(
                " AND {col} >= ?{} AND {col} < ?{} AND substr({col}, 1, {}) = ?{n}",
                n - 2,
                n - 1,
                prefix.chars().count()
            )
        }
        SortKeyCondition::Between(lo, hi) => {
            args.push(lo.clone());
            args.push(hi.clone());
            let n = args.len();
            format!(" AND {col} BETWEEN ?{} AND ?{n}", n - 1)
        }
    }
}

/// The SQL and its parameters for `q`, selecting `columns` (of `items`, aliased `i`
/// on an index query) and then the position's index sort key; one row more than the
/// limit, which tells whether more follow.
fn query_sql(q: &Query, columns: &str) -> (String, Vec<String>) {
    let mut args: Vec<String> = vec![q.pk.clone()];
    let (dir, cmp) = if q.forward { ("ASC", ">") } else { ("DESC", "<") };
    let fetch = q.limit.max(1) + 1;
    let sql = match &q.index {
        None => {
            let mut sql = format!("SELECT {columns}, i.sk FROM items i WHERE i.pk = ?1");
            sql += &sort_condition("i.sk", &q.sk, &mut args);
            if let Some(after) = &q.after {
                args.push(after.key.sk.clone());
                sql += &format!(" AND i.sk {cmp} ?{}", args.len());
            }
            sql + &format!(" ORDER BY i.sk {dir} LIMIT {fetch}")
        }
        Some(name) => {
            args.push(name.clone());
            let mut sql = format!(
                "SELECT {columns}, e.isk FROM index_entries e \
                 JOIN items i ON i.pk = e.pk AND i.sk = e.sk WHERE e.ipk = ?1 AND e.name = ?2"
            );
            sql += &sort_condition("e.isk", &q.sk, &mut args);
            if let Some(after) = &q.after {
                args.extend([after.index_sk.clone(), after.key.pk.clone(), after.key.sk.clone()]);
                let n = args.len();
                sql += &format!(" AND (e.isk, e.pk, e.sk) {cmp} (?{}, ?{}, ?{n})", n - 2, n - 1);
            }
            sql + &format!(" ORDER BY e.isk {dir}, e.pk {dir}, e.sk {dir} LIMIT {fetch}")
        }
    };
    (sql, args)
}

/// Runs `q`, turning each row (`columns`, then the index sort key) into an item with
/// `row`; the page ends at the limit, with the position of its last item (`key` names
/// an item's key). Only the last row's position is kept: a long page costs no more
/// than its items.
fn run<T>(
    conn: &Connection,
    q: &Query,
    columns: &str,
    row: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
    key: impl Fn(&T) -> &Key,
) -> Result<(Vec<T>, Option<Position>), StoreError> {
    let (sql, args) = query_sql(q, columns);
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let isk = columns.split(',').count();
    let mut rows = stmt.query(rusqlite::params_from_iter(args.iter())).map_err(backend)?;
    let limit = q.limit.max(1);
    let mut items = Vec::new();
    let mut last_isk = String::new();
    while let Some(r) = rows.next().map_err(backend)? {
        if items.len() == limit {
            // One more exists: the page stops at the one before it.
            let last = items.last().map(|i| Position { key: key(i).clone(), index_sk: last_isk });
            return Ok((items, last));
        }
        items.push(row(r)?);
        last_isk.clear();
        last_isk.push_str(r.get_ref(isk).and_then(|v| v.as_str().map_err(Into::into)).map_err(backend)?);
    }
    Ok((items, None))
}

fn run_query(conn: &Connection, q: &Query) -> Result<Page, StoreError> {
    let row = |r: &rusqlite::Row<'_>| {
        let text = |n: usize| r.get::<_, String>(n).map_err(backend);
        decode_item(text(0)?, text(1)?, &text(2)?, &text(3)?)
    };
    let (items, last) = run(conn, q, "i.pk, i.sk, i.data, i.indexes", row, |i: &Item| &i.key)?;
    Ok(Page { items, last })
}

/// As [`run_query`], with each item's data as stored: no decoding.
fn run_text_query(conn: &Connection, q: &Query) -> Result<TextPage, StoreError> {
    let row = |r: &rusqlite::Row<'_>| {
        let text = |n: usize| r.get::<_, String>(n).map_err(backend);
        Ok(TextItem { key: Key { pk: text(0)?, sk: text(1)? }, text: text(2)? })
    };
    let (items, last) = run(conn, q, "i.pk, i.sk, i.data", row, |i: &TextItem| &i.key)?;
    Ok(TextPage { items, last })
}

fn read_item(conn: &Connection, key: &Key) -> Result<Option<Item>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT data, indexes FROM items WHERE pk = ?1 AND sk = ?2").map_err(backend)?;
    let row = stmt
        .query_row(params![key.pk, key.sk], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .optional()
        .map_err(backend)?;
    row.map(|(d, i)| decode_item(key.pk.clone(), key.sk.clone(), &d, &i)).transpose()
}

fn current_data(tx: &Connection, key: &Key) -> Result<Option<Value>, StoreError> {
    let mut stmt = tx.prepare_cached("SELECT data FROM items WHERE pk = ?1 AND sk = ?2").map_err(backend)?;
    let text: Option<String> = stmt.query_row(params![key.pk, key.sk], |r| r.get(0)).optional().map_err(backend)?;
    text.map(|t| serde_json::from_str(&t).map_err(backend)).transpose()
}

/// Runs one cached statement: the writer (and each reader) runs the same few
/// thousands of times.
fn exec(tx: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<(), StoreError> {
    tx.prepare_cached(sql).and_then(|mut s| s.execute(args)).map(drop).map_err(backend)
}

/// The index entries an item has now (its `indexes` column), empty when it is absent.
fn stored_indexes(tx: &Connection, key: &Key) -> Result<BTreeMap<String, Key>, StoreError> {
    let mut stmt = tx.prepare_cached("SELECT indexes FROM items WHERE pk = ?1 AND sk = ?2").map_err(backend)?;
    let text: Option<String> = stmt.query_row(params![key.pk, key.sk], |r| r.get(0)).optional().map_err(backend)?;
    text.map(|t| serde_json::from_str(&t).map_err(backend)).transpose().map(Option::unwrap_or_default)
}

fn delete_entry(tx: &Connection, name: &str, at: &Key, item: &Key) -> Result<(), StoreError> {
    exec(
        tx,
        "DELETE FROM index_entries WHERE name = ?1 AND ipk = ?2 AND isk = ?3 AND pk = ?4 AND sk = ?5",
        params![name, at.pk, at.sk, item.pk, item.sk],
    )
}

fn delete_item(tx: &Connection, key: &Key) -> Result<(), StoreError> {
    for (name, at) in &stored_indexes(tx, key)? {
        delete_entry(tx, name, at, key)?;
    }
    exec(tx, "DELETE FROM items WHERE pk = ?1 AND sk = ?2", params![key.pk, key.sk])
}

/// Writes an item in place and changes only the index entries that differ from the
/// ones it had: most writes keep an item's indexes, and an entry deleted and written
/// again would touch its pages for nothing. The item's `indexes` column names its
/// entries, so each is found by its own key.
fn put_item(tx: &Connection, item: &Item) -> Result<(), StoreError> {
    let before = stored_indexes(tx, &item.key)?;
    for (name, at) in &before {
        if item.indexes.get(name) != Some(at) {
            delete_entry(tx, name, at, &item.key)?;
        }
    }
    let data = serde_json::to_string(&item.data).map_err(backend)?;
    let indexes = serde_json::to_string(&item.indexes).map_err(backend)?;
    exec(
        tx,
        "INSERT INTO items (pk, sk, data, indexes) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (pk, sk) DO UPDATE SET data = excluded.data, indexes = excluded.indexes",
        params![item.key.pk, item.key.sk, data, indexes],
    )?;
    for (name, k) in &item.indexes {
        if before.get(name) != Some(k) {
            exec(
                tx,
                "INSERT INTO index_entries (name, ipk, isk, pk, sk) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, k.pk, k.sk, item.key.pk, item.key.sk],
            )?;
        }
    }
    Ok(())
}

/// The writer thread: until every table handle is gone, takes what waits and commits
/// it as one group.
fn write_groups(conn: Connection, jobs: std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(&conn, group);
    }
}

fn commit_group(conn: &Connection, group: Vec<Job>) {
    let outcomes = match commit_together(conn, &group) {
        Ok(outcomes) => outcomes,
        // A write statement failed (or the commit did), and the group was rolled back:
        // each job is tried again in a transaction of its own, so one that cannot be
        // written fails alone.
        Err(_) if group.len() > 1 => group.iter().map(|job| commit_alone(conn, job)).collect(),
        Err(e) => vec![Err(e)],
    };
    // Answers go out only once what they report is durable.
    for (job, outcome) in group.into_iter().zip(outcomes) {
        match job {
            Job::Transact(_, _, reply) => drop(reply.send(outcome.map(|o| match o {
                Outcome::Written(sealed) => sealed,
                Outcome::Added(_) => None,
            }))),
            Job::Add(_, _, _, reply) => drop(reply.send(outcome.map(|o| match o {
                Outcome::Added(v) => v,
                Outcome::Written(_) => 0,
            }))),
        }
    }
}

/// Applies every job of the group in one transaction and commits it: each job's
/// outcome (a failed condition fails its job alone), or an error that rolled the
/// whole group back.
fn commit_together(conn: &Connection, group: &[Job]) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
    // Begun and ended by cached statements: the writer runs them for every group.
    exec(conn, "BEGIN IMMEDIATE", [])?;
    let mut outcomes = Vec::with_capacity(group.len());
    for job in group {
        match apply_job(conn, job) {
            Err(e @ StoreError::ConditionFailed { .. }) => outcomes.push(Err(e)),
            Err(e) => return Err(roll_back(conn, e)),
            Ok(v) => outcomes.push(Ok(v)),
        }
    }
    exec(conn, "COMMIT", []).map_err(|e| roll_back(conn, e))?;
    Ok(outcomes)
}

/// Rolls the open group back (a failed COMMIT may leave it open) and returns `e`.
fn roll_back(conn: &Connection, e: StoreError) -> StoreError {
    if !conn.is_autocommit() {
        if let Err(r) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %r, "the writer could not roll a failed group back");
        }
    }
    e
}

fn commit_alone(conn: &Connection, job: &Job) -> Result<Outcome, StoreError> {
    commit_together(conn, std::slice::from_ref(job))?.pop().unwrap_or_else(|| Err(backend("no outcome")))
}

/// Applies one job: a transaction's writes once all its conditions hold (so a failed
/// one has written nothing), then the sealing of the queue it wrote to; or a counter's
/// addition.
fn apply_job(tx: &Connection, job: &Job) -> Result<Outcome, StoreError> {
    match job {
        Job::Transact(ops, None, _) => {
            check_conditions(tx, ops)?;
            ops.iter().try_for_each(|op| write(tx, op))?;
            Ok(Outcome::Written(None))
        }
        Job::Transact(ops, Some(workspace_id), _) => {
            check_conditions(tx, ops)?;
            // The entries this transaction queues are sealed from memory; only those
            // left over go into the queue.
            let queue = vigilo_app::keys::audit_queue(workspace_id);
            let mut fresh = Vec::new();
            for op in ops {
                match op {
                    WriteOp::Put { item, .. } if item.key.pk == queue => fresh.push(item.clone()),
                    op => write(tx, op)?,
                }
            }
            let sealed = seal_here(tx, workspace_id, &mut fresh);
            fresh.iter().try_for_each(|item| put_item(tx, item))?;
            sealed.map(Outcome::Written)
        }
        Job::Add(key, field, by, _) => add_to(tx, key, field, *by).map(Outcome::Added),
    }
}

/// Seals the workspace's queue where the writer stands. A queue it cannot read (a
/// corrupt entry) is left to the caller's own pass, which reports it; a statement that
/// fails fails the group, as any write does.
fn seal_here(tx: &Connection, workspace_id: &str, fresh: &mut Vec<Item>) -> Result<Option<Sealed>, StoreError> {
    match vigilo_app::seal::seal_in_place(&mut Writer(tx), workspace_id, fresh) {
        Ok(sealed) => Ok(Some(sealed)),
        Err(vigilo_app::AppError::Store(e)) => Err(e),
        Err(e) => {
            tracing::warn!(error = %e, workspace = workspace_id, "audit queue left for a sealing pass");
            Ok(None)
        }
    }
}

/// The writer's transaction, for sealing in place.
struct Writer<'c>(&'c Connection);

impl InPlace for Writer<'_> {
    fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        read_item(self.0, key)
    }

    fn query(&self, query: &Query) -> Result<Page, StoreError> {
        run_query(self.0, query)
    }

    fn write(&mut self, op: &WriteOp) -> Result<(), StoreError> {
        write(self.0, op)
    }
}

/// Every condition against the state before the transaction, as DynamoDB checks them
/// (no item appears twice in one, checked before).
fn check_conditions(tx: &Connection, ops: &[WriteOp]) -> Result<(), StoreError> {
    for (index, op) in ops.iter().enumerate() {
        let condition = match op {
            WriteOp::Put { condition, .. } | WriteOp::Delete { condition, .. } => condition.as_ref(),
            WriteOp::Check { condition, .. } => Some(condition),
        };
        if let Some(c) = condition {
            if !condition_holds(c, current_data(tx, op.key())?.as_ref()) {
                return Err(StoreError::ConditionFailed { index });
            }
        }
    }
    Ok(())
}

fn write(tx: &Connection, op: &WriteOp) -> Result<(), StoreError> {
    match op {
        WriteOp::Put { item, .. } => put_item(tx, item),
        WriteOp::Delete { key, .. } => delete_item(tx, key),
        WriteOp::Check { .. } => Ok(()),
    }
}

/// The counter's new value; `field` is one of the port's fixed names, checked to be a
/// plain word so it can sit in the JSON path.
fn add_to(tx: &rusqlite::Connection, key: &Key, field: &str, by: u64) -> Result<u64, StoreError> {
    if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Backend(format!("counter field {field:?} is not a plain name")));
    }
    let path = format!("$.{field}");
    let value: i64 = tx
        .prepare_cached(
            "INSERT INTO items (pk, sk, data, indexes) VALUES (?1, ?2, json_object(?3, ?4), '{}') \
             ON CONFLICT (pk, sk) DO UPDATE SET data = json_set(data, ?5, COALESCE(json_extract(data, ?5), 0) + ?4) \
             RETURNING json_extract(data, ?5)",
        )
        .and_then(|mut s| s.query_row(params![key.pk, key.sk, field, by as i64, path], |r| r.get(0)))
        .map_err(backend)?;
    u64::try_from(value).map_err(backend)
}

#[async_trait]
impl Table for SqliteTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let key = key.clone();
        self.read(true, move |conn| read_item(conn, &key)).await
    }

    async fn snapshot(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        check_snapshot_shape(keys)?;
        let keys = keys.to_vec();
        self.read(keys.len() <= BRIEF, move |conn| {
            // One read transaction: every row comes from the same committed state.
            exec(conn, "BEGIN DEFERRED", [])?;
            let out = keys.iter().map(|k| read_item(conn, k)).collect::<Result<Vec<_>, _>>();
            let end = exec(conn, if out.is_ok() { "COMMIT" } else { "ROLLBACK" }, []);
            let out = out?;
            end?;
            Ok(out)
        })
        .await
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.paged(query, run_query).await
    }

    async fn query_text(&self, query: &Query) -> Result<TextPage, StoreError> {
        self.paged(query, run_text_query).await
    }

    async fn add(&self, key: &Key, field: &str, by: u64) -> Result<u64, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.inner.writer.send(Job::Add(key.clone(), field.to_owned(), by, reply)).map_err(backend)?;
        answer.await.map_err(backend)?
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        check_transaction_shape(&ops)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.inner.writer.send(Job::Transact(ops, None, reply)).map_err(backend)?;
        answer.await.map_err(backend)?.map(drop)
    }

    async fn transact_sealing(&self, ops: Vec<WriteOp>, workspace_id: &str) -> Result<Option<Sealed>, StoreError> {
        check_transaction_shape(&ops)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.inner.writer.send(Job::Transact(ops, Some(workspace_id.to_owned()), reply)).map_err(backend)?;
        answer.await.map_err(backend)?
    }
}

/// Durable single-row commits per second in a fresh SQLite file at `path` (WAL,
/// `synchronous=FULL`, as the table commits): what the disk allows one transaction at
/// a time. Benchmarks print their figures beside it. The file is removed afterwards.
pub fn durable_commit_rate(path: &Path, commits: usize) -> Result<f64, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; CREATE TABLE probe (n INTEGER);")
        .map_err(backend)?;
    let start = std::time::Instant::now();
    for n in 0..commits {
        conn.execute("INSERT INTO probe (n) VALUES (?1)", params![n as i64]).map_err(backend)?;
    }
    let rate = commits as f64 / start.elapsed().as_secs_f64().max(1e-9);
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(rate)
}
