//! First start: when the store has no organization at all, create
//! organization `default` and an admin key, show the key once and save it
//! in `data_dir` under a name of the store's own, never over another file.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::settings::Settings;
use flowexec_service::Admin;

use crate::store::{AnyStore, Backend};
use crate::telemetry::LossyStderr;
use crate::with_store;

/// On first start (no organization at all), creates organization `default`
/// and an admin key, prints the key once to stderr with an example, and
/// saves it in `data_dir` (mode 0600) under the store's file name
/// ([`key_file_name`]). Later starts do nothing.
pub(crate) fn bootstrap(
    settings: &Settings,
    backend: &Backend,
    store: &AnyStore,
    address: SocketAddr,
) -> anyhow::Result<()> {
    let Some(created) = with_store!(store, s => Admin::new(s.clone()).bootstrap())? else {
        return Ok(());
    };
    let key_file = write_secret(
        &settings.data_dir.join(key_file_name(settings, backend)),
        &created.key.plaintext,
    )?;
    tracing::info!(
        organization.id = %created.organization.id,
        key_file = %key_file.display(),
        "first start: created organization \"default\" and its admin key"
    );
    let shown = if address.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], address.port()))
    } else {
        address
    };
    let key = &created.key.plaintext;
    // The key is in the file already; a closed stderr must not stop the server.
    let _ = writeln!(
        LossyStderr,
        "\nflowexec: first start: created organization \"default\" ({}) and an admin API key,\n\
         shown this once and saved to {}:\n\n    {key}\n\n\
         Try it:\n    curl -s -X POST http://{shown}/flow-executions -H \"Authorization: Bearer {key}\" \
         -H 'Content-Type: application/json' -d '{{\"flow_name\": \"hello\", \"tasks\": [{{\"task_name\": \"greet\"}}]}}'\n",
        created.organization.id,
        key_file.display(),
    );
    Ok(())
}

/// The key file's name in `data_dir`: `admin-key` for the default SQLite
/// database (`<data_dir>/flowexec.db`), else one of the store's own, so that
/// two stores run from one directory never share a file.
fn key_file_name(settings: &Settings, backend: &Backend) -> String {
    let slug = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_') {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    match backend {
        Backend::Sqlite { path } if *path == settings.data_dir.join("flowexec.db") => {
            "admin-key".to_owned()
        }
        Backend::Sqlite { path } => format!(
            "admin-key.sqlite-{}",
            slug(&path.file_stem().unwrap_or_default().to_string_lossy())
        ),
        Backend::Postgres { url } => {
            let parsed = url::Url::parse(url).ok();
            let part = |f: fn(&url::Url) -> Option<String>| {
                parsed.as_ref().and_then(f).unwrap_or_default()
            };
            format!(
                "admin-key.postgres-{}-{}-{}",
                slug(&part(|u| u.host_str().map(str::to_owned))),
                part(|u| Some(u.port().unwrap_or(5432).to_string())),
                slug(&part(|u| Some(u.path().trim_start_matches('/').to_owned())))
            )
        }
    }
}

/// Writes `secret` to a new file at `path`, readable and writable by the
/// owner only, and returns where. An existing file is never overwritten:
/// the next free `<path>-2`, `<path>-3`, … is used instead.
fn write_secret(path: &Path, secret: &str) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for n in 1..=100 {
        let candidate = if n == 1 {
            path.to_owned()
        } else {
            PathBuf::from(format!("{}-{n}", path.display()))
        };
        let context = || format!("cannot write the admin key to {}", candidate.display());
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&candidate)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(context),
        };
        writeln!(file, "{secret}").with_context(context)?;
        file.sync_all().with_context(context)?;
        return Ok(candidate);
    }
    anyhow::bail!(
        "cannot save the admin key: {} and 99 numbered files next to it exist",
        path.display()
    )
}
