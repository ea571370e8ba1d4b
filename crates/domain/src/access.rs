//! Who is calling: roles, actors and the authenticated principal.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::error::ParseError;
use crate::ids::{ApiKeyId, OrganizationId};

/// What an API key may do.
///
/// | role   | read | create and change executions | run tasks (claim, report) | manage keys |
/// |--------|------|------------------------------|---------------------------|-------------|
/// | admin  | yes  | yes                          | yes                       | yes         |
/// | write  | yes  | yes                          | no                        | no          |
/// | read   | yes  | no                           | no                        | no          |
/// | worker | yes  | no                           | yes                       | no          |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Write,
    Read,
    Worker,
}

impl Role {
    pub const ALL: [Role; 4] = [Self::Admin, Self::Write, Self::Read, Self::Worker];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Write => "write",
            Self::Read => "read",
            Self::Worker => "worker",
        }
    }

    /// May create and change flow and task executions.
    pub const fn can_write(self) -> bool {
        matches!(self, Self::Admin | Self::Write)
    }

    /// May claim tasks, send heartbeats and report results.
    pub const fn can_run_tasks(self) -> bool {
        matches!(self, Self::Admin | Self::Worker)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| ParseError::new("must be one of admin, write, read, worker"))
    }
}

/// Who a change is attributed to; becomes `modified_by`. Always taken from
/// the authenticated key, never from a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// Workers and background jobs.
    System,
    /// A person, by user id.
    User(Uuid),
    /// An integration.
    Integration,
    /// A service account.
    ServiceAccount,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("system"),
            Self::User(id) => id.fmt(f),
            Self::Integration => f.write_str("integration"),
            Self::ServiceAccount => f.write_str("service-account"),
        }
    }
}

impl FromStr for Actor {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "system" => Ok(Self::System),
            "integration" => Ok(Self::Integration),
            "service-account" => Ok(Self::ServiceAccount),
            other => Uuid::parse_str(other).map(Self::User).map_err(|_| {
                ParseError::new("must be system, integration, service-account or a user UUID")
            }),
        }
    }
}

/// The organization a unit of work is confined to. Every repository method
/// takes one; a store filters by it (and, on PostgreSQL, sets it for RLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tenant(OrganizationId);

impl Tenant {
    pub const fn new(organization_id: OrganizationId) -> Self {
        Self(organization_id)
    }

    pub const fn organization_id(&self) -> OrganizationId {
        self.0
    }
}

/// An authenticated caller: the key it used and what that key grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub key_id: ApiKeyId,
    pub organization_id: OrganizationId,
    pub role: Role,
    pub actor: Actor,
}

impl Principal {
    pub const fn tenant(&self) -> Tenant {
        Tenant::new(self.organization_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_round_trip_through_their_modified_by_text() -> Result<(), ParseError> {
        let user = "123e4567-e89b-12d3-a456-426614174000";
        for text in ["system", "integration", "service-account", user] {
            assert_eq!(text.parse::<Actor>()?.to_string(), text);
        }
        assert!("root".parse::<Actor>().is_err());
        assert!("System".parse::<Actor>().is_err());
        Ok(())
    }

    #[test]
    fn only_admin_and_write_keys_may_write() {
        let writers: Vec<Role> = Role::ALL.into_iter().filter(|r| r.can_write()).collect();
        assert_eq!(writers, vec![Role::Admin, Role::Write]);
    }

    #[test]
    fn roles_parse_only_their_lowercase_names() -> Result<(), ParseError> {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>()?, role);
        }
        assert!("ADMIN".parse::<Role>().is_err());
        Ok(())
    }
}
