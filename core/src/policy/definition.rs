//! The `allowly.policy.v1` definition: validation into typed structures, with defaults.
//!
//! The rules are those of the official client's `validate_policy_definition` (string lengths in
//! Unicode scalar values, exact-key objects, safe integers only, no NUL anywhere), plus the
//! engine's `guards.rate_limit` extension and its identifier rule: the names of the agent, actions,
//! rules and approvers hold no control, separator or invisible format character. Unlike the
//! client, keys with an obvious value may be left out (see [`Definition::parse`]); the definition
//! is kept and digested in its full form, the one the client reads back. Validation goes on after
//! an error and reports every invalid field, each named by its path.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

use super::{Decision, FieldType, PolicyError, MAX_REPORTED_ERRORS};
use crate::canonical::{self, CanonicalError, MAX_SAFE_INTEGER};
use crate::error::FieldError;
use crate::ids;

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
    /// Exactly `{profile, agent_id, actions, default_expiry_days}`: the full form, as submitted
    /// with every key that was left out filled in with its default.
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
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
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
    /// Validates a definition object and fills in the keys an author may leave out:
    ///
    /// - `profile` → `"allowly.policy.v1"`, `default_expiry_days` → `null`;
    /// - in each action: `guards` → `{}`, `executable_operations` → `[]`;
    /// - in each basic policy: `profile` → `"allowly.basic.v1"`, `fields` → `{}`, `rules` → `[]`;
    /// - in a policy or rule: `target` → `null` for `allow` and `deny`, `"agent_owner"` for
    ///   `confirm` (`escalate` needs its `member:<id>`).
    ///
    /// [`Definition::json`] and the digest are of that full form, so leaving a key out and writing
    /// its default give the same definition. Errors list every invalid field of the document.
    pub fn parse(value: &Value) -> Result<Definition, PolicyError> {
        Definition::parse_root(value, Path::Root { name: "definition", nested: false })
    }

    /// [`Definition::parse`] for a definition that is the member `name` of a request: errors name
    /// their fields from the request (`definition.actions[0]`).
    pub fn parse_member(value: &Value, name: &'static str) -> Result<Definition, PolicyError> {
        Definition::parse_root(value, Path::Root { name, nested: true })
    }

    fn parse_root(value: &Value, root: Path) -> Result<Definition, PolicyError> {
        let mut check = Check::new();
        let definition = check.ok(object(value, &root)).and_then(|map| {
            check.unknown_keys(map, &DEFINITION_KEYS, &root);
            definition_at(map, &root, &mut check)
        });
        check.finish(definition)
    }

    pub fn action(&self, name: &str) -> Option<&ActionEntry> {
        self.actions.iter().find(|entry| entry.policy.action == name)
    }

    pub fn action_names(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().map(|entry| entry.policy.action.as_str())
    }
}

impl PolicyCreate {
    /// Validates a create body: `policy_id`, optional `description` and `previous_policy_ref`, and
    /// the definition's keys at the top level, with the defaults of [`Definition::parse`].
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
        let root = Path::Root { name: "body", nested: false };
        let mut check = Check::new();
        let create = check.ok(object(body, &root)).and_then(|map| {
            for key in map.keys().filter(|key| !KEYS.contains(&key.as_str())) {
                let message = if key == "definition" {
                    "is not a known field: the definition's keys (`agent_id`, `actions`, ...) go at the top level of the body, next to `policy_id`"
                } else {
                    "is not a known field"
                };
                check.fail(root.key(key).err(message));
            }
            create_at(map, &root, &mut check)
        });
        check.finish(create)
    }
}

impl PolicyRef {
    pub fn parse(value: &Value) -> Result<PolicyRef, PolicyError> {
        let mut check = Check::new();
        let parsed = parse_ref(value, &Path::Root { name: "policy_ref", nested: false }, &mut check);
        check.finish(parsed)
    }
}

// ---- the documents ----

fn create_at<'v>(map: &'v Map<String, Value>, root: &Path, check: &mut Check<'v>) -> Option<PolicyCreate> {
    let id_path = root.key("policy_id");
    let policy_id = check.required(map, "policy_id", root).and_then(|id| check.ok(text(id, MAX_TEXT, &id_path)));
    let policy_id = policy_id.and_then(|id| {
        let valid = id.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
        check.ok(if valid { Ok(id) } else { Err(id_path.err("must use only lowercase letters, digits, `_` and `-`")) })
    });
    let description_path = root.key("description");
    let description = match map.get("description") {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(text)) => {
            let valid = if text.chars().count() > 2048 {
                Err(description_path.err("must be at most 2048 characters long"))
            } else {
                // Not a client rule, but no store should have to hold a NUL.
                no_nul(text, &description_path)
            };
            check.ok(valid).map(|()| Some(text.clone()))
        }
        Some(_) => check.ok(Err(description_path.err("must be a string or null"))),
    };
    let definition = definition_at(map, root, check);
    let previous_policy_ref = optional(map.get("previous_policy_ref").filter(|r| !r.is_null()), |r| {
        parse_ref(r, &root.key("previous_policy_ref"), check)
    });
    Some(PolicyCreate {
        policy_id: policy_id?.to_owned(),
        description: description?,
        previous_policy_ref: previous_policy_ref?,
        definition: definition?,
    })
}

