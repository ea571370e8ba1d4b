use diesel::prelude::*;
use diesel::sql_types::Uuid as SqlUuid;
use flowexec_domain::ports::ApiKeyRepository;
use flowexec_domain::{ApiKeyCredentials, ApiKeyId, NewApiKey, RepoError, Tenant};

use crate::error::StoreError;
use crate::postgres::rows::NewApiKeyRow;
use crate::postgres::schema::api_keys;
use crate::postgres::store::PgStore;
use crate::rows::ApiKeyLookupRow;

diesel::define_sql_function! {
    /// `flowexec_find_api_key(uuid)`: the key's organization, role, actor and
    /// secret hash; no row for an unknown or revoked key. Called through the
    /// DSL so that the statement is prepared once per connection.
    fn flowexec_find_api_key(key_id: SqlUuid) -> Record<(SqlUuid, Text, Text, Bytea)>;
}

impl ApiKeyRepository for PgStore {
    fn find_api_key(&self, id: ApiKeyId) -> Result<Option<ApiKeyCredentials>, RepoError> {
        self.read_statement(|conn| {
            let row = diesel::select(flowexec_find_api_key(id.into_uuid()))
                .get_result::<(uuid::Uuid, String, String, Vec<u8>)>(conn)
                .optional()?
                .map(ApiKeyLookupRow);
            Ok(row.map(|row| row.into_credentials(id)).transpose()?)
        })
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
