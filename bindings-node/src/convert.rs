//! Conversions only. A call arrives as an operation name of the catalog (`allowly_core::ops`) and
//! its arguments as the wire's JSON; it becomes one [`Request::from_value`], one [`Api::call`] and
//! one [`Answer`] JSON, for every operation alike. A core error becomes [`ErrorDetails`], which the
//! JS wrapper maps to its error classes by `kind`. What stays here is what only a binding has: the
//! grouping of an embedded engine's checks (`check_many`), the offline verifier, the embedded-only
//! checkpoints and the [`Api`] methods beside `call`.
//!
//! [`Answer`]: allowly_core::ops::Answer

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use allowly_core::api::Api;
use allowly_core::model::CheckRequest;
use allowly_core::ops::{self, Request};
use allowly_core::receipt::{verify_checkpoint, KeySet, Verifier, VerifyError};
use allowly_core::remote::{FallbackMode, RemoteOptions};
use allowly_core::{Allowly, Error, FieldError, RemoteClient, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value};

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
        match args.get("fallback_by_action") {
            None => {}
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

// -------------------------------------------------------------------------------------------------
// Errors

/// A core error as the wrapper reads it (camelCase, like the properties of its JS errors): `kind`
/// picks the JS class, `code` is the stable machine code, `status` the HTTP status `allowly serve`
/// answers with (or did answer; absent for a runtime that never answered).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetails {
    pub kind: &'static str,
    pub code: String,
    pub message: String,
    pub status: Option<u16>,
    pub fields: Vec<FieldError>,
    pub retry_after_seconds: Option<f64>,
    /// A verification failure's class in the reference verifier (`SchemaError`, ...).
    pub reference_class: Option<&'static str>,
}

impl ErrorDetails {
    pub fn of(err: &Error) -> ErrorDetails {
        ErrorDetails {
            kind: err.kind().as_str(),
            code: err.code().to_string(),
            message: err.to_string(),
            status: err.http_status(),
            fields: err.fields().to_vec(),
            retry_after_seconds: err.retry_after_seconds(),
            reference_class: match err {
                Error::Verification(verify) => Some(verify.reference_class()),
                _ => None,
            },
        }
    }

    /// The details of a call that panicked (a bug: the panic never crosses into Node).
    pub fn panicked() -> ErrorDetails {
        ErrorDetails::of(&Error::internal("the engine failed unexpectedly; nothing was returned"))
    }
}

/// The envelope of a failed call.
fn error_envelope(details: &ErrorDetails) -> String {
    let body = serde_json::to_string(details).unwrap_or_else(|_| {
        r#"{"kind":"internal","code":"internal_error","message":"an error could not be encoded","fields":[]}"#.into()
    });
    format!("{{\"error\":{body}}}")
}

/// Runs `work`, turning its result (and any panic) into the JSON envelope the wrapper reads:
/// `{"ok": answer}` or `{"error": ErrorDetails}`. Never an `Error` whose message holds JSON.
pub fn guarded(work: impl FnOnce() -> Result<String, Error>) -> String {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(Ok(text)) => text,
        Ok(Err(err)) => error_envelope(&ErrorDetails::of(&err)),
        Err(_) => error_envelope(&ErrorDetails::panicked()),
    }
}

fn ok<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let body =
        serde_json::to_string(value).map_err(|err| Error::internal(format!("cannot encode the answer: {err}")))?;
    Ok(format!("{{\"ok\":{body}}}"))
}

// -------------------------------------------------------------------------------------------------
// Operations

/// The catalog's routes, as JSON (`ops::CATALOG`).
pub fn catalog_json() -> String {
    serde_json::to_string(ops::CATALOG).unwrap_or_else(|_| "[]".into())
}

/// The arguments of one call: a JSON object.
fn parse_args(text: &str) -> Result<Value, Error> {
    match serde_json::from_str(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(Error::invalid("arguments", "must be an object")),
        Err(err) => Err(Error::invalid("arguments", format!("are not valid JSON: {err}"))),
    }
}

/// One call by name: an operation of the catalog (through [`Api::call`], so a check that cannot be
/// decided gets the SDK's fallback), or one of the binding's own operations.
pub fn call(engine: &Engine, op: &str, args: &str) -> Result<String, Error> {
    let api = engine.api();
    match op {
        // The `Api` methods beside the catalog.
        "engine_version" => ok(&api.engine_version()),
        "workspace_id" => ok(&api.workspace_id()),
        "readiness" => ok(&api.readiness()?),
        // Only an in-process engine signs checkpoints on request (the HTTP API has no equivalent).
        "create_checkpoints" => match engine {
            Engine::Embedded(engine) => ok(&engine.create_checkpoints()?),
            Engine::Remote(_) => Err(Error::invalid(
                "operation",
                "checkpoints are created by the runtime itself, not through its HTTP API",
            )),
        },
        _ => ok(&api.call(Request::from_value(op, parse_args(args)?)?)?),
    }
}

fn check_request(args: &str) -> Result<CheckRequest, Error> {
    ops::decode(parse_args(args)?)
}

/// Several `check` calls (their arguments as the wire's JSON) through
/// [`Api::check_many_or_fallback`], which an embedded engine commits together; one envelope per
/// call, in order.
pub fn check_many(api: &dyn Api, args: &[&str]) -> Vec<String> {
    // The valid requests go to the engine; each invalid one keeps its error at its place.
    let mut valid = Vec::with_capacity(args.len());
    let refused: Vec<Option<Error>> = args
        .iter()
        .map(|args| match check_request(args) {
            Ok(request) => {
                valid.push(request);
                None
            }
            Err(err) => Some(err),
        })
        .collect();
    let Ok(answers) = catch_unwind(AssertUnwindSafe(|| api.check_many_or_fallback(&valid))) else {
        return args.iter().map(|_| error_envelope(&ErrorDetails::panicked())).collect();
    };
    let mut answers = answers.into_iter();
    refused
        .into_iter()
        .map(|refused| {
            guarded(|| {
                if let Some(err) = refused {
                    return Err(err);
                }
                let answer = answers.next().ok_or_else(|| Error::internal("a check was not answered"))?;
                ok(&answer?)
            })
        })
        .collect()
}

// -------------------------------------------------------------------------------------------------
// Verification (offline)

/// The options of a verification or of a remote client: a JSON object.
pub struct Args(Map<String, Value>);

impl Args {
    pub fn parse(text: &str) -> Result<Args, Error> {
        match parse_args(text)? {
            Value::Object(map) => Ok(Args(map)),
            _ => Err(Error::invalid("arguments", "must be an object")),
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

    fn opt_u64(&self, name: &str) -> Result<Option<u64>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| Error::invalid(name, "must be a non-negative integer")),
        }
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
    let checkpoint = input.get("checkpoint").cloned().unwrap_or(Value::Null);
    let previous = input.get("previous").cloned();
    verify_checkpoint(&verifier, &checkpoint, &members, previous.as_ref(), Timestamp::now())?;
    ok(&true)
}