/// The definition keys of `map` (other keys are the caller's business).
fn definition_at<'v>(map: &'v Map<String, Value>, root: &Path, check: &mut Check<'v>) -> Option<Definition> {
    let errors_before = check.count();
    if map.get("profile").is_some_and(|profile| profile.as_str() != Some(POLICY_PROFILE)) {
        check.fail(root.key("profile").err(format!("must be `{POLICY_PROFILE}`")));
    }
    let agent_id =
        check.required(map, "agent_id", root).and_then(|id| check.ok(identifier(id, MAX_TEXT, &root.key("agent_id"))));
    let actions_path = root.key("actions");
    let actions = match check.required(map, "actions", root) {
        None => None,
        Some(Value::Array(items)) => {
            if !(1..=MAX_ACTIONS).contains(&items.len()) {
                check.fail(actions_path.err(format!("must be an array of 1 to {MAX_ACTIONS} actions")));
            }
            let parsed: Vec<_> =
                items.iter().enumerate().map(|(i, raw)| parse_action(raw, &actions_path.index(i), check)).collect();
            parsed.into_iter().collect::<Option<Vec<_>>>()
        }
        Some(_) => check.ok(Err(actions_path.err(format!("must be an array of 1 to {MAX_ACTIONS} actions")))),
    };
    let default_expiry_days = match map.get("default_expiry_days") {
        None | Some(Value::Null) => Some(None),
        Some(days) => check.ok(integer(days, 1, 3650, &root.key("default_expiry_days"))).map(Some),
    };
    let (agent_id, default_expiry_days, actions) = (agent_id?, default_expiry_days?, actions?);
    if check.count() > errors_before {
        return None;
    }

    let (actions, normalized): (Vec<ActionEntry>, Vec<Value>) = actions.into_iter().unzip();
    let mut json = Map::new();
    json.insert("profile".into(), or_default(map, "profile", || POLICY_PROFILE.into()));
    json.insert("agent_id".into(), agent_id.into());
    json.insert("actions".into(), Value::Array(normalized));
    json.insert("default_expiry_days".into(), or_default(map, "default_expiry_days", || Value::Null));
    let json = Value::Object(json);
    let bytes = check.ok(canonical::to_canonical_vec(&json).map_err(|err| canonical_error(root, &err)))?;
    if bytes.len() > MAX_DEFINITION_BYTES {
        check.fail(Path::Root { name: "definition", nested: false }.err(format!(
            "is {} bytes of canonical json with its defaults filled in, over the limit of {MAX_DEFINITION_BYTES}",
            bytes.len()
        )));
        return None;
    }
    Some(Definition {
        agent_id: agent_id.to_owned(),
        actions,
        default_expiry_days,
        sha256: canonical::sha256_hex(&bytes),
        json,
    })
}

