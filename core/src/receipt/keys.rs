//! Workspace signing keys as published (`GET /v1/workspaces/{id}/keys`) and as verifiers load them.

use ed25519_dalek::VerifyingKey;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

use super::jws::{b64url_decode, b64url_encode};
use super::verify::VerifyError;
use crate::canonical::sha256_hex;
use crate::time::Timestamp;

/// The key document's `alg` (the JWS header calls the same algorithm `EdDSA`).
const KEY_ALG: &str = "Ed25519";

/// `"sha256:"` + lowercase hex SHA-256 of the raw 32-byte public key.
pub fn fingerprint(public_key: &[u8; 32]) -> String {
    format!("sha256:{}", sha256_hex(public_key))
}

/// Whether `text` is written as a key fingerprint is (`sha256:` + 64 lowercase hex), as a trusted
/// fingerprint given by a person must be before it is compared with the published ones.
pub fn is_fingerprint(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// One signing key and the window `[active_from, active_until)` in which it signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub key_id: String,
    pub public_key: [u8; 32],
    pub active_from: Timestamp,
    pub active_until: Option<Timestamp>,
}

/// The public key document of GET /v1/workspaces/{id}/keys, exact field names and order of docs/verifying-receipts.md.
/// (Serialize the struct itself to keep that order; [`KeyDocument::to_value`] sorts members.)
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct KeyDocument {
    pub workspace_id: String,
    pub keys: Vec<PublishedKey>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct PublishedKey {
    pub key_id: String,
    pub alg: String,
    pub public_key: String,
    pub public_key_fingerprint: String,
    pub active_from: String,
    /// `null` while the key is current; always present.
    pub active_until: Option<String>,
}

impl KeyDocument {
    pub fn from_records(workspace_id: &str, keys: &[KeyRecord]) -> KeyDocument {
        let keys = keys
            .iter()
            .map(|key| PublishedKey {
                key_id: key.key_id.clone(),
                alg: KEY_ALG.to_owned(),
                public_key: b64url_encode(&key.public_key),
                public_key_fingerprint: fingerprint(&key.public_key),
                active_from: key.active_from.to_string(),
                active_until: key.active_until.map(|t| t.to_string()),
            })
            .collect();
        KeyDocument { workspace_id: workspace_id.to_owned(), keys }
    }

    pub fn to_value(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|key| {
                json!({
                    "key_id": key.key_id, "alg": key.alg, "public_key": key.public_key,
                    "public_key_fingerprint": key.public_key_fingerprint,
                    "active_from": key.active_from, "active_until": key.active_until,
                })
            })
            .collect();
        json!({"workspace_id": self.workspace_id, "keys": keys})
    }
}

/// A loaded key: the record, its fingerprint and the parsed Ed25519 point.
#[derive(Clone, Debug)]
pub(crate) struct KeyEntry {
    pub(crate) record: KeyRecord,
    pub(crate) fingerprint: String,
    /// `None` when the bytes are not a curve point: such a key loads (as in the reference) but
    /// every signature under it is a mismatch.
    pub(crate) verifying_key: Option<VerifyingKey>,
}

/// Parsed and validated key set (the reference's `load_keys_from_json` rules). Keeps the parsed
/// Ed25519 points so verification never decodes a key twice.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    entries: Vec<KeyEntry>,
    by_id: HashMap<String, usize>,
}

