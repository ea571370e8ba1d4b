#![doc = include_str!("../README.md")]

#[cfg(feature = "postgres")]
mod cluster;
#[cfg(feature = "postgres")]
mod db;
#[cfg(feature = "model")]
pub mod model;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use cluster::Cluster;
#[cfg(feature = "postgres")]
pub use db::TestDb;
#[cfg(feature = "sqlite")]
pub use sqlite::TestSqlite;

/// Every table of the schema, parents first: what an upgrade test counts.
pub const TABLES: [&str; 5] = [
    "organizations",
    "api_keys",
    "flow_executions",
    "task_executions",
    "task_execution_events",
];

/// `SELECT count(*)` of one table, on any diesel connection.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
fn count_rows<C>(conn: &mut C, table: &str) -> anyhow::Result<i64>
where
    C: diesel::connection::LoadConnection,
    diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'static, C, Count>,
{
    use diesel::RunQueryDsl;
    anyhow::ensure!(
        TABLES.contains(&table),
        "{table:?} is not a table of the schema"
    );
    Ok(
        diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
            .get_result::<Count>(conn)?
            .n,
    )
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}
