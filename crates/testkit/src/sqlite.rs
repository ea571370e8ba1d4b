//! A fresh SQLite database file per test, in its own folder, removed on drop.

use std::path::{Path, PathBuf};

use flowexec_persistence::{PoolSettings, SqliteStore};

pub struct TestSqlite {
    dir: PathBuf,
}

impl TestSqlite {
    pub fn new() -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("flowexec-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The folder (a `data_dir`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database file.
    pub fn path(&self) -> PathBuf {
        self.dir.join("flowexec.db")
    }

    /// `database.url` for the file.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path().display())
    }

    pub fn open(&self, max_size: u32) -> anyhow::Result<SqliteStore> {
        Ok(SqliteStore::open(
            &self.path(),
            &PoolSettings {
                max_size,
                ..PoolSettings::default()
            },
        )?)
    }
}

impl TestSqlite {
    /// Rows in one of [`crate::TABLES`].
    pub fn count(&self, table: &str) -> anyhow::Result<i64> {
        use diesel::Connection;
        let mut conn = diesel::SqliteConnection::establish(&self.path().to_string_lossy())?;
        crate::count_rows(&mut conn, table)
    }
}

impl Drop for TestSqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
