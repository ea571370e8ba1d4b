//! The ports' contract (`flowexec-contract`) on both stores: every case, on
//! a fresh store of each kind, as one test each (`postgres::<case>`,
//! `sqlite::<case>`). The list comes from the contract crate, so a case
//! cannot be defined without being run here.

use std::sync::Arc;

use flowexec_contract::{cases, Ports};
use flowexec_persistence::{PgStore, PoolSettings, SqliteStore};
use flowexec_testkit::{TestDb, TestSqlite};
use libtest_mimic::{Arguments, Failed, Trial};

/// PostgreSQL as the app role, with a pool large enough for the cases that
/// race 16 units of work.
fn postgres() -> anyhow::Result<(TestDb, PgStore)> {
    let db = TestDb::new()?;
    let store = PgStore::connect(
        &db.app_url(),
        &PoolSettings {
            max_size: 16,
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

/// One trial per case, each with a fresh store from `make` (its guard lives
/// as long as the case).
fn trials<G: 'static, S: Ports>(kind: &str, make: fn() -> anyhow::Result<(G, S)>) -> Vec<Trial> {
    cases::<S>()
        .into_iter()
        .map(|(name, case)| {
            Trial::test(format!("{kind}::{name}"), move || {
                let (_guard, store) = make().map_err(|e| Failed::from(format!("{e:#}")))?;
                case(Arc::new(store)).map_err(|e| Failed::from(format!("{e:?}")))
            })
        })
        .collect()
}

fn main() {
    let args = Arguments::from_args();
    let mut all = trials("postgres", postgres);
    all.extend(trials("sqlite", sqlite));
    libtest_mimic::run(&args, all).exit();
}
