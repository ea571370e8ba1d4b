//! Newtype ids. Each wraps a UUID; the types keep one kind of id from being
//! passed where another is expected.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::error::ParseError;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random (v4) id.
            pub fn generate() -> Self {
                Self(Uuid::new_v4())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            pub const fn into_uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| ParseError::new(concat!("must be a UUID (", $what, ")")))
            }
        }
    };
}

uuid_id!(
    /// Identifies an organization, the tenant.
    OrganizationId,
    "organization id"
);
uuid_id!(
    /// Identifies a flow execution.
    FlowExecutionId,
    "flow execution id"
);
uuid_id!(
    /// Identifies a task execution.
    TaskExecutionId,
    "task execution id"
);
uuid_id!(
    /// Identifies an API key; the public part of the key itself.
    ApiKeyId,
    "API key id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_from_uuid_text_and_display_the_same_text() -> Result<(), ParseError> {
        let text = "123e4567-e89b-12d3-a456-426614174000";
        let id: TaskExecutionId = text.parse()?;
        assert_eq!(id.to_string(), text);
        Ok(())
    }

    #[test]
    fn ids_reject_text_that_is_not_a_uuid() {
        for bad in [
            "",
            "abc",
            "123e4567-e89b-12d3-a456-42661417400",
            "../etc/passwd",
        ] {
            assert!(
                bad.parse::<FlowExecutionId>().is_err(),
                "{bad:?} was accepted"
            );
        }
    }
}
