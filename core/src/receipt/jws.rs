//! The flattened JWS envelope of a wire-5 receipt and the issuer side that signs it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::hazmat::{raw_sign, ExpandedSecretKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::{json, Value};
use sha2::Sha512;
use std::fmt;

use crate::canonical::{to_canonical_vec, write_string, CanonicalError};

/// `typ` of the protected header of every receipt.
pub(crate) const JWS_TYPE: &str = "allowly-receipt+jws";
/// `alg` of the protected header (the key document says `Ed25519` for the same keys).
pub(crate) const JWS_ALG: &str = "EdDSA";

/// A signed receipt: a flattened JWS whose three members are unpadded base64url.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct SignedReceipt {
    pub protected: String,
    pub payload: String,
    pub signature: String,
}

impl SignedReceipt {
    pub fn to_value(&self) -> Value {
        json!({"protected": self.protected, "payload": self.payload, "signature": self.signature})
    }

    /// Canonical JSON of the envelope, `{"payload":..,"protected":..,"signature":..}`: the bytes a
    /// checkpoint's Merkle leaf commits to.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical_envelope(&self.protected, &self.payload, &self.signature)
    }

    /// The envelope of a JSON value that is an object of exactly the three string members.
    pub(crate) fn from_value(value: &Value) -> Option<SignedReceipt> {
        let map = value.as_object().filter(|map| map.len() == 3)?;
        let member = |name: &str| map.get(name).and_then(Value::as_str).map(str::to_owned);
        Some(SignedReceipt {
            protected: member("protected")?,
            payload: member("payload")?,
            signature: member("signature")?,
        })
    }
}

/// Canonical JSON of an envelope given by its three segments.
fn canonical_envelope(protected: &str, payload: &str, signature: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(protected.len() + payload.len() + signature.len() + 48);
    out.extend_from_slice(b"{\"payload\":");
    write_string(payload, &mut out);
    out.extend_from_slice(b",\"protected\":");
    write_string(protected, &mut out);
    out.extend_from_slice(b",\"signature\":");
    write_string(signature, &mut out);
    out.push(b'}');
    out
}

/// Signs receipt payloads with one workspace key.
pub struct ReceiptSigner {
    key_id: String,
    /// Expanded once: signing with a plain `SigningKey` re-hashes the secret on every call.
    expanded_key: ExpandedSecretKey,
    verifying_key: VerifyingKey,
    /// b64url of the canonical protected header, identical for every receipt of this key.
    protected: String,
}

