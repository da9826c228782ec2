//! Receipt verification, check for check and in the order of the reference verifier 5.0.0.

use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashSet;

use super::jws::{b64url_decode, JWS_ALG, JWS_TYPE};
use super::keys::{KeyEntry, KeySet};
use super::SCHEMA_VERSION;
use crate::canonical::{parse_strict_node, Node, Object, MAX_SAFE_INTEGER};
use crate::time::Timestamp;

/// How far `issued_at` may lie ahead of the verifier's clock.
const MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;
/// Bound on the three JWS segments together (in characters, as the reference counts).
const MAX_JWS_CHARS: usize = 8 * 1024 * 1024;

const ACTION_DECISIONS: [&str; 4] = ["allow", "deny", "confirm", "escalate"];
const REQUIRED_FIELDS: [&str; 13] = [
    "agent_id",
    "authorization_id",
    "context",
    "decision",
    "engine_version",
    "issued_at",
    "policy_ref",
    "reason",
    "receipt_id",
    "resource",
    "schema_version",
    "user_id",
    "workspace_id",
];
const OPTIONAL_FIELDS: [&str; 3] = ["action", "event", "policy_eval"];
const CHECKPOINT_EVENT: &str = "receipt.checkpoint";
const CHECKPOINT_CONTEXT_FIELDS: [&str; 6] =
    ["merkle_root", "period_end", "period_start", "previous_checkpoint_id", "previous_merkle_root", "receipt_count"];

/// The decisions an event receipt may carry.
fn event_decisions(event: &str) -> Option<&'static [&'static str]> {
    Some(match event {
        "authorization.create" => &["authorization_granted"],
        "authorization.revoke" => &["authorization_revoked"],
        "budget.settle" => &["budget_settled"],
        "confirmation.resolve" => &["confirmation_approved", "confirmation_rejected"],
        "escalation.resolve" => &["escalation_approved", "escalation_rejected"],
        CHECKPOINT_EVENT => &["receipt_set_committed"],
        _ => return None,
    })
}

const EVENTS: [&str; 6] = [
    "authorization.create",
    "authorization.revoke",
    "budget.settle",
    "confirmation.resolve",
    "escalation.resolve",
    CHECKPOINT_EVENT,
];

fn is_event_only_decision(decision: &str) -> bool {
    EVENTS.iter().filter_map(|event| event_decisions(event)).any(|decisions| decisions.contains(&decision))
}

/// Why a receipt, checkpoint or export did not verify. Each variant maps to a stable code and to
/// the reference verifier's exception class.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Shape, field pairing, encoding or timestamp rules (reference `SchemaError`).
    #[error("{0}")]
    Schema(String),
    /// No key of the set has the receipt's `kid` (reference `UnknownKeyError`).
    #[error("{0}")]
    UnknownKey(String),
    /// The key exists but its window does not cover `issued_at` (reference `KeyOutsideActiveWindowError`).
    #[error("{0}")]
    KeyOutsideWindow(String),
    /// The key's fingerprint is not among the caller's trusted ones (reference plain `VerificationError`).
    #[error("{0}")]
    UntrustedKey(String),
    /// The Ed25519 signature does not match (reference `SignatureMismatchError`).
    #[error("{0}")]
    SignatureMismatch(String),
    /// A checkpoint's count, Merkle root or chain link does not match, or evidence omits a member
    /// (reference plain `VerificationError`).
    #[error("{0}")]
    Checkpoint(String),
}

impl VerifyError {
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Schema(_) => "schema_error",
            VerifyError::UnknownKey(_) => "unknown_key",
            VerifyError::KeyOutsideWindow(_) => "key_outside_active_window",
            VerifyError::UntrustedKey(_) => "untrusted_key",
            VerifyError::SignatureMismatch(_) => "signature_mismatch",
            VerifyError::Checkpoint(_) => "checkpoint_mismatch",
        }
    }

    /// The exception class the reference verifier raises for the same failure.
    pub fn reference_class(&self) -> &'static str {
        match self {
            VerifyError::Schema(_) => "SchemaError",
            VerifyError::UnknownKey(_) => "UnknownKeyError",
            VerifyError::KeyOutsideWindow(_) => "KeyOutsideActiveWindowError",
            VerifyError::UntrustedKey(_) | VerifyError::Checkpoint(_) => "VerificationError",
            VerifyError::SignatureMismatch(_) => "SignatureMismatchError",
        }
    }
}

impl From<crate::canonical::CanonicalError> for VerifyError {
    fn from(err: crate::canonical::CanonicalError) -> VerifyError {
        VerifyError::Schema(err.0)
    }
}

fn schema<T>(message: impl Into<String>) -> Result<T, VerifyError> {
    Err(VerifyError::Schema(message.into()))
}

/// Verifies receipts of one workspace against its key set and the caller's trusted fingerprints.
#[derive(Clone, Debug)]
pub struct Verifier {
    keys: KeySet,
    workspace_id: String,
    trusted_fingerprints: HashSet<String>,
}

/// The three segments of a flattened JWS, borrowed from the envelope.
#[derive(Clone, Copy)]
pub(crate) struct Segments<'a> {
    pub(crate) protected: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
}

impl<'a> Segments<'a> {
    pub(crate) fn of(receipt: &'a super::jws::SignedReceipt) -> Segments<'a> {
        Segments { protected: &receipt.protected, payload: &receipt.payload, signature: &receipt.signature }
    }
}

/// The base64url-decoded bytes of the three segments; the parsed [`Parts`] borrow from them.
pub(crate) struct Decoded {
    header: Vec<u8>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// A receipt whose JWS parts decoded (the reference's `_jws_parts`).
pub(crate) struct Parts<'d> {
    kid: Cow<'d, str>,
    pub(crate) payload: Object<'d>,
    signature: [u8; 64],
}

/// A receipt that passed every check but the signature, which may be verified alone or in a batch.
pub(crate) struct PendingSignature {
    pub(crate) key: Option<VerifyingKey>,
    pub(crate) message: Vec<u8>,
    pub(crate) signature: Signature,
}

impl PendingSignature {
    /// Cofactorless single verification: the check the reference makes through OpenSSL.
    pub(crate) fn verify(&self) -> Result<(), VerifyError> {
        match &self.key {
            Some(key) if key.verify(&self.message, &self.signature).is_ok() => Ok(()),
            _ => Err(signature_mismatch()),
        }
    }
}

pub(crate) fn signature_mismatch() -> VerifyError {
    VerifyError::SignatureMismatch("signature verification failed".into())
}

impl Verifier {
    /// `workspace_id` and `trusted_fingerprints` come from the caller's configuration, never from
    /// the receipt or the key document. An empty trusted set trusts no key.
    pub fn new(keys: KeySet, workspace_id: &str, trusted_fingerprints: impl IntoIterator<Item = String>) -> Verifier {
        Verifier {
            keys,
            workspace_id: workspace_id.to_owned(),
            trusted_fingerprints: trusted_fingerprints.into_iter().collect(),
        }
    }

