use diesel::prelude::*;
use flowexec_domain::ports::OrganizationRepository;
use flowexec_domain::{NewApiKey, Organization, OrganizationName, RepoError, Tenant};

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
    name: &OrganizationName,
    first_key: &NewApiKey,
) -> Result<Organization, StoreError> {
    let organization: Organization = diesel::insert_into(organizations::table)
        .values((
            organizations::id.eq(first_key.organization_id.into_uuid()),
            organizations::name.eq(name.as_str()),
        ))
        .returning(OrganizationRow::as_returning())
        .get_result(conn)?
        .try_into()?;
    insert_api_key(conn, first_key)?;
    Ok(organization)
}

impl OrganizationRepository for PgStore {
    fn create_organization(
        &self,
        name: &OrganizationName,
        first_key: &NewApiKey,
    ) -> Result<Organization, RepoError> {
        self.tenant_tx(Tenant::new(first_key.organization_id), |conn| {
            insert_organization(conn, name, first_key)
        })
    }

    fn bootstrap_organization(
        &self,
        name: &OrganizationName,
        first_key: &NewApiKey,
    ) -> Result<Option<Organization>, RepoError> {
        self.tenant_tx(Tenant::new(first_key.organization_id), |conn| {
            // Held to the end of the transaction: a concurrent bootstrap
            // (another process too) waits here, then sees this one's row.
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({BOOTSTRAP_LOCK})"))
                .execute(conn)?;
            if diesel::select(flowexec_has_organizations()).get_result::<bool>(conn)? {
                return Ok(None);
            }
            insert_organization(conn, name, first_key).map(Some)
        })
    }

    fn list_organizations(&self) -> Result<Vec<Organization>, RepoError> {
        self.read(|conn| {
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
