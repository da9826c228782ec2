//! The exported classes. Engine calls resolve with the JSON envelope of
//! [`crate::convert`] (`{"ok": answer}` or `{"error": details}`); what throws synchronously (the
//! constructors, `NativeKeys.load`) throws a JS `Error` built here whose properties are the
//! structured [`ErrorDetails`] (`kind`, `code`, `status`, `fields`, `retryAfterSeconds`,
//! `referenceClass`) and whose message is the human message: no JSON travels in a message.

use std::sync::Arc;

use allowly_core::receipt::KeySet;
use napi::bindgen_prelude::{AsyncTask, Env, JsObjectValue, Result, Status};
use napi::{JsValue, Task};
use napi_derive::napi;

use crate::convert::{self, guarded, Engine, ErrorDetails};

/// One invalid field of a request (a property of a thrown error's `fields`).
#[napi(object)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The JS error a synchronous call throws for `err`.
fn throw(env: &Env, err: &allowly_core::Error) -> napi::Error {
    js_error(env, &ErrorDetails::of(err)).unwrap_or_else(|failure| failure)
}

fn js_error(env: &Env, details: &ErrorDetails) -> Result<napi::Error> {
    let mut error = env.create_error(napi::Error::from_reason(details.message.clone()))?;
    let fields: Vec<FieldError> =
        details.fields.iter().map(|f| FieldError { field: f.field.clone(), message: f.message.clone() }).collect();
    error.set_named_property("kind", details.kind)?;
    error.set_named_property("code", details.code.as_str())?;
    error.set_named_property("status", details.status.map(u32::from))?;
    error.set_named_property("fields", fields)?;
    error.set_named_property("retryAfterSeconds", details.retry_after_seconds)?;
    error.set_named_property("referenceClass", details.reference_class)?;
    Ok(napi::Error::from(error.to_unknown()))
}

/// One workspace: an embedded engine or a remote `allowly serve` runtime.
#[napi]
pub struct NativeEngine {
    engine: Engine,
}

#[napi]
impl NativeEngine {
    /// Opens (creating on first use) the embedded workspace in `home`.
    #[napi(factory)]
    pub fn embedded(env: Env, home: String) -> Result<NativeEngine> {
        let engine = std::panic::catch_unwind(|| Engine::embedded(&home))
            .unwrap_or_else(|_| Err(allowly_core::Error::store("the engine failed to open")))
            .map_err(|err| throw(&env, &err))?;
        Ok(NativeEngine { engine })
    }

    /// A workspace that lives in memory only (tests, examples).
    #[napi(factory)]
    pub fn in_memory(env: Env) -> Result<NativeEngine> {
        Ok(NativeEngine { engine: Engine::in_memory().map_err(|err| throw(&env, &err))? })
    }

    /// A client of an `allowly serve` runtime; opens no connection until the first call.
    #[napi(factory)]
    pub fn remote(env: Env, base_url: String, api_key: String, options_json: String) -> Result<NativeEngine> {
        let engine = Engine::remote(&base_url, &api_key, &options_json).map_err(|err| throw(&env, &err))?;
        Ok(NativeEngine { engine })
    }

    /// The operation catalog (`allowly_core::ops::CATALOG`) as JSON: one route per operation.
    #[napi]
    pub fn catalog_json() -> String {
        convert::catalog_json()
    }

    /// Every error `kind` the core has (`allowly_core::ErrorKind::ALL`), in order.
    #[napi]
    pub fn error_kinds() -> Vec<&'static str> {
        allowly_core::ErrorKind::ALL.iter().map(|kind| kind.as_str()).collect()
    }

    /// Whether this is an in-process engine.
    #[napi(getter)]
    pub fn is_embedded(&self) -> bool {
        matches!(self.engine, Engine::Embedded(_))
    }

    /// Runs one operation off the event loop, by its catalog name (or `engine_version`,
    /// `workspace_id`, `readiness`, `create_checkpoints`) with its arguments as the wire's JSON;
    /// resolves with the JSON envelope.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn call(&self, op: String, args_json: String) -> AsyncTask<Call> {
        AsyncTask::new(Call { engine: self.engine.clone(), op, args: args_json })
    }

    /// Runs several operations in order, as one task off the event loop; resolves with one envelope
    /// per operation. The wrapper batches an embedded engine's calls this way: a thread hand-off
    /// per call costs more than the engine's bookkeeping around a check.
    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn call_many(&self, ops: Vec<String>, args_json: Vec<String>) -> Result<AsyncTask<CallMany>> {
        if ops.len() != args_json.len() {
            return Err(napi::Error::new(Status::InvalidArg, "one argument text per operation"));
        }
        Ok(AsyncTask::new(CallMany { engine: self.engine.clone(), calls: ops.into_iter().zip(args_json).collect() }))
    }
}