/// An action entry, and its full form.
fn parse_action<'v>(value: &'v Value, path: &Path, check: &mut Check<'v>) -> Option<(ActionEntry, Value)> {
    let map = check.ok(object(value, path))?;
    check.unknown_keys(map, &["policy", "guards", "executable_operations"], path);
    let policy =
        check.required(map, "policy", path).and_then(|policy| parse_basic_policy(policy, &path.key("policy"), check));
    let guards = match map.get("guards") {
        None => Some(Guards::default()),
        Some(guards) => parse_guards(guards, &path.key("guards"), check),
    };
    let grants_path = path.key("executable_operations");
    let grants = match map.get("executable_operations") {
        None => Some(Vec::new()),
        Some(Value::Array(items)) => {
            if items.len() > MAX_GRANTS {
                check.fail(grants_path.err(format!("must be an array of at most {MAX_GRANTS} grants")));
            }
            let parsed: Vec<_> =
                items.iter().enumerate().map(|(i, raw)| parse_grant(raw, &grants_path.index(i), check)).collect();
            parsed.into_iter().collect::<Option<Vec<_>>>()
        }
        Some(_) => check.ok(Err(grants_path.err(format!("must be an array of at most {MAX_GRANTS} grants")))),
    };
    let ((policy, policy_json), guards, executable_operations) = (policy?, guards?, grants?);

    let mut checked_fields: Vec<(String, FieldType)> = Vec::new();
    for field in policy.rules.iter().flat_map(|rule| &rule.referenced) {
        if let Some(&declared) = policy.fields.get(field) {
            if !checked_fields.iter().any(|(name, _)| name == field) {
                checked_fields.push((field.clone(), declared));
            }
        }
    }

    // Keys of the input document sort as action < context < policy, so the canonical input is
    // this prefix, the canonical context, and this suffix. The policy is the full form: what a
    // receipt's `input_sha256` commits to does not depend on which defaults were written out.
    let canonical = |v: &Value| canonical::to_canonical_vec(v).map_err(|err| canonical_error(path, &err));
    let mut input_prefix = b"{\"action\":".to_vec();
    input_prefix.extend(check.ok(canonical(&Value::String(policy.action.clone())))?);
    input_prefix.extend_from_slice(b",\"context\":");
    let mut input_suffix = b",\"policy\":".to_vec();
    input_suffix.extend(check.ok(canonical(&policy_json))?);
    input_suffix.push(b'}');
    let policy_nodes = super::eval::count_values(&policy_json);

    let mut json = Map::new();
    json.insert("policy".into(), policy_json);
    json.insert("guards".into(), or_default(map, "guards", || Value::Object(Map::new())));
    json.insert("executable_operations".into(), or_default(map, "executable_operations", || Value::Array(Vec::new())));
    let entry =
        ActionEntry { policy, guards, executable_operations, checked_fields, input_prefix, input_suffix, policy_nodes };
    Some((entry, Value::Object(json)))
}

/// The declared fields of a policy. A name whose type is wrong is declared with an unknown type
/// (`None`), so that conditions on it are not reported as undeclared too.
type Declared = BTreeMap<String, Option<FieldType>>;

/// A basic policy, and its full form.
fn parse_basic_policy<'v>(value: &'v Value, path: &Path, check: &mut Check<'v>) -> Option<(BasicPolicy, Value)> {
    let map = check.ok(object(value, path))?;
    check.unknown_keys(map, &["profile", "action", "decision", "target", "fields", "rules"], path);
    let action_path = path.key("action");
    let action = check.required(map, "action", path).and_then(|action| check.ok(identifier(action, 64, &action_path)));
    let action = action.and_then(|action| {
        if Decision::parse(action).is_some() {
            check.ok(Err(action_path.err(format!("`{action}` is a decision name, not an action"))))
        } else if !check.names.insert(action) {
            check.ok(Err(action_path.err(format!("`{action}` is defined twice"))))
        } else {
            Some(action)
        }
    });
    if map.get("profile").is_some_and(|profile| profile.as_str() != Some(BASIC_PROFILE)) {
        check.fail(path.key("profile").err(format!("must be `{BASIC_PROFILE}`")));
    }
    let decision = decision_and_target(map, path, check);
    let fields = optional(map.get("fields"), |fields| parse_fields(fields, &path.key("fields"), check));

    let rules_path = path.key("rules");
    let rules = match map.get("rules") {
        None => Some(Vec::new()),
        Some(Value::Array(items)) => {
            if items.len() > MAX_RULES {
                check.fail(rules_path.err(format!("must be an array of at most {MAX_RULES} rules")));
            }
            let declared = fields.as_ref().map(|fields| fields.as_ref().unwrap_or(&EMPTY));
            let mut rule_ids = HashSet::new();
            let parsed: Vec<_> = items
                .iter()
                .enumerate()
                .map(|(i, raw)| parse_rule(raw, &rules_path.index(i), declared, &mut rule_ids, check))
                .collect();
            parsed.into_iter().collect::<Option<Vec<_>>>()
        }
        Some(_) => check.ok(Err(rules_path.err(format!("must be an array of at most {MAX_RULES} rules")))),
    };
    let (action, (decision, target), fields, rules) = (action?, decision?, fields?, rules?);
    let fields: BTreeMap<String, FieldType> = match fields {
        Some(declared) => declared.into_iter().map(|(name, t)| t.map(|t| (name, t))).collect::<Option<_>>()?,
        None => BTreeMap::new(),
    };
    let (rules, rules_json): (Vec<Rule>, Vec<Value>) = rules.into_iter().unzip();

    let mut json = Map::new();
    json.insert("profile".into(), or_default(map, "profile", || BASIC_PROFILE.into()));
    json.insert("action".into(), action.into());
    json.insert("decision".into(), decision.as_str().into());
    json.insert("target".into(), or_default(map, "target", || target.clone().into()));
    json.insert("fields".into(), or_default(map, "fields", || Value::Object(Map::new())));
    json.insert("rules".into(), Value::Array(rules_json));
    Some((BasicPolicy { action: action.to_owned(), decision, target, fields, rules }, Value::Object(json)))
}