impl KeySet {
    /// Loads a key document: `{workspace_id, keys:[{key_id, alg, public_key, public_key_fingerprint?,
    /// active_from, active_until}]}`. Returns the document's workspace id with the keys; callers
    /// compare it with the workspace they trust.
    pub fn from_document(doc: &Value) -> Result<(String, KeySet), VerifyError> {
        let shape_error = || {
            VerifyError::Schema(
                "keys document must be an object with a non-empty `workspace_id` and a `keys` array".into(),
            )
        };
        let map = doc.as_object().ok_or_else(shape_error)?;
        let workspace_id =
            map.get("workspace_id").and_then(Value::as_str).filter(|id| !id.is_empty()).ok_or_else(shape_error)?;
        let keys = map.get("keys").and_then(Value::as_array).ok_or_else(shape_error)?;

        let mut seen_public_keys = HashSet::new();
        let mut set = KeySet::default();
        for (i, key) in keys.iter().enumerate() {
            let schema = |message: String| VerifyError::Schema(format!("keys[{i}]{message}"));
            let key = key.as_object().ok_or_else(|| schema(" must be an object".into()))?;
            let text = |field: &str| {
                key.get(field).and_then(Value::as_str).ok_or_else(|| schema(format!(".{field} must be a string")))
            };
            let (key_id, alg, public_key, active_from) =
                (text("key_id")?, text("alg")?, text("public_key")?, text("active_from")?);
            if alg != KEY_ALG {
                return Err(schema(format!(".alg must be `{KEY_ALG}`")));
            }
            let active_until = match key.get("active_until") {
                Some(Value::Null) => None,
                Some(Value::String(until)) => Some(until.as_str()),
                _ => return Err(schema(".active_until must be a string or null".into())),
            };
            if set.by_id.contains_key(key_id) {
                return Err(VerifyError::Schema(format!("duplicate key_id in keys document: `{key_id}`")));
            }
            // Compared as published text, before decoding, like the reference.
            if !seen_public_keys.insert(public_key) {
                return Err(VerifyError::Schema(format!("duplicate public key in keys document: `{key_id}`")));
            }
            let raw = b64url_decode(public_key).ok_or_else(|| schema(".public_key is not valid base64url".into()))?;
            let raw: [u8; 32] = raw
                .as_slice()
                .try_into()
                .map_err(|_| schema(format!(".public_key must decode to 32 bytes, got {}", raw.len())))?;
            let record = KeyRecord {
                key_id: key_id.to_owned(),
                public_key: raw,
                active_from: parse_key_time(active_from)?,
                active_until: active_until.map(parse_key_time).transpose()?,
            };
            let entry = KeyEntry::new(record);
            if key
                .get("public_key_fingerprint")
                .is_some_and(|published| published.as_str() != Some(entry.fingerprint.as_str()))
            {
                return Err(schema(".public_key_fingerprint does not match public_key".into()));
            }
            set.push(entry);
        }
        Ok((workspace_id.to_owned(), set))
    }