    pub fn workspace_id(&self) -> &str {
        &self.workspace_id
    }

    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Full wire-5 verification in the reference order (JWS parts → schema_version → workspace →
    /// schema → pairing → policy_ref rules → issued_at profile and 5-minute future skew vs `now` →
    /// key by kid and its window → trusted fingerprint → Ed25519 over the transmitted
    /// "protected.payload" bytes). Returns the decoded payload.
    pub fn verify(&self, receipt: &Value, now: Timestamp) -> Result<Value, VerifyError> {
        let segments = segments(receipt)?;
        let decoded = Decoded::new(segments)?;
        let parts = decoded.parts()?;
        check_schema_version(&parts.payload)?;
        self.check_workspace(&parts.payload)?;
        check_schema(&parts.payload)?;
        self.check_claims(&parts, segments, now)?.verify()?;
        Ok(Value::Object(parts.payload.to_map()))
    }

    /// Same, from raw JSON bytes of the envelope (strict parse first).
    pub fn verify_json(&self, receipt_json: &[u8], now: Timestamp) -> Result<Value, VerifyError> {
        self.verify(&crate::canonical::parse_strict(receipt_json)?, now)
    }

    /// The key id a receipt names and that key's fingerprint in this set (`None` when the
    /// receipt does not parse as a JWS or names no key of the set). For display, after `verify`.
    pub fn signer(&self, receipt: &Value) -> Option<(String, String)> {
        let segments = segments(receipt).ok()?;
        let decoded = Decoded::new(segments).ok()?;
        let parts = decoded.parts().ok()?;
        let kid = parts.kid.to_string();
        let fingerprint = self.keys.get(&kid)?.fingerprint.clone();
        Some((kid, fingerprint))
    }

    pub(crate) fn check_workspace(&self, payload: &Object<'_>) -> Result<(), VerifyError> {
        match payload.get("workspace_id") {
            Some(Node::Str(id)) if *id == self.workspace_id => Ok(()),
            other => schema(format!(
                "workspace_id mismatch: receipt has `{}`, expected `{}`",
                display(other),
                self.workspace_id
            )),
        }
    }

    /// Every check after the schema: kind and pairing, policy_ref rules, issued_at, key, trust.
    /// Expects a payload that passed [`check_schema`].
    pub(crate) fn check_claims(
        &self,
        parts: &Parts<'_>,
        segments: Segments<'_>,
        now: Timestamp,
    ) -> Result<PendingSignature, VerifyError> {
        let payload = &parts.payload;
        check_pairing(payload)?;
        let issued_at = parse_timestamp(str_field(payload, "issued_at"))?;
        if issued_at > now.plus_millis(MAX_FUTURE_SKEW_MS) {
            return schema(format!("receipt issued in the future: `{issued_at}` > `{now}`"));
        }
        let key = self.find_key(&parts.kid, issued_at)?;
        if !self.trusted_fingerprints.contains(&key.fingerprint) {
            return Err(VerifyError::UntrustedKey(format!(
                "public key fingerprint is not trusted: {}",
                key.fingerprint
            )));
        }
        let mut message = Vec::with_capacity(segments.protected.len() + 1 + segments.payload.len());
        message.extend_from_slice(segments.protected.as_bytes());
        message.push(b'.');
        message.extend_from_slice(segments.payload.as_bytes());
        Ok(PendingSignature { key: key.verifying_key, message, signature: Signature::from_bytes(&parts.signature) })
    }

    fn find_key(&self, kid: &str, issued_at: Timestamp) -> Result<&KeyEntry, VerifyError> {
        let Some(entry) = self.keys.get(kid) else {
            return Err(VerifyError::UnknownKey(format!("no public key found for key_id=`{kid}`")));
        };
        let record = &entry.record;
        if record.active_until.is_some_and(|until| until <= record.active_from) {
            return schema("selected public key active window is empty");
        }
        if issued_at < record.active_from {
            return Err(VerifyError::KeyOutsideWindow(format!("key `{kid}` not yet active at issued_at")));
        }
        if record.active_until.is_some_and(|until| issued_at >= until) {
            return Err(VerifyError::KeyOutsideWindow(format!("key `{kid}` retired before issued_at")));
        }
        Ok(entry)
    }
}

/// Strict decode with schema checks and no signature check (display only; never authorization).
pub fn decode_receipt(receipt: &Value) -> Result<Value, VerifyError> {
    let decoded = Decoded::new(segments(receipt)?)?;
    Ok(Value::Object(decoded.decode()?.payload.to_map()))
}

/// The envelope's segments: an object with exactly `protected`, `payload`, `signature`, all strings.
pub(crate) fn segments(receipt: &Value) -> Result<Segments<'_>, VerifyError> {
    let Some(map) = receipt.as_object() else {
        return schema("receipt must be an object");
    };
    envelope_segments(map.len(), |name| map.get(name).map(Value::as_str))
}

/// [`segments`] of an envelope in a parsed export line.
pub(crate) fn node_segments<'n>(receipt: &'n Node<'_>) -> Result<Segments<'n>, VerifyError> {
    let Some(object) = receipt.as_object() else {
        return schema("receipt must be an object");
    };
    envelope_segments(object.len(), |name| object.get(name).map(Node::as_str))
}

/// `member(name)` is `None` when absent and `Some(None)` when present but not a string.
fn envelope_segments<'a>(
    members: usize,
    member: impl Fn(&str) -> Option<Option<&'a str>>,
) -> Result<Segments<'a>, VerifyError> {
    let [protected, payload, signature] = ["protected", "payload", "signature"].map(member);
    if members != 3 || protected.is_none() || payload.is_none() || signature.is_none() {
        return schema("receipt must be a flattened JWS with exactly protected, payload, signature");
    }
    match (protected.flatten(), payload.flatten(), signature.flatten()) {
        (Some(protected), Some(payload), Some(signature)) => Ok(Segments { protected, payload, signature }),
        _ => schema("JWS segments must be strings"),
    }
}

impl Decoded {
    /// The size bound and canonical base64url of the reference's `_jws_parts`.
    pub(crate) fn new(segments: Segments<'_>) -> Result<Decoded, VerifyError> {
        let all = [segments.protected, segments.payload, segments.signature];
        // Characters never outnumber bytes, so counting them is needed only when the bytes exceed.
        if all.iter().map(|s| s.len()).sum::<usize>() > MAX_JWS_CHARS
            && all.iter().map(|s| s.chars().count()).sum::<usize>() > MAX_JWS_CHARS
        {
            return schema("JWS exceeds size limit");
        }
        let decode = |text: &str| {
            b64url_decode(text).ok_or_else(|| VerifyError::Schema("invalid JWS base64url or strict UTF-8 JSON".into()))
        };
        Ok(Decoded {
            header: decode(segments.protected)?,
            payload: decode(segments.payload)?,
            signature: decode(segments.signature)?,
        })
    }