static EMPTY: Declared = BTreeMap::new();

fn parse_fields(value: &Value, path: &Path, check: &mut Check<'_>) -> Option<Declared> {
    let too_many = format!("must be an object of at most {MAX_FIELDS} fields");
    let Value::Object(raw) = value else { return check.ok(Err(path.err(too_many))) };
    if raw.len() > MAX_FIELDS {
        check.fail(path.err(too_many));
    }
    let mut fields = Declared::new();
    for (name, declared) in raw {
        // A bad name is reported on `fields` itself: as a path segment it would be unreadable.
        if name.is_empty() || name.chars().count() > MAX_TEXT {
            check.fail(path.err(format!("field name `{name}` must be 1 to {MAX_TEXT} characters long")));
            continue;
        }
        if name.contains('\0') {
            check.fail(path.err("field names must not contain a nul character"));
            continue;
        }
        let declared = declared.as_str().and_then(FieldType::parse);
        if declared.is_none() {
            check.fail(path.key(name).err("must be one of string, integer, boolean, null, list"));
        }
        fields.insert(name.clone(), declared);
    }
    Some(fields)
}

/// A rule, and its full form. `fields` is `None` when the policy's `fields` is unusable: the
/// conditions are then checked without their declarations.
fn parse_rule<'v>(
    value: &'v Value,
    path: &Path,
    fields: Option<&Declared>,
    rule_ids: &mut HashSet<&'v str>,
    check: &mut Check<'v>,
) -> Option<(Rule, Value)> {
    let map = check.ok(object(value, path))?;
    check.unknown_keys(map, &["id", "decision", "target", "conditions"], path);
    let id_path = path.key("id");
    let id = check.required(map, "id", path).and_then(|id| check.ok(identifier(id, MAX_TEXT, &id_path)));
    let id = id.and_then(|id| {
        if rule_ids.insert(id) {
            Some(id)
        } else {
            check.ok(Err(id_path.err(format!("rule id `{id}` is used twice"))))
        }
    });
    let decision = decision_and_target(map, path, check);
    let conditions_path = path.key("conditions");
    let raw_conditions = check.required(map, "conditions", path);
    let conditions = match raw_conditions {
        None => None,
        Some(Value::Array(items)) => {
            if !(1..=MAX_CONDITIONS).contains(&items.len()) {
                check.fail(conditions_path.err(format!("must be an array of 1 to {MAX_CONDITIONS} conditions")));
            }
            let parsed: Vec<_> = items
                .iter()
                .enumerate()
                .map(|(i, raw)| parse_condition(raw, &conditions_path.index(i), fields, check))
                .collect();
            parsed.into_iter().collect::<Option<Vec<_>>>()
        }
        Some(_) => check.ok(Err(conditions_path.err(format!("must be an array of 1 to {MAX_CONDITIONS} conditions")))),
    };
    let (id, (decision, target), conditions, raw_conditions) = (id?, decision?, conditions?, raw_conditions?);
    let mut referenced: Vec<String> = Vec::new();
    for condition in &conditions {
        if !referenced.contains(&condition.field) {
            referenced.push(condition.field.clone());
        }
    }

    let mut json = Map::new();
    json.insert("id".into(), id.into());
    json.insert("decision".into(), decision.as_str().into());
    json.insert("target".into(), or_default(map, "target", || target.clone().into()));
    json.insert("conditions".into(), raw_conditions.clone());
    Some((Rule { id: id.to_owned(), decision, target, conditions, referenced }, Value::Object(json)))
}

const OPS: [&str; 12] =
    ["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists", "contains_any", "contains_none", "empty"];

fn parse_condition<'v>(
    value: &'v Value,
    path: &Path,
    fields: Option<&Declared>,
    check: &mut Check<'v>,
) -> Option<Condition> {
    let map = check.ok(object(value, path))?;
    check.unknown_keys(map, &["field", "op", "value"], path);
    let field_path = path.key("field");
    let field = check.required(map, "field", path).and_then(|field| check.ok(text(field, MAX_TEXT, &field_path)));
    // The declared type when it is known. When it is not, an error about it has been reported,
    // and the operand is still checked for what the operator alone requires.
    let declared = match (field, fields) {
        (Some(field), Some(fields)) => match fields.get(field) {
            Some(declared) => declared.map(|t| (t, field)),
            None => {
                check.fail(field_path.err(format!("`{field}` is not declared in the policy's `fields`")));
                None
            }
        },
        _ => None,
    };
    let op_path = path.key("op");
    let op = check.required(map, "op", path).and_then(|op| {
        let known = op.as_str().filter(|op| OPS.contains(op));
        check.ok(known.ok_or_else(|| op_path.err(format!("must be one of {}", OPS.join(", ")))))
    });
    let raw = check.required(map, "value", path);
    let (op_name, raw) = (op?, raw?);
    let op = operand(op_name, raw, declared, &op_path, &path.key("value"), check)?;
    // `operand` returns an operator without a declaration only after another error.
    let (_, field) = declared?;
    Some(Condition { field: field.to_owned(), op })
}

