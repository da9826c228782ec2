//! The `allowly.policy.v1` definition: strict validation into typed structures.
//!
//! The rules are exactly those of the official client's `validate_policy_definition` (string
//! lengths in Unicode scalar values, exact-key objects, safe integers only, no NUL anywhere), plus
//! the engine's `guards.rate_limit` extension. Errors name the first offending field by path.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

use super::{Decision, FieldType, PolicyError};
use crate::canonical::{self, CanonicalError, MAX_SAFE_INTEGER};

/// The largest accepted definition, in canonical JSON bytes.
pub const MAX_DEFINITION_BYTES: usize = 65_536;

const POLICY_PROFILE: &str = "allowly.policy.v1";
const BASIC_PROFILE: &str = super::eval::BASIC_PROFILE;
const DEFINITION_KEYS: [&str; 4] = ["profile", "agent_id", "actions", "default_expiry_days"];
const MAX_ACTIONS: usize = 32;
const MAX_FIELDS: usize = 64;
const MAX_RULES: usize = 32;
const MAX_CONDITIONS: usize = 10;
const MAX_VALUES: usize = 64;
const MAX_GRANTS: usize = 100;
const MAX_INITIATORS: usize = 128;
const MAX_TEXT: usize = 128;

/// A validated `allowly.policy.v1` definition: typed for fast evaluation, plus its exact JSON.
#[derive(Clone, Debug)]
pub struct Definition {
    pub agent_id: String,
    pub actions: Vec<ActionEntry>,
    pub default_expiry_days: Option<i64>,
    /// Exactly `{profile, agent_id, actions, default_expiry_days}`, as submitted.
    pub json: Value,
    /// Lowercase hex SHA-256 of the canonical JSON of `json` (the `definition_sha256`).
    pub sha256: String,
}

/// One action of a definition: its basic policy, guards and executable grants.
#[derive(Clone, Debug)]
pub struct ActionEntry {
    pub policy: BasicPolicy,
    pub guards: Guards,
    pub executable_operations: Vec<ExecutableGrant>,
    /// Declared fields referenced by some rule: the only ones whose context type is checked.
    pub(super) checked_fields: Vec<(String, FieldType)>,
    /// Canonical `{"action":<action>,"context":` — `input_sha256` splices the context in between.
    pub(super) input_prefix: Vec<u8>,
    /// Canonical `,"policy":<this BasicPolicy>}`.
    pub(super) input_suffix: Vec<u8>,
    /// JSON values in the BasicPolicy, for the input document's node limit.
    pub(super) policy_nodes: usize,
}

/// An `allowly.basic.v1` policy.
#[derive(Clone, Debug)]
pub struct BasicPolicy {
    pub action: String,
    pub decision: Decision,
    pub target: Option<String>,
    pub fields: BTreeMap<String, FieldType>,
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    pub decision: Decision,
    pub target: Option<String>,
    pub conditions: Vec<Condition>,
    /// Distinct fields named by `conditions`, in order: the keys of `evaluated_fields`.
    pub(super) referenced: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub field: String,
    pub op: Op,
}

/// A condition's operator with its already type-checked operand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Eq(Scalar),
    Ne(Scalar),
    Gt(i64),
    Gte(i64),
    Lt(i64),
    Lte(i64),
    In(Vec<Scalar>),
    NotIn(Vec<Scalar>),
    Exists(bool),
    ContainsAny(Vec<Scalar>),
    ContainsNone(Vec<Scalar>),
    Empty(bool),
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Eq(_) => "eq",
            Op::Ne(_) => "ne",
            Op::Gt(_) => "gt",
            Op::Gte(_) => "gte",
            Op::Lt(_) => "lt",
            Op::Lte(_) => "lte",
            Op::In(_) => "in",
            Op::NotIn(_) => "not_in",
            Op::Exists(_) => "exists",
            Op::ContainsAny(_) => "contains_any",
            Op::ContainsNone(_) => "contains_none",
            Op::Empty(_) => "empty",
        }
    }
}

