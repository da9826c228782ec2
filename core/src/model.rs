//! Stored state and API shapes. Response types serialize to exactly the snake_case JSON of the
//! HTTP API (docs/http-api.md), so the CLI's `--json`, the server and the bindings print the same objects.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::policy::{Decision, PolicyRef};
use crate::receipt::SignedReceipt;
use crate::time::Timestamp;

/// Serde adapter: timestamps travel as `YYYY-MM-DDTHH:MM:SS.sssZ`.
pub mod wire_time {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(t)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp `{text}`")))
    }

    pub mod option {
        use super::Timestamp;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.collect_str(t),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(text) => Timestamp::parse(&text)
                    .map(Some)
                    .ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp `{text}`"))),
            }
        }
    }
}

/// One immutable policy edition.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PolicyEdition {
    pub policy_ref: PolicyRef,
    pub definition: Value,
    pub description: Option<String>,
    #[serde(with = "wire_time")]
    pub created_at: Timestamp,
    #[serde(with = "wire_time::option")]
    pub archived_at: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum AuthorizationStatus {
    Active,
    Revoked,
    Expired,
}

/// An authorization: one user's grant to one agent, frozen from one policy edition.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Authorization {
    pub authorization_id: String,
    pub user_id: String,
    pub agent_id: String,
    pub policy_ref: PolicyRef,
    pub actions: Vec<String>,
    #[serde(with = "wire_time")]
    pub created_at: Timestamp,
    #[serde(with = "wire_time")]
    pub expires_at: Timestamp,
    pub budget_limit_micros: Option<i64>,
    pub budget_spent_micros: i64,
    pub metadata: Map<String, Value>,
    #[serde(with = "wire_time::option")]
    pub revoked_at: Option<Timestamp>,
    pub superseded_by: Option<String>,
    pub replaces: Option<String>,
    pub receipt_id: String,
}