    /// The rest of `_jws_parts`: strict JSON, the exact header, a 64-byte signature, an object payload.
    pub(crate) fn parts(&self) -> Result<Parts<'_>, VerifyError> {
        let header = parse_strict_node(&self.header)?;
        let payload = parse_strict_node(&self.payload)?;
        let header = match header {
            Node::Object(header)
                if header.len() == 3 && ["alg", "kid", "typ"].iter().all(|name| header.contains_key(name)) =>
            {
                header
            }
            _ => return schema("JWS protected header requires exactly alg, kid, typ"),
        };
        if header["alg"].as_str() != Some(JWS_ALG) || header["typ"].as_str() != Some(JWS_TYPE) {
            return schema("unsupported JWS algorithm or type");
        }
        let kid = match header.into_member("kid") {
            Some(Node::Str(kid)) if !kid.is_empty() => kid,
            _ => return schema("JWS kid must be a nonempty string"),
        };
        let Ok(signature) = <[u8; 64]>::try_from(self.signature.as_slice()) else {
            return schema("signature must decode to 64 bytes (Ed25519)");
        };
        let Node::Object(payload) = payload else {
            return schema("JWS payload must be an evidence object");
        };
        Ok(Parts { kid, payload, signature })
    }

    /// The reference's `decode_receipt`: JWS parts, schema_version and the schema, no pairing rules.
    pub(crate) fn decode(&self) -> Result<Parts<'_>, VerifyError> {
        let parts = self.parts()?;
        check_schema_version(&parts.payload)?;
        check_schema(&parts.payload)?;
        Ok(parts)
    }
}

fn check_schema_version(payload: &Object<'_>) -> Result<(), VerifyError> {
    match payload.get("schema_version") {
        Some(Node::Str(version)) if version == SCHEMA_VERSION => Ok(()),
        other => schema(format!("unsupported schema_version: `{}` (want `{SCHEMA_VERSION}`)", display(other))),
    }
}

/// The reference's `_check_schema`: field set, types, policy_ref, engine_version, policy_eval.
pub(crate) fn check_schema(payload: &Object<'_>) -> Result<(), VerifyError> {
    let known = |name: &str| REQUIRED_FIELDS.contains(&name) || OPTIONAL_FIELDS.contains(&name);
    let extra: Vec<&str> = payload.keys().filter(|name| !known(name)).collect();
    if !extra.is_empty() {
        return schema(format!("unknown top-level fields: {}", name_list(&extra)));
    }
    let missing: Vec<&str> = REQUIRED_FIELDS.iter().copied().filter(|name| !payload.contains_key(name)).collect();
    if !missing.is_empty() {
        return schema(format!("missing top-level fields: {}", name_list(&missing)));
    }
    for field in [
        "schema_version",
        "receipt_id",
        "workspace_id",
        "issued_at",
        "decision",
        "reason",
        "user_id",
        "agent_id",
        "engine_version",
    ] {
        if !payload[field].is_string() {
            return schema(format!("{field} must be a string"));
        }
    }
    for field in ["resource", "authorization_id"] {
        if !(payload[field].is_string() || payload[field].is_null()) {
            return schema(format!("{field} must be string or null"));
        }
    }
    if !payload["context"].is_object() {
        return schema("context must be an object");
    }
    check_policy_ref(&payload["policy_ref"])?;
    if !is_sha256_ref(str_field(payload, "engine_version")) {
        return schema("engine_version must be sha256: followed by 64 lowercase hex characters");
    }
    if let Some(policy_eval) = payload.get("policy_eval") {
        check_policy_eval(policy_eval)?;
        if payload["policy_ref"].is_null() {
            return schema("policy_eval requires non-null policy_ref");
        }
    }
    Ok(())
}

fn check_policy_ref(value: &Node<'_>) -> Result<(), VerifyError> {
    let policy_ref = match value {
        Node::Null => return Ok(()),
        Node::Object(policy_ref) => policy_ref,
        _ => return schema("policy_ref must be an object or null"),
    };
    check_exact_keys(policy_ref, &["definition_sha256", "policy_id", "policy_version"], "policy_ref")?;
    if policy_ref["policy_id"].as_str().is_none_or(str::is_empty) {
        return schema("policy_ref.policy_id must be a nonempty string");
    }
    if !policy_ref["policy_version"].as_i64().is_some_and(|v| (1..=MAX_SAFE_INTEGER).contains(&v)) {
        return schema("policy_ref.policy_version must be a positive safe integer");
    }
    if !policy_ref["definition_sha256"].as_str().is_some_and(is_hex64) {
        return schema("policy_ref.definition_sha256 must be 64 lowercase hex characters");
    }
    Ok(())
}

fn check_policy_eval(value: &Node<'_>) -> Result<(), VerifyError> {
    let Some(policy_eval) = value.as_object() else {
        return schema("policy_eval must be an object");
    };
    check_exact_keys(policy_eval, &["input_sha256", "result"], "policy_eval")?;
    if !policy_eval["input_sha256"].as_str().is_some_and(is_hex64) {
        return schema("policy_eval.input_sha256 must be 64 lowercase hex characters");
    }
    let Some(result) = policy_eval["result"].as_object() else {
        return schema("policy_eval.result must be an object");
    };
    check_exact_keys(
        result,
        &["decision", "evaluated_fields", "matched_rule_id", "profile", "status", "target"],
        "policy_eval.result",
    )?;
    if result["profile"].as_str() != Some("allowly.basic.v1") || result["status"].as_str() != Some("ok") {
        return schema("policy_eval.result requires allowly.basic.v1 successful status");
    }
    let Some(decision) = result["decision"].as_str().filter(|d| ACTION_DECISIONS.contains(d)) else {
        return schema("policy_eval.result.decision must be allow, deny, confirm, or escalate");
    };
    let target = &result["target"];
    let valid_target = match decision {
        "allow" | "deny" => target.is_null(),
        "confirm" => target.as_str() == Some("agent_owner"),
        // Lengths count characters, as Python's len() does.
        _ => target.as_str().is_some_and(|t| t.starts_with("member:") && (8..=256).contains(&t.chars().count())),
    };
    if !valid_target {
        return schema("policy_eval.result.target does not match decision");
    }
    let rule = &result["matched_rule_id"];
    if !(rule.is_null() || rule.as_str().is_some_and(|r| (1..=128).contains(&r.chars().count()))) {
        return schema("policy_eval.result.matched_rule_id must be a bounded nonempty string or null");
    }
    let fields = match &result["evaluated_fields"] {
        Node::Object(fields) if fields.keys().all(|k| (1..=128).contains(&k.chars().count())) => fields,
        _ => return schema("policy_eval.result.evaluated_fields must be an object with bounded nonempty field names"),
    };
    if rule.is_null() && !fields.is_empty() {
        return schema("policy_eval.result action decision requires empty evaluated_fields");
    }
    Ok(())
}

