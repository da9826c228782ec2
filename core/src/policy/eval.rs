//! Native `allowly.basic.v1` evaluation and the runtime guard tests.

use serde_json::{json, Map, Value};

use super::definition::{safe_integer, Condition, Op, Rule, Scalar};
use super::{glob_match, ActionEntry, Decision, FieldType, Guards};
use crate::canonical::{self, CanonicalError, MAX_DEPTH, MAX_NODES};

/// Profile of basic policies and of their evaluation results.
pub const BASIC_PROFILE: &str = "allowly.basic.v1";

/// Result of `allowly.basic.v1` evaluation on a check's context (the provisional decision).
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub decision: Decision,
    pub target: Option<String>,
    /// The winning rule, or `None` when the action's own decision stands.
    pub matched_rule_id: Option<String>,
    /// Context values of the fields the winning rule's conditions name (empty without a winner);
    /// a field absent from the context has no value and is left out.
    pub evaluated_fields: Map<String, Value>,
    /// The winning rule applies only because the context lacks a field it tests (reason
    /// `context_field_missing`): none of its conditions matched a value that was there.
    pub context_field_missing: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// A context field that a rule reads has a JSON type other than its declared type.
    #[error("context field `{field}` must be {expected}")]
    FieldType { field: String, expected: &'static str },
}

impl ActionEntry {
    /// Evaluates this action's basic policy on a check's `context`.
    ///
    /// - The result starts as the action's own `(decision, target)`. An action-level `deny` is
    ///   returned at once: nothing can beat it, so the context is not even read.
    /// - A rule matches if any of its conditions matches. Among matching rules the strongest
    ///   decision wins (deny > escalate > confirm > allow), the first in order breaking ties. It
    ///   replaces the action's decision if it is at least as strong (a tie goes to the rule);
    ///   weaker rules are ignored, since rules can only strengthen.
    /// - Types are strict and checked up front: every declared field that some rule of this
    ///   action names must, when present in the context, have its declared JSON type (`integer`:
    ///   a safe integer, never a boolean or a float; `list`: an array of strings, safe integers,
    ///   booleans or nulls; `null`: JSON null), else [`EvalError::FieldType`], which the engine
    ///   turns into a fail-closed deny. Undeclared or unreferenced context keys are ignored.
    /// - Absence never makes the answer more permissive than some value could: a rule stricter
    ///   than `allow` with a condition on a field absent from the context applies as if it
    ///   matched (`context_field_missing`), unless that condition is `exists`, which tests
    ///   presence itself. An `allow` rule never applies by absence: it could only name itself.
    /// - Equality never crosses types (`1` does not equal `true`).
    pub fn evaluate(&self, context: &Map<String, Value>) -> Result<Evaluation, EvalError> {
        let policy = &self.policy;
        if policy.decision != Decision::Deny {
            for (field, declared) in &self.checked_fields {
                if context.get(field).is_some_and(|value| !conforms(value, *declared)) {
                    return Err(EvalError::FieldType { field: field.clone(), expected: declared.expected() });
                }
            }
            if let Some((rule, applies)) = self.winning_rule(context) {
                let mut evaluated_fields = Map::new();
                for field in &rule.referenced {
                    if let Some(value) = context.get(field) {
                        evaluated_fields.insert(field.clone(), value.clone());
                    }
                }
                return Ok(Evaluation {
                    decision: rule.decision,
                    target: rule.target.clone(),
                    matched_rule_id: Some(rule.id.clone()),
                    evaluated_fields,
                    context_field_missing: applies == Applies::FieldMissing,
                });
            }
        }
        Ok(Evaluation {
            decision: policy.decision,
            target: policy.target.clone(),
            matched_rule_id: None,
            evaluated_fields: Map::new(),
            context_field_missing: false,
        })
    }

    fn winning_rule(&self, context: &Map<String, Value>) -> Option<(&Rule, Applies)> {
        let floor = self.policy.decision.strength();
        let mut best: Option<(&Rule, Applies)> = None;
        for rule in &self.policy.rules {
            let strength = rule.decision.strength();
            // Skip rules that could not win anyway: weaker than the action, or no stronger than
            // an earlier match.
            if strength < floor || best.is_some_and(|(b, _)| strength <= b.decision.strength()) {
                continue;
            }
            if let Some(applies) = rule.applies(context) {
                best = Some((rule, applies));
                if rule.decision == Decision::Deny {
                    break;
                }
            }
        }
        best
    }

    /// The context values of every field this action's rules test, absent ones left out: the
    /// whole input the policy decides on (undeclared or untested context keys never change it).
    pub fn tested_values(&self, context: &Map<String, Value>) -> Map<String, Value> {
        let mut values = Map::new();
        for (field, _) in &self.checked_fields {
            if let Some(value) = context.get(field) {
                values.insert(field.clone(), value.clone());
            }
        }
        values
    }

    /// Lowercase hex `sha256(canonical({"policy": <this BasicPolicy>, "action": <action>,
    /// "context": context}))`, the `policy_eval.input_sha256`.
    ///
    /// The policy's canonical bytes were computed at parse time; only `context` is encoded here.
    /// Fails exactly when canonicalizing the whole input document would (a float, an unsafe
    /// integer, or the depth and node limits of the input as a whole).
    pub fn input_sha256(&self, context: &Value) -> Result<String, CanonicalError> {
        // The context sits at depth 2, beside the root object, the action and the policy.
        let mut budget = MAX_NODES.saturating_sub(2 + self.policy_nodes);
        check_limits(context, 2, &mut budget)?;
        let mut input = Vec::with_capacity(self.input_prefix.len() + self.input_suffix.len() + 256);
        input.extend_from_slice(&self.input_prefix);
        canonical::write_canonical(context, &mut input)?;
        input.extend_from_slice(&self.input_suffix);
        Ok(canonical::sha256_hex(&input))
    }
}

