//! The port implementations, one file per port.

mod api_keys;
mod health;
mod organizations;