impl Authorization {
    pub fn status(&self, now: Timestamp) -> AuthorizationStatus {
        if self.revoked_at.is_some() {
            AuthorizationStatus::Revoked
        } else if now >= self.expires_at {
            AuthorizationStatus::Expired
        } else {
            AuthorizationStatus::Active
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum PromptStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
}

/// What a confirmation or escalation was opened for: the policy's answer to one request. A later
/// check reuses, honours or uses up the prompt only when its own binding is equal, so an answer
/// never unlocks a request it was not asked about (docs/decisions.md, "What an answer covers").
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PromptBinding {
    /// The rule that asked; `None` when the action's own decision did.
    pub matched_rule_id: Option<String>,
    /// Who answers: `agent_owner` or `member:<id>`.
    pub target: Option<String>,
    /// Lowercase hex SHA-256 of the canonical JSON object of the context values that the action's
    /// rules test (absent fields left out, so absence and `null` differ).
    pub tested_values_sha256: String,
}

impl PromptBinding {
    /// The key prompts with this binding are stored and looked up under: the store's
    /// `(authorization, action, resource)` key narrowed to the binding, so each binding keeps its
    /// own latest prompt (an answer for one request neither hides nor is hidden by a prompt for
    /// another). The digest suffix has a fixed length, so keys stay distinct whatever the base
    /// key's encoding.
    pub fn prompt_key(&self, authorization_id: &str, action: &str, resource: Option<&str>) -> String {
        let mut bytes = Vec::with_capacity(512);
        for part in [&self.matched_rule_id, &self.target] {
            match part {
                None => bytes.push(0),
                Some(text) => {
                    bytes.push(1);
                    bytes.extend_from_slice(&(text.len() as u64).to_be_bytes());
                    bytes.extend_from_slice(text.as_bytes());
                }
            }
        }
        bytes.extend_from_slice(self.tested_values_sha256.as_bytes());
        let base = crate::store::prompt_key(authorization_id, action, resource);
        format!("{base}\u{1f}b:{}", crate::canonical::sha256_hex(&bytes))
    }
}

/// The key a prompt was stored under; one without a binding keeps the old key, which no check
/// looks up any more.
fn stored_prompt_key(
    binding: Option<&PromptBinding>,
    authorization_id: &str,
    action: &str,
    resource: Option<&str>,
) -> String {
    match binding {
        Some(binding) => binding.prompt_key(authorization_id, action, resource),
        None => crate::store::prompt_key(authorization_id, action, resource),
    }
}

/// A request for the user's confirmation of one action (and resource) under an authorization.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Confirmation {
    pub confirmation_id: String,
    /// Bearer secret that resolves this confirmation; never written into receipts.
    pub nonce: String,
    pub authorization_id: String,
    pub action: String,
    pub resource: Option<String>,
    pub status: PromptStatus,
    #[serde(with = "wire_time")]
    pub created_at: Timestamp,
    /// End of the pending window, then (once resolved) of the approval or rejection window.
    #[serde(with = "wire_time")]
    pub expires_at: Timestamp,
    #[serde(with = "wire_time::option")]
    pub resolved_at: Option<Timestamp>,
    pub source_receipt_id: String,
    pub resolution_receipt_id: Option<String>,
    /// Absent in rows written before bindings existed: such a prompt matches no check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<PromptBinding>,
}

impl Confirmation {
    /// The key this confirmation is stored under (see [`PromptBinding::prompt_key`]).
    pub fn prompt_key(&self) -> String {
        stored_prompt_key(self.binding.as_ref(), &self.authorization_id, &self.action, self.resource.as_deref())
    }
}

/// A request for a human approver's decision on one action (and resource).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Escalation {
    pub escalation_id: String,
    pub authorization_id: String,
    pub action: String,
    pub resource: Option<String>,
    pub status: PromptStatus,
    pub escalation_to: Option<String>,
    #[serde(with = "wire_time")]
    pub created_at: Timestamp,
    #[serde(with = "wire_time")]
    pub expires_at: Timestamp,
    #[serde(with = "wire_time::option")]
    pub resolved_at: Option<Timestamp>,
    pub resolved_by: Option<String>,
    pub note: Option<String>,
    #[serde(with = "wire_time::option")]
    pub consumed_at: Option<Timestamp>,
    pub source_receipt_id: String,
    pub resolution_receipt_id: Option<String>,
    /// Absent in rows written before bindings existed: such a prompt matches no check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<PromptBinding>,
}

impl Escalation {
    /// The key this escalation is stored under (see [`PromptBinding::prompt_key`]).
    pub fn prompt_key(&self) -> String {
        stored_prompt_key(self.binding.as_ref(), &self.authorization_id, &self.action, self.resource.as_deref())
    }
}

/// Budget reserved by one check, settled at most once against its actual cost.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Reservation {
    pub reservation_id: String,
    pub authorization_id: String,
    pub estimated_cost_micros: i64,
    /// The receipts of the check's actions; any of them names the reservation for settlement.
    pub receipt_ids: Vec<String>,
    pub settlement: Option<BudgetSettlement>,
}

/// A stored receipt with the columns the store indexes.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredReceipt {
    pub receipt_id: String,
    pub issued_at: Timestamp,
    pub authorization_id: Option<String>,
    pub is_checkpoint: bool,
    pub facts: ReceiptFacts,
    pub receipt: SignedReceipt,
}

/// The members of a receipt's signed payload that the audit lookup filters on, kept in columns
/// beside the JWS so that a filtered page is an index range rather than a scan of decoded payloads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiptFacts {
    pub user_id: String,
    pub agent_id: String,
    /// The action decided (`None` for a lifecycle receipt).
    pub action: Option<String>,
    /// The lifecycle event (`authorization.revoke`; `None` for a decision).
    pub event: Option<String>,
    pub decision: String,
    pub reason: String,
}