/// Receipt kind, event/decision pairing and the policy_ref rules (after the schema passed).
fn check_pairing(payload: &Object<'_>) -> Result<(), VerifyError> {
    let decision = str_field(payload, "decision");
    let authorization_id = &payload["authorization_id"];
    let resource = &payload["resource"];
    let policy_ref = &payload["policy_ref"];
    match (payload.get("action"), payload.get("event")) {
        (Some(_), Some(_)) => schema("receipt has both 'action' and 'event'; exactly one must be present"),
        (None, None) => schema("receipt has neither 'action' nor 'event'; exactly one must be present"),
        (None, Some(event)) => {
            let Some(event) = event.as_str() else {
                return schema("event must be a string");
            };
            let Some(allowed) = event_decisions(event) else {
                return schema(format!("event must be one of {}, got `{event}`", name_list(&EVENTS)));
            };
            if !allowed.contains(&decision) {
                return schema(format!(
                    "event receipt with event=`{event}` must have decision in {}, got `{decision}`",
                    name_list(allowed)
                ));
            }
            if event == CHECKPOINT_EVENT {
                if !authorization_id.is_null() {
                    return schema("receipt.checkpoint must have null authorization_id");
                }
                if !resource.is_null() {
                    return schema("receipt.checkpoint must have null resource");
                }
                check_checkpoint_context(&payload["context"], str_field(payload, "issued_at"))?;
            } else if authorization_id.is_null() {
                return schema(format!("event receipt with event=`{event}` must have non-null authorization_id"));
            }
            if matches!(event, "authorization.create" | "authorization.revoke") && !resource.is_null() {
                return schema(format!("authorization lifecycle receipt with event=`{event}` must have null resource"));
            }
            if payload.contains_key("policy_eval") {
                return schema("policy_eval must be absent on event receipts");
            }
            match (event == CHECKPOINT_EVENT, policy_ref.is_null()) {
                (true, false) => schema("receipt.checkpoint must have null policy_ref"),
                (false, true) => schema("authorization event must have non-null policy_ref"),
                _ => Ok(()),
            }
        }
        (Some(action), None) => {
            let Some(action) = action.as_str() else {
                return schema("action must be a string");
            };
            if is_event_only_decision(decision) {
                return schema(format!(
                    "decision=`{decision}` requires an event receipt (event field), got an action receipt with \
                     action=`{action}`"
                ));
            }
            if !ACTION_DECISIONS.contains(&decision) {
                return schema(format!(
                    "action receipt must have decision in {}, got `{decision}`",
                    name_list(&ACTION_DECISIONS)
                ));
            }
            match (authorization_id.is_null(), policy_ref.is_null()) {
                (true, false) => schema("unresolved authorization must have null policy_ref"),
                // SEAL receipts are governed actions without a policy edition.
                (false, true) if action != "record.seal" => schema("governed action must have non-null policy_ref"),
                _ => Ok(()),
            }
        }
    }
}

/// A checkpoint's context: exactly its six members, one UTC day, issued at or after its end.
fn check_checkpoint_context(value: &Node<'_>, issued_at: &str) -> Result<(), VerifyError> {
    let Some(context) = value.as_object() else {
        return schema("receipt.checkpoint context must be an object");
    };
    check_exact_keys(context, &CHECKPOINT_CONTEXT_FIELDS, "receipt.checkpoint context")?;
    let period_start = parse_timestamp_node(&context["period_start"])?;
    let period_end = parse_timestamp_node(&context["period_end"])?;
    let checkpoint_at = parse_timestamp(issued_at)?;
    if period_end <= period_start {
        return schema("receipt.checkpoint period_end must be after period_start");
    }
    if period_start.start_of_day() != period_start || period_start.plus_days(1) != period_end {
        return schema("receipt.checkpoint period must be one UTC calendar day");
    }
    if checkpoint_at < period_end {
        return schema("receipt.checkpoint issued_at must be at or after period_end");
    }
    if context["receipt_count"].as_i64().is_none_or(|count| count < 0) {
        return schema("receipt.checkpoint receipt_count must be a non-negative integer");
    }
    if !context["merkle_root"].as_str().is_some_and(is_sha256_ref) {
        return schema("receipt.checkpoint merkle_root must be sha256:<64 lowercase hex>");
    }
    let (previous_id, previous_root) = (&context["previous_checkpoint_id"], &context["previous_merkle_root"]);
    if previous_id.is_null() != previous_root.is_null() {
        return schema("receipt.checkpoint previous id and root must both be null or strings");
    }
    if !(previous_id.is_null() || previous_id.is_string()) {
        return schema("receipt.checkpoint previous_checkpoint_id must be string or null");
    }
    if !(previous_root.is_null() || previous_root.as_str().is_some_and(is_sha256_ref)) {
        return schema("receipt.checkpoint previous_merkle_root must be sha256:<64 lowercase hex> or null");
    }
    Ok(())
}

fn check_exact_keys(object: &Object<'_>, expected: &[&str], prefix: &str) -> Result<(), VerifyError> {
    let extra: Vec<&str> = object.keys().filter(|name| !expected.contains(name)).collect();
    if !extra.is_empty() {
        return schema(format!("{prefix} has unknown fields: {}", name_list(&extra)));
    }
    let missing: Vec<&str> = expected.iter().copied().filter(|name| !object.contains_key(name)).collect();
    if !missing.is_empty() {
        return schema(format!("{prefix} missing fields: {}", name_list(&missing)));
    }
    Ok(())
}

/// The exact wire profile `YYYY-MM-DDTHH:MM:SS.sssZ`, a real calendar instant.
pub(crate) fn parse_timestamp(text: &str) -> Result<Timestamp, VerifyError> {
    Timestamp::parse(text).ok_or_else(|| {
        VerifyError::Schema(format!(
            "timestamp must be a real UTC millisecond instant YYYY-MM-DDTHH:MM:SS.sssZ, got `{text}`"
        ))
    })
}

fn parse_timestamp_node(value: &Node<'_>) -> Result<Timestamp, VerifyError> {
    match value.as_str() {
        Some(text) => parse_timestamp(text),
        None => schema(format!(
            "timestamp must be UTC millisecond precision YYYY-MM-DDTHH:MM:SS.sssZ, got `{}`",
            value.to_value()
        )),
    }
}

