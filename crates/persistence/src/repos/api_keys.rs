use diesel::prelude::*;
use diesel::sql_types::Uuid as SqlUuid;
use flowexec_domain::ports::ApiKeyRepository;
use flowexec_domain::{ApiKeyCredentials, ApiKeyId, NewApiKey, RepoError, Tenant};

use crate::error::StoreError;
use crate::models::{ApiKeyLookupRow, NewApiKeyRow};
use crate::schema::api_keys;
use crate::store::PgStore;

impl ApiKeyRepository for PgStore {
    fn find_api_key(&self, id: ApiKeyId) -> Result<Option<ApiKeyCredentials>, RepoError> {
        let mut conn = self.conn()?;
        let row = diesel::sql_query(
            "SELECT organization_id, role, actor, secret_sha256 FROM flowexec_find_api_key($1)",
        )
        .bind::<SqlUuid, _>(id.into_uuid())
        .get_result::<ApiKeyLookupRow>(&mut conn)
        .optional()
        .map_err(StoreError::from)?;
        Ok(row
            .map(|row| row.into_credentials(id))
            .transpose()
            .map_err(StoreError::from)?)
    }

    fn create_api_key(&self, key: &NewApiKey) -> Result<(), RepoError> {
        self.tenant_tx(Tenant::new(key.organization_id), |conn| {
            insert_api_key(conn, key)
        })
    }
}

pub(crate) fn insert_api_key(conn: &mut PgConnection, key: &NewApiKey) -> Result<(), StoreError> {
    diesel::insert_into(api_keys::table)
        .values(NewApiKeyRow::from(key))
        .execute(conn)?;
    Ok(())
}