/// A condition's operator with its checked operand. `declared` is the field's type and name.
fn operand(
    op: &str,
    raw: &Value,
    declared: Option<(FieldType, &str)>,
    op_path: &Path,
    value_path: &Path,
    check: &mut Check<'_>,
) -> Option<Op> {
    let list_op = matches!(op, "empty" | "contains_any" | "contains_none");
    let ordered = matches!(op, "gt" | "gte" | "lt" | "lte");
    if let Some((declared, field)) = declared {
        let mismatch = if list_op && declared != FieldType::List {
            Some(format!("`{op}` needs a list field, but `{field}` is declared {declared}"))
        } else if !list_op && op != "exists" && declared == FieldType::List {
            Some(format!("list field `{field}` allows only `exists`, `empty`, `contains_any` and `contains_none`"))
        } else if ordered && declared != FieldType::Integer {
            Some(format!("`{op}` needs an integer field, but `{field}` is declared {declared}"))
        } else {
            None
        };
        if let Some(message) = mismatch {
            return check.ok(Err(op_path.err(message)));
        }
    }
    match op {
        "exists" => check.ok(boolean(raw, value_path)).map(Op::Exists),
        "empty" => check.ok(boolean(raw, value_path)).map(Op::Empty),
        "contains_any" => overlap_values(raw, value_path, check).map(Op::ContainsAny),
        "contains_none" => overlap_values(raw, value_path, check).map(Op::ContainsNone),
        "in" => membership_values(raw, declared, value_path, check).map(Op::In),
        "not_in" => membership_values(raw, declared, value_path, check).map(Op::NotIn),
        _ => {
            let operand = check.ok(single_value(raw, declared, value_path))?;
            match (op, operand) {
                ("eq", operand) => Some(Op::Eq(operand)),
                ("ne", operand) => Some(Op::Ne(operand)),
                ("gt", Scalar::Int(n)) => Some(Op::Gt(n)),
                ("gte", Scalar::Int(n)) => Some(Op::Gte(n)),
                ("lt", Scalar::Int(n)) => Some(Op::Lt(n)),
                ("lte", Scalar::Int(n)) => Some(Op::Lte(n)),
                // Ordered operators need an integer field: a declared one was checked above, so
                // this is a field whose declaration is missing or wrong (already reported).
                _ => check.ok(Err(value_path.err("must be an integer"))),
            }
        }
    }
}

/// `decision` and `target` of a policy or rule, with the target each decision requires (and
/// fills in when it is left out). `None` after reporting an error.
fn decision_and_target(
    map: &Map<String, Value>,
    path: &Path,
    check: &mut Check<'_>,
) -> Option<(Decision, Option<String>)> {
    let decision = check.required(map, "decision", path).and_then(|decision| {
        let decision = decision.as_str().and_then(Decision::parse);
        check.ok(decision.ok_or_else(|| path.key("decision").err("must be one of allow, deny, confirm, escalate")))
    })?;
    let target_path = path.key("target");
    let target = match (decision, map.get("target")) {
        (Decision::Allow | Decision::Deny, None | Some(Value::Null)) => Ok(None),
        (Decision::Allow | Decision::Deny, Some(_)) => {
            Err(target_path.err(format!("must be null for `{decision}` (the default when left out)")))
        }
        (Decision::Confirm, None) => Ok(Some("agent_owner".to_owned())),
        (Decision::Confirm, Some(target)) if target.as_str() == Some("agent_owner") => {
            Ok(Some("agent_owner".to_owned()))
        }
        (Decision::Confirm, Some(_)) => {
            Err(target_path.err("must be `agent_owner` for `confirm` (the default when left out)"))
        }
        (Decision::Escalate, None) => {
            Err(target_path.err("is required for `escalate`: the approver, as `member:<account_user_id>`"))
        }
        (Decision::Escalate, Some(target)) => escalation_target(target, &target_path),
    };
    check.ok(target).map(|target| (decision, target))
}

