use chrono::{DateTime, Utc};
use diesel::prelude::*;
use flowexec_domain::ports::{OrganizationRepository, OverdueRuns};
use flowexec_domain::{
    NewApiKey, Organization, OrganizationId, RepoError, TaskExecutionId, Tenant,
};

use super::api_keys::insert_api_key;
use crate::error::StoreError;
use crate::postgres::migrate::OWNER_ROLE;
use crate::postgres::schema::organizations;
use crate::postgres::store::PgStore;
use crate::rows::OrganizationRow;

diesel::define_sql_function! {
    /// Whether any organization exists, across tenants (SECURITY DEFINER).
    fn flowexec_has_organizations() -> Bool;
}

/// An arbitrary constant: the advisory lock that serializes bootstraps.
const BOOTSTRAP_LOCK: i64 = 0x666c_6f77_626f_6f74;

fn insert_organization(
    conn: &mut PgConnection,
    organization: &Organization,
    first_key: &NewApiKey,
) -> Result<(), StoreError> {
    diesel::insert_into(organizations::table)
        .values(OrganizationRow::from(organization))
        .execute(conn)?;
    insert_api_key(conn, first_key)
}

impl OrganizationRepository for PgStore {
    fn create_organization(
        &self,
        organization: &Organization,
        first_key: &NewApiKey,
    ) -> Result<(), RepoError> {
        self.tenant_tx(Tenant::new(organization.id), |conn| {
            insert_organization(conn, organization, first_key)
        })
    }

    fn bootstrap_organization(
        &self,
        organization: &Organization,
        first_key: &NewApiKey,
    ) -> Result<bool, RepoError> {
        self.tenant_tx(Tenant::new(organization.id), |conn| {
            // Held to the end of the transaction: a concurrent bootstrap
            // (another process too) waits here, then sees this one's row.
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({BOOTSTRAP_LOCK})"))
                .execute(conn)?;
            if diesel::select(flowexec_has_organizations()).get_result::<bool>(conn)? {
                return Ok(false);
            }
            insert_organization(conn, organization, first_key).map(|()| true)
        })
    }

    fn list_organizations(&self) -> Result<Vec<Organization>, RepoError> {
        self.read_statement(|conn| {
            conn.transaction(|conn| {
                // The owner's census policy reads every organization; only
                // an administrative role may take it on (the app role may not).
                diesel::sql_query(format!("SET LOCAL ROLE {OWNER_ROLE}")).execute(conn)?;
                organizations::table
                    .order((organizations::created_at.asc(), organizations::id.asc()))
                    .select(OrganizationRow::as_select())
                    .load(conn)?
                    .into_iter()
                    .map(|row| Ok(Organization::try_from(row)?))
                    .collect()
            })
        })
    }
}

/// One row of `flowexec_overdue_runs`.
#[derive(QueryableByName)]
struct OverdueRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    organization_id: uuid::Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: uuid::Uuid,
}

impl OverdueRuns for PgStore {
    /// One statement, as the owner through `flowexec_overdue_runs` (SECURITY
    /// DEFINER): the app role cannot see across tenants.
    fn overdue_runs(
        &self,
        at: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(OrganizationId, TaskExecutionId)>, RepoError> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        self.read_statement(|conn| {
            Ok(
                diesel::sql_query("SELECT organization_id, id FROM flowexec_overdue_runs($1, $2)")
                    .bind::<diesel::sql_types::Timestamptz, _>(at)
                    .bind::<diesel::sql_types::Integer, _>(limit)
                    .load::<OverdueRow>(conn)?
                    .into_iter()
                    .map(|row| {
                        (
                            OrganizationId::from_uuid(row.organization_id),
                            TaskExecutionId::from_uuid(row.id),
                        )
                    })
                    .collect(),
            )
        })
    }
}
