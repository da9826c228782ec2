//! API keys of a workspace. A key reads `allowly.<kind>.<workspace_id>.<key_id>.<secret>`: the
//! workspace and key ids route it without a global registry; only SHA-256(secret) is stored, and
//! it is compared in constant time.

use super::Allowly;
use crate::error::{Error, Result};
use crate::ids;
use crate::model::{ApiKeyCreated, ApiKeyKind, ApiKeyRecord, ApiKeyView};

/// The parts of a presented API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiKeyParts<'a> {
    pub kind: ApiKeyKind,
    pub workspace_id: &'a str,
    pub key_id: &'a str,
    pub secret: &'a str,
}

impl<'a> ApiKeyParts<'a> {
    /// Splits a presented key; `None` if it is not shaped like one of ours.
    pub fn parse(presented: &'a str) -> Option<ApiKeyParts<'a>> {
        let mut parts = presented.split('.');
        let (Some("allowly"), Some(kind), Some(workspace_id), Some(key_id), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let kind = ApiKeyKind::parse(kind)?;
        let well_formed = workspace_id.starts_with("ws_") && key_id.starts_with("ak_") && !secret.is_empty();
        well_formed.then_some(ApiKeyParts { kind, workspace_id, key_id, secret })
    }
}

fn secret_digest(secret: &str) -> String {
    crate::canonical::sha256_hex(secret.as_bytes())
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized() -> Error {
    Error::Unauthorized { code: "invalid_or_revoked_api_key", message: "the API key is invalid or revoked".into() }
}

impl Allowly {
    /// Creates an API key of `kind`; the returned `key` is the only copy of its secret.
    pub fn create_api_key(&self, kind: ApiKeyKind, label: Option<&str>) -> Result<ApiKeyCreated> {
        if label.is_some_and(|l| l.chars().count() > 128) {
            return Err(Error::invalid("label", "must be at most 128 characters"));
        }
        if let Some(problem) = label.and_then(super::lifecycle::free_text_problem) {
            return Err(Error::invalid("label", problem));
        }
        self.write(|tx| {
            let now = self.clock.now();
            let key_id = ids::new_id("ak_", now)?;
            let secret = ids::new_secret("")?;
            let record = ApiKeyRecord {
                key_id: key_id.clone(),
                kind,
                secret_sha256: secret_digest(&secret),
                label: label.map(str::to_string),
                created_at: now,
                revoked_at: None,
            };
            tx.put_api_key(&record)?;
            Ok(ApiKeyCreated {
                key: format!("allowly.{}.{}.{key_id}.{secret}", kind.as_str(), self.workspace_id),
                key_id,
                kind,
                workspace_id: self.workspace_id.clone(),
                created_at: now.to_string(),
            })
        })
    }

    pub fn list_api_keys(&self) -> Result<Vec<ApiKeyView>> {
        let keys = self.read(|tx| tx.api_keys())?;
        // A key whose row does not load authenticates nothing (see `authenticate`); it is left out
        // rather than failing the list of the others.
        Ok(keys
            .into_iter()
            .flatten()
            .map(|k| ApiKeyView {
                key_id: k.key_id,
                kind: k.kind,
                label: k.label,
                created_at: k.created_at.to_string(),
                revoked_at: k.revoked_at.map(|t| t.to_string()),
            })
            .collect())
    }

    pub fn revoke_api_key(&self, key_id: &str) -> Result<()> {
        ids::check_identifier("key_id", key_id)?;
        self.write(|tx| {
            let mut key =
                tx.api_key(key_id)?.ok_or_else(|| Error::not_found("api_key_not_found", "api key", key_id))?;
            if key.revoked_at.is_none() {
                key.revoked_at = Some(self.clock.now());
                tx.put_api_key(&key)?;
            }
            Ok(())
        })
    }

    /// The kind of a presented key of this workspace, or `invalid_or_revoked_api_key`.
    pub fn authenticate(&self, presented: &str) -> Result<ApiKeyKind> {
        let parts = ApiKeyParts::parse(presented).ok_or_else(unauthorized)?;
        // A key id no key can have (a NUL, which PostgreSQL cannot even compare) is unknown.
        if parts.workspace_id != self.workspace_id || ids::identifier_problem(parts.key_id).is_some() {
            return Err(unauthorized());
        }
        let record = match self.read(|tx| tx.api_key(parts.key_id)) {
            // A key that cannot be read is no key: refused like an unknown one, not as an outage.
            Err(err) if crate::store::is_unreadable(&err) => return Err(unauthorized()),
            found => found?.ok_or_else(unauthorized)?,
        };
        let digest = secret_digest(parts.secret);
        let matches = constant_time_eq(digest.as_bytes(), record.secret_sha256.as_bytes());
        if !matches || record.revoked_at.is_some() || record.kind != parts.kind {
            return Err(unauthorized());
        }
        Ok(record.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_authenticate_until_revoked() -> Result<()> {
        let engine = Allowly::in_memory()?;
        let runtime = engine.create_api_key(ApiKeyKind::Runtime, Some("worker"))?;
        let setup = engine.create_api_key(ApiKeyKind::Setup, None)?;
        assert_eq!(engine.authenticate(&runtime.key)?, ApiKeyKind::Runtime);
        assert_eq!(engine.authenticate(&setup.key)?, ApiKeyKind::Setup);
        let mut forged = runtime.key.clone();
        forged.pop();
        forged.push(if runtime.key.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            engine.authenticate(&forged).map_err(|e| e.code().to_string()),
            Err("invalid_or_revoked_api_key".into())
        );
        let promoted = runtime.key.replacen(".runtime.", ".setup.", 1);
        assert!(engine.authenticate(&promoted).is_err(), "the kind is part of the key");
        assert!(engine
            .list_api_keys()?
            .iter()
            .all(|k| !format!("{k:?}").contains(runtime.key.rsplit('.').next().unwrap_or("-"))));
        engine.revoke_api_key(&runtime.key_id)?;
        assert!(engine.authenticate(&runtime.key).is_err());
        assert!(engine.authenticate("Bearer nonsense").is_err());
        Ok(())
    }

    #[test]
    fn keys_of_another_workspace_are_refused() -> Result<()> {
        let (a, b) = (Allowly::in_memory()?, Allowly::in_memory()?);
        let key = a.create_api_key(ApiKeyKind::Setup, None)?;
        assert!(b.authenticate(&key.key).is_err());
        Ok(())
    }
}