/// A JSON scalar as policies compare it: integers are safe integers, there are no floats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
}

impl Scalar {
    fn field_type(&self) -> FieldType {
        match self {
            Scalar::Null => FieldType::Null,
            Scalar::Bool(_) => FieldType::Boolean,
            Scalar::Int(_) => FieldType::Integer,
            Scalar::Str(_) => FieldType::String,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guards {
    /// Glob on the check's `resource` (see [`super::glob_match`]).
    pub resource_pattern: Option<String>,
    /// Accepted values of `context.initiated_by`.
    pub allowed_initiators: Option<Vec<String>>,
    /// Cap on allowed checks per authorization and action per UTC day.
    pub max_per_day: Option<u64>,
    /// Engine extension: sliding-window cap per authorization and action.
    pub rate_limit: Option<RateLimit>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub max_calls: u64,
    pub window_seconds: u64,
}

/// A grant of one customer-side executable operation to an action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutableGrant {
    pub enabled_executable_id: String,
    pub provider_id: String,
    pub operation_id: String,
    pub catalog_revision: String,
    pub definition_fingerprint: String,
    pub minimum_evidence_mode: EvidenceMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceMode {
    Receipt,
    Witnessed,
}

/// An edition's identity: `{policy_id, policy_version, definition_sha256}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRef {
    pub policy_id: String,
    pub policy_version: i64,
    pub definition_sha256: String,
}

/// The body of "create a policy edition" (`POST /v1/policies`): the definition's four keys
/// flattened, plus `policy_id`, optional `description` and optional `previous_policy_ref`.
#[derive(Clone, Debug)]
pub struct PolicyCreate {
    pub policy_id: String,
    pub description: Option<String>,
    pub previous_policy_ref: Option<PolicyRef>,
    pub definition: Definition,
}

impl Definition {
    /// Validates a definition object, which must have exactly the four definition keys.
    pub fn parse(value: &Value) -> Result<Definition, PolicyError> {
        let root = Path::Root("definition");
        let map = object(value, &root)?;
        known_keys(map, &DEFINITION_KEYS, &root)?;
        Definition::from_map(map, &root)
    }

    pub fn action(&self, name: &str) -> Option<&ActionEntry> {
        self.actions.iter().find(|entry| entry.policy.action == name)
    }

    pub fn action_names(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().map(|entry| entry.policy.action.as_str())
    }

    /// Validates the definition keys of `map` (other keys are the caller's business).
    fn from_map(map: &Map<String, Value>, root: &Path) -> Result<Definition, PolicyError> {
        let profile = get(map, "profile", root)?;
        if profile.as_str() != Some(POLICY_PROFILE) {
            return Err(root.key("profile").err(format!("must be `{POLICY_PROFILE}`")));
        }
        let agent_id = text(get(map, "agent_id", root)?, MAX_TEXT, &root.key("agent_id"))?.to_owned();
        let expiry = get(map, "default_expiry_days", root)?;
        let default_expiry_days = match expiry {
            Value::Null => None,
            days => Some(integer(days, 1, 3650, &root.key("default_expiry_days"))?),
        };
        let actions_path = root.key("actions");
        let raw_actions = match get(map, "actions", root)? {
            Value::Array(items) if (1..=MAX_ACTIONS).contains(&items.len()) => items,
            _ => return Err(actions_path.err(format!("must be an array of 1 to {MAX_ACTIONS} actions"))),
        };
        let mut names = HashSet::new();
        let mut operations = HashSet::new();
        let mut actions = Vec::with_capacity(raw_actions.len());
        for (i, raw) in raw_actions.iter().enumerate() {
            actions.push(parse_action(raw, &actions_path.index(i), &mut names, &mut operations)?);
        }

        let json: Map<String, Value> =
            DEFINITION_KEYS.iter().filter_map(|key| map.get(*key).map(|v| ((*key).to_owned(), v.clone()))).collect();
        let json = Value::Object(json);
        let bytes = canonical::to_canonical_vec(&json).map_err(|err| canonical_error(root, &err))?;
        if bytes.len() > MAX_DEFINITION_BYTES {
            return Err(Path::Root("definition")
                .err(format!("is {} bytes of canonical json, over the limit of {MAX_DEFINITION_BYTES}", bytes.len())));
        }
        Ok(Definition { agent_id, actions, default_expiry_days, sha256: canonical::sha256_hex(&bytes), json })
    }
}

impl PolicyCreate {
    pub fn parse(body: &Value) -> Result<PolicyCreate, PolicyError> {
        const KEYS: [&str; 7] = [
            "profile",
            "agent_id",
            "actions",
            "default_expiry_days",
            "policy_id",
            "description",
            "previous_policy_ref",
        ];
        let root = Path::Root("body");
        let map = object(body, &root)?;
        known_keys(map, &KEYS, &root)?;

        let id_path = root.key("policy_id");
        let policy_id = text(get(map, "policy_id", &root)?, MAX_TEXT, &id_path)?;
        if !policy_id.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')) {
            return Err(id_path.err("must use only lowercase letters, digits, `_` and `-`"));
        }
        let description_path = root.key("description");
        let description = match map.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => {
                if text.chars().count() > 2048 {
                    return Err(description_path.err("must be at most 2048 characters long"));
                }
                // Not a client rule, but no store should have to hold a NUL.
                no_nul(text, &description_path)?;
                Some(text.clone())
            }
            Some(_) => return Err(description_path.err("must be a string or null")),
        };
        let definition = Definition::from_map(map, &root)?;
        let previous_policy_ref = match map.get("previous_policy_ref") {
            None | Some(Value::Null) => None,
            Some(value) => Some(PolicyRef::parse_at(value, &root.key("previous_policy_ref"))?),
        };
        Ok(PolicyCreate { policy_id: policy_id.to_owned(), description, previous_policy_ref, definition })
    }
}

