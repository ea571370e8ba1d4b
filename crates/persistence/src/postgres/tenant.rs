//! Tenant scoping: one transaction per unit of work, confined to one
//! organization for Row-Level Security.

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::pg::PgConnection;
use diesel::result::Error as DieselError;
use flowexec_domain::Tenant;

/// Whether a unit of work may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    ReadWrite,
    ReadOnly,
}

/// Runs `work` in a transaction whose `app.organization_id` is the tenant's:
/// committed when `work` returns `Ok`, rolled back otherwise.
///
/// The transaction starts and the tenant is set in one round trip
/// (`BEGIN; SELECT set_config(…, true)`). The setting is transaction-local:
/// it ends with the transaction, commit or rollback, so a pooled connection
/// never carries one tenant's setting into the next request.
pub(crate) fn in_tenant<T, E>(
    conn: &mut PgConnection,
    tenant: Tenant,
    access: Access,
    work: impl FnOnce(&mut PgConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DieselError>,
{
    let mode = match access {
        Access::ReadWrite => "",
        Access::ReadOnly => " READ ONLY",
    };
    // A UUID's text: nothing to escape.
    let begin = format!(
        "BEGIN{mode}; SELECT set_config('app.organization_id', '{}', true)",
        tenant.organization_id()
    );
    AnsiTransactionManager::begin_transaction_sql(conn, &begin)?;
    match work(&mut *conn) {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => match AnsiTransactionManager::rollback_transaction(conn) {
            Ok(()) | Err(DieselError::BrokenTransactionManager) => Err(error),
            Err(rollback) => Err(rollback.into()),
        },
    }
}
