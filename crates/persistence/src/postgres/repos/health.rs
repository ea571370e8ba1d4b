use diesel::prelude::*;
use flowexec_domain::ports::HealthCheck;
use flowexec_domain::RepoError;

use crate::postgres::store::PgStore;

impl HealthCheck for PgStore {
    fn ping(&self) -> Result<(), RepoError> {
        let mut conn = self.conn()?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .map_err(|e| RepoError::Unavailable(e.into()))?;
        Ok(())
    }
}