impl Evaluation {
    /// The wire-5 `policy_eval` object: `{"input_sha256", "result": {"profile", "status",
    /// "decision", "target", "matched_rule_id", "evaluated_fields"}}`.
    pub fn to_policy_eval(&self, input_sha256: &str) -> Value {
        json!({
            "input_sha256": input_sha256,
            "result": {
                "profile": BASIC_PROFILE,
                "status": "ok",
                "decision": self.decision.as_str(),
                "target": self.target,
                "matched_rule_id": self.matched_rule_id,
                "evaluated_fields": self.evaluated_fields,
            },
        })
    }
}

impl Guards {
    /// With `allowed_initiators` set, `context.initiated_by` must be a string in the list.
    pub fn initiator_allowed(&self, context: &Map<String, Value>) -> bool {
        match &self.allowed_initiators {
            None => true,
            Some(allowed) => context
                .get("initiated_by")
                .and_then(Value::as_str)
                .is_some_and(|who| allowed.iter().any(|name| name == who)),
        }
    }

    /// With `resource_pattern` set, the check must name a resource that matches it.
    pub fn resource_allowed(&self, resource: Option<&str>) -> bool {
        match &self.resource_pattern {
            None => true,
            Some(pattern) => resource.is_some_and(|resource| glob_match(pattern, resource)),
        }
    }
}

/// Why a rule applies to a context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Applies {
    /// One of its conditions matched the context.
    Matched,
    /// None matched, but one tests a field the context lacks, which could have matched.
    FieldMissing,
}

impl Rule {
    fn applies(&self, context: &Map<String, Value>) -> Option<Applies> {
        let mut missing = false;
        for condition in &self.conditions {
            match context.get(&condition.field) {
                Some(value) if condition.matches(value) => return Some(Applies::Matched),
                Some(_) => {}
                None if condition.op == Op::Exists(false) => return Some(Applies::Matched),
                None => missing |= !matches!(condition.op, Op::Exists(_)),
            }
        }
        // An `allow` rule applying by absence would change nothing but the reported rule.
        (missing && self.decision != Decision::Allow).then_some(Applies::FieldMissing)
    }
}

impl Condition {
    /// `value` is the context's value of `self.field`, already checked to have the declared type.
    fn matches(&self, value: &Value) -> bool {
        match &self.op {
            Op::Exists(present) => *present,
            Op::Eq(operand) => operand.equals(value),
            Op::Ne(operand) => !operand.equals(value),
            Op::Gt(n) => integer(value).is_some_and(|v| v > *n),
            Op::Gte(n) => integer(value).is_some_and(|v| v >= *n),
            Op::Lt(n) => integer(value).is_some_and(|v| v < *n),
            Op::Lte(n) => integer(value).is_some_and(|v| v <= *n),
            Op::In(set) => set.iter().any(|s| s.equals(value)),
            Op::NotIn(set) => !set.iter().any(|s| s.equals(value)),
            Op::ContainsAny(set) => list(value).is_some_and(|items| overlaps(items, set)),
            Op::ContainsNone(set) => list(value).is_some_and(|items| !overlaps(items, set)),
            Op::Empty(empty) => list(value).is_some_and(|items| items.is_empty() == *empty),
        }
    }
}

impl Scalar {
    /// Same-type equality: `1` is not `true`, `"1"` is not `1`.
    fn equals(&self, value: &Value) -> bool {
        match (self, value) {
            (Scalar::Null, Value::Null) => true,
            (Scalar::Bool(a), Value::Bool(b)) => a == b,
            (Scalar::Int(a), Value::Number(n)) => n.as_i64() == Some(*a),
            (Scalar::Str(a), Value::String(b)) => a == b,
            _ => false,
        }
    }
}

fn overlaps(items: &[Value], set: &[Scalar]) -> bool {
    items.iter().any(|item| set.iter().any(|s| s.equals(item)))
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => safe_integer(n),
        _ => None,
    }
}

fn list(value: &Value) -> Option<&[Value]> {
    value.as_array().map(Vec::as_slice)
}

fn is_scalar(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(_) | Value::String(_) => true,
        Value::Number(n) => safe_integer(n).is_some(),
        Value::Array(_) | Value::Object(_) => false,
    }
}

fn conforms(value: &Value, declared: FieldType) -> bool {
    match declared {
        FieldType::String => value.is_string(),
        FieldType::Integer => integer(value).is_some(),
        FieldType::Boolean => value.is_boolean(),
        FieldType::Null => value.is_null(),
        FieldType::List => value.as_array().is_some_and(|items| items.iter().all(is_scalar)),
    }
}

/// The canonicalizer's limits for a value at `depth` (root = 1), `budget` values still allowed.
fn check_limits(value: &Value, depth: usize, budget: &mut usize) -> Result<(), CanonicalError> {
    if depth > MAX_DEPTH {
        return Err(CanonicalError(format!("payload nesting exceeds max depth {MAX_DEPTH}")));
    }
    *budget =
        budget.checked_sub(1).ok_or_else(|| CanonicalError(format!("payload exceeds max node count {MAX_NODES}")))?;
    match value {
        Value::Array(items) => items.iter().try_for_each(|item| check_limits(item, depth + 1, budget)),
        Value::Object(map) => map.values().try_for_each(|item| check_limits(item, depth + 1, budget)),
        _ => Ok(()),
    }
}

/// How many JSON values `value` holds, itself included (the canonicalizer's node count).
pub(super) fn count_values(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_values).sum(),
        Value::Object(map) => map.values().map(count_values).sum(),
        _ => 0,
    }
}