    /// A key set from the engine's own records (no duplicate key ids or public keys).
    pub fn from_records(keys: &[KeyRecord]) -> Result<KeySet, VerifyError> {
        let mut set = KeySet::default();
        let mut seen_public_keys = HashSet::new();
        for record in keys {
            if set.by_id.contains_key(&record.key_id) {
                return Err(VerifyError::Schema(format!("duplicate key_id in key set: `{}`", record.key_id)));
            }
            if !seen_public_keys.insert(record.public_key) {
                return Err(VerifyError::Schema(format!("duplicate public key in key set: `{}`", record.key_id)));
            }
            set.push(KeyEntry::new(record.clone()));
        }
        Ok(set)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys in document order.
    pub fn records(&self) -> impl Iterator<Item = &KeyRecord> {
        self.entries.iter().map(|entry| &entry.record)
    }

    pub(crate) fn get(&self, key_id: &str) -> Option<&KeyEntry> {
        self.by_id.get(key_id).and_then(|&i| self.entries.get(i))
    }

    fn push(&mut self, entry: KeyEntry) {
        self.by_id.insert(entry.record.key_id.clone(), self.entries.len());
        self.entries.push(entry);
    }
}

impl KeyEntry {
    fn new(record: KeyRecord) -> KeyEntry {
        KeyEntry {
            fingerprint: fingerprint(&record.public_key),
            verifying_key: VerifyingKey::from_bytes(&record.public_key).ok(),
            record,
        }
    }
}

fn parse_key_time(text: &str) -> Result<Timestamp, VerifyError> {
    super::verify::parse_timestamp(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Value {
        let key = b64url_encode(&[9u8; 32]);
        json!({"workspace_id": "ws_a", "keys": [{
            "key_id": "k1", "alg": "Ed25519", "public_key": key, "public_key_fingerprint": fingerprint(&[9u8; 32]),
            "active_from": "2026-01-01T00:00:00.000Z", "active_until": null
        }]})
    }

    fn edit(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
        let mut doc = document();
        if let Some(key) = doc["keys"][0].as_object_mut() {
            change(key);
        }
        doc
    }

    #[test]
    fn loads_a_valid_document_and_round_trips_records() {
        let (workspace, set) = KeySet::from_document(&document()).map_err(|e| e.to_string()).unwrap_or_default();
        assert_eq!(workspace, "ws_a");
        let records: Vec<KeyRecord> = set.records().cloned().collect();
        assert_eq!(records.len(), 1);
        assert_eq!(KeyDocument::from_records("ws_a", &records).to_value(), document());
        assert!(set.get("k1").is_some_and(|entry| entry.fingerprint == fingerprint(&[9u8; 32])));
    }

    #[test]
    fn rejects_what_load_keys_from_json_rejects() {
        let two = {
            let mut doc = document();
            let copy = doc["keys"][0].clone();
            if let Some(keys) = doc["keys"].as_array_mut() {
                keys.push(copy);
            }
            doc
        };
        let bad = [
            edit(|k| {
                k.insert("alg".into(), json!("EdDSA"));
            }),
            edit(|k| {
                k.remove("active_until");
            }),
            edit(|k| {
                k.insert("active_until".into(), json!(5));
            }),
            edit(|k| {
                k.insert("public_key".into(), json!(format!("{}=", b64url_encode(&[9u8; 32]))));
            }),
            edit(|k| {
                k.insert("public_key".into(), json!(b64url_encode(&[9u8; 31])));
            }),
            edit(|k| {
                k.insert("public_key_fingerprint".into(), json!(fingerprint(&[8u8; 32])));
            }),
            edit(|k| {
                k.insert("active_from".into(), json!("2026-01-01T00:00:00Z"));
            }),
            edit(|k| {
                k.insert("key_id".into(), json!(7));
            }),
            two,
            json!({"workspace_id": "", "keys": []}),
            json!({"workspace_id": "ws", "keys": {}}),
        ];
        for doc in bad {
            assert!(matches!(KeySet::from_document(&doc), Err(VerifyError::Schema(_))), "{doc}");
        }
    }

    #[test]
    fn published_document_keeps_field_order_and_null_active_until() {
        let record =
            KeyRecord { key_id: "k".into(), public_key: [1u8; 32], active_from: Timestamp(0), active_until: None };
        let text = serde_json::to_string(&KeyDocument::from_records("ws", &[record])).unwrap_or_default();
        let order = [
            "workspace_id",
            "keys",
            "key_id",
            "alg",
            "public_key",
            "public_key_fingerprint",
            "active_from",
            "active_until\":null",
        ];
        let positions: Vec<usize> = order.iter().filter_map(|field| text.find(field)).collect();
        assert_eq!(positions.len(), order.len(), "{text}");
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn from_records_refuses_duplicates() {
        let record =
            KeyRecord { key_id: "k".into(), public_key: [1u8; 32], active_from: Timestamp(0), active_until: None };
        let other_id = KeyRecord { key_id: "k2".into(), ..record.clone() };
        assert!(KeySet::from_records(&[record.clone(), record.clone()]).is_err());
        assert!(KeySet::from_records(&[record.clone(), other_id]).is_err());
        assert_eq!(KeySet::from_records(&[record]).map(|set| set.len()).ok(), Some(1));
    }

    #[test]
    fn a_fingerprint_is_sha256_and_64_lowercase_hex() {
        assert!(is_fingerprint(&fingerprint(&[7; 32])));
        let hex = "a".repeat(64);
        assert!(is_fingerprint(&format!("sha256:{hex}")));
        for wrong in
            [hex.clone(), format!("sha256:{}", "A".repeat(64)), format!("sha256:{}", &hex[1..]), format!("sha1:{hex}")]
        {
            assert!(!is_fingerprint(&wrong), "{wrong}");
        }
    }
}