/// A timestamp member of a payload that already verified (so it has the exact profile).
pub(crate) fn parse_timestamp_value(value: &Value) -> Result<Timestamp, VerifyError> {
    match value.as_str() {
        Some(text) => parse_timestamp(text),
        None => schema(format!("timestamp must be UTC millisecond precision YYYY-MM-DDTHH:MM:SS.sssZ, got `{value}`")),
    }
}

/// A string member the schema check already guaranteed (empty if it is somehow absent).
pub(crate) fn str_field<'o>(payload: &'o Object<'_>, name: &str) -> &'o str {
    payload[name].as_str().unwrap_or_default()
}

/// [`str_field`] of a verified payload returned as a `serde_json` map.
pub(crate) fn value_str<'v>(payload: &'v serde_json::Map<String, Value>, name: &str) -> &'v str {
    payload.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn is_hex64(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(crate) fn is_sha256_ref(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(is_hex64)
}

/// Sorted, backticked names: `[`a`, `b`]`.
fn name_list(names: &[&str]) -> String {
    let mut sorted = names.to_vec();
    sorted.sort_unstable();
    let quoted: Vec<String> = sorted.iter().map(|name| format!("`{name}`")).collect();
    format!("[{}]", quoted.join(", "))
}

fn display(value: Option<&Node<'_>>) -> String {
    match value {
        Some(Node::Str(text)) => text.to_string(),
        Some(other) => other.to_value().to_string(),
        None => "null".into(),
    }
}

/// Builders shared by the receipt module's unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::receipt::jws::{b64url_encode, ReceiptSigner};
    use crate::receipt::keys::{fingerprint, KeyRecord};
    use ed25519_dalek::{Signer as _, SigningKey};
    use serde_json::json;

    pub(crate) const WORKSPACE: &str = "ws_test";

    pub(crate) fn ts(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap_or_default()
    }

    pub(crate) fn now() -> Timestamp {
        ts("2026-12-31T00:00:00.000Z")
    }

    /// Key `n`: secret `[n; 32]`, id `key-n`.
    pub(crate) fn signer(n: u8) -> ReceiptSigner {
        ReceiptSigner::new(&format!("key-{n}"), &[n; 32])
    }

    pub(crate) fn record(n: u8, from: &str, until: Option<&str>) -> KeyRecord {
        KeyRecord {
            key_id: format!("key-{n}"),
            public_key: signer(n).public_key(),
            active_from: ts(from),
            active_until: until.map(ts),
        }
    }

    /// A verifier of `records` that trusts every one of them.
    pub(crate) fn verifier(records: &[KeyRecord]) -> Verifier {
        let keys = KeySet::from_records(records).unwrap_or_default();
        Verifier::new(keys, WORKSPACE, records.iter().map(|r| fingerprint(&r.public_key)))
    }

    /// Key 1, active through 2026.
    pub(crate) fn default_verifier() -> Verifier {
        verifier(&[record(1, "2026-01-01T00:00:00.000Z", None)])
    }

    pub(crate) fn action_payload(receipt_id: &str, issued_at: &str) -> Value {
        json!({
            "schema_version": "5", "receipt_id": receipt_id, "workspace_id": WORKSPACE, "issued_at": issued_at,
            "action": "email.send", "decision": "allow", "reason": "authorization_granted_action_active",
            "user_id": "user_1", "agent_id": "agent_1", "resource": "mailbox:1", "context": {"n": 1},
            "authorization_id": "auth_1",
            "policy_ref": {"policy_id": "pol_1", "policy_version": 1, "definition_sha256": "a".repeat(64)},
            "engine_version": format!("sha256:{}", "b".repeat(64)),
        })
    }

    pub(crate) fn sign(signer: &ReceiptSigner, payload: &Value) -> Value {
        signer.sign(payload).map(|signed| signed.to_value()).unwrap_or_default()
    }

    /// Signs arbitrary payload bytes with key `n`, bypassing canonicalization, so that only the
    /// rule under test can reject the receipt.
    pub(crate) fn sign_raw(n: u8, payload: &[u8]) -> Value {
        let protected = b64url_encode(
            format!("{{\"alg\":\"EdDSA\",\"kid\":\"key-{n}\",\"typ\":\"allowly-receipt+jws\"}}").as_bytes(),
        );
        let payload = b64url_encode(payload);
        let signature = SigningKey::from_bytes(&[n; 32]).sign(format!("{protected}.{payload}").as_bytes());
        json!({"protected": protected, "payload": payload, "signature": b64url_encode(&signature.to_bytes())})
    }

    /// A `receipt.checkpoint` payload for the UTC day starting at `day`, issued 5 s after it ends.
    pub(crate) fn checkpoint_payload(
        receipt_id: &str,
        day: &str,
        count: usize,
        root: &str,
        previous: Option<(&str, &str)>,
    ) -> Value {
        let start = ts(day);
        let end = start.plus_days(1);
        json!({
            "schema_version": "5", "receipt_id": receipt_id, "workspace_id": WORKSPACE,
            "issued_at": end.plus_seconds(5).to_string(), "event": "receipt.checkpoint",
            "decision": "receipt_set_committed", "reason": "signed_receipt_set_checkpointed",
            "user_id": "", "agent_id": "allowly.checkpoint", "resource": null, "authorization_id": null,
            "policy_ref": null, "engine_version": format!("sha256:{}", "b".repeat(64)),
            "context": {
                "period_start": start.to_string(), "period_end": end.to_string(), "receipt_count": count,
                "merkle_root": root, "previous_checkpoint_id": previous.map(|p| p.0),
                "previous_merkle_root": previous.map(|p| p.1),
            },
        })
    }

    /// The canonical text of the default action payload, with `from` replaced by `to`.
    pub(crate) fn edited_payload_text(from: &str, to: &str) -> Vec<u8> {
        let text = String::from_utf8(
            crate::canonical::to_canonical_vec(&action_payload("rcp_1", "2026-09-14T08:30:00.125Z"))
                .unwrap_or_default(),
        )
        .unwrap_or_default();
        assert!(text.contains(from), "{from} not in {text}");
        text.replacen(from, to, 1).into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::receipt::jws::b64url_encode;
    use serde_json::{json, Map};

    const ISSUED: &str = "2026-09-14T08:30:00.125Z";

    fn class(result: Result<Value, VerifyError>) -> &'static str {
        result.err().map_or("ok", |err| err.reference_class())
    }

    fn verify_payload(payload: &Value) -> Result<Value, VerifyError> {
        default_verifier().verify(&sign(&signer(1), payload), now())
    }

    fn edit(change: impl FnOnce(&mut Map<String, Value>)) -> Value {
        let mut payload = action_payload("rcp_1", ISSUED);
        if let Some(map) = payload.as_object_mut() {
            change(map);
        }
        payload
    }

    #[test]
    fn sign_then_verify_round_trips_the_payload() {
        let payload = action_payload("rcp_1", ISSUED);
        assert_eq!(verify_payload(&payload), Ok(payload.clone()));
        let receipt = sign(&signer(1), &payload);
        assert_eq!(decode_receipt(&receipt), Ok(payload.clone()));
        let json = serde_json::to_vec(&receipt).unwrap_or_default();
        assert_eq!(default_verifier().verify_json(&json, now()), Ok(payload));
    }

    #[test]
    fn tampered_payload_or_signature_is_a_signature_mismatch() {
        let receipt = sign(&signer(1), &action_payload("rcp_1", ISSUED));
        let other = sign(
            &signer(1),
            &edit(|p| {
                p.insert("decision".into(), json!("deny"));
            }),
        );
        let mut swapped = receipt.clone();
        swapped["payload"] = other["payload"].clone();
        assert_eq!(class(default_verifier().verify(&swapped, now())), "SignatureMismatchError");

        let mut forged = receipt.clone();
        forged["signature"] = json!(b64url_encode(&[7u8; 64]));
        assert_eq!(class(default_verifier().verify(&forged, now())), "SignatureMismatchError");
        assert_eq!(class(default_verifier().verify(&receipt, now())), "ok");
    }

    #[test]
    fn non_canonical_base64url_is_a_schema_error() {
        let receipt = sign(&signer(1), &action_payload("rcp_1", ISSUED));
        let signature = receipt["signature"].as_str().unwrap_or_default().to_owned();
        // 64 bytes encode to 86 characters; the last one carries 4 pad bits, so it is one of
        // A, Q, g, w, and the next letter of the alphabet sets a pad bit.
        let (head, last) = signature.split_at(signature.len() - 1);
        let bad_bits = match last {
            "A" => format!("{head}B"),
            "Q" => format!("{head}R"),
            "g" => format!("{head}h"),
            _ => format!("{head}x"),
        };
        assert!(["A", "Q", "g", "w"].contains(&last));
        for bad in [format!("{signature}=="), bad_bits, format!("{head}+"), format!(" {signature}")] {
            let mut copy = receipt.clone();
            copy["signature"] = json!(bad);
            let err = default_verifier().verify(&copy, now()).err();
            assert!(matches!(&err, Some(VerifyError::Schema(m)) if m.contains("base64url")), "{bad}: {err:?}");
        }
        let mut padded = receipt.clone();
        padded["protected"] = json!(format!("{}=", receipt["protected"].as_str().unwrap_or_default()));
        assert_eq!(class(default_verifier().verify(&padded, now())), "SchemaError");
    }

    #[test]
    fn strict_json_rules_reject_signed_receipts() {
        let cases = [
            ("float", edited_payload_text("\"context\":{\"n\":1}", "\"context\":{\"n\":1.5}")),
            ("integer spelled as float", edited_payload_text("\"context\":{\"n\":1}", "\"context\":{\"n\":1.0}")),
            ("float in policy_ref", edited_payload_text("\"policy_version\":1", "\"policy_version\":1e0")),
            (
                "duplicate name",
                edited_payload_text("\"decision\":\"allow\"", "\"decision\":\"allow\",\"decision\":\"allow\""),
            ),
            ("unsafe integer", edited_payload_text("\"context\":{\"n\":1}", "\"context\":{\"n\":9007199254740992}")),
            ("lone surrogate", edited_payload_text("\"context\":{\"n\":1}", "\"context\":{\"n\":\"\\ud800\"}")),
            ("depth 33", {
                // The payload is depth 1 and context depth 2: 30 arrays put the 0 at depth 33.
                let deep = format!("{}0{}", "[".repeat(30), "]".repeat(30));
                edited_payload_text("\"context\":{\"n\":1}", &format!("\"context\":{{\"n\":{deep}}}"))
            }),
            ("trailing data", [edited_payload_text("\"n\":1", "\"n\":1"), b" x".to_vec()].concat()),
        ];
        for (label, payload) in cases {
            let err = default_verifier().verify(&sign_raw(1, &payload), now()).err();
            assert!(matches!(err, Some(VerifyError::Schema(_))), "{label}: {err:?}");
        }
        // The limit is exactly 32: one level less still verifies, whitespace and all.
        let deep = format!("{}0{}", "[".repeat(29), "]".repeat(29));
        let ok = edited_payload_text("\"context\":{\"n\":1}", &format!("\"context\": {{\"n\": {deep}}}"));
        assert_eq!(class(default_verifier().verify(&sign_raw(1, &ok), now())), "ok");
    }

    #[test]
    fn schema_rules_reject_unknown_missing_and_mistyped_fields() {
        let cases = [
            edit(|p| {
                p.insert("note".into(), json!("x"));
            }),
            edit(|p| {
                p.remove("agent_id");
            }),
            edit(|p| {
                p.insert("user_id".into(), json!(null));
            }),
            edit(|p| {
                p.insert("resource".into(), json!(5));
            }),
            edit(|p| {
                p.insert("context".into(), json!([]));
            }),
            edit(|p| {
                p.insert("engine_version".into(), json!("2026-09-16.1"));
            }),
            edit(|p| {
                p.insert("engine_version".into(), json!(format!("sha256:{}", "B".repeat(64))));
            }),
            edit(|p| {
                p.insert("schema_version".into(), json!("4"));
            }),
            edit(|p| {
                p.insert("workspace_id".into(), json!("ws_other"));
            }),
            edit(|p| {
                p["policy_ref"]["policy_version"] = json!(0);
            }),
            edit(|p| {
                p["policy_ref"]["policy_version"] = json!(true);
            }),
            edit(|p| {
                p["policy_ref"]["definition_sha256"] = json!("A".repeat(64));
            }),
            edit(|p| {
                p["policy_ref"]["extra"] = json!(1);
            }),
            edit(|p| {
                p.insert("issued_at".into(), json!("2026-09-14T08:30:00Z"));
            }),
            edit(|p| {
                p.insert("issued_at".into(), json!("2026-02-30T08:30:00.000Z"));
            }),
            edit(|p| {
                p.insert("issued_at".into(), json!("2026-12-31T00:05:00.001Z"));
            }),
        ];
        for payload in cases {
            assert_eq!(class(verify_payload(&payload)), "SchemaError", "{payload}");
        }
        // Exactly five minutes ahead is still accepted.
        assert_eq!(
            class(verify_payload(&edit(|p| {
                p.insert("issued_at".into(), json!("2026-12-31T00:05:00.000Z"));
            }))),
            "ok"
        );
    }

    #[test]
    fn event_and_decision_must_pair() {
        let event = |event: &str, decision: &str| {
            edit(|p| {
                p.remove("action");
                p.insert("event".into(), json!(event));
                p.insert("decision".into(), json!(decision));
                p.insert("resource".into(), json!(null));
            })
        };
        assert_eq!(class(verify_payload(&event("authorization.create", "authorization_granted"))), "ok");
        assert_eq!(class(verify_payload(&event("escalation.resolve", "escalation_rejected"))), "ok");
        for payload in [
            event("escalation.resolve", "allow"),
            event("authorization.create", "authorization_revoked"),
            event("receipt.seal", "allow"),
            edit(|p| {
                p.insert("decision".into(), json!("budget_settled"));
            }),
            edit(|p| {
                p.insert("decision".into(), json!("maybe"));
            }),
            edit(|p| {
                p.insert("event".into(), json!("budget.settle"));
            }),
            edit(|p| {
                p.remove("action");
            }),
            edit(|p| {
                p.insert("policy_ref".into(), json!(null));
            }),
            edit(|p| {
                p.insert("authorization_id".into(), json!(null));
            }),
            {
                let mut revoke = event("authorization.revoke", "authorization_revoked");
                revoke["resource"] = json!("mailbox:1");
                revoke
            },
        ] {
            assert_eq!(class(verify_payload(&payload)), "SchemaError", "{payload}");
        }
        // SEAL receipts are the one governed action without a policy edition.
        let seal = edit(|p| {
            p.insert("action".into(), json!("record.seal"));
            p.insert("policy_ref".into(), json!(null));
        });
        assert_eq!(class(verify_payload(&seal)), "ok");
    }

    #[test]
    fn policy_eval_rules_follow_the_reference() {
        let with_eval = |result: Value| {
            edit(|p| {
                p.insert("policy_eval".into(), json!({"input_sha256": "c".repeat(64), "result": result}));
            })
        };
        let result = |decision: &str, target: Value, rule: Value, fields: Value| {
            json!({"profile": "allowly.basic.v1", "status": "ok", "decision": decision, "target": target,
                   "matched_rule_id": rule, "evaluated_fields": fields})
        };
        let good = [
            result("allow", json!(null), json!(null), json!({})),
            result("confirm", json!("agent_owner"), json!("r1"), json!({"risk": 2})),
            result("escalate", json!("member:u1"), json!("r1"), json!({})),
        ];
        for ok in good {
            assert_eq!(class(verify_payload(&with_eval(ok.clone()))), "ok", "{ok}");
        }
        let bad = [
            result("allow", json!(null), json!(null), json!({"risk": 2})),
            result("allow", json!("agent_owner"), json!(null), json!({})),
            result("confirm", json!(null), json!("r1"), json!({})),
            result("escalate", json!("member:"), json!("r1"), json!({})),
            result("escalate", json!(format!("member:{}", "x".repeat(250))), json!("r1"), json!({})),
            result("allow", json!(null), json!(""), json!({})),
            result("allow", json!(null), json!("r1"), json!({"": 1})),
            result("maybe", json!(null), json!(null), json!({})),
        ];
        for payload in bad {
            assert_eq!(class(verify_payload(&with_eval(payload.clone()))), "SchemaError", "{payload}");
        }
        let mut extra = with_eval(good_result());
        extra["policy_eval"]["extra"] = json!(1);
        assert_eq!(class(verify_payload(&extra)), "SchemaError");
        let mut unresolved = with_eval(good_result());
        unresolved["policy_ref"] = json!(null);
        unresolved["authorization_id"] = json!(null);
        assert_eq!(class(verify_payload(&unresolved)), "SchemaError");
    }

    fn good_result() -> Value {
        json!({"profile": "allowly.basic.v1", "status": "ok", "decision": "allow", "target": null,
               "matched_rule_id": null, "evaluated_fields": {}})
    }

    #[test]
    fn rotated_keys_verify_only_inside_their_window() {
        let rotation = "2026-07-01T00:00:00.000Z";
        let verifier = verifier(&[record(1, "2026-01-01T00:00:00.000Z", Some(rotation)), record(2, rotation, None)]);
        let old_inside = sign(&signer(1), &action_payload("rcp_1", "2026-06-30T23:59:59.999Z"));
        let old_at_end = sign(&signer(1), &action_payload("rcp_2", rotation));
        let old_before = sign(&signer(1), &action_payload("rcp_3", "2025-12-31T23:59:59.999Z"));
        let new_inside = sign(&signer(2), &action_payload("rcp_4", rotation));
        let new_before = sign(&signer(2), &action_payload("rcp_5", "2026-06-30T23:59:59.999Z"));
        assert_eq!(class(verifier.verify(&old_inside, now())), "ok");
        assert_eq!(class(verifier.verify(&new_inside, now())), "ok");
        for outside in [old_at_end, old_before, new_before] {
            assert_eq!(class(verifier.verify(&outside, now())), "KeyOutsideActiveWindowError");
        }
        let unknown = sign(&signer(3), &action_payload("rcp_6", ISSUED));
        assert_eq!(class(verifier.verify(&unknown, now())), "UnknownKeyError");
    }

    #[test]
    fn untrusted_fingerprint_is_rejected_before_the_signature() {
        let records = [record(1, "2026-01-01T00:00:00.000Z", None)];
        let keys = KeySet::from_records(&records).unwrap_or_default();
        let other = crate::receipt::fingerprint(&[0u8; 32]);
        let verifier = Verifier::new(keys.clone(), WORKSPACE, [other]);
        let mut receipt = sign(&signer(1), &action_payload("rcp_1", ISSUED));
        assert!(matches!(verifier.verify(&receipt, now()), Err(VerifyError::UntrustedKey(_))));
        receipt["signature"] = json!(b64url_encode(&[7u8; 64]));
        assert!(matches!(verifier.verify(&receipt, now()), Err(VerifyError::UntrustedKey(_))));
        assert!(matches!(
            Verifier::new(keys, WORKSPACE, []).verify(&receipt, now()),
            Err(VerifyError::UntrustedKey(_))
        ));
    }

    #[test]
    fn empty_key_window_is_a_schema_error_at_use() {
        let day = "2026-01-01T00:00:00.000Z";
        let verifier = verifier(&[record(1, day, Some(day))]);
        assert_eq!(class(verifier.verify(&sign(&signer(1), &action_payload("rcp_1", ISSUED)), now())), "SchemaError");
    }

    #[test]
    fn envelope_and_header_shape_are_checked() {
        let receipt = sign(&signer(1), &action_payload("rcp_1", ISSUED));
        let mut extra = receipt.clone();
        extra["x5c"] = json!("a");
        let mut number = receipt.clone();
        number["signature"] = json!(5);
        let header = |text: &str| {
            let mut copy = receipt.clone();
            copy["protected"] = json!(b64url_encode(text.as_bytes()));
            copy
        };
        for bad in [
            json!([]),
            extra,
            number,
            header("{\"alg\":\"EdDSA\",\"kid\":\"key-1\"}"),
            header("{\"alg\":\"EdDSA\",\"kid\":\"key-1\",\"typ\":\"JWT\"}"),
            header("{\"alg\":\"none\",\"kid\":\"key-1\",\"typ\":\"allowly-receipt+jws\"}"),
            header("{\"alg\":\"EdDSA\",\"kid\":\"\",\"typ\":\"allowly-receipt+jws\"}"),
            header("{\"alg\":\"EdDSA\",\"kid\":\"key-1\",\"typ\":\"allowly-receipt+jws\",\"crit\":[]}"),
        ] {
            assert_eq!(class(default_verifier().verify(&bad, now())), "SchemaError", "{bad}");
        }
        // The header need not be canonical: the signature covers the bytes as sent.
        let spaced = b64url_encode(b"{\"alg\": \"EdDSA\", \"kid\": \"key-1\", \"typ\": \"allowly-receipt+jws\"}");
        let payload = receipt["payload"].as_str().unwrap_or_default();
        let signature = ed25519_dalek::Signer::sign(
            &ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
            format!("{spaced}.{payload}").as_bytes(),
        );
        let envelope =
            json!({"protected": spaced, "payload": payload, "signature": b64url_encode(&signature.to_bytes())});
        assert_eq!(class(default_verifier().verify(&envelope, now())), "ok");
    }

    #[test]
    fn error_codes_are_stable() {
        let all = [
            (VerifyError::Schema(String::new()), "schema_error"),
            (VerifyError::UnknownKey(String::new()), "unknown_key"),
            (VerifyError::KeyOutsideWindow(String::new()), "key_outside_active_window"),
            (VerifyError::UntrustedKey(String::new()), "untrusted_key"),
            (VerifyError::SignatureMismatch(String::new()), "signature_mismatch"),
            (VerifyError::Checkpoint(String::new()), "checkpoint_mismatch"),
        ];
        for (err, code) in all {
            assert_eq!(err.code(), code);
        }
    }

    #[test]
    fn verifier_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Verifier>();
    }
}

