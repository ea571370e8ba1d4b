//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "flowexec",
    version,
    about = "Multi-tenant workflow execution service"
)]
pub struct Cli {
    /// A TOML settings file (default: ./flowexec.toml when present).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the roles if missing and apply pending migrations (uses database.admin_url).
    Migrate,
    /// Organizations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Run the HTTP server (uses database.url, the restricted app role).
    Serve,
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization and its first admin key (printed once).
    Create {
        /// Name of the organization; unique in the deployment.
        name: String,
        /// Print one JSON object: {"organization_id", "api_key", "key_id", "role"}.
        #[arg(long)]
        json: bool,
    },
    /// List every organization, oldest first (on PostgreSQL: needs database.admin_url).
    List {
        /// Print one JSON array of {"organization_id", "name", "created_at"}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key for an organization (printed once).
    Create {
        /// The organization's id.
        #[arg(long, value_name = "ORG_ID")]
        org: String,
        /// admin, write, read or worker.
        #[arg(long)]
        role: String,
        /// Recorded as modified_by: system, integration, service-account or a user UUID.
        #[arg(long, default_value = "system")]
        actor: String,
        /// Print one JSON object: {"organization_id", "api_key", "key_id"}.
        #[arg(long)]
        json: bool,
    },
    /// List an organization's keys, oldest first, revoked ones included
    /// (never a secret).
    List {
        /// The organization's id.
        #[arg(long, value_name = "ORG_ID")]
        org: String,
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: refused from then on (by running servers within
    /// auth.key_cache_secs). An organization's last active admin key cannot
    /// be revoked.
    Revoke {
        /// The key's id (the part after `fx_`, or its UUID).
        key_id: String,
    },
}
