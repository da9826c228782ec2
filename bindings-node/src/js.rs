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
        let engine = &self.engine;
        let (op, args) = (self.op.as_str(), self.args.as_str());
        Ok(guarded(|| match engine {
            Engine::Embedded(inner) if op == "create_checkpoints" => convert::dispatch_embedded(inner, op),
            _ => convert::dispatch(engine.api(), op, args),
        }))
    }

    fn resolve(&mut self, _env: Env, output: String) -> Result<String> {
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