// ---------------------------------------------------------------------------------------------
// Many receipts at once (the bindings' `verify_receipts`).

/// Below this many receipts per thread, spawning costs more than it saves.
const MANY_MIN_PER_THREAD: usize = 64;
/// Verdicts a thread of [`Verifier::verify_many_with`] hands over at a time: small enough for the
/// caller's handling to overlap verification, large enough for efficient signature batches.
const MANY_SINK_CHUNK: usize = 1024;

/// A verdict of [`Verifier::verify_many_with`]: the verified payload, parsed and borrowed from the
/// receipt (no `serde_json::Value` is built), or why the receipt did not verify.
pub type PayloadVerdict<'v, 'p> = Result<&'v Object<'p>, &'v VerifyError>;

impl Verifier {
    /// [`Verifier::verify`] for each receipt, in order, on every core, with the signatures checked
    /// in batches (see `batch.rs`): a batch that fails is narrowed down to single checks, so every
    /// verdict is the receipt's own. Same checks and errors as `verify`, with the one theoretical
    /// difference of batch equations, which only a key's own holder could provoke.
    pub fn verify_many(&self, receipts: &[Value], now: Timestamp) -> Vec<Result<Value, VerifyError>> {
        super::batch::parallel_chunks(receipts, MANY_MIN_PER_THREAD, |_, run| {
            self.verify_run(run, now, |verdicts| {
                verdicts
                    .map(|verdict| match verdict {
                        Ok(payload) => Ok(Value::Object(payload.to_map())),
                        Err(err) => Err(err.clone()),
                    })
                    .collect()
            })
        })
    }