impl ReceiptFacts {
    /// The facts out of a decoded payload (for rows stored before the facts had columns).
    pub fn of_payload(payload: &Value) -> ReceiptFacts {
        let text = |name: &str| payload.get(name).and_then(Value::as_str).map(str::to_string);
        ReceiptFacts {
            user_id: text("user_id").unwrap_or_default(),
            agent_id: text("agent_id").unwrap_or_default(),
            action: text("action"),
            event: text("event"),
            decision: text("decision").unwrap_or_default(),
            reason: text("reason").unwrap_or_default(),
        }
    }
}

/// Which authorizations a list reads from the store: every `Some` member must match. Status is
/// not a member: it changes with time (an active authorization expires without being written),
/// so the engine decides it on the rows read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorizationFilter {
    pub user_id: Option<String>,
    pub agent_id: Option<String>,
}

impl AuthorizationFilter {
    pub fn matches(&self, authorization: &Authorization) -> bool {
        let is = |wanted: &Option<String>, value: &str| wanted.as_deref().is_none_or(|w| w == value);
        is(&self.user_id, &authorization.user_id) && is(&self.agent_id, &authorization.agent_id)
    }
}

/// Which receipts an audit lookup wants: every `Some` member must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiptFilter {
    pub user_id: Option<String>,
    pub agent_id: Option<String>,
    pub action: Option<String>,
    pub event: Option<String>,
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub authorization_id: Option<String>,
    /// Issued at or after.
    pub since: Option<Timestamp>,
    /// Issued before.
    pub until: Option<Timestamp>,
}

impl ReceiptFilter {
    pub fn matches(&self, receipt: &StoredReceipt) -> bool {
        let facts = &receipt.facts;
        let is = |wanted: &Option<String>, value: Option<&str>| wanted.as_deref().is_none_or(|w| Some(w) == value);
        is(&self.user_id, Some(&facts.user_id))
            && is(&self.agent_id, Some(&facts.agent_id))
            && is(&self.action, facts.action.as_deref())
            && is(&self.event, facts.event.as_deref())
            && is(&self.decision, Some(&facts.decision))
            && is(&self.reason, Some(&facts.reason))
            && is(&self.authorization_id, receipt.authorization_id.as_deref())
            && self.since.is_none_or(|since| receipt.issued_at >= since)
            && self.until.is_none_or(|until| receipt.issued_at < until)
    }
}

/// Action receipts issued on one day with one decision and action (and for a denial, one
/// reason), counted: the rows the console's overview adds up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionTally {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub decision: String,
    pub action: String,
    /// The reason of a denial; `None` for the other decisions.
    pub denial_reason: Option<String>,
    pub count: u64,
}

/// A public key of the workspace with its private half (the embedded store keeps both).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub key_id: String,
    pub secret_key: [u8; 32],
    pub public_key: [u8; 32],
    pub active_from: Timestamp,
    pub active_until: Option<Timestamp>,
}

/// A first answer remembered under an idempotency key, with the fingerprint of its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub request_sha256: String,
    pub response: String,
}

// ---------------------------------------------------------------------------------------------
// Requests

/// `check`: one decision per requested action.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub authorization_id: String,
    pub actions: Vec<String>,
    // The optional members are sent as `null`, as the official client sends them.
    #[serde(default)]
    #[cfg_attr(feature = "typescript", ts(optional = nullable))]
    pub resource: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "typescript", ts(optional = nullable))]
    pub session_id: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "typescript", ts(optional = nullable))]
    pub estimated_cost_micros: Option<i64>,
    #[serde(default)]
    #[cfg_attr(feature = "typescript", ts(optional = nullable))]
    pub context: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_timestamp: Option<String>,
    /// Sent as the `Idempotency-Key` header, never in a body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct AuthorizationCreate {
    pub user_id: String,
    pub policy_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_limit_micros: Option<i64>,
    /// Sent as `{}` when `None`, as the official client sends it.
    #[serde(default, serialize_with = "empty_object_if_none")]
    #[cfg_attr(feature = "typescript", ts(optional = nullable))]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// Sent as the `Idempotency-Key` header, never in a body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

