//! `Engine`: one workspace behind core's `Api` trait, embedded (`Allowly::open_embedded`) or remote
//! (`allowly_core::connect`). Every operation of the catalog (`allowly_core::ops`) goes through the
//! one generic [`Engine::call`]: arguments by operation name, as the HTTP API's JSON, answered with
//! the HTTP API's JSON. `check`, the hot path, has its own method that answers `ActionAnswer`s
//! converting their fields when read. Every engine call releases the GIL.

use std::collections::HashMap;
use std::sync::Arc;

use allowly_core::api::Api;
use allowly_core::model::CheckRequest;
use allowly_core::ops::Request;
use allowly_core::remote::{FallbackMode, RemoteOptions};
use allowly_core::{Allowly, Error};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use serde_json::{Map, Value};

use crate::answer::{check_fields, CheckFields};
use crate::convert::{to_py, to_value, Floats};
use crate::errors::{config_error, engine_error, input_error};

/// The engine of one workspace; `Send + Sync`, shared freely between threads.
#[pyclass(frozen, module = "allowly._native")]
pub struct Engine {
    api: Arc<dyn Api>,
    remote: bool,
}

fn json_arg(py: Python<'_>, obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<Value>> {
    match obj {
        None => Ok(None),
        Some(obj) if obj.is_none() => Ok(None),
        Some(obj) => to_value(obj, name, Floats::Refuse).map(Some).map_err(|err| input_error(py, err)),
    }
}

/// The arguments of an operation given as Python data: a dict (each member converted under its own
/// name, so a type error names `metadata.x`, not `args.metadata.x`) or `None` for none.
fn data_args(py: Python<'_>, args: &Bound<'_, PyAny>) -> PyResult<Value> {
    if args.is_none() {
        return Ok(Value::Object(Map::new()));
    }
    let Ok(members) = args.cast::<PyDict>() else {
        return json_arg(py, Some(args), "args").map(Option::unwrap_or_default);
    };
    let mut out = Map::with_capacity(members.len());
    for (key, item) in members.iter() {
        let Ok(key) = key.cast::<PyString>() else {
            return json_arg(py, Some(args), "args").map(Option::unwrap_or_default);
        };
        let key = key.to_str()?.to_owned();
        let value = to_value(&item, &key, Floats::Refuse).map_err(|err| input_error(py, err))?;
        out.insert(key, value);
    }
    Ok(Value::Object(out))
}

/// One operation of the catalog by name, on `api`: `Request::from_value` → `Api::call` →
/// `Answer::to_value`. Arguments `null` stand for none (`{}`).
fn run(api: &dyn Api, operation: &str, args: Value) -> allowly_core::Result<Value> {
    let args = if args.is_null() { Value::Object(Map::new()) } else { args };
    api.call(Request::from_value(operation, args)?)?.to_value()
}

#[pymethods]
impl Engine {
    /// Opens (creating on first use) the embedded workspace in `home`.
    #[staticmethod]
    fn embedded(py: Python<'_>, home: std::path::PathBuf) -> PyResult<Engine> {
        let opened = py.detach(move || Allowly::open_embedded(&home));
        match opened {
            Ok(engine) => Ok(Engine { api: Arc::new(engine), remote: false }),
            Err(err) => Err(engine_error(py, err)),
        }
    }

    /// A workspace that lives in memory only (tests, benchmarks).
    #[staticmethod]
    fn in_memory(py: Python<'_>) -> PyResult<Engine> {
        match py.detach(Allowly::in_memory) {
            Ok(engine) => Ok(Engine { api: Arc::new(engine), remote: false }),
            Err(err) => Err(engine_error(py, err)),
        }
    }

    /// A client of an `allowly serve` runtime; validates the settings, connects lazily.
    #[staticmethod]
    #[pyo3(signature = (base_url, api_key, check_timeout_ms, request_timeout_ms, fallback_by_action, workspace_id, allow_insecure_http))]
    #[allow(clippy::too_many_arguments)]
    fn remote(
        py: Python<'_>,
        base_url: &str,
        api_key: &str,
        check_timeout_ms: u64,
        request_timeout_ms: u64,
        fallback_by_action: HashMap<String, String>,
        workspace_id: Option<String>,
        allow_insecure_http: bool,
    ) -> PyResult<Engine> {
        let mut fallbacks = HashMap::with_capacity(fallback_by_action.len());
        for (action, mode) in fallback_by_action {
            let Some(parsed) = FallbackMode::parse(&mode) else {
                return Err(config_error(
                    py,
                    format!("invalid fallback mode `{mode}` for `{action}`: use `fail_open` or `fail_closed`"),
                ));
            };
            fallbacks.insert(action, parsed);
        }
        let options = RemoteOptions {
            check_timeout_ms,
            request_timeout_ms,
            fallback_by_action: fallbacks,
            workspace_id,
            allow_insecure_http,
        };
        match allowly_core::connect(base_url, api_key, options) {
            Ok(client) => Ok(Engine { api: Arc::new(client), remote: true }),
            Err(err) => Err(config_error(py, err.to_string())),
        }
    }