impl fmt::Debug for ReceiptSigner {
    // Never print the secret key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiptSigner").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl ReceiptSigner {
    pub fn new(key_id: &str, secret_key: &[u8; 32]) -> ReceiptSigner {
        let mut header = Vec::with_capacity(key_id.len() + 56);
        header.extend_from_slice(b"{\"alg\":\"EdDSA\",\"kid\":");
        write_string(key_id, &mut header);
        header.extend_from_slice(b",\"typ\":\"allowly-receipt+jws\"}");
        let signing_key = SigningKey::from_bytes(secret_key);
        ReceiptSigner {
            key_id: key_id.to_owned(),
            expanded_key: ExpandedSecretKey::from(signing_key.as_bytes()),
            verifying_key: signing_key.verifying_key(),
            protected: b64url_encode(&header),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.verifying_key.to_bytes()
    }

    /// Canonicalizes `payload`, encodes both segments and signs `protected.payload` with Ed25519.
    pub fn sign(&self, payload: &Value) -> Result<SignedReceipt, CanonicalError> {
        if !payload.is_object() {
            return Err(CanonicalError("receipt payload must be a json object".into()));
        }
        self.sign_canonical(&to_canonical_vec(payload)?)
    }

    /// Signs a payload given as its canonical JSON bytes (an issuer that writes them directly
    /// skips building a JSON tree). The caller guarantees the bytes are canonical.
    pub fn sign_canonical(&self, canonical_payload: &[u8]) -> Result<SignedReceipt, CanonicalError> {
        // The reference refuses an empty kid.
        if self.key_id.is_empty() {
            return Err(CanonicalError("jws kid must be a nonempty string".into()));
        }
        let encoded = b64url_encode(canonical_payload);
        let mut signing_input = Vec::with_capacity(self.protected.len() + 1 + encoded.len());
        signing_input.extend_from_slice(self.protected.as_bytes());
        signing_input.push(b'.');
        signing_input.extend_from_slice(encoded.as_bytes());
        let signature = raw_sign::<Sha512>(&self.expanded_key, &signing_input, &self.verifying_key);
        Ok(SignedReceipt {
            protected: self.protected.clone(),
            payload: encoded,
            signature: b64url_encode(&signature.to_bytes()),
        })
    }
}

pub(crate) fn b64url_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes canonical unpadded base64url only: no `=`, no characters outside `A-Za-z0-9-_`, no
/// non-zero pad bits, exactly as the reference's decode-then-re-encode comparison.
pub(crate) fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_only_canonical_unpadded_base64url() {
        assert_eq!(b64url_decode("AQID").as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(b64url_decode("AQ").as_deref(), Some(&[1u8][..]));
        assert_eq!(b64url_decode("").as_deref(), Some(&[][..]));
        for bad in ["AQ==", "AR", "AQI=", "A", "AQ+/", "AQ\n", " AQ", "A*ID"] {
            assert_eq!(b64url_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn header_is_the_canonical_protected_header() {
        let signer = ReceiptSigner::new("test-key/v1", &[0u8; 32]);
        assert_eq!(
            signer.protected,
            "eyJhbGciOiJFZERTQSIsImtpZCI6InRlc3Qta2V5L3YxIiwidHlwIjoiYWxsb3dseS1yZWNlaXB0K2p3cyJ9"
        );
    }

    #[test]
    fn signs_the_documented_example_byte_for_byte() {
        // allowly-wire.md §3.2: deterministic key bytes(range(32)), kid `test-key/v1`.
        let secret: [u8; 32] = std::array::from_fn(|i| i as u8);
        let signer = ReceiptSigner::new("test-key/v1", &secret);
        let payload = json!({
            "action": "outreach.send", "agent_id": "referral_outreach", "authorization_id": "auth_1", "context": {},
            "decision": "allow", "engine_version": format!("sha256:{}", "1".repeat(64)),
            "issued_at": "2026-04-21T14:32:17.482Z",
            "policy_ref": {"definition_sha256": "0".repeat(64), "policy_id": "p", "policy_version": 1},
            "reason": "authorization_granted_action_active", "receipt_id": "rcp_demo", "resource": null,
            "schema_version": "5", "user_id": "emp_8821", "workspace_id": "ws_test"
        });
        let signed = signer.sign(&payload).ok();
        assert_eq!(
            signed.as_ref().map(|s| s.signature.as_str()),
            Some("MoeR-yV9JkfU6AR4Ll5JRl45Ji0E6e9DD8hs5ahE4qCCrxiBAUdU8DKKFKLwLRmvEzI_N6ygdc1zwr-TOwDQBw")
        );
        assert_eq!(b64url_encode(&signer.public_key()), "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg");
    }

    #[test]
    fn refuses_non_object_payloads_and_floats() {
        let signer = ReceiptSigner::new("k", &[1u8; 32]);
        assert!(signer.sign(&json!([1])).is_err());
        assert!(signer.sign(&json!({"a": 0.5})).is_err());
        assert!(ReceiptSigner::new("", &[1u8; 32]).sign(&json!({})).is_err());
    }

    #[test]
    fn canonical_bytes_sort_the_envelope_members() {
        let signed = SignedReceipt { protected: "p".into(), payload: "q".into(), signature: "s".into() };
        assert_eq!(signed.canonical_bytes(), b"{\"payload\":\"q\",\"protected\":\"p\",\"signature\":\"s\"}".to_vec());
        assert_eq!(to_canonical_vec(&signed.to_value()).ok(), Some(signed.canonical_bytes()));
        assert_eq!(SignedReceipt::from_value(&signed.to_value()), Some(signed));
    }
}
