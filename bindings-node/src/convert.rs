//! Conversions between the JSON the JS wrapper sends (the snake_case wire shapes) and the core's
//! [`Api`] calls, and between core errors and the JSON the wrapper turns into typed JS errors.
//! No decision, format or verification logic lives here: every operation is one core call.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use allowly_core::api::Api;
use allowly_core::api::DEFAULT_PAGE_SIZE;
use allowly_core::model::{AuthorizationCreate, CheckRequest, Resolution};
use allowly_core::receipt::{verify_checkpoint, KeySet, Verifier, VerifyError};
use allowly_core::remote::{FallbackMode, RemoteOptions};
use allowly_core::{Allowly, Error, RemoteClient, Timestamp};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// The engine behind one JS `Allowly` object.
#[derive(Clone)]
pub enum Engine {
    Embedded(Arc<Allowly>),
    Remote(Arc<RemoteClient>),
}

impl Engine {
    pub fn api(&self) -> &dyn Api {
        match self {
            Engine::Embedded(engine) => engine.as_ref(),
            Engine::Remote(client) => client.as_ref(),
        }
    }

    pub fn embedded(home: &str) -> Result<Engine, Error> {
        Ok(Engine::Embedded(Arc::new(Allowly::open_embedded(home)?)))
    }

    pub fn in_memory() -> Result<Engine, Error> {
        Ok(Engine::Embedded(Arc::new(Allowly::in_memory()?)))
    }

    /// `options_json`: `{check_timeout_ms?, request_timeout_ms?, fallback_by_action?, workspace_id?,
    /// allow_insecure_http?}`.
    pub fn remote(base_url: &str, api_key: &str, options_json: &str) -> Result<Engine, Error> {
        let args = Args::parse(options_json)?;
        let mut options = RemoteOptions::default();
        if let Some(ms) = args.opt_u64("check_timeout_ms")? {
            options.check_timeout_ms = ms;
        }
        if let Some(ms) = args.opt_u64("request_timeout_ms")? {
            options.request_timeout_ms = ms;
        }
        options.workspace_id = args.opt_string("workspace_id")?;
        options.allow_insecure_http = args.opt_bool("allow_insecure_http")?.unwrap_or(false);
        match args.0.get("fallback_by_action") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (action, mode) in map {
                    let mode = mode.as_str().and_then(FallbackMode::parse).ok_or_else(|| {
                        Error::invalid(format!("fallback_by_action.{action}"), "must be `fail_open` or `fail_closed`")
                    })?;
                    options.fallback_by_action.insert(action.clone(), mode);
                }
            }
            Some(_) => return Err(Error::invalid("fallback_by_action", "must be an object")),
        }
        Ok(Engine::Remote(Arc::new(allowly_core::connect(base_url, api_key, options)?)))
    }
}

/// Runs `work`, turning its result (and any panic) into the JSON envelope the wrapper reads:
/// `{"ok": value}` or `{"error": {...}}`. A panic never crosses into Node.
pub fn guarded(work: impl FnOnce() -> Result<String, Error>) -> String {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(Ok(text)) => text,
        Ok(Err(err)) => error_json(&err),
        Err(_) => internal_error_json(),
    }
}

/// The envelope of a call that panicked.
fn internal_error_json() -> String {
    json!({"error": {"kind": "internal", "code": "internal_error",
        "message": "the engine failed unexpectedly; nothing was returned", "fields": []}})
    .to_string()
}

fn ok<T: Serialize>(value: &T) -> Result<String, Error> {
    let body = serde_json::to_string(value).map_err(|err| Error::Io(format!("cannot encode the answer: {err}")))?;
    Ok(format!("{{\"ok\":{body}}}"))
}

/// The JSON form of a core error: its kind (which JS class), stable code, message, field errors and,
/// the HTTP status `allowly serve` answers with (or did answer), and a remote refusal's `Retry-After`.
pub fn error_json(err: &Error) -> String {
    let kind = match err {
        Error::InvalidRequest { .. } => "invalid_request",
        Error::NotFound { .. } => "not_found",
        Error::Unauthorized { .. } => "unauthorized",
        Error::Conflict { .. } => "conflict",
        Error::Store(_) | Error::OutcomeUnknown(_) | Error::Signing(_) | Error::Io(_) => "engine",
        Error::Verification(_) => "verification",
        Error::Api { .. } => "api",
        Error::Unreachable { .. } => "transport",
    };
    let status = err.http_status();
    let retry_after = match err {
        Error::Api { retry_after_seconds, .. } => *retry_after_seconds,
        _ => None,
    };
    let reference_class = match err {
        Error::Verification(verify) => Some(verify.reference_class()),
        _ => None,
    };
    json!({"error": {
        "kind": kind,
        "code": err.code(),
        "message": err.to_string(),
        "fields": err.fields(),
        "status": status,
        "retry_after_seconds": retry_after,
        "reference_class": reference_class,
    }})
    .to_string()
}

