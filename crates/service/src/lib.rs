#![doc = include_str!("../README.md")]

mod admin;
mod api_keys;
mod auth;
mod cursor;
mod error;
mod executions;
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
pub use health::{Readiness, StoreReadiness};
pub use keys::IssuedKey;
pub use workers::{
    ClaimAnswer, ClaimRequest, Outcome, Report, Swept, WorkerSettings, WorkerUseCases, Workers,
};
