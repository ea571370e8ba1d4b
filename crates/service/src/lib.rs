#![doc = include_str!("../README.md")]

mod admin;
mod api_keys;
mod auth;
mod cursor;
mod engine;
pub use engine::NewWork;
mod error;
mod executions;
mod flows;
mod health;
mod key_cache;
pub mod keys;
mod workers;

pub use admin::{Admin, CreatedOrganization};
pub use api_keys::{revoke, ApiKeys, KeyUseCases};
pub use auth::{
    require_admin, require_worker, require_write, Authenticate, KeyAuthenticator, KeyCacheSettings,
};
pub use error::ServiceError;
pub use executions::{
    ChangeRequest, Changed, ExecutionUseCases, Executions, Page, PageRequest, DEFAULT_PAGE,
    MAX_PAGE,
};
pub use flows::{FlowUseCases, Flows, Stored, StoredFlow};
pub use health::{Readiness, StoreReadiness};
pub use keys::IssuedKey;
pub use workers::{
    ClaimAnswer, ClaimRequest, Outcome, Report, Swept, WorkerSettings, WorkerUseCases, Workers,
};