    /// [`Verifier::verify_many`], handing the verdicts over as they are ready: each worker thread
    /// calls `sink(start, verdicts)` for a run of consecutive receipts, `start` being the index of
    /// the first, so that the caller can convert verdicts while later receipts are verified.
    /// Every receipt is handed over exactly once; runs arrive in no particular order.
    pub fn verify_many_with(
        &self,
        receipts: &[Value],
        now: Timestamp,
        sink: impl Fn(usize, &mut dyn ExactSizeIterator<Item = PayloadVerdict<'_, '_>>) + Sync,
    ) {
        super::batch::parallel_chunks(receipts, MANY_MIN_PER_THREAD, |start, share| {
            let size = share.len().div_ceil(share.len().div_ceil(MANY_SINK_CHUNK).max(1)).max(1);
            for (i, run) in share.chunks(size).enumerate() {
                self.verify_run(run, now, |verdicts| sink(start + i * size, verdicts));
            }
            Vec::<()>::new()
        });
    }

    /// Verifies consecutive receipts on the calling thread and lets `take` read their verdicts,
    /// in order, while the decoded payloads they borrow are alive.
    fn verify_run<R>(
        &self,
        receipts: &[Value],
        now: Timestamp,
        take: impl FnOnce(&mut dyn ExactSizeIterator<Item = PayloadVerdict<'_, '_>>) -> R,
    ) -> R {
        let decoded: Vec<Result<(Segments<'_>, Decoded), VerifyError>> = receipts
            .iter()
            .map(|receipt| {
                let segments = segments(receipt)?;
                Ok((segments, Decoded::new(segments)?))
            })
            .collect();
        let mut verdicts = Vec::with_capacity(receipts.len());
        let mut pending = Vec::with_capacity(receipts.len());
        for item in &decoded {
            let checked = match item {
                Ok((segments, decoded)) => self.verify_all_but_signature(decoded, *segments, now),
                Err(err) => Err(err.clone()),
            };
            match checked {
                Ok((parts, signature)) => {
                    pending.push((verdicts.len(), signature));
                    verdicts.push(Ok(parts));
                }
                Err(err) => verdicts.push(Err(err)),
            }
        }
        super::batch::settle(&pending, &mut |index, err| {
            if let Some(verdict) = verdicts.get_mut(index) {
                *verdict = Err(err);
            }
        });
        take(&mut verdicts.iter().map(|verdict| verdict.as_ref().map(|parts| &parts.payload)))
    }

    /// Every check of [`Verifier::verify`] after decoding but the signature, which is returned pending.
    fn verify_all_but_signature<'d>(
        &self,
        decoded: &'d Decoded,
        segments: Segments<'_>,
        now: Timestamp,
    ) -> Result<(Parts<'d>, PendingSignature), VerifyError> {
        let parts = decoded.parts()?;
        check_schema_version(&parts.payload)?;
        self.check_workspace(&parts.payload)?;
        check_schema(&parts.payload)?;
        let signature = self.check_claims(&parts, segments, now)?;
        Ok((parts, signature))
    }
}