fn run(engine: &Engine, op: &str, args: &str) -> String {
    guarded(|| convert::call(engine, op, args))
}

/// The work of [`NativeEngine::call`] on the libuv pool.
pub struct Call {
    engine: Engine,
    op: String,
    args: String,
}

impl Task for Call {
    type Output = String;
    type JsValue = String;

    fn compute(&mut self) -> Result<String> {
        Ok(run(&self.engine, &self.op, &self.args))
    }

    fn resolve(&mut self, _env: Env, output: String) -> Result<String> {
        Ok(output)
    }
}

/// The work of [`NativeEngine::call_many`] on the libuv pool.
pub struct CallMany {
    engine: Engine,
    calls: Vec<(String, String)>,
}

impl Task for CallMany {
    type Output = Vec<String>;
    type JsValue = Vec<String>;

    fn compute(&mut self) -> Result<Vec<String>> {
        let mut answers = Vec::with_capacity(self.calls.len());
        let mut rest = self.calls.as_slice();
        while let Some((op, args)) = rest.first() {
            // Consecutive checks go to the engine as one group (one commit for all of them).
            let checks = rest.iter().take_while(|(op, _)| op == "check").count();
            if checks > 1 {
                let args: Vec<&str> = rest[..checks].iter().map(|(_, args)| args.as_str()).collect();
                answers.extend(convert::check_many(self.engine.api(), &args));
                rest = &rest[checks..];
            } else {
                answers.push(run(&self.engine, op, args));
                rest = &rest[1..];
            }
        }
        Ok(answers)
    }

    fn resolve(&mut self, _env: Env, output: Vec<String>) -> Result<Vec<String>> {
        Ok(output)
    }
}

/// A workspace's public key document, parsed and validated by the core.
#[napi]
pub struct NativeKeys {
    keys: Arc<KeySet>,
    workspace_id: String,
    document: String,
}

#[napi]
impl NativeKeys {
    #[napi(factory)]
    pub fn load(env: Env, document_json: String) -> Result<NativeKeys> {
        let keys = convert::load_keys(&document_json).map_err(|err| throw(&env, &err))?;
        Ok(NativeKeys { keys: keys.keys, workspace_id: keys.workspace_id, document: keys.document.to_string() })
    }

    /// The `workspace_id` the document names (callers compare it with the one they trust).
    #[napi(getter)]
    pub fn workspace_id(&self) -> String {
        self.workspace_id.clone()
    }

    /// The document as loaded, as JSON.
    #[napi]
    pub fn document_json(&self) -> String {
        self.document.clone()
    }

    /// Verifies one receipt (JSON text of the JWS object) off the event loop.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn verify_receipt(&self, receipt_json: String, options_json: String) -> AsyncTask<Verify> {
        AsyncTask::new(Verify {
            keys: self.keys.clone(),
            kind: VerifyKind::Receipt,
            input: receipt_json,
            options: options_json,
        })
    }

    /// Verifies a checkpoint against its members (`{checkpoint, members, previous?}` as JSON).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn verify_checkpoint(&self, input_json: String, options_json: String) -> AsyncTask<Verify> {
        AsyncTask::new(Verify {
            keys: self.keys.clone(),
            kind: VerifyKind::Checkpoint,
            input: input_json,
            options: options_json,
        })
    }
}

pub enum VerifyKind {
    Receipt,
    Checkpoint,
}

pub struct Verify {
    keys: Arc<KeySet>,
    kind: VerifyKind,
    input: String,
    options: String,
}

impl Task for Verify {
    type Output = String;
    type JsValue = String;

    fn compute(&mut self) -> Result<String> {
        let (keys, input, options) = (self.keys.as_ref(), self.input.as_str(), self.options.as_str());
        Ok(match self.kind {
            VerifyKind::Receipt => guarded(|| convert::verify_receipt(keys, input, options)),
            VerifyKind::Checkpoint => guarded(|| convert::verify_checkpoint_json(keys, input, options)),
        })
    }

    fn resolve(&mut self, _env: Env, output: String) -> Result<String> {
        Ok(output)
    }
}
