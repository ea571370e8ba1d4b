//! The PostgreSQL store: diesel over libpq, tenant isolation by Row-Level
//! Security on top of the repository's own filters.

mod listen;
mod migrate;
mod pool;
mod repos;
mod rows;
pub(crate) mod schema;
mod store;
mod tenant;
pub(crate) mod tx;

pub use listen::{ListenEvent, WorkListener, WORK_CHANNEL};
pub use migrate::{inspect_role, migrate, migrate_up_to, MigrationReport, RoleReport};
pub use store::PgStore;
pub use tx::PgTx;
