//! Opaque list cursors: where the next page starts, sealed so that only
//! this deployment can make one, for one organization and one query.
//!
//! A cursor is `base64url(payload) "." base64url(tag)`: the payload is JSON
//! `{"q": <query digest>, "p": <position>}`, and the tag the first 16 bytes
//! of HMAC-SHA-256 over the organization's id and the payload, keyed by the
//! deployment's cursor secret (kept in the store, so that every server
//! instance honours every other's cursors). A cursor that was altered, made
//! for another organization or for another query (other filters, another
//! order) is refused before any query runs. It confers nothing: every list
//! is confined to the caller's organization whatever its cursor says.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use flowexec_domain::OrganizationId;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ServiceError;

const TAG_BYTES: usize = 16;

/// The deployment's cursor key, read from the store once, on first use.
#[derive(Debug, Default)]
pub(crate) struct LazyCursorKey(std::sync::OnceLock<CursorKey>);

impl LazyCursorKey {
    pub(crate) fn get(
        &self,
        secrets: &impl flowexec_domain::ports::DeploymentSecrets,
    ) -> Result<&CursorKey, ServiceError> {
        if let Some(key) = self.0.get() {
            return Ok(key);
        }
        let key = CursorKey::new(secrets.cursor_secret()?);
        Ok(self.0.get_or_init(|| key))
    }
}

/// The secret cursors are sealed with.
#[derive(Clone)]
pub(crate) struct CursorKey(Vec<u8>);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(<redacted>)")
    }
}

#[derive(Serialize, Deserialize)]
struct Payload<P> {
    q: String,
    p: P,
}

/// A short digest naming a query: its kind and everything that selects and
/// orders its rows (not the page size).
pub(crate) fn query_digest(query: &str) -> String {
    hex::encode(&Sha256::digest(query.as_bytes())[..12])
}

impl CursorKey {
    pub(crate) fn new(secret: Vec<u8>) -> Self {
        Self(secret)
    }

    fn tag(&self, organization: OrganizationId, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(organization.into_uuid().as_bytes());
        mac.update(payload);
        mac
    }

    /// The cursor for `position` in `query` of `organization`.
    pub(crate) fn seal<P: Serialize>(
        &self,
        organization: OrganizationId,
        query: &str,
        position: &P,
    ) -> Result<String, ServiceError> {
        let payload = serde_json::to_vec(&Payload {
            q: query_digest(query),
            p: position,
        })
        .map_err(|e| ServiceError::Internal(e.into()))?;
        let tag = self.tag(organization, &payload).finalize().into_bytes();
        Ok(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES])
        ))
    }

    /// The position in a cursor this deployment sealed for `query` of
    /// `organization`; [`ServiceError::InvalidCursor`] for anything else.
    pub(crate) fn open<P: DeserializeOwned>(
        &self,
        organization: OrganizationId,
        query: &str,
        cursor: &str,
    ) -> Result<P, ServiceError> {
        const MALFORMED: ServiceError = ServiceError::InvalidCursor("malformed");
        let (payload, tag) = cursor.split_once('.').ok_or(MALFORMED)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| MALFORMED)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| MALFORMED)?;
        if tag.len() != TAG_BYTES {
            return Err(MALFORMED);
        }
        self.tag(organization, &payload)
            .verify_truncated_left(&tag)
            .map_err(|_| {
                ServiceError::InvalidCursor("not issued by this service for this organization")
            })?;
        let payload: Payload<P> = serde_json::from_slice(&payload).map_err(|_| MALFORMED)?;
        if payload.q != query_digest(query) {
            return Err(ServiceError::InvalidCursor(
                "issued for another query; repeat the same filters and order with it",
            ));
        }
        Ok(payload.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CursorKey {
        CursorKey::new(vec![7; 32])
    }

    #[test]
    fn a_cursor_opens_for_its_organization_and_query_only() {
        let (a, b) = (OrganizationId::generate(), OrganizationId::generate());
        let cursor = key()
            .seal(a, "events:1", &(42_i64, "x"))
            .unwrap_or_default();
        let opened: Result<(i64, String), _> = key().open(a, "events:1", &cursor);
        assert_eq!(opened.ok(), Some((42, "x".to_owned())));
        for (org, query) in [(b, "events:1"), (a, "events:2")] {
            assert!(matches!(
                key().open::<(i64, String)>(org, query, &cursor),
                Err(ServiceError::InvalidCursor(_))
            ));
        }
        let other_key = CursorKey::new(vec![8; 32]);
        assert!(other_key
            .open::<(i64, String)>(a, "events:1", &cursor)
            .is_err());
    }

    #[test]
    fn an_altered_or_malformed_cursor_is_refused() {
        let a = OrganizationId::generate();
        let cursor = key().seal(a, "q", &5_i64).unwrap_or_default();
        let (payload, tag) = cursor.split_once('.').unwrap_or_default();
        let forged = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap_or_default())
                .unwrap_or_default()
                .replace('5', "6"),
        );
        for bad in [
            format!("{forged}.{tag}"),
            format!("{payload}.{}", &tag[1..]),
            "".to_owned(),
            "no-dot".to_owned(),
            "!!.!!".to_owned(),
        ] {
            assert!(
                matches!(
                    key().open::<i64>(a, "q", &bad),
                    Err(ServiceError::InvalidCursor(_))
                ),
                "{bad}"
            );
        }
    }
}