fn escalation_target(target: &Value, path: &Path) -> Result<Option<String>, FieldError> {
    match target.as_str().and_then(|t| t.strip_prefix("member:")) {
        Some(id) if !id.chars().all(is_python_space) && id.chars().count() <= MAX_TEXT => {
            if let Some(problem) = ids::identifier_problem(id) {
                return Err(path.err(problem));
            }
            Ok(Some(format!("member:{id}")))
        }
        _ => Err(path.err(format!(
            "must be `member:<account_user_id>` for `escalate`, with a non-blank id of at most {MAX_TEXT} characters"
        ))),
    }
}

/// Python's `str.isspace`, which the client's blank-id test (`strip()`) uses: Unicode
/// `White_Space` plus the four information separators U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn parse_guards(value: &Value, path: &Path, check: &mut Check<'_>) -> Option<Guards> {
    let map = check.ok(object(value, path))?;
    check.unknown_keys(map, &["resource_pattern", "allowed_initiators", "max_per_day", "rate_limit"], path);
    let resource_pattern = optional(map.get("resource_pattern"), |pattern| {
        check.ok(text(pattern, 256, &path.key("resource_pattern"))).map(str::to_owned)
    });
    let allowed_initiators =
        optional(map.get("allowed_initiators"), |raw| initiators(raw, &path.key("allowed_initiators"), check));
    let max_per_day = optional(map.get("max_per_day"), |raw| {
        check.ok(integer(raw, 1, MAX_SAFE_INTEGER, &path.key("max_per_day"))).map(i64::unsigned_abs)
    });
    let rate_limit = optional(map.get("rate_limit"), |raw| {
        let path = path.key("rate_limit");
        let limit = check.ok(object(raw, &path))?;
        check.unknown_keys(limit, &["max_calls", "window_seconds"], &path);
        let max_calls = check
            .required(limit, "max_calls", &path)
            .and_then(|n| check.ok(integer(n, 1, MAX_SAFE_INTEGER, &path.key("max_calls"))));
        let window = check
            .required(limit, "window_seconds", &path)
            .and_then(|n| check.ok(integer(n, 1, 86_400, &path.key("window_seconds"))));
        Some(RateLimit { max_calls: max_calls?.unsigned_abs(), window_seconds: window?.unsigned_abs() })
    });
    Some(Guards {
        resource_pattern: resource_pattern?,
        allowed_initiators: allowed_initiators?,
        max_per_day: max_per_day?,
        rate_limit: rate_limit?,
    })
}

fn initiators(value: &Value, path: &Path, check: &mut Check<'_>) -> Option<Vec<String>> {
    let items = match value {
        Value::Array(items) if (1..=MAX_INITIATORS).contains(&items.len()) => items,
        _ => return check.ok(Err(path.err(format!("must be an array of 1 to {MAX_INITIATORS} strings")))),
    };
    let mut seen = HashSet::new();
    check.all(items.iter().enumerate().map(|(i, item)| {
        let item_path = path.index(i);
        let name = text(item, MAX_TEXT, &item_path)?;
        if !seen.insert(name) {
            return Err(item_path.err(format!("`{name}` is listed twice")));
        }
        Ok(name.to_owned())
    }))
}

fn parse_grant<'v>(value: &'v Value, path: &Path, check: &mut Check<'v>) -> Option<ExecutableGrant> {
    let map = check.ok(object(value, path))?;
    check.unknown_keys(
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
    );
    let mut field = |key: &'static str| -> Option<&'v str> {
        check.required(map, key, path).and_then(|value| check.ok(text(value, MAX_TEXT, &path.key(key))))
    };
    let enabled_executable_id = field("enabled_executable_id");
    let provider_id = field("provider_id");
    let operation_id = field("operation_id");
    let catalog_revision = field("catalog_revision");
    let definition_fingerprint = check.required(map, "definition_fingerprint", path).and_then(|fp| {
        let valid = fp.as_str().filter(|fp| fp.strip_prefix("sha256:").is_some_and(|hex| is_lower_hex(hex, 64)));
        check.ok(valid.map(str::to_owned).ok_or_else(|| {
            path.key("definition_fingerprint").err("must be `sha256:` followed by 64 lowercase hex characters")
        }))
    });
    let minimum_evidence_mode = check.required(map, "minimum_evidence_mode", path).and_then(|mode| {
        let mode = match mode.as_str() {
            Some("receipt") => Ok(EvidenceMode::Receipt),
            Some("witnessed") => Ok(EvidenceMode::Witnessed),
            _ => Err(path.key("minimum_evidence_mode").err("must be `receipt` or `witnessed`")),
        };
        check.ok(mode)
    });
    let (enabled_executable_id, operation_id) = (enabled_executable_id?, operation_id?);
    if !check.operations.insert((enabled_executable_id, operation_id)) {
        check.fail(path.err(format!(
            "operation `{operation_id}` of executable `{enabled_executable_id}` is granted more than once; it may belong to only one action"
        )));
        return None;
    }
    Some(ExecutableGrant {
        enabled_executable_id: enabled_executable_id.to_owned(),
        provider_id: provider_id?.to_owned(),
        operation_id: operation_id.to_owned(),
        catalog_revision: catalog_revision?.to_owned(),
        definition_fingerprint: definition_fingerprint?,
        minimum_evidence_mode: minimum_evidence_mode?,
    })
}

