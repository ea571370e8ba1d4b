use diesel::prelude::*;
use flowexec_domain::ports::OrganizationRepository;
use flowexec_domain::{NewApiKey, Organization, OrganizationName, RepoError, Tenant};

use super::api_keys::insert_api_key;
use crate::models::OrganizationRow;
use crate::schema::organizations;
use crate::store::PgStore;

impl OrganizationRepository for PgStore {
    fn create_organization(
        &self,
        name: &OrganizationName,
        first_key: &NewApiKey,
    ) -> Result<Organization, RepoError> {
        let org = first_key.organization_id;
        self.tenant_tx(Tenant::new(org), |conn| {
            let organization: Organization = diesel::insert_into(organizations::table)
                .values((
                    organizations::id.eq(org.into_uuid()),
                    organizations::name.eq(name.as_str()),
                ))
                .returning(OrganizationRow::as_returning())
                .get_result(conn)?
                .try_into()?;
            insert_api_key(conn, first_key)?;
            Ok(organization)
        })
    }
}
