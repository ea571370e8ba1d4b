//! Tenant scoping: one transaction per unit of work, confined to one
//! organization for Row-Level Security.

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use flowexec_domain::Tenant;

use crate::error::StoreError;

diesel::define_sql_function! {
    /// PostgreSQL's `set_config(setting, value, is_local)`.
    fn set_config(setting: Text, value: Text, is_local: Bool) -> Text;
}

/// Runs `work` in a transaction whose `app.organization_id` is the tenant's.
///
/// The setting is transaction-local (`is_local = true`): it ends with the
/// transaction, commit or rollback, so a pooled connection never carries one
/// tenant's setting into the next request.
pub(crate) fn in_tenant<T>(
    conn: &mut PgConnection,
    tenant: Tenant,
    work: impl FnOnce(&mut PgConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.transaction(|conn| {
        diesel::select(set_config(
            "app.organization_id",
            tenant.organization_id().to_string(),
            true,
        ))
        .execute(conn)?;
        work(conn)
    })
}