impl PolicyRef {
    pub fn parse(value: &Value) -> Result<PolicyRef, PolicyError> {
        PolicyRef::parse_at(value, &Path::Root("policy_ref"))
    }

    fn parse_at(value: &Value, path: &Path) -> Result<PolicyRef, PolicyError> {
        let map = object(value, path)?;
        known_keys(map, &["policy_id", "policy_version", "definition_sha256"], path)?;
        let policy_id = text(get(map, "policy_id", path)?, MAX_TEXT, &path.key("policy_id"))?.to_owned();
        let policy_version =
            integer(get(map, "policy_version", path)?, 1, MAX_SAFE_INTEGER, &path.key("policy_version"))?;
        let digest = get(map, "definition_sha256", path)?;
        let definition_sha256 = match digest.as_str() {
            Some(hex) if is_lower_hex(hex, 64) => hex.to_owned(),
            _ => return Err(path.key("definition_sha256").err("must be 64 lowercase hex characters")),
        };
        Ok(PolicyRef { policy_id, policy_version, definition_sha256 })
    }
}

fn parse_action<'v>(
    value: &'v Value,
    path: &Path,
    names: &mut HashSet<&'v str>,
    operations: &mut HashSet<(&'v str, &'v str)>,
) -> Result<ActionEntry, PolicyError> {
    let map = object(value, path)?;
    known_keys(map, &["policy", "guards", "executable_operations"], path)?;
    let policy_value = get(map, "policy", path)?;
    let policy = parse_basic_policy(policy_value, &path.key("policy"), names)?;
    let guards = parse_guards(get(map, "guards", path)?, &path.key("guards"))?;
    let grants_path = path.key("executable_operations");
    let raw_grants = match get(map, "executable_operations", path)? {
        Value::Array(items) if items.len() <= MAX_GRANTS => items,
        _ => return Err(grants_path.err(format!("must be an array of at most {MAX_GRANTS} grants"))),
    };
    let mut executable_operations = Vec::with_capacity(raw_grants.len());
    for (i, raw) in raw_grants.iter().enumerate() {
        executable_operations.push(parse_grant(raw, &grants_path.index(i), operations)?);
    }

    let mut checked_fields: Vec<(String, FieldType)> = Vec::new();
    for field in policy.rules.iter().flat_map(|rule| &rule.referenced) {
        if let Some(&declared) = policy.fields.get(field) {
            if !checked_fields.iter().any(|(name, _)| name == field) {
                checked_fields.push((field.clone(), declared));
            }
        }
    }

    // Keys of the input document sort as action < context < policy, so the canonical input is
    // this prefix, the canonical context, and this suffix.
    let canonical = |v: &Value| canonical::to_canonical_vec(v).map_err(|err| canonical_error(path, &err));
    let mut input_prefix = b"{\"action\":".to_vec();
    input_prefix.extend(canonical(&Value::String(policy.action.clone()))?);
    input_prefix.extend_from_slice(b",\"context\":");
    let mut input_suffix = b",\"policy\":".to_vec();
    input_suffix.extend(canonical(policy_value)?);
    input_suffix.push(b'}');

    let policy_nodes = super::eval::count_values(policy_value);
    Ok(ActionEntry { policy, guards, executable_operations, checked_fields, input_prefix, input_suffix, policy_nodes })
}

