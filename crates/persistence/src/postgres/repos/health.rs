use diesel::prelude::*;
use flowexec_domain::ports::HealthCheck;
use flowexec_domain::RepoError;

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
