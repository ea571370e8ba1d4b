//! The repository contract (`flowexec_testkit::contract`) on both stores.

use flowexec_persistence::{PgStore, PoolSettings, SqliteStore};
use flowexec_testkit::{TestDb, TestSqlite};

/// PostgreSQL as the app role, with a pool of two connections.
fn postgres() -> anyhow::Result<(TestDb, PgStore)> {
    let db = TestDb::new()?;
    let store = PgStore::connect(
        &db.app_url(),
        &PoolSettings {
            max_size: 2,
            ..PoolSettings::default()
        },
    )?;
    Ok((db, store))
}

fn sqlite() -> anyhow::Result<(TestSqlite, SqliteStore)> {
    let db = TestSqlite::new()?;
    let store = db.open(4)?;
    Ok((db, store))
}

mod on_postgres {
    flowexec_testkit::contract_tests!(super::postgres());
}

mod on_sqlite {
    flowexec_testkit::contract_tests!(super::sqlite());
}