fn parse_basic_policy<'v>(
    value: &'v Value,
    path: &Path,
    names: &mut HashSet<&'v str>,
) -> Result<BasicPolicy, PolicyError> {
    let map = object(value, path)?;
    known_keys(map, &["profile", "action", "decision", "target", "fields", "rules"], path)?;
    let action_path = path.key("action");
    let action = text(get(map, "action", path)?, 64, &action_path)?;
    if Decision::parse(action).is_some() {
        return Err(action_path.err(format!("`{action}` is a decision name, not an action")));
    }
    if !names.insert(action) {
        return Err(action_path.err(format!("`{action}` is defined twice")));
    }
    if get(map, "profile", path)?.as_str() != Some(BASIC_PROFILE) {
        return Err(path.key("profile").err(format!("must be `{BASIC_PROFILE}`")));
    }
    let (decision, target) = decision_and_target(map, path)?;

    let fields_path = path.key("fields");
    let raw_fields = match get(map, "fields", path)? {
        Value::Object(fields) if fields.len() <= MAX_FIELDS => fields,
        _ => return Err(fields_path.err(format!("must be an object of at most {MAX_FIELDS} fields"))),
    };
    let mut fields = BTreeMap::new();
    for (name, declared) in raw_fields {
        // A bad name is reported on `fields` itself: as a path segment it would be unreadable.
        if name.is_empty() || name.chars().count() > MAX_TEXT {
            return Err(fields_path.err(format!("field name `{name}` must be 1 to {MAX_TEXT} characters long")));
        }
        if name.contains('\0') {
            return Err(fields_path.err("field names must not contain a nul character"));
        }
        let field_path = fields_path.key(name);
        let declared = declared
            .as_str()
            .and_then(FieldType::parse)
            .ok_or_else(|| field_path.err("must be one of string, integer, boolean, null, list"))?;
        fields.insert(name.clone(), declared);
    }

    let rules_path = path.key("rules");
    let raw_rules = match get(map, "rules", path)? {
        Value::Array(items) if items.len() <= MAX_RULES => items,
        _ => return Err(rules_path.err(format!("must be an array of at most {MAX_RULES} rules"))),
    };
    let mut rule_ids = HashSet::new();
    let mut rules = Vec::with_capacity(raw_rules.len());
    for (i, raw) in raw_rules.iter().enumerate() {
        rules.push(parse_rule(raw, &rules_path.index(i), &fields, &mut rule_ids)?);
    }
    Ok(BasicPolicy { action: action.to_owned(), decision, target, fields, rules })
}

