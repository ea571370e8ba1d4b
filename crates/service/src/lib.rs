#![doc = include_str!("../README.md")]

mod error;
mod key_cache;
pub mod keys;
mod service;

pub use error::ServiceError;
pub use keys::IssuedKey;
pub use service::{
    require_write, CreatedOrganization, ExecutionService, Service, ServiceSettings, Store,
};