/// The arguments object of one call.
pub struct Args(Map<String, Value>);

impl Args {
    pub fn parse(text: &str) -> Result<Args, Error> {
        match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(Args(map)),
            Ok(_) => Err(Error::invalid("arguments", "must be an object")),
            Err(err) => Err(Error::invalid("arguments", format!("are not valid JSON: {err}"))),
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn string(&self, name: &str) -> Result<String, Error> {
        self.opt_string(name)?.ok_or_else(|| Error::invalid(name, "is required"))
    }

    fn opt_string(&self, name: &str) -> Result<Option<String>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(Error::invalid(name, "must be a string")),
        }
    }

    fn opt_bool(&self, name: &str) -> Result<Option<bool>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(Error::invalid(name, "must be a boolean")),
        }
    }

    fn opt_i64(&self, name: &str) -> Result<Option<i64>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| Error::invalid(name, "must be an integer")),
        }
    }

    fn opt_u64(&self, name: &str) -> Result<Option<u64>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| Error::invalid(name, "must be a non-negative integer")),
        }
    }

    fn limit(&self) -> Result<usize, Error> {
        Ok(self.opt_u64("limit")?.map_or(DEFAULT_PAGE_SIZE, |n| usize::try_from(n).unwrap_or(usize::MAX)))
    }

    fn value(&self, name: &str) -> Value {
        self.get(name).cloned().unwrap_or(Value::Null)
    }

    /// A whole request object, decoded with the core's own (strict) serde rules.
    fn request<T: DeserializeOwned>(&self, name: &str, what: &str) -> Result<T, Error> {
        let value = self.get(name).cloned().unwrap_or_else(|| Value::Object(Map::new()));
        serde_json::from_value(value).map_err(|err| Error::InvalidRequest {
            message: format!("invalid {what} request: {err}"),
            fields: Vec::new(),
        })
    }
}

/// One call of the [`Api`] by name, with its arguments as the wire's JSON.
pub fn dispatch(api: &dyn Api, op: &str, args: &str) -> Result<String, Error> {
    let args = Args::parse(args)?;
    match op {
        "check" => ok(&api.check(&check_request(&args)?)?),
        "create_policy" => ok(&api.create_policy(&args.value("body"))?),
        "publish_policy" => {
            ok(&api.publish_policy(&args.value("body"), args.opt_string("idempotency_key")?.as_deref())?)
        }
        "get_policy" => ok(&api.get_policy(&args.string("policy_id")?)?),
        "list_policies" => ok(&api.list_policies(args.limit()?, args.opt_string("cursor")?.as_deref())?),
        "archive_policy" => {
            api.archive_policy(&args.string("policy_id")?, args.opt_string("idempotency_key")?.as_deref())?;
            ok(&Value::Null)
        }
        "preview_policy" => {
            let context = match args.value("context") {
                Value::Null => json!({}),
                context => context,
            };
            ok(&api.preview_policy(&args.value("definition"), &args.string("action")?, &context)?)
        }
        "create_authorization" => {
            let mut request: AuthorizationCreate = args.request("request", "authorization")?;
            request.idempotency_key = args.opt_string("idempotency_key")?;
            ok(&api.create_authorization(&request)?)
        }
        "revoke_authorization" => ok(&api.revoke_authorization(
            &args.string("authorization_id")?,
            args.opt_string("revoked_by")?.as_deref(),
            args.opt_string("notes")?.as_deref(),
            args.opt_string("idempotency_key")?.as_deref(),
        )?),
        "list_authorizations" => ok(&api.list_authorizations(args.limit()?, args.opt_string("cursor")?.as_deref())?),
        "get_authorization" => ok(&api.get_authorization(&args.string("authorization_id")?)?),
        "resolve_confirmation" => {
            let approved = args.opt_bool("approved")?.ok_or_else(|| Error::invalid("approved", "is required"))?;
            let key = args.opt_string("idempotency_key")?;
            ok(&api.resolve_confirmation(
                &args.string("nonce")?,
                approved,
                args.opt_i64("ttl_seconds")?,
                key.as_deref(),
            )?)
        }
        "confirmation_status" => ok(&api.confirmation_status(&args.string("confirmation_id")?)?),
        "resolve_escalation" => {
            let resolution = match args.string("resolution")?.as_str() {
                "approved" => Resolution::Approved,
                "rejected" => Resolution::Rejected,
                _ => return Err(Error::invalid("resolution", "must be `approved` or `rejected`")),
            };
            ok(&api.resolve_escalation(
                &args.string("escalation_id")?,
                resolution,
                &args.string("resolved_by")?,
                args.opt_string("note")?.as_deref(),
                args.opt_string("idempotency_key")?.as_deref(),
            )?)
        }
        "escalation_status" => ok(&api.escalation_status(&args.string("escalation_id")?)?),
        "settle_budget" => {
            let actual = args
                .opt_i64("actual_cost_micros")?
                .ok_or_else(|| Error::invalid("actual_cost_micros", "is required"))?;
            ok(&api.settle_budget(
                &args.string("check_receipt_id")?,
                actual,
                args.opt_string("idempotency_key")?.as_deref(),
            )?)
        }
        "receipt" => ok(&api.receipt(&args.string("receipt_id")?)?.to_value()),
        "key_document" => ok(&api.key_document()?.to_value()),
        "engine_version" => ok(&api.engine_version()),
        "workspace_id" => ok(&api.workspace_id()),
        "readiness" => ok(&api.readiness()?),
        _ => Err(Error::invalid("op", format!("unknown operation `{op}`"))),
    }
}