fn parse_rule<'v>(
    value: &'v Value,
    path: &Path,
    fields: &BTreeMap<String, FieldType>,
    rule_ids: &mut HashSet<&'v str>,
) -> Result<Rule, PolicyError> {
    let map = object(value, path)?;
    known_keys(map, &["id", "decision", "target", "conditions"], path)?;
    let id_path = path.key("id");
    let id = text(get(map, "id", path)?, MAX_TEXT, &id_path)?;
    if !rule_ids.insert(id) {
        return Err(id_path.err(format!("rule id `{id}` is used twice")));
    }
    let (decision, target) = decision_and_target(map, path)?;
    let conditions_path = path.key("conditions");
    let raw_conditions = match get(map, "conditions", path)? {
        Value::Array(items) if (1..=MAX_CONDITIONS).contains(&items.len()) => items,
        _ => return Err(conditions_path.err(format!("must be an array of 1 to {MAX_CONDITIONS} conditions"))),
    };
    let mut conditions = Vec::with_capacity(raw_conditions.len());
    let mut referenced: Vec<String> = Vec::new();
    for (i, raw) in raw_conditions.iter().enumerate() {
        let condition = parse_condition(raw, &conditions_path.index(i), fields)?;
        if !referenced.contains(&condition.field) {
            referenced.push(condition.field.clone());
        }
        conditions.push(condition);
    }
    Ok(Rule { id: id.to_owned(), decision, target, conditions, referenced })
}

fn parse_condition(value: &Value, path: &Path, fields: &BTreeMap<String, FieldType>) -> Result<Condition, PolicyError> {
    let map = object(value, path)?;
    known_keys(map, &["field", "op", "value"], path)?;
    let field_path = path.key("field");
    let field = text(get(map, "field", path)?, MAX_TEXT, &field_path)?;
    let declared = *fields
        .get(field)
        .ok_or_else(|| field_path.err(format!("`{field}` is not declared in the policy's `fields`")))?;
    let op_path = path.key("op");
    let op_name = get(map, "op", path)?.as_str().unwrap_or_default();
    let raw = get(map, "value", path)?;
    let value_path = path.key("value");

    let op = match op_name {
        "exists" => Op::Exists(boolean(raw, &value_path)?),
        "empty" | "contains_any" | "contains_none" => {
            if declared != FieldType::List {
                return Err(
                    op_path.err(format!("`{op_name}` needs a list field, but `{field}` is declared {declared}"))
                );
            }
            match op_name {
                "empty" => Op::Empty(boolean(raw, &value_path)?),
                "contains_any" => Op::ContainsAny(overlap_values(raw, &value_path)?),
                _ => Op::ContainsNone(overlap_values(raw, &value_path)?),
            }
        }
        "eq" | "ne" | "gt" | "gte" | "lt" | "lte" | "in" | "not_in" => {
            if declared == FieldType::List {
                return Err(op_path.err(format!(
                    "list field `{field}` allows only `exists`, `empty`, `contains_any` and `contains_none`"
                )));
            }
            let ordered = matches!(op_name, "gt" | "gte" | "lt" | "lte");
            if ordered && declared != FieldType::Integer {
                return Err(
                    op_path.err(format!("`{op_name}` needs an integer field, but `{field}` is declared {declared}"))
                );
            }
            match op_name {
                "in" => Op::In(membership_values(raw, declared, field, &value_path)?),
                "not_in" => Op::NotIn(membership_values(raw, declared, field, &value_path)?),
                _ => {
                    let operand = single_value(raw, declared, field, &value_path)?;
                    match (op_name, operand) {
                        ("eq", operand) => Op::Eq(operand),
                        ("ne", operand) => Op::Ne(operand),
                        ("gt", Scalar::Int(n)) => Op::Gt(n),
                        ("gte", Scalar::Int(n)) => Op::Gte(n),
                        ("lt", Scalar::Int(n)) => Op::Lt(n),
                        ("lte", Scalar::Int(n)) => Op::Lte(n),
                        // Unreachable: ordered ops were checked to have an integer operand.
                        _ => return Err(value_path.err("must be an integer")),
                    }
                }
            }
        }
        _ => {
            return Err(op_path.err(
                "must be one of eq, ne, gt, gte, lt, lte, in, not_in, exists, contains_any, contains_none, empty",
            ))
        }
    };
    Ok(Condition { field: field.to_owned(), op })
}