    #[getter]
    fn is_remote(&self) -> bool {
        self.remote
    }

    /// Any operation of the catalog (`catalog()`) by name. `args` as JSON text answers JSON text
    /// (exactly the HTTP API's answer body; `null` for the 204 operations); `args` as Python data
    /// (a dict, or `None`) answers Python data. A check that cannot be decided gets the local
    /// fallback, as `check` does.
    fn call<'py>(&self, py: Python<'py>, op: &str, args: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let api = self.api.clone();
        let operation = op.to_owned();
        if let Ok(text) = args.cast::<PyString>() {
            let text = text.to_str()?.to_owned();
            let answer = py.detach(move || {
                let args = serde_json::from_str(&text)
                    .map_err(|err| Error::invalid("args", format!("not a JSON document: {err}")))?;
                let answer = run(api.as_ref(), &operation, args)?;
                serde_json::to_string(&answer)
                    .map_err(|err| Error::internal(format!("cannot encode the answer: {err}")))
            });
            return match answer {
                Ok(json) => Ok(PyString::new(py, &json).into_any()),
                Err(err) => Err(engine_error(py, err)),
            };
        }
        let args = data_args(py, args)?;
        match py.detach(move || run(api.as_ref(), &operation, args)) {
            Ok(answer) => to_py(py, &answer),
            Err(err) => Err(engine_error(py, err)),
        }
    }

    /// The hot path of `call("check", ...)`: the same check, without building the answer's dicts.
    #[pyo3(signature = (authorization_id, actions, resource=None, session_id=None, estimated_cost_micros=None, context=None, idempotency_key=None, client_timestamp=None))]
    #[allow(clippy::too_many_arguments)]
    fn check<'py>(
        &self,
        py: Python<'py>,
        authorization_id: String,
        actions: Vec<String>,
        resource: Option<String>,
        session_id: Option<String>,
        estimated_cost_micros: Option<i64>,
        context: Option<&Bound<'py, PyAny>>,
        idempotency_key: Option<String>,
        client_timestamp: Option<String>,
    ) -> PyResult<CheckFields> {
        let request = CheckRequest {
            authorization_id,
            actions,
            resource,
            session_id,
            estimated_cost_micros,
            context: json_arg(py, context, "context")?,
            client_timestamp,
            idempotency_key,
        };
        let api = self.api.clone();
        match py.detach(move || api.check_or_fallback(&request)) {
            Ok(answer) => check_fields(py, answer),
            Err(err) => Err(engine_error(py, err)),
        }
    }

    /// Benchmark support (scripts/python-bench.sh): the same check as `check`, made `calls` times
    /// from Rust on this engine, with the GIL released; returns each call's duration in µs. The
    /// Rust baseline of "embedded check from Python", measured in the same process and engine.
    #[pyo3(signature = (authorization_id, actions, context, calls))]
    fn _bench_rust_check<'py>(
        &self,
        py: Python<'py>,
        authorization_id: String,
        actions: Vec<String>,
        context: Option<&Bound<'py, PyAny>>,
        calls: usize,
    ) -> PyResult<Vec<f64>> {
        let request = CheckRequest {
            authorization_id,
            actions,
            context: json_arg(py, context, "context")?,
            ..Default::default()
        };
        let api = self.api.clone();
        let timed = py.detach(move || {
            let mut samples = Vec::with_capacity(calls);
            for _ in 0..calls {
                let started = std::time::Instant::now();
                let answer = api.check_or_fallback(&request)?;
                samples.push(started.elapsed().as_nanos() as f64 / 1000.0);
                std::hint::black_box(answer);
            }
            Ok::<_, allowly_core::Error>(samples)
        });
        timed.map_err(|err| engine_error(py, err))
    }

    fn engine_version(&self) -> Option<String> {
        self.api.engine_version()
    }

    fn workspace_id(&self) -> Option<String> {
        self.api.workspace_id()
    }

    fn readiness(&self, py: Python<'_>) -> PyResult<bool> {
        let api = self.api.clone();
        py.detach(move || api.readiness()).map_err(|err| engine_error(py, err))
    }
}

/// The operation catalog (`allowly_core::ops::CATALOG`) as JSON: one object per operation, with
/// its HTTP route, access, idempotency, body and success status.
#[pyfunction]
pub fn catalog() -> PyResult<String> {
    serde_json::to_string(allowly_core::ops::CATALOG)
        .map_err(|err| crate::errors::internal(format!("cannot encode the catalog: {err}")))
}

/// Registered with `os.register_at_fork` (`allowly/sync.py`): a child forked while the engine's
/// background thread works must not inherit it mid-call (`allowly_core::store::before_fork`).
#[pyfunction]
pub fn before_fork() {
    allowly_core::store::before_fork();
}

#[pyfunction]
pub fn after_fork_in_parent() {
    allowly_core::store::after_fork_in_parent();
}

#[pyfunction]
pub fn after_fork_in_child() {
    allowly_core::store::after_fork_in_child();
}