fn check_request(args: &Args) -> Result<CheckRequest, Error> {
    let mut request: CheckRequest = args.request("request", "check")?;
    request.idempotency_key = args.opt_string("idempotency_key")?;
    Ok(request)
}

/// Several `check` calls (their arguments as the wire's JSON) through [`Api::check_many`], which
/// an embedded engine commits together; one envelope per call, in order.
pub fn check_many(api: &dyn Api, args: &[&str]) -> Vec<String> {
    // The valid requests go to the engine; each invalid one keeps its error at its place.
    let mut valid = Vec::with_capacity(args.len());
    let refused: Vec<Option<Error>> = args
        .iter()
        .map(|args| match Args::parse(args).and_then(|args| check_request(&args)) {
            Ok(request) => {
                valid.push(request);
                None
            }
            Err(err) => Some(err),
        })
        .collect();
    let Ok(answers) = catch_unwind(AssertUnwindSafe(|| api.check_many(&valid))) else {
        return args.iter().map(|_| internal_error_json()).collect();
    };
    let mut answers = answers.into_iter();
    refused
        .into_iter()
        .map(|refused| {
            guarded(|| {
                if let Some(err) = refused {
                    return Err(err);
                }
                let answer = answers.next().ok_or_else(|| Error::Store("a check was not answered".into()))?;
                ok(&answer?)
            })
        })
        .collect()
}

/// Operations only an in-process engine has (the HTTP API has no equivalent).
pub fn dispatch_embedded(engine: &Allowly, op: &str) -> Result<String, Error> {
    match op {
        "create_checkpoints" => ok(&engine.create_checkpoints()?),
        _ => Err(Error::invalid("op", format!("unknown operation `{op}`"))),
    }
}

/// A parsed key document: its workspace and the keys, as the core's verifier loads them.
pub struct Keys {
    pub workspace_id: String,
    pub keys: Arc<KeySet>,
    pub document: Value,
}

pub fn load_keys(document_json: &str) -> Result<Keys, Error> {
    let document = allowly_core::canonical::parse_document(document_json.as_bytes()).map_err(VerifyError::from)?;
    let (workspace_id, keys) = KeySet::from_document(&document)?;
    Ok(Keys { workspace_id, keys: Arc::new(keys), document })
}

/// `{expected_workspace_id, trusted_key_fingerprints}` → the core verifier.
fn verifier(keys: &KeySet, args: &Args) -> Result<Verifier, Error> {
    let workspace_id = args.string("expected_workspace_id")?;
    let trusted = match args.get("trusted_key_fingerprints") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| Error::invalid("trusted_key_fingerprints", "must be an array of strings"))?,
        _ => return Err(Error::invalid("trusted_key_fingerprints", "is required (an array of strings)")),
    };
    Ok(Verifier::new(keys.clone(), &workspace_id, trusted))
}

/// `verify_receipt`: the receipt as JSON text (parsed strictly by the core), options as JSON.
pub fn verify_receipt(keys: &KeySet, receipt_json: &str, options_json: &str) -> Result<String, Error> {
    let args = Args::parse(options_json)?;
    let verifier = verifier(keys, &args)?;
    ok(&verifier.verify_json(receipt_json.as_bytes(), Timestamp::now())?)
}

/// `verify_checkpoint`: `{checkpoint, members, previous?}` as JSON, options as JSON.
pub fn verify_checkpoint_json(keys: &KeySet, input_json: &str, options_json: &str) -> Result<String, Error> {
    let options = Args::parse(options_json)?;
    let verifier = verifier(keys, &options)?;
    let input = Args::parse(input_json)?;
    let members = match input.get("members") {
        Some(Value::Array(items)) => items.clone(),
        _ => return Err(Error::invalid("members", "must be an array of receipts")),
    };
    let previous = input.get("previous").cloned();
    verify_checkpoint(&verifier, &input.value("checkpoint"), &members, previous.as_ref(), Timestamp::now())?;
    ok(&true)
}
