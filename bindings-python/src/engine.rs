//! `Engine`: one workspace behind core's `Api` trait, embedded (`Allowly::open_embedded`) or remote
//! (`allowly_core::connect`). Every method converts its arguments, releases the GIL for the engine
//! call, and converts the answer to the HTTP API's JSON shape as Python objects; `check`, the hot
//! path, answers `ActionAnswer`s that convert their fields when read.

use std::collections::HashMap;
use std::sync::Arc;

use allowly_core::api::Api;
use allowly_core::model::{AuthorizationCreate, CheckRequest, Resolution};
use allowly_core::remote::{FallbackMode, RemoteOptions};
use allowly_core::Allowly;
use pyo3::prelude::*;

use crate::answer::{check_fields, CheckFields};
use crate::convert::{model_to_py, to_py, to_value, Floats};
use crate::errors::{config_error, engine_error, input_error};

/// The engine of one workspace; `Send + Sync`, shared freely between threads.
#[pyclass(frozen, module = "allowly._native")]
pub struct Engine {
    api: Arc<dyn Api>,
    remote: bool,
}

fn json_arg(py: Python<'_>, obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<serde_json::Value>> {
    match obj {
        None => Ok(None),
        Some(obj) if obj.is_none() => Ok(None),
        Some(obj) => to_value(obj, name, Floats::Refuse).map(Some).map_err(|err| input_error(py, err)),
    }
}

