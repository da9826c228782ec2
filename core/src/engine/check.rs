//! `check`: the decision pipeline of docs/decisions.md. Provisional answers are computed first without side
//! effects; the budget step may still turn them into denials; only then are grants consumed,
//! counters advanced, prompts created and receipts signed, all in the caller's transaction.

use serde_json::{json, Map, Value};

use super::{Allowly, ReceiptDraft, Signing, Subject};
use crate::canonical::{self, MAX_SAFE_INTEGER};
use crate::error::{Error, FieldError, Result};
use crate::ids;
use crate::model::indexmap_lite::OrderedResults;
use crate::model::{
    ActionResult, Authorization, BudgetInfo, CheckRequest, CheckResponse, Confirmation, Escalation, EscalationInfo,
    IdempotencyRecord, PromptBinding, PromptStatus, ReceiptEnvelope, Reservation,
};
use crate::policy::{Decision, Definition};
use crate::store::{self, day_counter_key, rate_events_key, Tx};
use crate::time::Timestamp;

pub const MAX_ACTIONS_PER_CHECK: usize = 25;
pub const MAX_CONTEXT_BYTES: usize = 4096;
/// Context keys the issuer writes into receipts itself (the wire's receipt-only keys): a caller's
/// value would be signed as if the engine had written it, so a check's `context` may not hold them.
/// This engine writes the first five; `execution` and `identity_verification` are the hosted
/// service's (execution approvals, agent identity) and mean the same to anyone reading a receipt.
pub const RESERVED_CONTEXT_KEYS: [&str; 7] = [
    "budget",
    "escalation",
    "session_id",
    "client_timestamp",
    "client_timestamp_source",
    "execution",
    "identity_verification",
];

/// A validated check request.
struct CheckInput {
    authorization_id: String,
    actions: Vec<String>,
    resource: Option<String>,
    session_id: Option<String>,
    estimated_cost_micros: Option<i64>,
    /// The caller's context: always a JSON object.
    context: Value,
    client_timestamp: Option<Timestamp>,
    /// `check:<key>` and the request digest, when the caller sent an idempotency key.
    idempotency: Option<(String, String)>,
}

fn char_len(text: &str) -> usize {
    text.chars().count()
}

fn bounded(field: &str, text: &str, min: usize, max: usize, fields: &mut Vec<FieldError>) {
    let len = char_len(text);
    if len < min || len > max {
        fields.push(FieldError { field: field.into(), message: format!("must be {min} to {max} characters") });
    }
}

/// [`bounded`], and no character an identifier may not hold ([`ids::forbidden_in_identifier`]).
fn identifier(field: &str, text: &str, min: usize, max: usize, fields: &mut Vec<FieldError>) {
    bounded(field, text, min, max, fields);
    if let Some(message) = ids::identifier_problem(text) {
        fields.push(FieldError { field: field.into(), message });
    }
}

