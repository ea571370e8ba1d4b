//! The commands: migrate, org create, org list, key create, serve. Each
//! admin command names the store it uses on stderr first, so that a command
//! run without the server's settings cannot silently use another store.

use std::io::Write;

use anyhow::Context;
use flowexec_domain::{Actor, ApiKeyId, ApiKeyInfo, OrganizationId, OrganizationName, Role};
use flowexec_service::{Admin, IssuedKey, ServiceError};
use serde_json::json;

use crate::cli::{Cli, Command, KeyCommand, OrgCommand};
use crate::serve::serve;
use crate::settings::Settings;
use crate::store::{open_store, redact, Backend, Purpose};
use crate::telemetry::LossyStderr;
use crate::{telemetry, with_store};

/// Runs one command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    let telemetry = telemetry::init(&settings.log)?;
    if !matches!(cli.command, Command::Serve) {
        let backend = Backend::from_settings(&settings)?;
        let _ = writeln!(LossyStderr, "flowexec: store: {}", backend.describe());
    }
    match cli.command {
        Command::Migrate => migrate(&settings),
        Command::Org {
            command: OrgCommand::Create { name, json },
        } => create_organization(&settings, &name, json),
        Command::Org {
            command: OrgCommand::List { json },
        } => list_organizations(&settings, json),
        Command::Key {
            command:
                KeyCommand::Create {
                    org,
                    role,
                    actor,
                    json,
                },
        } => create_key(&settings, &org, &role, &actor, json),
        Command::Key {
            command: KeyCommand::List { org, json },
        } => list_keys(&settings, &org, json),
        Command::Key {
            command: KeyCommand::Revoke { key_id },
        } => revoke_key(&settings, &key_id),
        Command::Serve => serve(&settings, &telemetry),
    }
}

fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let backend = Backend::from_settings(settings)?;
    let mut out = std::io::stdout().lock();
    match &backend {
        Backend::Sqlite { .. } => {
            // Opening a SQLite store applies its pending migrations.
            open_store(settings, &backend, Purpose::Admin)?;
            writeln!(out, "schema is up to date: {}", backend.describe())?;
        }
        Backend::Postgres { url } => {
            let admin = settings.database.admin_url.as_deref().context(
                "database.admin_url is required to migrate PostgreSQL (a superuser URL to the same database)",
            )?;
            let report = flowexec_persistence::migrate(admin, url)?;
            if report.database_created {
                writeln!(out, "created database for {}", redact(url))?;
            }
            for version in &report.applied {
                writeln!(out, "applied migration {version}")?;
            }
            if report.applied.is_empty() {
                writeln!(out, "schema is up to date; app role: {}", report.app_role)?;
            } else {
                writeln!(
                    out,
                    "{} migration(s) applied; app role: {}",
                    report.applied.len(),
                    report.app_role
                )?;
            }
        }
    }
    Ok(())
}

fn print_key(key: &IssuedKey, as_json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        let object = json!({
            "organization_id": key.organization_id,
            "api_key": key.plaintext,
            "key_id": key.id,
            "role": key.role.as_str(),
        });
        writeln!(out, "{object}")?;
    } else {
        writeln!(out, "organization_id: {}", key.organization_id)?;
        writeln!(out, "key_id:          {}", key.id)?;
        writeln!(out, "role:            {}", key.role)?;
        writeln!(out, "api_key:         {}", key.plaintext)?;
        writeln!(out, "The API key is shown only this once; store it now.")?;
    }
    Ok(())
}

fn create_organization(settings: &Settings, name: &str, as_json: bool) -> anyhow::Result<()> {
    let name =
        OrganizationName::parse(name).map_err(|e| anyhow::anyhow!("organization name {e}"))?;
    let store = open_store(settings, &Backend::from_settings(settings)?, Purpose::Admin)?;
    let created = with_store!(&store, s => Admin::new(s.clone()).create_organization(&name))
        .map_err(|e| match e {
            ServiceError::Conflict(_) => anyhow::anyhow!(
                "an organization named {:?} already exists (names are unique; see `flowexec org list`)",
                name.as_str()
            ),
            other => other.into(),
        })?;
    print_key(&created.key, as_json)
}