/// `decision` and `target` of a policy or rule, with the target each decision requires.
fn decision_and_target(map: &Map<String, Value>, path: &Path) -> Result<(Decision, Option<String>), PolicyError> {
    let decision = get(map, "decision", path)?
        .as_str()
        .and_then(Decision::parse)
        .ok_or_else(|| path.key("decision").err("must be one of allow, deny, confirm, escalate"))?;
    let target_path = path.key("target");
    let target = get(map, "target", path)?;
    let target = match decision {
        Decision::Allow | Decision::Deny => {
            if !target.is_null() {
                return Err(target_path.err(format!("must be null for `{decision}`")));
            }
            None
        }
        Decision::Confirm => {
            if target.as_str() != Some("agent_owner") {
                return Err(target_path.err("must be `agent_owner` for `confirm`"));
            }
            Some("agent_owner".to_owned())
        }
        Decision::Escalate => {
            let member = target.as_str().and_then(|t| t.strip_prefix("member:"));
            match member {
                Some(id) if !id.chars().all(is_python_space) && id.chars().count() <= MAX_TEXT => {
                    no_nul(id, &target_path)?;
                    Some(format!("member:{id}"))
                }
                _ => {
                    return Err(target_path.err(format!(
                        "must be `member:<account_user_id>` for `escalate`, with a non-blank id of at most {MAX_TEXT} characters"
                    )))
                }
            }
        }
    };
    Ok((decision, target))
}

/// Python's `str.isspace`, which the client's blank-id test (`strip()`) uses: Unicode
/// `White_Space` plus the four information separators U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn parse_guards(value: &Value, path: &Path) -> Result<Guards, PolicyError> {
    let map = object(value, path)?;
    known_keys(map, &["resource_pattern", "allowed_initiators", "max_per_day", "rate_limit"], path)?;
    let resource_pattern = match map.get("resource_pattern") {
        Some(pattern) => Some(text(pattern, 256, &path.key("resource_pattern"))?.to_owned()),
        None => None,
    };
    let allowed_initiators = match map.get("allowed_initiators") {
        Some(raw) => Some(initiators(raw, &path.key("allowed_initiators"))?),
        None => None,
    };
    let max_per_day = match map.get("max_per_day") {
        Some(raw) => Some(integer(raw, 1, MAX_SAFE_INTEGER, &path.key("max_per_day"))?.unsigned_abs()),
        None => None,
    };
    let rate_limit = match map.get("rate_limit") {
        Some(raw) => {
            let path = path.key("rate_limit");
            let limit = object(raw, &path)?;
            known_keys(limit, &["max_calls", "window_seconds"], &path)?;
            let max_calls = integer(get(limit, "max_calls", &path)?, 1, MAX_SAFE_INTEGER, &path.key("max_calls"))?;
            let window = integer(get(limit, "window_seconds", &path)?, 1, 86_400, &path.key("window_seconds"))?;
            Some(RateLimit { max_calls: max_calls.unsigned_abs(), window_seconds: window.unsigned_abs() })
        }
        None => None,
    };
    Ok(Guards { resource_pattern, allowed_initiators, max_per_day, rate_limit })
}

fn initiators(value: &Value, path: &Path) -> Result<Vec<String>, PolicyError> {
    let items = match value {
        Value::Array(items) if (1..=MAX_INITIATORS).contains(&items.len()) => items,
        _ => return Err(path.err(format!("must be an array of 1 to {MAX_INITIATORS} strings"))),
    };
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_path = path.index(i);
        let name = text(item, MAX_TEXT, &item_path)?;
        if !seen.insert(name) {
            return Err(item_path.err(format!("`{name}` is listed twice")));
        }
        out.push(name.to_owned());
    }
    Ok(out)
}

