//! API keys on the wire: never a secret or a hash, except the key itself
//! once, when it is issued.

use chrono::{DateTime, Utc};
use flowexec_domain::{Actor, ApiKeyInfo, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::problem::FieldError;

/// What a key may do: `admin` (everything, keys included), `write` (create
/// and change executions), `read`, `worker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleBody {
    Admin,
    Write,
    Read,
    Worker,
}

impl From<RoleBody> for Role {
    fn from(role: RoleBody) -> Self {
        match role {
            RoleBody::Admin => Self::Admin,
            RoleBody::Write => Self::Write,
            RoleBody::Read => Self::Read,
            RoleBody::Worker => Self::Worker,
        }
    }
}

impl From<Role> for RoleBody {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => Self::Admin,
            Role::Write => Self::Write,
            Role::Read => Self::Read,
            Role::Worker => Self::Worker,
        }
    }
}

/// A key to issue. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKeyBody {
    pub role: RoleBody,
    /// Recorded as `modified_by` of what the key changes: `system`,
    /// `integration`, `service-account` or a user UUID. Default: the actor
    /// of the key that issues it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = "^(system|integration|service-account|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$",
        nullable = false
    )]
    pub actor: Option<String>,
}

impl NewApiKeyBody {
    /// The role and actor, or every invalid field.
    pub fn into_command(self) -> Result<(Role, Option<Actor>), Vec<FieldError>> {
        let actor = self
            .actor
            .map(|a| a.parse::<Actor>())
            .transpose()
            .map_err(|e| {
                vec![FieldError {
                    field: "actor".into(),
                    message: e.to_string(),
                    ..FieldError::default()
                }]
            })?;
        Ok((self.role.into(), actor))
    }
}

/// A key as shown: never its secret or hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyBody {
    /// The key id: the part of the key after `fx_`, as a UUID.
    pub id: Uuid,
    pub organization_id: Uuid,
    pub role: RoleBody,
    pub actor: String,
    pub created_at: DateTime<Utc>,
    /// When it was revoked; null while it is active.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyInfo> for ApiKeyBody {
    fn from(key: ApiKeyInfo) -> Self {
        Self {
            id: key.id.into_uuid(),
            organization_id: key.organization_id.into_uuid(),
            role: key.role.into(),
            actor: key.actor.to_string(),
            created_at: key.created_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// A key just issued: shown this once, with the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IssuedApiKeyBody {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub role: RoleBody,
    pub actor: String,
    pub created_at: DateTime<Utc>,
    /// The key, for `Authorization: Bearer …`. It is not stored and cannot
    /// be shown again.
    #[schema(example = "fx_0b6f…_9c1d…")]
    pub key: String,
}

/// An organization's keys, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyListBody {
    pub api_keys: Vec<ApiKeyBody>,
}
