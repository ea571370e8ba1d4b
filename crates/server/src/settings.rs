//! Settings, loaded once with the `config` crate and passed explicitly.
//!
//! Layers, lowest first: built-in defaults < the TOML file (`flowexec.toml`
//! in the working directory, or `--config PATH`) < `DATABASE_URL` (for
//! `database.url` only) < environment variables `FLOWEXEC__SECTION__KEY`.
//!
//! Keys read:
//! - `data_dir` — where the embedded database and the bootstrap key live
//!   (default `./flowexec-data`, created if missing)
//! - `database.url` — which store: `postgres://…` or `postgresql://…`
//!   (PostgreSQL, as the restricted app role), `sqlite://PATH` (SQLite), or
//!   unset: SQLite at `<data_dir>/flowexec.db`
//! - `database.admin_url` — PostgreSQL only: migrations and admin commands
//!   (a superuser, or a member of `flowexec_owner` with `CREATEROLE`)
//! - `database.pool_size` (default: two per core, at least 2),
//!   `database.connect_timeout_secs` (5)
//! - `server.bind` (default `127.0.0.1:8080`), `server.workers` (default:
//!   one per core), `server.max_body_bytes` (default 1048576),
//!   `server.body_timeout_secs` — how long a request body may take to
//!   arrive (default 15; slower is a 408), `server.max_connections` — open
//!   connections at most, across workers (default: what the open-file
//!   limit allows, after raising its soft limit to the hard one),
//!   `server.shutdown_timeout_secs` (default 30)
//! - `bootstrap.enabled` — on first start (no organization yet) create
//!   organization `default` and an admin key (default true)
//! - `auth.key_cache_secs` — how long an authentication verdict (a valid
//!   key's principal, or a refusal) is reused without a database lookup
//!   (default 10; 0 disables; a revoked key stops working within this time)
//! - `workers.retry` — the retry policy of a task created without one:
//!   `max_attempts` (default 3), `backoff.initial_ms` (1000),
//!   `backoff.factor` (2.0), `backoff.max_ms` (60000), `jitter` (`full` or
//!   `none`; default `full`); `workers.sweep_interval_secs` — how often each
//!   server process fails and retries runs past their lease or time limit
//!   (default 5, 1–3600)
//! - `log.format` — `text` or `json` (default `text`); `log.level` — an
//!   `EnvFilter` directive (default `info`; `RUST_LOG` wins when set)

use std::path::{Path, PathBuf};

use anyhow::Context;
use config::{Config, Environment, File, FileFormat};
use flowexec_api::ApiSettings;
use flowexec_domain::{Jitter, RetryPolicy};
use flowexec_persistence::PoolSettings;
use flowexec_service::{KeyCacheSettings, WorkerSettings};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database: DatabaseSettings,
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub bootstrap: BootstrapSettings,
    pub workers: WorkersSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct WorkersSettings {
    pub retry: RetryPolicy,
    /// How often each server process looks for runs past their lease or
    /// time limit.
    pub sweep_interval_secs: u64,
}