fn list_organizations(settings: &Settings, as_json: bool) -> anyhow::Result<()> {
    let backend = Backend::from_settings(settings)?;
    if matches!(backend, Backend::Postgres { .. }) {
        anyhow::ensure!(
            settings.database.admin_url.is_some(),
            "database.admin_url is required to list organizations on PostgreSQL (the server's role sees only one organization at a time)"
        );
    }
    let store = open_store(settings, &backend, Purpose::Admin)?;
    let all = with_store!(&store, s => Admin::new(s.clone()).list_organizations())?;
    let mut out = std::io::stdout().lock();
    if as_json {
        let list: Vec<_> = all
            .iter()
            .map(|o| json!({"organization_id": o.id, "name": o.name, "created_at": o.created_at}))
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(list))?;
    } else {
        for o in &all {
            writeln!(
                out,
                "{}  {}  {}",
                o.id,
                o.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                o.name
            )?;
        }
    }
    Ok(())
}

fn create_key(
    settings: &Settings,
    org: &str,
    role: &str,
    actor: &str,
    as_json: bool,
) -> anyhow::Result<()> {
    let org: OrganizationId = org.parse().map_err(|e| anyhow::anyhow!("--org {e}"))?;
    let role: Role = role.parse().map_err(|e| anyhow::anyhow!("--role {e}"))?;
    let actor: Actor = actor.parse().map_err(|e| anyhow::anyhow!("--actor {e}"))?;
    let store = open_store(settings, &Backend::from_settings(settings)?, Purpose::Admin)?;
    let key = with_store!(&store, s => Admin::new(s.clone()).create_api_key(org, role, actor))
        .map_err(|e| match e {
            ServiceError::NotFound => anyhow::anyhow!("no organization {org}"),
            other => other.into(),
        })?;
    print_key(&key, as_json)
}

fn key_json(key: &ApiKeyInfo) -> serde_json::Value {
    json!({
        "key_id": key.id,
        "organization_id": key.organization_id,
        "role": key.role.as_str(),
        "actor": key.actor.to_string(),
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    })
}

fn list_keys(settings: &Settings, org: &str, as_json: bool) -> anyhow::Result<()> {
    let org: OrganizationId = org.parse().map_err(|e| anyhow::anyhow!("--org {e}"))?;
    let store = open_store(settings, &Backend::from_settings(settings)?, Purpose::Admin)?;
    let keys = with_store!(&store, s => Admin::new(s.clone()).list_api_keys(org))?;
    let mut out = std::io::stdout().lock();
    if as_json {
        let list: Vec<_> = keys.iter().map(key_json).collect();
        writeln!(out, "{}", serde_json::Value::Array(list))?;
    } else {
        for key in &keys {
            let state = key
                .revoked_at
                .map(|at| format!("revoked {}", at.format("%Y-%m-%dT%H:%M:%SZ")))
                .unwrap_or_else(|| "active".to_owned());
            writeln!(
                out,
                "{}  {:<6}  {:<15}  {}  {}",
                key.id,
                key.role.as_str(),
                key.actor.to_string(),
                key.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                state
            )?;
        }
    }
    Ok(())
}

fn revoke_key(settings: &Settings, key_id: &str) -> anyhow::Result<()> {
    let text = key_id.trim_start_matches("fx_");
    let text = text.split('_').next().unwrap_or(text);
    let id: ApiKeyId = text
        .parse()
        .map_err(|_| anyhow::anyhow!("{key_id:?} is not a key id"))?;
    let store = open_store(settings, &Backend::from_settings(settings)?, Purpose::Admin)?;
    let revoked = with_store!(&store, s => Admin::new(s.clone()).revoke_api_key(id)).map_err(
        |e| match e {
            ServiceError::NotFound => anyhow::anyhow!("no active key {id}"),
            ServiceError::LastAdminKey => anyhow::anyhow!(
                "key {id} is its organization's last active admin key; create another admin key first"
            ),
            other => other.into(),
        },
    )?;
    writeln!(std::io::stdout().lock(), "{}", key_json(&revoked))?;
    Ok(())
}
