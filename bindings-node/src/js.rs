//! The exported classes and functions. Each returns the JSON envelope of [`crate::convert`]
//! (`{"ok": ...}` or `{"error": ...}`); constructors throw an `Error` whose message is that envelope.

use std::sync::Arc;

use allowly_core::receipt::KeySet;
use napi::bindgen_prelude::{AsyncTask, Env, Result, Status};
use napi::Task;
use napi_derive::napi;

use crate::convert::{self, guarded, Engine};

fn throw(err: &allowly_core::Error) -> napi::Error {
    napi::Error::new(Status::GenericFailure, convert::error_json(err))
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
    pub fn embedded(home: String) -> Result<NativeEngine> {
        let engine = std::panic::catch_unwind(|| Engine::embedded(&home))
            .unwrap_or_else(|_| Err(allowly_core::Error::Store("the engine failed to open".into())))
            .map_err(|err| throw(&err))?;
        Ok(NativeEngine { engine })
    }

    /// A workspace that lives in memory only (tests, examples).
    #[napi(factory)]
    pub fn in_memory() -> Result<NativeEngine> {
        Ok(NativeEngine { engine: Engine::in_memory().map_err(|err| throw(&err))? })
    }

    /// A client of an `allowly serve` runtime; opens no connection until the first call.
    #[napi(factory)]
    pub fn remote(base_url: String, api_key: String, options_json: String) -> Result<NativeEngine> {
        Ok(NativeEngine { engine: Engine::remote(&base_url, &api_key, &options_json).map_err(|err| throw(&err))? })
    }

    /// Whether this is an in-process engine.
    #[napi(getter)]
    pub fn is_embedded(&self) -> bool {
        matches!(self.engine, Engine::Embedded(_))
    }

    /// Runs one `Api` operation off the event loop; resolves with the JSON envelope.
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
    guarded(|| match engine {
        Engine::Embedded(inner) if op == "create_checkpoints" => convert::dispatch_embedded(inner, op),
        _ => convert::dispatch(engine.api(), op, args),
    })
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
    pub fn load(document_json: String) -> Result<NativeKeys> {
        let keys = convert::load_keys(&document_json).map_err(|err| throw(&err))?;
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