fn empty_object_if_none<S: serde::Serializer>(value: &Option<Value>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => value.serialize(serializer),
        None => serde_json::Map::new().serialize(serializer),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Approved,
    Rejected,
}

// ---------------------------------------------------------------------------------------------
// Responses

/// Receipt envelope of the HTTP API: `signed` with the JWS, or the `pending` shape that the
/// official client requires on lifecycle responses (the receipt is signed already).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ReceiptEnvelope {
    Signed { receipt: SignedReceipt },
    Pending { receipt_id: String, ready_at_estimate: Option<String>, url: String },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct BudgetInfo {
    pub limit_micros: i64,
    pub spent_micros: i64,
    pub estimated_cost_micros: i64,
    pub spent_after_micros: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct EscalationInfo {
    pub escalation_id: String,
    pub status: String,
    pub escalation_to: Option<String>,
    pub expires_at: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ActionResult {
    pub decision: Decision,
    pub reason: String,
    /// The signed receipt of this decision; only a local fallback result (docs/decisions.md) has none.
    pub receipt: Option<ReceiptEnvelope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub receipt_id: Option<String>,
    /// True for a result decided locally because the engine could not be reached or its store failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_fallback: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub fallback_mode: Option<String>,
    pub budget: Option<BudgetInfo>,
    pub escalation: Option<EscalationInfo>,
    pub policy_eval: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub confirm_nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub confirm_expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub confirm_prompt_hint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub confirmation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub escalation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub escalation_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub escalation_expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub superseded_by: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct CheckResponse {
    pub authorization_id: String,
    pub user_id: Option<String>,
    pub agent_id: Option<String>,
    pub authorization_expires_at: Option<String>,
    pub engine_version: String,
    /// In the order of the request's actions.
    #[cfg_attr(feature = "typescript", ts(as = "std::collections::HashMap<String, ActionResult>"))]
    pub results: indexmap_lite::OrderedResults,
}

impl ActionResult {
    /// A result with only a decision and a reason; the pipeline fills in the rest.
    pub fn bare(decision: Decision, reason: &str) -> ActionResult {
        ActionResult {
            decision,
            reason: reason.to_string(),
            receipt: None,
            receipt_id: None,
            is_fallback: false,
            fallback_mode: None,
            budget: None,
            escalation: None,
            policy_eval: None,
            confirm_nonce: None,
            confirm_expires_at: None,
            confirm_prompt_hint: None,
            confirmation_id: None,
            escalation_id: None,
            escalation_to: None,
            escalation_expires_at: None,
            superseded_by: None,
        }
    }
}

impl CheckResponse {
    /// The fail-closed local answer of docs/decisions.md when the decision cannot be made: every action
    /// is denied with `fallback_closed_<failure>`, without a receipt.
    pub fn fail_closed(authorization_id: &str, actions: &[String], failure: &str) -> CheckResponse {
        let reason = format!("fallback_closed_{failure}");
        let results = actions
            .iter()
            .map(|action| {
                let mut result = ActionResult::bare(Decision::Deny, &reason);
                result.is_fallback = true;
                result.fallback_mode = Some("fail_closed".into());
                (action.clone(), result)
            })
            .collect();
        CheckResponse {
            authorization_id: authorization_id.to_string(),
            user_id: None,
            agent_id: None,
            authorization_expires_at: None,
            engine_version: "sdk_fallback".into(),
            results: indexmap_lite::OrderedResults(results),
        }
    }
}

/// `results` keyed by action, serialized in request order (a JSON object).
pub mod indexmap_lite {
    use super::ActionResult;
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct OrderedResults(pub Vec<(String, ActionResult)>);

    impl OrderedResults {
        pub fn get(&self, action: &str) -> Option<&ActionResult> {
            self.0.iter().find(|(name, _)| name == action).map(|(_, result)| result)
        }
        pub fn iter(&self) -> impl Iterator<Item = (&str, &ActionResult)> {
            self.0.iter().map(|(name, result)| (name.as_str(), result))
        }
        pub fn len(&self) -> usize {
            self.0.len()
        }
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }

    impl Serialize for OrderedResults {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (name, result) in &self.0 {
                map.serialize_entry(name, result)?;
            }
            map.end()
        }
    }

    impl<'de> Deserialize<'de> for OrderedResults {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl<'de> serde::de::Visitor<'de> for Visitor {
                type Value = OrderedResults;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object of action results")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<OrderedResults, A::Error> {
                    let mut out = Vec::new();
                    while let Some(entry) = access.next_entry::<String, ActionResult>()? {
                        out.push(entry);
                    }
                    Ok(OrderedResults(out))
                }
            }
            d.deserialize_map(Visitor)
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct AuthorizationCreated {
    pub authorization_id: String,
    pub policy_ref: PolicyRef,
    pub actions: Vec<String>,
    pub created_at: String,
    pub expires_at: String,
    pub receipt: ReceiptEnvelope,
    pub authorization_provenance: Value,
    pub budget_limit_micros: Option<i64>,
    pub budget_spent_micros: i64,
    pub replaced_authorization_id: Option<String>,
    pub revocation_receipt: Option<ReceiptEnvelope>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct AuthorizationRevoked {
    pub authorization_id: String,
    pub revoked_at: String,
    pub receipt: ReceiptEnvelope,
    pub revoked_confirmations: Vec<String>,
}

/// `GET /v1/authorizations` item.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct AuthorizationView {
    pub authorization_id: String,
    pub user_id: String,
    pub agent_id: String,
    pub policy_ref: PolicyRef,
    pub actions: Vec<String>,
    pub status: AuthorizationStatus,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub budget_limit_micros: Option<i64>,
    pub budget_spent_micros: i64,
    pub metadata: Map<String, Value>,
    pub replaces: Option<String>,
    pub superseded_by: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
    /// Stored rows of this page that could not be read, in their place among `items` by id; absent
    /// when there are none (docs/http-api.md, "Pagination").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<UnreadableItem>,
}

/// A listed row that could not be read (damaged, or holding a value this engine refuses): named so
/// that one such row never hides the rest of a list, nor goes unnoticed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct UnreadableItem {
    /// The authorization id, or `policy_id@version` for a policy edition.
    pub id: String,
    /// `authorization_unreadable` or `stored_row_unreadable`, the error that reading it gives.
    pub code: String,
    pub message: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ConfirmationResolved {
    pub decision: String,
    pub authorization_id: Option<String>,
    pub expires_at: Option<String>,
    pub receipt: Option<ReceiptEnvelope>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct EscalationResolved {
    pub escalation_id: String,
    pub status: String,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<String>,
    pub receipt: Option<ReceiptEnvelope>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct BudgetSettlement {
    pub check_receipt_id: String,
    pub authorization_id: String,
    pub estimated_cost_micros: i64,
    pub actual_cost_micros: i64,
    pub delta_micros: i64,
    pub spent_before_micros: i64,
    pub spent_after_micros: i64,
    pub receipt: ReceiptEnvelope,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ConfirmationStatusView {
    pub confirmation_id: String,
    pub authorization_id: String,
    pub action: String,
    pub resource: Option<String>,
    pub status: PromptStatus,
    pub expires_at: String,
    pub resolved_at: Option<String>,
    pub source_receipt_id: Option<String>,
    pub resolution_receipt_id: Option<String>,
    pub child_authorization_id: Option<String>,
    pub authority_status: String,
    pub authority_expires_at: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct EscalationStatusView {
    pub escalation_id: String,
    pub authorization_id: String,
    pub action: String,
    pub resource: Option<String>,
    pub status: PromptStatus,
    pub expires_at: String,
    pub resolved_at: Option<String>,
    pub source_receipt_id: Option<String>,
    pub resolution_receipt_id: Option<String>,
    pub authority_status: String,
    pub consumed_at: Option<String>,
}

/// A confirmation in a list (`GET /v1/confirmations`): its status and who it is for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ConfirmationItem {
    #[serde(flatten)]
    pub confirmation: ConfirmationStatusView,
    /// The user and agent of its authorization (`None` if the authorization cannot be read).
    pub user_id: Option<String>,
    pub agent_id: Option<String>,
    pub created_at: String,
}

/// An escalation in a list (`GET /v1/escalations`): its status, who it is for and who decides.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct EscalationItem {
    #[serde(flatten)]
    pub escalation: EscalationStatusView,
    pub user_id: Option<String>,
    pub agent_id: Option<String>,
    pub created_at: String,
    /// The approver the policy routes it to.
    pub escalation_to: Option<String>,
    pub resolved_by: Option<String>,
    pub note: Option<String>,
}

/// One receipt of an audit lookup (`GET /v1/receipts`): what it says, and the signed receipt.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ReceiptSummary {
    pub receipt_id: String,
    pub issued_at: String,
    /// The action decided (`None` for a lifecycle receipt).
    pub action: Option<String>,
    /// The lifecycle event (`None` for a decision).
    pub event: Option<String>,
    pub decision: String,
    pub reason: String,
    pub user_id: String,
    pub agent_id: String,
    pub authorization_id: Option<String>,
    pub resource: Option<String>,
    pub receipt: SignedReceipt,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct PolicyView {
    pub policy_ref: PolicyRef,
    pub definition: Value,
    pub description: Option<String>,
    pub created_by: Option<String>,
    pub created_at: Option<String>,
    pub deleted_at: Option<String>,
}

/// The answer to publishing a policy (`POST /v1/setup/policies/publish`): the edition that is now
/// the newest. This engine publishes editions only; it migrates no authorizations, archives no
/// other policy and revokes no confirmation, so those members are always empty.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PolicyPublished {
    pub policy_ref: PolicyRef,
    pub agent_id: String,
    pub created_by: String,
    pub created_at: String,
    pub authorization_migrations: Vec<AuthorizationMigration>,
    pub archived_policy_ids: Vec<String>,
    pub revoked_confirmation_count: u64,
}

/// An authorization moved to a newly published edition (the hosted service's publish does this).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct AuthorizationMigration {
    pub user_id: String,
    pub previous_authorization_id: String,
    pub authorization_id: String,
}

/// A checkpoint issued by `create_checkpoints`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct CheckpointInfo {
    pub receipt_id: String,
    pub period_start: String,
    pub receipt_count: u64,
    pub merkle_root: String,
}

/// The two kinds of API key (docs/http-api.md): `setup` manages policies, keys and listings; `runtime`
/// checks, authorizes and resolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyKind {
    Setup,
    Runtime,
}

impl ApiKeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyKind::Setup => "setup",
            ApiKeyKind::Runtime => "runtime",
        }
    }

    pub fn parse(text: &str) -> Option<ApiKeyKind> {
        match text {
            "setup" => Some(ApiKeyKind::Setup),
            "runtime" => Some(ApiKeyKind::Runtime),
            _ => None,
        }
    }
}

/// A stored API key: only the SHA-256 of its secret is kept.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub kind: ApiKeyKind,
    pub secret_sha256: String,
    pub label: Option<String>,
    #[serde(with = "wire_time")]
    pub created_at: Timestamp,
    #[serde(with = "wire_time::option")]
    pub revoked_at: Option<Timestamp>,
}

/// An API key as listed (never with its secret).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ApiKeyView {
    pub key_id: String,
    pub kind: ApiKeyKind,
    pub label: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A newly created API key; `key` is shown this once and stored only as a hash.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ApiKeyCreated {
    pub key: String,
    pub key_id: String,
    pub kind: ApiKeyKind,
    pub workspace_id: String,
    pub created_at: String,
}
