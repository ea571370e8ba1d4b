#![doc = include_str!("../README.md")]

mod admin;
mod auth;
mod cursor;
mod error;
mod executions;
mod health;
mod key_cache;
pub mod keys;

pub use admin::{Admin, CreatedOrganization};
pub use auth::{require_write, Authenticate, KeyAuthenticator, KeyCacheSettings};
pub use error::ServiceError;
pub use executions::{
    ChangeRequest, Changed, ExecutionUseCases, Executions, Page, PageRequest, DEFAULT_PAGE,
    MAX_PAGE,
};
pub use health::{Readiness, StoreReadiness};
pub use keys::IssuedKey;
