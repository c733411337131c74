//! The storage contract, run unchanged against DynamoDB on the emulator. Without it
//! (plain `cargo test`) every case is reported as ignored; `scripts/test` runs them.

use std::sync::Arc;

use vigilo_app::store::Table;
use vigilo_aws::emulator;

async fn fresh() -> (Arc<dyn Table>, ()) {
    (Arc::new(emulator::fresh_table().await), ())
}

vigilo_app::table_contract_tests!(
    fresh().await;
    #[ignore = "needs emulated AWS; ./scripts/test starts moto and runs it"]
);