impl From<WorkersSettings> for WorkerSettings {
    fn from(settings: WorkersSettings) -> Self {
        Self {
            default_retry: settings.retry,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct BootstrapSettings {
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub key_cache_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: Option<String>,
    pub admin_url: Option<String>,
    pub pool_size: u32,
    pub connect_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub bind: String,
    pub workers: Option<usize>,
    pub max_body_bytes: usize,
    pub body_timeout_secs: u64,
    pub max_connections: Option<usize>,
    pub shutdown_timeout_secs: u64,
}

/// The cores this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl ServerSettings {
    /// `workers`, or one per core.
    pub fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(cores)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

/// The defaults of the settings only the server has; the others come from
/// the crate that owns them (see [`defaults_builder`]).
const DEFAULTS: &str = r#"
data_dir = "./flowexec-data"

[server]
bind = "127.0.0.1:8080"
shutdown_timeout_secs = 30

[bootstrap]
enabled = true

[log]
format = "text"
level = "info"
"#;

/// The built-in defaults: [`DEFAULTS`], and each layer's own for the
/// settings it owns (the pool's, the HTTP layer's, the key cache's).
fn defaults_builder() -> anyhow::Result<config::ConfigBuilder<config::builder::DefaultState>> {
    let pool = PoolSettings::default();
    let api = ApiSettings::default();
    let keys = KeyCacheSettings::default();
    let retry = WorkerSettings::default().default_retry;
    Ok(Config::builder()
        .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
        .set_default("database.pool_size", pool.max_size)?
        .set_default(
            "database.connect_timeout_secs",
            pool.connection_timeout.as_secs(),
        )?
        .set_default("server.max_body_bytes", u64::try_from(api.max_body_bytes)?)?
        .set_default("server.body_timeout_secs", api.body_timeout.as_secs())?
        .set_default("auth.key_cache_secs", keys.ttl.as_secs())?
        .set_default("workers.sweep_interval_secs", 5)?
        .set_default("workers.retry.max_attempts", retry.max_attempts)?
        .set_default("workers.retry.backoff.initial_ms", retry.backoff.initial_ms)?
        .set_default("workers.retry.backoff.factor", retry.backoff.factor)?
        .set_default("workers.retry.backoff.max_ms", retry.backoff.max_ms)?
        .set_default(
            "workers.retry.jitter",
            match retry.jitter {
                Jitter::Full => "full",
                Jitter::None => "none",
            },
        )?)
}

impl Settings {
    /// Loads the layers. `file` is `--config PATH` (which must exist);
    /// without it, `flowexec.toml` is read if present.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut builder = defaults_builder()?;
        builder = match file {
            Some(path) => {
                builder.add_source(File::from(path).format(FileFormat::Toml).required(true))
            }
            None => {
                builder.add_source(File::new("flowexec.toml", FileFormat::Toml).required(false))
            }
        };
        if let Ok(url) = std::env::var("DATABASE_URL") {
            builder = builder.add_source(
                Config::builder()
                    .set_default("database.url", url)?
                    .build()?,
            );
        }
        let settings = builder
            .add_source(
                Environment::with_prefix("FLOWEXEC")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .context("reading the settings failed")?
            .try_deserialize::<Settings>()
            .context("the settings are invalid")?;
        settings.validate()?;
        Ok(settings)
    }

    /// The built-in defaults alone: no file, no environment.
    pub fn defaults() -> anyhow::Result<Self> {
        Ok(defaults_builder()?.build()?.try_deserialize()?)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.database.pool_size >= 1,
            "database.pool_size must be at least 1"
        );
        anyhow::ensure!(
            self.server.max_body_bytes >= 1024,
            "server.max_body_bytes must be at least 1024"
        );
        anyhow::ensure!(
            self.server.workers != Some(0),
            "server.workers must be at least 1"
        );
        anyhow::ensure!(
            (1..=3600).contains(&self.server.body_timeout_secs),
            "server.body_timeout_secs must be between 1 and 3600"
        );
        anyhow::ensure!(
            self.server.max_connections != Some(0),
            "server.max_connections must be at least 1"
        );
        anyhow::ensure!(
            (1..=3600).contains(&self.workers.sweep_interval_secs),
            "workers.sweep_interval_secs must be between 1 and 3600"
        );
        if let Err(errors) = self.workers.retry.validate() {
            let listed: Vec<String> = errors
                .iter()
                .map(|(field, e)| format!("workers.retry.{field} {e}"))
                .collect();
            anyhow::bail!("{}", listed.join("; "));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARIABLES: [&str; 4] = [
        "DATABASE_URL",
        "FLOWEXEC__DATABASE__URL",
        "FLOWEXEC__SERVER__BIND",
        "FLOWEXEC__DATABASE__POOL_SIZE",
    ];

    fn clear_variables() {
        for name in VARIABLES {
            std::env::remove_var(name);
        }
    }

    /// One test, so that no other test in this binary sees the variables it
    /// sets.
    #[test]
    fn layers_apply_in_order_defaults_file_database_url_then_environment() -> anyhow::Result<()> {
        clear_variables();
        let dir = std::env::temp_dir().join(format!("flowexec-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let empty = dir.join("empty.toml");
        std::fs::write(&empty, "")?;
        let defaults = Settings::load(Some(&empty))?;
        assert_eq!(defaults.server.bind, "127.0.0.1:8080");
        assert_eq!(defaults.database.url, None, "no database.url means SQLite");
        assert_eq!(defaults.data_dir, PathBuf::from("./flowexec-data"));
        assert!(defaults.bootstrap.enabled);
        // The documented defaults (README, docs/operations.md), wherever
        // they are defined.
        assert_eq!(
            (
                defaults.database.pool_size,
                defaults.database.connect_timeout_secs,
                defaults.auth.key_cache_secs
            ),
            ((2 * cores() as u32).max(2), 5, 10)
        );
        assert_eq!(
            (
                defaults.server.max_body_bytes,
                defaults.server.body_timeout_secs,
                defaults.server.shutdown_timeout_secs
            ),
            (1_048_576, 15, 30)
        );
        assert_eq!(defaults.log.format, LogFormat::Text);
        assert_eq!(defaults.workers.sweep_interval_secs, 5);
        assert_eq!(defaults.workers.retry, RetryPolicy::default());

        // A broken default retry policy is refused, each bound named.
        let policy = dir.join("policy.toml");
        std::fs::write(
            &policy,
            "[workers.retry]\nmax_attempts = 0\njitter = \"none\"\n[workers.retry.backoff]\ninitial_ms = 10\nfactor = 2.0\nmax_ms = 5\n",
        )?;
        let refused = Settings::load(Some(&policy)).err().map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|e| e.contains("workers.retry.max_attempts")
                    && e.contains("workers.retry.backoff.max_ms")),
            "{refused:?}"
        );

        let file = dir.join("flowexec.toml");
        std::fs::write(
            &file,
            "[database]\nurl = \"postgres://from-file/db\"\npool_size = 3\n[server]\nbind = \"0.0.0.0:1\"\n[log]\nformat = \"json\"\n",
        )?;
        let from_file = Settings::load(Some(&file))?;
        assert_eq!(
            from_file.database.url.as_deref(),
            Some("postgres://from-file/db")
        );
        assert_eq!(
            (from_file.database.pool_size, from_file.log.format),
            (3, LogFormat::Json)
        );

        std::env::set_var("DATABASE_URL", "postgres://from-database-url/db");
        assert_eq!(
            Settings::load(Some(&file))?.database.url.as_deref(),
            Some("postgres://from-database-url/db")
        );

        std::env::set_var("FLOWEXEC__DATABASE__URL", "postgres://from-env/db");
        std::env::set_var("FLOWEXEC__SERVER__BIND", "127.0.0.1:9");
        std::env::set_var("FLOWEXEC__DATABASE__POOL_SIZE", "7");
        let from_env = Settings::load(Some(&file))?;
        assert_eq!(
            from_env.database.url.as_deref(),
            Some("postgres://from-env/db")
        );
        assert_eq!(
            (from_env.server.bind.as_str(), from_env.database.pool_size),
            ("127.0.0.1:9", 7)
        );

        std::env::set_var("FLOWEXEC__DATABASE__POOL_SIZE", "0");
        assert!(
            Settings::load(Some(&file)).is_err(),
            "a pool of 0 was accepted"
        );
        assert!(
            Settings::load(Some(&dir.join("missing.toml"))).is_err(),
            "a missing --config file was accepted"
        );

        clear_variables();
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