fn parse_ref(value: &Value, path: &Path, check: &mut Check<'_>) -> Option<PolicyRef> {
    let map = check.ok(object(value, path))?;
    check.unknown_keys(map, &["policy_id", "policy_version", "definition_sha256"], path);
    let policy_id =
        check.required(map, "policy_id", path).and_then(|id| check.ok(text(id, MAX_TEXT, &path.key("policy_id"))));
    let policy_version = check
        .required(map, "policy_version", path)
        .and_then(|v| check.ok(integer(v, 1, MAX_SAFE_INTEGER, &path.key("policy_version"))));
    let definition_sha256 = check.required(map, "definition_sha256", path).and_then(|digest| {
        let valid = digest.as_str().filter(|hex| is_lower_hex(hex, 64));
        check.ok(valid
            .map(str::to_owned)
            .ok_or_else(|| path.key("definition_sha256").err("must be 64 lowercase hex characters")))
    });
    Some(PolicyRef {
        policy_id: policy_id?.to_owned(),
        policy_version: policy_version?,
        definition_sha256: definition_sha256?,
    })
}

// ---- condition operands ----

fn boolean(value: &Value, path: &Path) -> Result<bool, FieldError> {
    value.as_bool().ok_or_else(|| path.err("must be a boolean"))
}

/// `contains_any` / `contains_none`: 1..64 scalars of any type.
fn overlap_values(value: &Value, path: &Path, check: &mut Check<'_>) -> Option<Vec<Scalar>> {
    match value {
        Value::Array(items) if (1..=MAX_VALUES).contains(&items.len()) => {
            check.all(items.iter().enumerate().map(|(i, item)| scalar(item, &path.index(i))))
        }
        _ => check
            .ok(Err(path.err(format!("must be an array of 1 to {MAX_VALUES} strings, integers, booleans or nulls")))),
    }
}

/// `in` / `not_in`: up to 64 values of the declared type.
fn membership_values(
    value: &Value,
    declared: Option<(FieldType, &str)>,
    path: &Path,
    check: &mut Check<'_>,
) -> Option<Vec<Scalar>> {
    match value {
        Value::Array(items) if items.len() <= MAX_VALUES => {
            check.all(items.iter().enumerate().map(|(i, item)| typed_scalar(item, declared, &path.index(i))))
        }
        _ => check.ok(Err(path.err(format!("must be an array of at most {MAX_VALUES} values")))),
    }
}

fn single_value(value: &Value, declared: Option<(FieldType, &str)>, path: &Path) -> Result<Scalar, FieldError> {
    if value.is_array() {
        return Err(path.err("must be a single value; only `in` and `not_in` take an array"));
    }
    typed_scalar(value, declared, path)
}

/// A scalar of the declared type (any scalar when the declaration is unknown).
fn typed_scalar(value: &Value, declared: Option<(FieldType, &str)>, path: &Path) -> Result<Scalar, FieldError> {
    let scalar = scalar(value, path)?;
    match declared {
        Some((declared, field)) if scalar.field_type() != declared => {
            Err(path.err(format!("must be {}, the declared type of `{field}`", declared.expected())))
        }
        _ => Ok(scalar),
    }
}

fn scalar(value: &Value, path: &Path) -> Result<Scalar, FieldError> {
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

fn integer(value: &Value, min: i64, max: i64, path: &Path) -> Result<i64, FieldError> {
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

fn text<'v>(value: &'v Value, max: usize, path: &Path) -> Result<&'v str, FieldError> {
    let s = value.as_str().ok_or_else(|| path.err("must be a string"))?;
    // Lengths count Unicode scalar values, like Python's `len`.
    if s.is_empty() || s.chars().count() > max {
        return Err(path.err(format!("must be 1 to {max} characters long")));
    }
    no_nul(s, path)?;
    Ok(s)
}