fn parse_grant<'v>(
    value: &'v Value,
    path: &Path,
    operations: &mut HashSet<(&'v str, &'v str)>,
) -> Result<ExecutableGrant, PolicyError> {
    let map = object(value, path)?;
    known_keys(
        map,
        &[
            "enabled_executable_id",
            "provider_id",
            "operation_id",
            "catalog_revision",
            "definition_fingerprint",
            "minimum_evidence_mode",
        ],
        path,
    )?;
    let field =
        |key: &'static str| -> Result<&'v str, PolicyError> { text(get(map, key, path)?, MAX_TEXT, &path.key(key)) };
    let enabled_executable_id = field("enabled_executable_id")?;
    let provider_id = field("provider_id")?;
    let operation_id = field("operation_id")?;
    let catalog_revision = field("catalog_revision")?;
    let definition_fingerprint = match get(map, "definition_fingerprint", path)?.as_str() {
        Some(fp) if fp.strip_prefix("sha256:").is_some_and(|hex| is_lower_hex(hex, 64)) => fp.to_owned(),
        _ => {
            return Err(path
                .key("definition_fingerprint")
                .err("must be `sha256:` followed by 64 lowercase hex characters"))
        }
    };
    let minimum_evidence_mode = match get(map, "minimum_evidence_mode", path)?.as_str() {
        Some("receipt") => EvidenceMode::Receipt,
        Some("witnessed") => EvidenceMode::Witnessed,
        _ => return Err(path.key("minimum_evidence_mode").err("must be `receipt` or `witnessed`")),
    };
    if !operations.insert((enabled_executable_id, operation_id)) {
        return Err(path.err(format!(
            "operation `{operation_id}` of executable `{enabled_executable_id}` is granted more than once; it may belong to only one action"
        )));
    }
    Ok(ExecutableGrant {
        enabled_executable_id: enabled_executable_id.to_owned(),
        provider_id: provider_id.to_owned(),
        operation_id: operation_id.to_owned(),
        catalog_revision: catalog_revision.to_owned(),
        definition_fingerprint,
        minimum_evidence_mode,
    })
}

// ---- condition operands ----

fn boolean(value: &Value, path: &Path) -> Result<bool, PolicyError> {
    value.as_bool().ok_or_else(|| path.err("must be a boolean"))
}

/// `contains_any` / `contains_none`: 1..64 scalars of any type.
fn overlap_values(value: &Value, path: &Path) -> Result<Vec<Scalar>, PolicyError> {
    match value {
        Value::Array(items) if (1..=MAX_VALUES).contains(&items.len()) => {
            items.iter().enumerate().map(|(i, item)| scalar(item, &path.index(i))).collect()
        }
        _ => Err(path.err(format!("must be an array of 1 to {MAX_VALUES} strings, integers, booleans or nulls"))),
    }
}

/// `in` / `not_in`: up to 64 values of the declared type.
fn membership_values(value: &Value, declared: FieldType, field: &str, path: &Path) -> Result<Vec<Scalar>, PolicyError> {
    match value {
        Value::Array(items) if items.len() <= MAX_VALUES => {
            items.iter().enumerate().map(|(i, item)| typed_scalar(item, declared, field, &path.index(i))).collect()
        }
        _ => Err(path.err(format!("must be an array of at most {MAX_VALUES} values"))),
    }
}

fn single_value(value: &Value, declared: FieldType, field: &str, path: &Path) -> Result<Scalar, PolicyError> {
    if value.is_array() {
        return Err(path.err("must be a single value; only `in` and `not_in` take an array"));
    }
    typed_scalar(value, declared, field, path)
}

fn typed_scalar(value: &Value, declared: FieldType, field: &str, path: &Path) -> Result<Scalar, PolicyError> {
    let scalar = scalar(value, path)?;
    if scalar.field_type() != declared {
        return Err(path.err(format!("must be {}, the declared type of `{field}`", declared.expected())));
    }
    Ok(scalar)
}

