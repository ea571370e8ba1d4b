//! The commands: migrate, org create, key create, serve.

use std::io::Write;

use anyhow::Context;
use flowexec_domain::{Actor, OrganizationId, OrganizationName, Role};
use flowexec_persistence::{PgStore, PoolSettings};
use flowexec_service::{IssuedKey, Service};
use serde_json::json;

use crate::cli::{Cli, Command, KeyCommand, OrgCommand};
use crate::serve::{redact, serve};
use crate::settings::Settings;
use crate::telemetry;

/// Runs one command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init(&settings.log)?;
    match cli.command {
        Command::Migrate => migrate(&settings),
        Command::Org {
            command: OrgCommand::Create { name, json },
        } => create_organization(&settings, &name, json),
        Command::Key {
            command:
                KeyCommand::Create {
                    org,
                    role,
                    actor,
                    json,
                },
        } => create_key(&settings, &org, &role, &actor, json),
        Command::Serve => serve(&settings),
    }
}

fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let report =
        flowexec_persistence::migrate(&settings.database.admin_url, &settings.database.url)?;
    let mut out = std::io::stdout().lock();
    if report.database_created {
        writeln!(
            out,
            "created database for {}",
            redact(&settings.database.url)
        )?;
    }
    if report.applied.is_empty() {
        writeln!(out, "schema is up to date; app role: {}", report.app_role)?;
    } else {
        for version in &report.applied {
            writeln!(out, "applied migration {version}")?;
        }
        writeln!(
            out,
            "{} migration(s) applied; app role: {}",
            report.applied.len(),
            report.app_role
        )?;
    }
    Ok(())
}

fn admin_service(settings: &Settings) -> anyhow::Result<Service<PgStore>> {
    let store = PgStore::connect(
        &settings.database.admin_url,
        &PoolSettings {
            max_size: 1,
            ..PoolSettings::default()
        },
    )
    .with_context(|| {
        format!(
            "cannot connect with database.admin_url ({})",
            redact(&settings.database.admin_url)
        )
    })?;
    Ok(Service::new(store))
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
    let created = admin_service(settings)?.create_organization(&name)?;
    print_key(&created.key, as_json)
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
    let key = admin_service(settings)?
        .create_api_key(org, role, actor)
        .map_err(|e| match e {
            flowexec_service::ServiceError::NotFound => anyhow::anyhow!("no organization {org}"),
            other => other.into(),
        })?;
    print_key(&key, as_json)
}