impl CheckInput {
    fn context_map(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.context.as_object().unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    fn validate(request: &CheckRequest) -> Result<CheckInput> {
        let mut fields = Vec::new();
        identifier("authorization_id", &request.authorization_id, 1, 128, &mut fields);
        if request.actions.is_empty() || request.actions.len() > MAX_ACTIONS_PER_CHECK {
            fields.push(FieldError {
                field: "actions".into(),
                message: format!("must list 1 to {MAX_ACTIONS_PER_CHECK} actions, got {}", request.actions.len()),
            });
        }
        for (i, action) in request.actions.iter().enumerate() {
            identifier(&format!("actions[{i}]"), action, 1, 64, &mut fields);
            if request.actions[..i].contains(action) {
                fields.push(FieldError {
                    field: format!("actions[{i}]"),
                    message: format!("duplicate action `{action}`"),
                });
            }
        }
        if let Some(resource) = &request.resource {
            identifier("resource", resource, 0, 1024, &mut fields);
        }
        if let Some(session_id) = &request.session_id {
            identifier("session_id", session_id, 1, 256, &mut fields);
        }
        if let Some(cost) = request.estimated_cost_micros {
            if !(0..=MAX_SAFE_INTEGER).contains(&cost) {
                fields.push(FieldError {
                    field: "estimated_cost_micros".into(),
                    message: "must be a safe integer ≥ 0".into(),
                });
            }
        }
        let context = match request.context.clone().unwrap_or(Value::Object(Map::new())) {
            Value::Object(map) => map,
            _ => {
                fields.push(FieldError { field: "context".into(), message: "must be an object".into() });
                Map::new()
            }
        };
        for key in RESERVED_CONTEXT_KEYS {
            if context.contains_key(key) {
                fields
                    .push(FieldError { field: format!("context.{key}"), message: "is reserved for the engine".into() });
            }
        }
        let context_value = Value::Object(context);
        match canonical::to_canonical_vec(&context_value) {
            Ok(bytes) if bytes.len() > MAX_CONTEXT_BYTES => fields.push(FieldError {
                field: "context".into(),
                message: format!("is {} bytes of canonical JSON; the limit is {MAX_CONTEXT_BYTES}", bytes.len()),
            }),
            Ok(_) => {}
            Err(err) => fields.push(FieldError { field: "context".into(), message: err.to_string() }),
        }
        let client_timestamp = match &request.client_timestamp {
            None => None,
            Some(text) => {
                let parsed = Timestamp::parse_rfc3339(text);
                if parsed.is_none() {
                    fields.push(FieldError {
                        field: "client_timestamp".into(),
                        message: "must be an RFC 3339 timestamp with a timezone".into(),
                    });
                }
                parsed
            }
        };
        let idempotency = match &request.idempotency_key {
            None => None,
            Some(key) => {
                identifier("idempotency_key", key, 1, 256, &mut fields);
                let mut digest = json!({
                    "authorization_id": request.authorization_id, "actions": request.actions,
                    "resource": request.resource, "session_id": request.session_id,
                    "estimated_cost_micros": request.estimated_cost_micros, "context": context_value,
                });
                // The receipts sign `client_timestamp`, so a replay must have sent the same instant.
                // Left out when absent: records kept before it counted still match their retries.
                if let Some(at) = client_timestamp {
                    digest["client_timestamp"] = Value::from(at.to_string());
                }
                canonical::canonical_sha256_hex(&digest).ok().map(|digest| (format!("check:{key}"), digest))
            }
        };
        if let Some(first) = fields.first() {
            let message = format!("invalid `{}`: {}", first.field, first.message);
            return Err(Error::InvalidRequest { message, fields });
        }
        Ok(CheckInput {
            authorization_id: request.authorization_id.clone(),
            actions: request.actions.clone(),
            resource: request.resource.clone(),
            session_id: request.session_id.clone(),
            estimated_cost_micros: request.estimated_cost_micros,
            context: context_value,
            client_timestamp,
            idempotency,
        })
    }
}

/// A store failure becomes the fail-closed local answer (docs/decisions.md); other answers pass through.
fn or_fallback(answer: Result<CheckResponse>, request: &CheckRequest) -> Result<CheckResponse> {
    match answer {
        Err(Error::Store { .. }) => {
            Ok(CheckResponse::fail_closed(&request.authorization_id, &request.actions, "unavailable"))
        }
        answer => answer,
    }
}

/// The provisional answer for one action, before the budget step and side effects.
enum Outcome {
    Allow { reason: &'static str, grant: Option<Escalation> },
    Deny { reason: &'static str, rejected: Option<Escalation> },
    Confirm { reason: &'static str, binding: PromptBinding, pending: Option<Confirmation> },
    Escalate { reason: &'static str, binding: PromptBinding, pending: Option<Escalation> },
}

struct Provisional {
    action: String,
    outcome: Outcome,
    policy_eval: Option<Value>,
    /// Counters an `allow` advances: the daily counter key and the rate-limit event key and window.
    day_counter: Option<(String, i64)>,
    rate_events: Option<(String, i64)>,
}

impl Provisional {
    fn deny(action: &str, reason: &'static str) -> Provisional {
        Provisional {
            action: action.to_string(),
            outcome: Outcome::Deny { reason, rejected: None },
            policy_eval: None,
            day_counter: None,
            rate_events: None,
        }
    }
}

impl Allowly {
    /// Like [`Allowly::check`], but when the store is unavailable it answers with the fail-closed
    /// local result of docs/decisions.md (`deny`, `fallback_closed_unavailable`, no receipt) instead of an
    /// error, as an embedded SDK must. Invalid requests are still errors.
    pub fn check_or_fallback(&self, request: &CheckRequest) -> Result<CheckResponse> {
        or_fallback(self.check(request), request)
    }

    /// Decides every requested action, signs one receipt per action and stores them with the
    /// state they change, in one transaction.
    pub fn check(&self, request: &CheckRequest) -> Result<CheckResponse> {
        let input = CheckInput::validate(request)?;
        let answer = self.write(|tx| self.check_in(tx, &input));
        self.or_unreadable(answer, &input)
    }

    /// Checks that arrive together (an SDK's queue of calls), decided in order. Where the store
    /// can isolate part of a transaction (SQLite) they share one write transaction: a check that
    /// fails leaves nothing behind and the others still commit, together, so the group pays for
    /// one commit instead of one each. Each answer is the one [`Allowly::check`] would have given
    /// at that place in the sequence; none is returned unless its receipt was committed.
    pub fn check_many(&self, requests: &[CheckRequest]) -> Vec<Result<CheckResponse>> {
        let inputs: Vec<Result<CheckInput>> = requests.iter().map(CheckInput::validate).collect();
        let valid: Vec<&CheckInput> = inputs.iter().filter_map(|input| input.as_ref().ok()).collect();
        let mut decided: Vec<Option<CheckResponse>> = valid.iter().map(|_| None).collect();
        let outcomes = self.store.write_each(valid.len(), &mut |n, tx| {
            decided[n] = Some(self.check_in(tx, valid[n])?);
            Ok(())
        });
        let mut results = outcomes.into_iter().zip(decided);
        inputs
            .into_iter()
            .map(|input| {
                let input = input?;
                let (outcome, response) = results.next().ok_or_else(|| Error::store("a check was not run"))?;
                let answer = outcome.and_then(|()| response.ok_or_else(|| Error::store("a check produced no answer")));
                self.or_unreadable(answer, &input)
            })
            .collect()
    }

    /// [`Allowly::check_many`] with the fallback of [`Allowly::check_or_fallback`] for each check.
    pub fn check_many_or_fallback(&self, requests: &[CheckRequest]) -> Vec<Result<CheckResponse>> {
        self.check_many(requests)
            .into_iter()
            .zip(requests)
            .map(|(answer, request)| or_fallback(answer, request))
            .collect()
    }

    /// The body of one check's write transaction: an idempotent replay, or a new decision.
    fn check_in(&self, tx: &mut dyn Tx, input: &CheckInput) -> Result<CheckResponse> {
        if let Some((key, digest)) = &input.idempotency {
            if let Some(first) = tx.idempotency(key)? {
                return replay(&first, digest);
            }
        }
        let response = self.decide(tx, input)?;
        remember(tx, input, &response)?;
        Ok(response)
    }

    /// A stored row the decision needs that does not load (the authorization, its policy edition,
    /// a prompt) denies every action with a signed receipt, in a transaction of its own (the one
    /// that failed left nothing behind). As an error it would read like an outage to a client,
    /// whose fallback may allow.
    fn or_unreadable(&self, answer: Result<CheckResponse>, input: &CheckInput) -> Result<CheckResponse> {
        let reason = match &answer {
            Err(Error::Conflict { code: "authorization_unreadable", .. }) => "authorization_unreadable",
            Err(err) if store::is_unreadable(err) => "stored_row_unreadable",
            _ => return answer,
        };
        self.write(|tx| {
            if let Some((key, digest)) = &input.idempotency {
                if let Some(first) = tx.idempotency(key)? {
                    return replay(&first, digest);
                }
            }
            let signing = self.signing(tx)?;
            let authorization = match tx.authorization(&input.authorization_id) {
                Err(err) if store::is_unreadable(&err) => None,
                found => found?,
            };
            let response = self.deny_every_action(tx, input, &signing, reason, authorization.as_ref())?;
            remember(tx, input, &response)?;
            Ok(response)
        })
    }

    fn decide(&self, tx: &mut dyn Tx, input: &CheckInput) -> Result<CheckResponse> {
        let signing = self.signing(tx)?;
        let now = signing.now;
        let Some(mut authorization) = tx.authorization(&input.authorization_id)? else {
            return self.deny_every_action(tx, input, &signing, "authorization_not_found", None);
        };
        let definition = self.definition(tx, &authorization.policy_ref)?;
        let day = now.day_number();
        let mut provisional = Vec::with_capacity(input.actions.len());
        for action in &input.actions {
            provisional.push(self.provisional(tx, input, &authorization, &definition, action, now, day)?);
        }

        // Budget: a check that would overspend denies everything not already denied; otherwise the
        // estimate is reserved once, if at least one action is allowed.
        let budget_before = authorization.budget_spent_micros;
        let mut reserved = false;
        if let Some(estimate) = input.estimated_cost_micros {
            // The spent total travels as a JSON number and is signed, so it stays a safe integer: a
            // reservation past 2^53-1 exceeds any budget, limited or not.
            let spent_after = budget_before
                .checked_add(estimate)
                .filter(|after| *after <= MAX_SAFE_INTEGER)
                .filter(|after| authorization.budget_limit_micros.is_none_or(|limit| *after <= limit));
            match spent_after {
                None => {
                    for p in &mut provisional {
                        if !matches!(p.outcome, Outcome::Deny { .. }) {
                            p.outcome = Outcome::Deny { reason: "budget_exceeded", rejected: None };
                        }
                    }
                }
                Some(after) if provisional.iter().any(|p| matches!(p.outcome, Outcome::Allow { .. })) => {
                    authorization.budget_spent_micros = after;
                    reserved = true;
                    tx.put_authorization(&authorization)?;
                }
                Some(_) => {}
            }
        }
        let budget = input.estimated_cost_micros.map(|estimate| {
            json!({
                "estimated_cost_micros": estimate,
                "limit_micros": authorization.budget_limit_micros,
                "spent_micros": budget_before,
                "spent_after_micros": if reserved { Some(authorization.budget_spent_micros) } else { None },
            })
        });
        let budget_info = match (input.estimated_cost_micros, authorization.budget_limit_micros) {
            (Some(estimate), Some(limit)) => Some(BudgetInfo {
                limit_micros: limit,
                spent_micros: budget_before,
                estimated_cost_micros: estimate,
                spent_after_micros: reserved.then_some(authorization.budget_spent_micros),
            }),
            _ => None,
        };

        let mut results = Vec::with_capacity(provisional.len());
        let mut receipt_ids = Vec::with_capacity(provisional.len());
        for p in provisional {
            let result = self.finish(tx, input, &authorization, p, &signing, budget.as_ref(), budget_info.clone())?;
            receipt_ids.extend(result.1.receipt_id.clone());
            results.push(result);
        }
        if reserved {
            let reservation = Reservation {
                reservation_id: receipt_ids.first().cloned().unwrap_or_default(),
                authorization_id: authorization.authorization_id.clone(),
                estimated_cost_micros: input.estimated_cost_micros.unwrap_or(0),
                receipt_ids,
                settlement: None,
            };
            tx.put_reservation(&reservation)?;
        }
        Ok(CheckResponse {
            authorization_id: input.authorization_id.clone(),
            user_id: Some(authorization.user_id.clone()),
            agent_id: Some(authorization.agent_id.clone()),
            authorization_expires_at: Some(authorization.expires_at.to_string()),
            engine_version: self.engine_version().to_string(),
            results: OrderedResults(results),
        })
    }

    /// Steps 2–7 of docs/decisions.md for one action, reading state but changing nothing.
    #[allow(clippy::too_many_arguments)]
    fn provisional(
        &self,
        tx: &mut dyn Tx,
        input: &CheckInput,
        authorization: &Authorization,
        definition: &Definition,
        action: &str,
        now: Timestamp,
        day: i64,
    ) -> Result<Provisional> {
        if authorization.revoked_at.is_some() {
            return Ok(Provisional::deny(action, "authorization_revoked"));
        }
        if now >= authorization.expires_at {
            return Ok(Provisional::deny(action, "authorization_expired"));
        }
        let entry = match definition.action(action) {
            Some(entry) if authorization.actions.iter().any(|a| a == action) => entry,
            _ => return Ok(Provisional::deny(action, "action_not_in_authorization")),
        };
        let guards = &entry.guards;
        if !guards.resource_allowed(input.resource.as_deref()) {
            return Ok(Provisional::deny(action, "resource_not_allowed"));
        }
        if !guards.initiator_allowed(input.context_map()) {
            return Ok(Provisional::deny(action, "initiator_not_allowed"));
        }
        let mut day_counter = None;
        if let Some(max_per_day) = guards.max_per_day {
            let key = day_counter_key(&authorization.authorization_id, action, day);
            let used = tx.counter(&key)?;
            if used >= i64::try_from(max_per_day).unwrap_or(i64::MAX) {
                return Ok(Provisional::deny(action, "rate_limited"));
            }
            day_counter = Some((key, used));
        }
        let mut rate_events = None;
        if let Some(limit) = guards.rate_limit {
            let key = rate_events_key(&authorization.authorization_id, action);
            let window_ms = i64::try_from(limit.window_seconds).unwrap_or(i64::MAX).saturating_mul(1000);
            if tx.count_events(&key, now.plus_millis(-window_ms + 1))? >= limit.max_calls {
                return Ok(Provisional::deny(action, "rate_limited"));
            }
            rate_events = Some((key, window_ms));
        }

        let evaluation = match entry.evaluate(input.context_map()) {
            Ok(evaluation) => evaluation,
            Err(_) => return Ok(Provisional::deny(action, "context_field_type_mismatch")),
        };
        let input_sha256 =
            entry.input_sha256(&input.context).map_err(|err| Error::invalid("context", err.to_string()))?;
        let policy_eval = Some(evaluation.to_policy_eval(&input_sha256));
        // A rule that applies only because a field it tests is missing says so, whatever it decides.
        let reason = |by_rule: &'static str, by_action: &'static str| {
            if evaluation.context_field_missing {
                "context_field_missing"
            } else if evaluation.matched_rule_id.is_some() {
                by_rule
            } else {
                by_action
            }
        };
        // Only a prompt opened for this very answer may decide it (docs/decisions.md).
        let binding = || -> Result<PromptBinding> {
            let tested = Value::Object(entry.tested_values(input.context_map()));
            Ok(PromptBinding {
                matched_rule_id: evaluation.matched_rule_id.clone(),
                target: evaluation.target.clone(),
                tested_values_sha256: canonical::canonical_sha256_hex(&tested)
                    .map_err(|err| Error::invalid("context", err.to_string()))?,
            })
        };
        let key = |binding: &PromptBinding| {
            binding.prompt_key(&authorization.authorization_id, action, input.resource.as_deref())
        };
        let outcome = match evaluation.decision {
            Decision::Allow => Outcome::Allow { reason: "authorization_granted_action_active", grant: None },
            Decision::Deny => {
                Outcome::Deny { reason: reason("deny_condition_matched", "action_denied_by_policy"), rejected: None }
            }
            Decision::Confirm => {
                let reason = reason("condition_requires_user_confirmation", "action_requires_user_confirmation");
                let binding = binding()?;
                let latest = tx.latest_confirmation(&key(&binding))?;
                match latest.filter(|c| now < c.expires_at && c.binding.as_ref() == Some(&binding)) {
                    Some(c) if c.status == PromptStatus::Approved => {
                        Outcome::Allow { reason: "user_confirmed", grant: None }
                    }
                    Some(c) if c.status == PromptStatus::Rejected => {
                        Outcome::Deny { reason: "user_rejected_confirmation", rejected: None }
                    }
                    Some(c) if c.status == PromptStatus::Pending => {
                        Outcome::Confirm { reason, binding, pending: Some(c) }
                    }
                    _ => Outcome::Confirm { reason, binding, pending: None },
                }
            }
            Decision::Escalate => {
                let reason = reason("escalate_condition_matched", "escalation_required");
                let binding = binding()?;
                let latest = tx.latest_escalation(&key(&binding))?;
                let open = |e: &Escalation| {
                    now < e.expires_at && e.consumed_at.is_none() && e.binding.as_ref() == Some(&binding)
                };
                match latest.filter(open) {
                    Some(e) if e.status == PromptStatus::Approved => {
                        Outcome::Allow { reason: "escalation_approved", grant: Some(e) }
                    }
                    Some(e) if e.status == PromptStatus::Rejected => {
                        Outcome::Deny { reason: "escalation_rejected", rejected: Some(e) }
                    }
                    Some(e) if e.status == PromptStatus::Pending => {
                        Outcome::Escalate { reason, binding, pending: Some(e) }
                    }
                    _ => Outcome::Escalate { reason, binding, pending: None },
                }
            }
        };
        Ok(Provisional { action: action.to_string(), outcome, policy_eval, day_counter, rate_events })
    }

    /// Applies one final answer: consumes grants, advances counters, creates prompts, signs the receipt.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        tx: &mut dyn Tx,
        input: &CheckInput,
        authorization: &Authorization,
        provisional: Provisional,
        signing: &Signing,
        budget: Option<&Value>,
        budget_info: Option<BudgetInfo>,
    ) -> Result<(String, ActionResult)> {
        let now = signing.now;
        let Provisional { action, outcome, policy_eval, day_counter, rate_events } = provisional;
        let receipt_id = ids::new_id("rcp_", now)?;
        let mut context = self.receipt_context(input, budget);
        let mut result = ActionResult::bare(Decision::Deny, "");
        result.receipt_id = Some(receipt_id.clone());
        result.budget = budget_info;
        result.policy_eval = policy_eval.clone();
        let reason = match outcome {
            Outcome::Allow { reason, grant } => {
                result.decision = Decision::Allow;
                if let Some((counter, used)) = day_counter {
                    tx.set_counter(&counter, used + 1)?;
                }
                if let Some((events, window_ms)) = rate_events {
                    tx.add_event(&events, now, now.plus_millis(-window_ms))?;
                }
                if let Some(mut grant) = grant {
                    grant.consumed_at = Some(now);
                    tx.put_escalation(&grant.prompt_key(), &grant)?;
                    context.insert("escalation".into(), escalation_context(&grant, "consumed"));
                    result.escalation = Some(escalation_info(&grant));
                }
                reason
            }
            Outcome::Deny { reason, rejected } => {
                if let Some(rejected) = rejected {
                    context.insert("escalation".into(), escalation_context(&rejected, "rejected"));
                    result.escalation = Some(escalation_info(&rejected));
                }
                if reason == "authorization_revoked" {
                    result.superseded_by = authorization.superseded_by.clone();
                }
                reason
            }
            Outcome::Confirm { reason, binding, pending } => {
                let confirmation = match pending {
                    Some(existing) => existing,
                    None => {
                        let created = Confirmation {
                            confirmation_id: ids::new_id("cnf_", now)?,
                            nonce: ids::new_secret(ids::CONFIRMATION_NONCE_PREFIX)?,
                            authorization_id: authorization.authorization_id.clone(),
                            action: action.clone(),
                            resource: input.resource.clone(),
                            status: PromptStatus::Pending,
                            created_at: now,
                            expires_at: now.plus_seconds(self.options.confirmation_window_seconds),
                            resolved_at: None,
                            source_receipt_id: receipt_id.clone(),
                            resolution_receipt_id: None,
                            binding: Some(binding),
                        };
                        tx.put_confirmation(&created.prompt_key(), &created)?;
                        created
                    }
                };
                result.decision = Decision::Confirm;
                result.confirm_nonce = Some(confirmation.nonce.clone());
                result.confirm_expires_at = Some(confirmation.expires_at.to_string());
                result.confirm_prompt_hint = Some(action.clone());
                result.confirmation_id = Some(confirmation.confirmation_id.clone());
                reason
            }
            Outcome::Escalate { reason, binding, pending } => {
                let escalation = match pending {
                    Some(existing) => existing,
                    None => {
                        let created = Escalation {
                            escalation_id: ids::new_id("esc_", now)?,
                            authorization_id: authorization.authorization_id.clone(),
                            action: action.clone(),
                            resource: input.resource.clone(),
                            status: PromptStatus::Pending,
                            escalation_to: binding.target.clone(),
                            created_at: now,
                            expires_at: now.plus_seconds(self.options.escalation_window_seconds),
                            resolved_at: None,
                            resolved_by: None,
                            note: None,
                            consumed_at: None,
                            source_receipt_id: receipt_id.clone(),
                            resolution_receipt_id: None,
                            binding: Some(binding),
                        };
                        tx.put_escalation(&created.prompt_key(), &created)?;
                        created
                    }
                };
                result.decision = Decision::Escalate;
                result.escalation_id = Some(escalation.escalation_id.clone());
                result.escalation_to = escalation.escalation_to.clone();
                result.escalation_expires_at = Some(escalation.expires_at.to_string());
                context.insert("escalation".into(), escalation_context(&escalation, "requested"));
                result.escalation = Some(escalation_info(&escalation));
                reason
            }
        };
        result.reason = reason.to_string();
        let stored = self.issue(
            tx,
            signing,
            ReceiptDraft {
                receipt_id: Some(receipt_id),
                issued_at: now,
                subject: Subject::Action(&action),
                decision: result.decision.as_str(),
                reason,
                user_id: &authorization.user_id,
                agent_id: &authorization.agent_id,
                resource: input.resource.as_deref(),
                context: Value::Object(context),
                authorization_id: Some(&authorization.authorization_id),
                policy_ref: Some(&authorization.policy_ref),
                policy_eval,
            },
        )?;
        result.receipt = Some(ReceiptEnvelope::Signed { receipt: stored.receipt });
        Ok((action, result))
    }

    /// Step 1: every action is denied, each with a receipt that names no authorization.
    /// Also the answer when a stored row the check needs does not load (`reason`
    /// `authorization_unreadable` or `stored_row_unreadable`): then the receipts name the
    /// authorization if it loaded.
    fn deny_every_action(
        &self,
        tx: &mut dyn Tx,
        input: &CheckInput,
        signing: &Signing,
        reason: &'static str,
        authorization: Option<&Authorization>,
    ) -> Result<CheckResponse> {
        let now = signing.now;
        let mut results = Vec::with_capacity(input.actions.len());
        for action in &input.actions {
            let context = self.receipt_context(input, None);
            let stored = self.issue(
                tx,
                signing,
                ReceiptDraft {
                    receipt_id: None,
                    issued_at: now,
                    subject: Subject::Action(action),
                    decision: "deny",
                    reason,
                    user_id: authorization.map_or("", |a| &a.user_id),
                    agent_id: authorization.map_or("", |a| &a.agent_id),
                    resource: input.resource.as_deref(),
                    context: Value::Object(context),
                    authorization_id: authorization.map(|a| a.authorization_id.as_str()),
                    policy_ref: authorization.map(|a| &a.policy_ref),
                    policy_eval: None,
                },
            )?;
            let mut result = ActionResult::bare(Decision::Deny, reason);
            result.receipt_id = Some(stored.receipt_id.clone());
            result.receipt = Some(ReceiptEnvelope::Signed { receipt: stored.receipt });
            results.push((action.clone(), result));
        }
        Ok(CheckResponse {
            authorization_id: input.authorization_id.clone(),
            user_id: authorization.map(|a| a.user_id.clone()),
            agent_id: authorization.map(|a| a.agent_id.clone()),
            authorization_expires_at: authorization.map(|a| a.expires_at.to_string()),
            engine_version: self.engine_version().to_string(),
            results: OrderedResults(results),
        })
    }

    /// The caller's context plus the receipt-only keys the engine adds after evaluation.
    fn receipt_context(&self, input: &CheckInput, budget: Option<&Value>) -> Map<String, Value> {
        let mut context = input.context_map().clone();
        if let Some(session_id) = &input.session_id {
            context.insert("session_id".into(), Value::from(session_id.clone()));
        }
        if let Some(at) = input.client_timestamp {
            context.insert("client_timestamp".into(), Value::from(at.to_string()));
            context.insert("client_timestamp_source".into(), Value::from("client"));
        }
        if let Some(budget) = budget {
            context.insert("budget".into(), budget.clone());
        }
        context
    }
}

fn replay(first: &IdempotencyRecord, digest: &str) -> Result<CheckResponse> {
    if first.request_sha256 != digest {
        return Err(Error::conflict(
            "idempotency_key_reused",
            "this idempotency key was used for a different check request",
        ));
    }
    serde_json::from_str(&first.response)
        .map_err(|err| store::UnreadableRow::new("idempotency record", "(of this check)", err).error())
}

/// Keeps a new answer under the request's idempotency key, if it has one.
fn remember(tx: &mut dyn Tx, input: &CheckInput, response: &CheckResponse) -> Result<()> {
    if let Some((key, digest)) = &input.idempotency {
        let stored = serde_json::to_string(response).map_err(|err| Error::store(err.to_string()).caused_by(err))?;
        tx.put_idempotency(key, &IdempotencyRecord { request_sha256: digest.clone(), response: stored })?;
    }
    Ok(())
}

fn escalation_context(escalation: &Escalation, event: &str) -> Value {
    json!({
        "id": escalation.escalation_id,
        "event": event,
        "status": escalation.status,
        "action": escalation.action,
        "escalation_to": escalation.escalation_to,
        "resolved_by": escalation.resolved_by,
    })
}

pub(super) fn escalation_info(escalation: &Escalation) -> EscalationInfo {
    let status = match escalation.status {
        PromptStatus::Pending => "pending",
        PromptStatus::Approved => "approved",
        PromptStatus::Rejected => "rejected",
        PromptStatus::Expired => "expired",
    };
    EscalationInfo {
        escalation_id: escalation.escalation_id.clone(),
        status: status.into(),
        escalation_to: escalation.escalation_to.clone(),
        expires_at: Some(escalation.expires_at.to_string()),
    }
}