/// [`text`] that names something (an action, agent, rule or approver): no control, separator or
/// invisible format character either ([`ids::forbidden_in_identifier`]).
fn identifier<'v>(value: &'v Value, max: usize, path: &Path) -> Result<&'v str, FieldError> {
    let s = text(value, max, path)?;
    match ids::identifier_problem(s) {
        Some(problem) => Err(path.err(problem)),
        None => Ok(s),
    }
}

fn no_nul(s: &str, path: &Path) -> Result<(), FieldError> {
    if s.contains('\0') {
        return Err(path.err("must not contain a nul character"));
    }
    Ok(())
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn object<'v>(value: &'v Value, path: &Path) -> Result<&'v Map<String, Value>, FieldError> {
    value.as_object().ok_or_else(|| path.err("must be an object"))
}

/// A key that may be left out: `Some(None)` when it is, `None` when it is there but invalid.
fn optional<'v, T>(value: Option<&'v Value>, parse: impl FnOnce(&'v Value) -> Option<T>) -> Option<Option<T>> {
    match value {
        None => Some(None),
        Some(value) => parse(value).map(Some),
    }
}

/// The submitted value of `key`, or its default: the full form keeps what the author wrote.
fn or_default(map: &Map<String, Value>, key: &str, default: impl FnOnce() -> Value) -> Value {
    map.get(key).cloned().unwrap_or_else(default)
}

fn canonical_error(path: &Path, err: &CanonicalError) -> FieldError {
    path.err(format!("cannot be canonicalized: {}", err.0))
}

/// One validation pass over a document: the errors found so far, and the names that must be
/// unique across the whole document. Parsers record an error and return `None` for a value they
/// cannot use; siblings of that value are still checked.
struct Check<'v> {
    errors: Vec<FieldError>,
    unreported: usize,
    /// Action names seen.
    names: HashSet<&'v str>,
    /// `(enabled_executable_id, operation_id)` pairs granted.
    operations: HashSet<(&'v str, &'v str)>,
}

impl<'v> Check<'v> {
    fn new() -> Check<'v> {
        Check { errors: Vec::new(), unreported: 0, names: HashSet::new(), operations: HashSet::new() }
    }

    fn fail(&mut self, error: FieldError) {
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(error);
        } else {
            self.unreported += 1;
        }
    }

    fn ok<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        result.map_err(|error| self.fail(error)).ok()
    }

    /// Every item's value, or `None` after recording the error of each item that has one.
    fn all<T>(&mut self, results: impl IntoIterator<Item = Result<T, FieldError>>) -> Option<Vec<T>> {
        let mut out = Some(Vec::new());
        for result in results {
            match result {
                Ok(value) => {
                    if let Some(out) = out.as_mut() {
                        out.push(value);
                    }
                }
                Err(error) => {
                    self.fail(error);
                    out = None;
                }
            }
        }
        out
    }

    fn count(&self) -> usize {
        self.errors.len() + self.unreported
    }

    fn required<'m>(&mut self, map: &'m Map<String, Value>, key: &str, path: &Path) -> Option<&'m Value> {
        let value = map.get(key);
        if value.is_none() {
            self.fail(path.key(key).err("is required"));
        }
        value
    }

    /// Objects are exact-key: each key not in `allowed` is an error.
    fn unknown_keys(&mut self, map: &Map<String, Value>, allowed: &[&str], path: &Path) {
        for key in map.keys().filter(|key| !allowed.contains(&key.as_str())) {
            self.fail(path.key(key).err("is not a known field"));
        }
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, PolicyError> {
        match value {
            Some(value) if self.errors.is_empty() => Ok(value),
            // A parser returns `None` only after recording why; this is a safety net.
            _ if self.errors.is_empty() => {
                Err(PolicyError::new(vec![FieldError { field: "definition".into(), message: "is invalid".into() }], 0))
            }
            _ => Err(PolicyError::new(self.errors, self.unreported)),
        }
    }
}

/// Where a value sits in the document; rendered (`actions[0].policy.rules`) only on error.
enum Path<'a> {
    /// The document itself, named `name` in errors about the whole of it. Its members are named
    /// from the document (`actions[0]`), or from `name` when it is `nested` in a request
    /// (`definition.actions[0]`).
    Root {
        name: &'static str,
        nested: bool,
    },
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

    fn err(&self, message: impl Into<String>) -> FieldError {
        let field = match self {
            Path::Root { name, .. } => (*name).to_owned(),
            _ => {
                let mut out = String::new();
                self.write_to(&mut out);
                out
            }
        };
        FieldError { field, message: message.into() }
    }

    fn write_to(&self, out: &mut String) {
        match self {
            Path::Root { name, nested } => {
                if *nested {
                    out.push_str(name);
                }
            }
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
