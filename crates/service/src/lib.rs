#![doc = include_str!("../README.md")]

mod admin;
mod auth;
mod error;
mod executions;
mod health;
mod key_cache;
pub mod keys;

pub use admin::{Admin, CreatedOrganization};
pub use auth::{require_write, Authenticate, KeyAuthenticator, KeyCacheSettings};
pub use error::ServiceError;
pub use executions::{ExecutionUseCases, Executions};
pub use health::{Readiness, StoreReadiness};
pub use keys::IssuedKey;