impl Engine {
    /// Runs `work` on the engine without the GIL and converts its answer.
    fn call<'py, T, F>(&self, py: Python<'py>, work: F) -> PyResult<Bound<'py, PyAny>>
    where
        T: serde::Serialize + Send,
        F: FnOnce(&dyn Api) -> allowly_core::Result<T> + Send,
    {
        let api = self.api.clone();
        let answer = py.detach(move || work(api.as_ref()));
        match answer {
            Ok(value) => model_to_py(py, &value),
            Err(err) => Err(engine_error(py, err)),
        }
    }
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
        match py.detach(move || api.check(&request)) {
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
                let answer = api.check(&request)?;
                samples.push(started.elapsed().as_nanos() as f64 / 1000.0);
                std::hint::black_box(answer);
            }
            Ok::<_, allowly_core::Error>(samples)
        });
        timed.map_err(|err| engine_error(py, err))
    }

    fn create_policy<'py>(&self, py: Python<'py>, body: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let body = json_arg(py, Some(body), "definition")?.unwrap_or_default();
        self.call(py, move |api| api.create_policy(&body))
    }

    #[pyo3(signature = (body, idempotency_key=None))]
    fn publish_policy<'py>(
        &self,
        py: Python<'py>,
        body: &Bound<'py, PyAny>,
        idempotency_key: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let body = json_arg(py, Some(body), "definition")?.unwrap_or_default();
        self.call(py, move |api| api.publish_policy(&body, idempotency_key.as_deref()))
    }

    fn get_policy<'py>(&self, py: Python<'py>, policy_id: String) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, move |api| api.get_policy(&policy_id))
    }

    #[pyo3(signature = (limit, cursor=None))]
    fn list_policies<'py>(&self, py: Python<'py>, limit: usize, cursor: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, move |api| api.list_policies(limit, cursor.as_deref()))
    }

    #[pyo3(signature = (policy_id, idempotency_key=None))]
    fn archive_policy<'py>(
        &self,
        py: Python<'py>,
        policy_id: String,
        idempotency_key: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, move |api| api.archive_policy(&policy_id, idempotency_key.as_deref()))
    }

    fn preview_policy<'py>(
        &self,
        py: Python<'py>,
        definition: &Bound<'py, PyAny>,
        action: String,
        context: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let definition = json_arg(py, Some(definition), "definition")?.unwrap_or_default();
        let context = json_arg(py, Some(context), "context")?.unwrap_or_else(|| serde_json::json!({}));
        self.call(py, move |api| api.preview_policy(&definition, &action, &context))
    }

    #[pyo3(signature = (user_id, policy_id, policy_version=None, actions=None, expires_at=None, budget_limit_micros=None, metadata=None, replaces=None, idempotency_key=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_authorization<'py>(
        &self,
        py: Python<'py>,
        user_id: String,
        policy_id: String,
        policy_version: Option<i64>,
        actions: Option<Vec<String>>,
        expires_at: Option<String>,
        budget_limit_micros: Option<i64>,
        metadata: Option<&Bound<'py, PyAny>>,
        replaces: Option<String>,
        idempotency_key: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = AuthorizationCreate {
            user_id,
            policy_id,
            policy_version,
            actions,
            expires_at,
            budget_limit_micros,
            metadata: json_arg(py, metadata, "metadata")?,
            replaces,
            idempotency_key,
        };
        self.call(py, move |api| api.create_authorization(&request))
    }

    #[pyo3(signature = (authorization_id, revoked_by=None, notes=None, idempotency_key=None))]
    fn revoke_authorization<'py>(
        &self,
        py: Python<'py>,
        authorization_id: String,
        revoked_by: Option<String>,
        notes: Option<String>,
        idempotency_key: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, move |api| {
            api.revoke_authorization(
                &authorization_id,
                revoked_by.as_deref(),
                notes.as_deref(),
                idempotency_key.as_deref(),
            )
        })
    }

    #[pyo3(signature = (limit, cursor=None))]
    fn list_authorizations<'py>(
        &self,
        py: Python<'py>,
        limit: usize,
        cursor: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, move |api| api.list_authorizations(limit, cursor.as_deref()))
    }

    fn get_authorization<'py>(&self, py: Python<'py>, authorization_id: String) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, move |api| api.get_authorization(&authorization_id))
    }

    #[pyo3(signature = (nonce, approved, ttl_seconds=None, idempotency_key=None))]
    fn resolve_confirmation<'py>(
        &self,
        py: Python<'py>,
        nonce: String,
        approved: bool,
        ttl_seconds: Option<i64>,
        idempotency_key: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, move |api| api.resolve_confirmation(&nonce, approved, ttl_seconds, idempotency_key.as_deref()))
    }

    fn confirmation_status<'py>(&self, py: Python<'py>, confirmation_id: String) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, move |api| api.confirmation_status(&confirmation_id))
    }

    #[pyo3(signature = (escalation_id, resolution, resolved_by, note=None))]
    fn resolve_escalation<'py>(
        &self,
        py: Python<'py>,
        escalation_id: String,
        resolution: &str,
        resolved_by: String,
        note: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let resolution = match resolution {
            "approved" => Resolution::Approved,
            "rejected" => Resolution::Rejected,
            other => {
                return Err(config_error(py, format!("invalid `resolution` `{other}`: use `approved` or `rejected`")))
            }
        };
        self.call(py, move |api| {
            api.resolve_escalation(&escalation_id, resolution, &resolved_by, note.as_deref(), None)
        })
    }

    fn escalation_status<'py>(&self, py: Python<'py>, escalation_id: String) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, move |api| api.escalation_status(&escalation_id))
    }

    #[pyo3(signature = (check_receipt_id, actual_cost_micros, idempotency_key=None))]
    fn settle_budget<'py>(
        &self,
        py: Python<'py>,
        check_receipt_id: String,
        actual_cost_micros: i64,
        idempotency_key: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, move |api| api.settle_budget(&check_receipt_id, actual_cost_micros, idempotency_key.as_deref()))
    }

    /// The signed receipt (the JWS object) by id.
    fn receipt<'py>(&self, py: Python<'py>, receipt_id: String) -> PyResult<Bound<'py, PyAny>> {
        let api = self.api.clone();
        match py.detach(move || api.receipt(&receipt_id)) {
            Ok(signed) => to_py(py, &signed.to_value()),
            Err(err) => Err(engine_error(py, err)),
        }
    }

    fn key_document<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.call(py, |api| api.key_document())
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