fn scalar(value: &Value, path: &Path) -> Result<Scalar, PolicyError> {
    match value {
        Value::Null => Ok(Scalar::Null),
        Value::Bool(b) => Ok(Scalar::Bool(*b)),
        Value::Number(n) => safe_integer(n).map(Scalar::Int).ok_or_else(|| path.err(UNSAFE_NUMBER)),
        Value::String(s) => {
            no_nul(s, path)?;
            Ok(Scalar::Str(s.clone()))
        }
        Value::Array(_) | Value::Object(_) => Err(path.err("must be a string, integer, boolean or null")),
    }
}

// ---- primitives ----

const UNSAFE_NUMBER: &str = "must be a safe integer (no fraction or exponent, magnitude at most 2^53-1)";

/// An integer in ±(2^53−1): JSON numbers that are floats or larger are not policy values.
pub(super) fn safe_integer(n: &Number) -> Option<i64> {
    n.as_i64().filter(|i| (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(i))
}

fn integer(value: &Value, min: i64, max: i64, path: &Path) -> Result<i64, PolicyError> {
    let n = match value {
        Value::Number(n) => safe_integer(n).ok_or_else(|| path.err(UNSAFE_NUMBER))?,
        _ => return Err(path.err("must be an integer")),
    };
    if n < min || n > max {
        let range = if max == MAX_SAFE_INTEGER { format!("at least {min}") } else { format!("from {min} to {max}") };
        return Err(path.err(format!("must be an integer {range}")));
    }
    Ok(n)
}

fn text<'v>(value: &'v Value, max: usize, path: &Path) -> Result<&'v str, PolicyError> {
    let s = value.as_str().ok_or_else(|| path.err("must be a string"))?;
    // Lengths count Unicode scalar values, like Python's `len`.
    if s.is_empty() || s.chars().count() > max {
        return Err(path.err(format!("must be 1 to {max} characters long")));
    }
    no_nul(s, path)?;
    Ok(s)
}

fn no_nul(s: &str, path: &Path) -> Result<(), PolicyError> {
    if s.contains('\0') {
        return Err(path.err("must not contain a nul character"));
    }
    Ok(())
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn object<'v>(value: &'v Value, path: &Path) -> Result<&'v Map<String, Value>, PolicyError> {
    value.as_object().ok_or_else(|| path.err("must be an object"))
}

/// Objects are exact-key: anything not in `allowed` is rejected.
fn known_keys(map: &Map<String, Value>, allowed: &[&str], path: &Path) -> Result<(), PolicyError> {
    match map.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(path.key(key).err("is not a known field")),
        None => Ok(()),
    }
}

fn get<'v>(map: &'v Map<String, Value>, key: &str, path: &Path) -> Result<&'v Value, PolicyError> {
    map.get(key).ok_or_else(|| path.key(key).err("is required"))
}

fn canonical_error(path: &Path, err: &CanonicalError) -> PolicyError {
    path.err(format!("cannot be canonicalized: {}", err.0))
}

/// Where a value sits in the document; rendered (`actions[0].policy.rules`) only on error.
enum Path<'a> {
    /// The document itself, named for errors about the whole of it.
    Root(&'static str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn key<'b>(&'b self, key: &'b str) -> Path<'b> {
        Path::Key(self, key)
    }

    fn index(&self, i: usize) -> Path<'_> {
        Path::Index(self, i)
    }

    fn err(&self, message: impl Into<String>) -> PolicyError {
        let field = match self {
            Path::Root(name) => (*name).to_owned(),
            _ => {
                let mut out = String::new();
                self.write_to(&mut out);
                out
            }
        };
        PolicyError { field, message: message.into() }
    }

    fn write_to(&self, out: &mut String) {
        match self {
            Path::Root(_) => {}
            Path::Key(parent, key) => {
                parent.write_to(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Path::Index(parent, i) => {
                parent.write_to(out);
                let _ = write!(out, "[{i}]");
            }
        }
    }
}
