//! The answer of a check: each action's result stays core's `ActionResult` and is converted field
//! by field when read, so a check builds no dicts unless the caller asks for the receipt, budget or
//! policy evaluation (`allowly.types.ActionResult` wraps an `ActionAnswer`).

use allowly_core::model::{ActionResult, CheckResponse, ReceiptEnvelope};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};

use crate::convert::{model_to_py, to_py, to_value, Floats};
use crate::errors::input_error;

/// A check's answer as the arguments of `allowly.types.CheckResponse`: `(authorization_id, user_id,
/// agent_id, authorization_expires_at, engine_version, [(action, ActionAnswer), ...])`, actions in
/// request order. A plain tuple: the fields are read once each, so a class would only cost.
pub type CheckFields =
    (String, Option<String>, Option<String>, Option<String>, String, Vec<(String, Py<ActionAnswer>)>);

pub fn check_fields(py: Python<'_>, answer: CheckResponse) -> PyResult<CheckFields> {
    let results = answer
        .results
        .0
        .into_iter()
        .map(|(action, result)| Ok((action, Py::new(py, ActionAnswer { result })?)))
        .collect::<PyResult<_>>()?;
    Ok((
        answer.authorization_id,
        answer.user_id,
        answer.agent_id,
        answer.authorization_expires_at,
        answer.engine_version,
        results,
    ))
}

/// One action's result. Strings are read directly; the receipt envelope, budget, escalation and
/// policy evaluation become dicts (the HTTP API's JSON shapes) when read.
#[pyclass(frozen, eq, module = "allowly._native")]
#[derive(PartialEq)]
pub struct ActionAnswer {
    result: ActionResult,
}

#[pymethods]
impl ActionAnswer {
    /// An action result from its HTTP API JSON object (`to_dict`'s shape): what `copy` and
    /// `pickle` use, through `__reduce__`.
    #[new]
    fn new(py: Python<'_>, result: &Bound<'_, PyAny>) -> PyResult<ActionAnswer> {
        let value = to_value(result, "result", Floats::Accept).map_err(|err| input_error(py, err))?;
        match serde_json::from_value(value) {
            Ok(result) => Ok(ActionAnswer { result }),
            Err(err) => Err(PyValueError::new_err(format!("not an action result: {err}"))),
        }
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyType>, (Bound<'py, PyDict>,))> {
        Ok((slf.get_type(), (slf.get().to_dict(slf.py())?,)))
    }

    #[getter]
    fn decision(&self) -> &'static str {
        self.result.decision.as_str()
    }

    #[getter]
    fn reason(&self) -> &str {
        &self.result.reason
    }

    #[getter]
    fn is_fallback(&self) -> bool {
        self.result.is_fallback
    }

    #[getter]
    fn fallback_mode(&self) -> Option<&str> {
        self.result.fallback_mode.as_deref()
    }

    /// The receipt envelope (`{"status": "signed", "receipt": {...}}` or the pending one), or `None`.
    #[getter]
    fn receipt<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.result.receipt.as_ref().map(|envelope| envelope_to_py(py, envelope)).transpose()
    }

    #[getter]
    fn budget<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.result.budget.as_ref().map(|budget| model_to_py(py, budget)).transpose()
    }

    #[getter]
    fn escalation<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.result.escalation.as_ref().map(|escalation| model_to_py(py, escalation)).transpose()
    }

    #[getter]
    fn policy_eval<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.result.policy_eval.as_ref().map(|policy_eval| to_py(py, policy_eval)).transpose()
    }

    #[getter]
    fn confirm_nonce(&self) -> Option<&str> {
        self.result.confirm_nonce.as_deref()
    }

    #[getter]
    fn confirm_expires_at(&self) -> Option<&str> {
        self.result.confirm_expires_at.as_deref()
    }

    #[getter]
    fn confirm_prompt_hint(&self) -> Option<&str> {
        self.result.confirm_prompt_hint.as_deref()
    }

    #[getter]
    fn confirmation_id(&self) -> Option<&str> {
        self.result.confirmation_id.as_deref()
    }

    #[getter]
    fn escalation_id(&self) -> Option<&str> {
        self.result.escalation_id.as_deref()
    }

    #[getter]
    fn escalation_to(&self) -> Option<&str> {
        self.result.escalation_to.as_deref()
    }

    #[getter]
    fn escalation_expires_at(&self) -> Option<&str> {
        self.result.escalation_expires_at.as_deref()
    }

    #[getter]
    fn superseded_by(&self) -> Option<&str> {
        self.result.superseded_by.as_deref()
    }

    /// The result as the HTTP API's JSON object (members that are unset on the wire are left out).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let result = &self.result;
        let out = PyDict::new(py);
        out.set_item("decision", result.decision.as_str())?;
        out.set_item("reason", &result.reason)?;
        out.set_item("receipt", self.receipt(py)?)?;
        if result.is_fallback {
            out.set_item("is_fallback", true)?;
        }
        out.set_item("budget", self.budget(py)?)?;
        out.set_item("escalation", self.escalation(py)?)?;
        out.set_item("policy_eval", self.policy_eval(py)?)?;
        for (name, value) in [
            ("receipt_id", &result.receipt_id),
            ("fallback_mode", &result.fallback_mode),
            ("confirm_nonce", &result.confirm_nonce),
            ("confirm_expires_at", &result.confirm_expires_at),
            ("confirm_prompt_hint", &result.confirm_prompt_hint),
            ("confirmation_id", &result.confirmation_id),
            ("escalation_id", &result.escalation_id),
            ("escalation_to", &result.escalation_to),
            ("escalation_expires_at", &result.escalation_expires_at),
            ("superseded_by", &result.superseded_by),
        ] {
            if let Some(value) = value {
                out.set_item(name, value)?;
            }
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!("ActionAnswer(decision={:?}, reason={:?})", self.result.decision.as_str(), self.result.reason)
    }
}

/// A receipt envelope as the HTTP API's JSON object, the signed one built directly (no
/// intermediate `serde_json::Value`).
fn envelope_to_py<'py>(py: Python<'py>, envelope: &ReceiptEnvelope) -> PyResult<Bound<'py, PyAny>> {
    match envelope {
        ReceiptEnvelope::Signed { receipt } => {
            let jws = PyDict::new(py);
            jws.set_item("protected", &receipt.protected)?;
            jws.set_item("payload", &receipt.payload)?;
            jws.set_item("signature", &receipt.signature)?;
            let out = PyDict::new(py);
            out.set_item("status", "signed")?;
            out.set_item("receipt", jws)?;
            Ok(out.into_any())
        }
        pending => model_to_py(py, pending),
    }
}
