//! API keys: `fx_<key id, 32 hex>_<secret, 64 hex>`.
//!
//! The key id is public (it is how a key is found before its organization is
//! known); the secret is 256 random bits. Only the SHA-256 of the whole key
//! is stored, and the comparison with it takes the same time whatever the
//! bytes.

use chrono::{DateTime, Utc};
use flowexec_domain::{Actor, ApiKeyId, NewApiKey, OrganizationId, Role};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Every key starts with this.
pub const PREFIX: &str = "fx_";
const ID_HEX: usize = 32;
const SECRET_BYTES: usize = 32;

/// A key as issued: the plaintext is shown once and never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedKey {
    pub id: ApiKeyId,
    pub organization_id: OrganizationId,
    pub role: Role,
    pub actor: Actor,
    pub created_at: DateTime<Utc>,
    pub plaintext: String,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .field("role", &self.role)
            .field("actor", &self.actor)
            .field("created_at", &self.created_at)
            .field("plaintext", &"<redacted>")
            .finish()
    }
}

/// Generates a new key and the record to store for it.
pub fn generate(
    organization_id: OrganizationId,
    role: Role,
    actor: Actor,
    created_at: DateTime<Utc>,
) -> (IssuedKey, NewApiKey) {
    let id = ApiKeyId::generate();
    let mut secret = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut secret);
    let plaintext = format!("{PREFIX}{}_{}", id.as_uuid().simple(), hex::encode(secret));
    let record = NewApiKey {
        id,
        organization_id,
        role,
        actor,
        secret_sha256: sha256(&plaintext),
        created_at,
    };
    let issued = IssuedKey {
        id,
        organization_id,
        role,
        actor,
        created_at,
        plaintext,
    };
    (issued, record)
}

/// The key id of a well-formed key; `None` for anything else.
pub fn parse_key_id(key: &str) -> Option<ApiKeyId> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != ID_HEX
        || secret.len() != SECRET_BYTES * 2
        || !secret.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    Uuid::try_parse(id).ok().map(ApiKeyId::from_uuid)
}

/// SHA-256 of the whole key text.
pub fn sha256(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Whether a key's SHA-256 equals `stored`, compared in constant time. With
/// no stored hash (an unknown key id) the comparison is still made, against
/// a hash no key has, so that both cases do the same work.
pub fn digest_matches(digest: &[u8; 32], stored: Option<&[u8; 32]>) -> bool {
    const NO_KEY: [u8; 32] = [0; 32];
    let compared: bool = digest.ct_eq(stored.unwrap_or(&NO_KEY)).into();
    compared && stored.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_has_the_prefix_parses_back_to_its_id_and_matches_its_hash() {
        let (issued, record) = generate(
            OrganizationId::generate(),
            Role::Read,
            Actor::System,
            Utc::now(),
        );
        assert!(issued.plaintext.starts_with("fx_"));
        assert_eq!(parse_key_id(&issued.plaintext), Some(issued.id));
        assert!(digest_matches(
            &sha256(&issued.plaintext),
            Some(&record.secret_sha256)
        ));
        assert_ne!(record.secret_sha256.as_slice(), issued.plaintext.as_bytes());
    }

    #[test]
    fn two_generated_keys_differ() {
        let org = OrganizationId::generate();
        let (a, _) = generate(org, Role::Admin, Actor::System, Utc::now());
        let (b, _) = generate(org, Role::Admin, Actor::System, Utc::now());
        assert_ne!(a.plaintext, b.plaintext);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn a_key_with_one_changed_secret_character_does_not_match() {
        let (issued, record) = generate(
            OrganizationId::generate(),
            Role::Read,
            Actor::System,
            Utc::now(),
        );
        let mut tampered = issued.plaintext.into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).unwrap_or_default();
        assert!(!digest_matches(
            &sha256(&tampered),
            Some(&record.secret_sha256)
        ));
        assert!(!digest_matches(&sha256(&tampered), None));
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        let (issued, _) = generate(
            OrganizationId::generate(),
            Role::Read,
            Actor::System,
            Utc::now(),
        );
        let good = issued.plaintext;
        for bad in [
            String::new(),
            "fx_".to_owned(),
            good.replacen("fx_", "fy_", 1),
            good[..good.len() - 1].to_owned(),
            format!("{good}0"),
            good.replace('_', "-"),
            format!(" {good}"),
        ] {
            assert_eq!(parse_key_id(&bad), None, "{bad:?} parsed");
        }
    }

    #[test]
    fn the_debug_form_of_an_issued_key_hides_the_plaintext() {
        let (issued, _) = generate(
            OrganizationId::generate(),
            Role::Read,
            Actor::System,
            Utc::now(),
        );
        assert!(!format!("{issued:?}").contains(&issued.plaintext));
    }
}
