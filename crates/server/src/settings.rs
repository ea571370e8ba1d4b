//! Settings, loaded once with the `config` crate and passed explicitly.
//!
//! Layers, lowest first: built-in defaults < the TOML file (`flowexec.toml`
//! in the working directory, or `--config PATH`) < `DATABASE_URL` (for
//! `database.url` only) < environment variables `FLOWEXEC__SECTION__KEY`.
//!
//! Keys read:
//! - `database.url` — the server's connection, as the restricted app role
//!   (default `postgres://flowexec_app@localhost:5432/flowexec`)
//! - `database.admin_url` — migrations and admin commands
//!   (default `postgres://postgres@localhost:5432/flowexec`)
//! - `database.pool_size` (default 10), `database.connect_timeout_secs` (5)
//! - `server.bind` (default `127.0.0.1:8080`), `server.workers` (default:
//!   one per core), `server.max_body_bytes` (default 1048576),
//!   `server.shutdown_timeout_secs` (default 30)
//! - `auth.key_cache_secs` — how long verified key credentials are reused
//!   without a database lookup (default 10; 0 disables; a revoked key
//!   stops working within this time)
//! - `log.format` — `text` or `json` (default `text`); `log.level` — an
//!   `EnvFilter` directive (default `info`; `RUST_LOG` wins when set)

use std::path::Path;

use anyhow::Context;
use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub key_cache_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub admin_url: String,
    pub pool_size: u32,
    pub connect_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub bind: String,
    pub workers: Option<usize>,
    pub max_body_bytes: usize,
    pub shutdown_timeout_secs: u64,
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

const DEFAULTS: &str = r#"
[database]
url = "postgres://flowexec_app@localhost:5432/flowexec"
admin_url = "postgres://postgres@localhost:5432/flowexec"
pool_size = 10
connect_timeout_secs = 5

[server]
bind = "127.0.0.1:8080"
max_body_bytes = 1048576
shutdown_timeout_secs = 30

[auth]
key_cache_secs = 10

[log]
format = "text"
level = "info"
"#;

impl Settings {
    /// Loads the layers. `file` is `--config PATH` (which must exist);
    /// without it, `flowexec.toml` is read if present.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
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
        Ok(())
    }
}
