use diesel::prelude::*;
use flowexec_domain::ports::{DeploymentSecrets, HealthCheck};
use flowexec_domain::RepoError;

use crate::postgres::schema::deployment_secrets as ds;
use crate::postgres::store::PgStore;

impl HealthCheck for PgStore {
    fn ping(&self) -> Result<(), RepoError> {
        self.read_statement(|conn| Ok(diesel::sql_query("SELECT 1").execute(conn)?))
            .map(|_| ())
            .map_err(|e| match e {
                RepoError::Unknown(cause) => RepoError::Unavailable(cause),
                other => other,
            })
    }
}

impl DeploymentSecrets for PgStore {
    fn cursor_secret(&self) -> Result<Vec<u8>, RepoError> {
        self.read_statement(|conn| {
            Ok(ds::table
                .filter(ds::name.eq("cursor"))
                .select(ds::value)
                .first::<Vec<u8>>(conn)?)
        })
    }
}
