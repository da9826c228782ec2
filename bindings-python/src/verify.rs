//! The offline verifier: core's `Verifier`, `verify_checkpoint` and `verify_export`, raising the
//! reference verifier's exception classes.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use allowly_core::receipt::{self, KeySet as CoreKeySet, Verifier};
use allowly_core::Timestamp;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value;

use crate::convert::{item_to_value, to_py, to_value, Floats, SharedStrings};
use crate::errors::{schema_error, verify_error};

/// A validated key set, as `load_keys_from_json` returns it (the keys of one document).
#[pyclass(frozen, module = "allowly._native")]
pub struct KeySet {
    keys: CoreKeySet,
    workspace_id: String,
}

#[pymethods]
impl KeySet {
    /// The `workspace_id` the key document names (not a trust anchor: verifiers take it from
    /// their own configuration).
    #[getter]
    fn workspace_id(&self) -> &str {
        &self.workspace_id
    }

    /// `sha256:<hex>` fingerprints, in document order.
    #[getter]
    fn fingerprints(&self) -> Vec<String> {
        self.keys.records().map(|record| receipt::fingerprint(&record.public_key)).collect()
    }

    #[getter]
    fn key_ids(&self) -> Vec<String> {
        self.keys.records().map(|record| record.key_id.clone()).collect()
    }

    fn __len__(&self) -> usize {
        self.keys.len()
    }

    fn __repr__(&self) -> String {
        format!("KeySet(workspace_id={:?}, keys={:?})", self.workspace_id, self.key_ids())
    }
}

fn data(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Value> {
    to_value(obj, name, Floats::Accept).map_err(|err| schema_error(py, err))
}

/// Parses a key document (`GET /v1/workspaces/{id}/keys`) with the reference's rules.
#[pyfunction]
pub fn load_keys_from_json(py: Python<'_>, doc: &Bound<'_, PyAny>) -> PyResult<KeySet> {
    let doc = data(py, doc, "keys document")?;
    match CoreKeySet::from_document(&doc) {
        Ok((workspace_id, keys)) => Ok(KeySet { keys, workspace_id }),
        Err(err) => Err(verify_error(py, &err)),
    }
}

fn verifier(keys: &KeySet, workspace_id: &str, trusted: Option<Vec<String>>) -> Verifier {
    // No trusted set given: every key of the set is trusted (the reference's `None`).
    let trusted: Vec<String> = match trusted {
        Some(trusted) => trusted,
        None => keys.keys.records().map(|record| receipt::fingerprint(&record.public_key)).collect(),
    };
    Verifier::new(keys.keys.clone(), workspace_id, trusted)
}

fn now_of(now_ms: Option<i64>) -> Timestamp {
    now_ms.map(Timestamp::from_millis).unwrap_or_else(Timestamp::now)
}

/// Verifies one receipt; returns its payload or raises the reference's exception class.
#[pyfunction]
#[pyo3(signature = (receipt, keys, expected_workspace_id, trusted_key_fingerprints=None, now_ms=None))]
pub fn verify_receipt<'py>(
    py: Python<'py>,
    receipt: &Bound<'py, PyAny>,
    keys: &KeySet,
    expected_workspace_id: &str,
    trusted_key_fingerprints: Option<Vec<String>>,
    now_ms: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let receipt = data(py, receipt, "receipt")?;
    let verifier = verifier(keys, expected_workspace_id, trusted_key_fingerprints);
    let now = now_of(now_ms);
    // The signature check is tens of microseconds of work: other threads run meanwhile.
    let verdict = py.detach(|| verifier.verify(&receipt, now));
    match verdict {
        Ok(payload) => to_py(py, &payload),
        Err(err) => Err(verify_error(py, &err)),
    }
}

/// Distinct strings shared between the payloads of one `verify_receipts` run of verdicts.
const SHARED_STRINGS: usize = 4096;

/// Verifies many receipts on every core. Returns, per receipt, its payload or the exception (not
/// raised).
#[pyfunction]
#[pyo3(signature = (receipts, keys, expected_workspace_id, trusted_key_fingerprints=None, now_ms=None))]
pub fn verify_receipts<'py>(
    py: Python<'py>,
    receipts: &Bound<'py, PyAny>,
    keys: &KeySet,
    expected_workspace_id: &str,
    trusted_key_fingerprints: Option<Vec<String>>,
    now_ms: Option<i64>,
) -> PyResult<Bound<'py, PyList>> {
    // Receipts that are not JSON data get their `SchemaError` in place now; the others are
    // verified by core, and `positions` says where each one's verdict goes.
    let mut valid = Vec::new();
    let mut positions = Vec::new();
    let mut items = Vec::new();
    for (i, item) in receipts.try_iter()?.enumerate() {
        match item_to_value(&item?, "receipts", i, Floats::Accept) {
            Ok(value) => {
                valid.push(value);
                positions.push(i);
                items.push(py.None());
            }
            Err(err) => items.push(schema_error(py, err).into_value(py).into_any()),
        }
    }
    let out = PyList::new(py, items)?.unbind();
    let verifier = verifier(keys, expected_workspace_id, trusted_key_fingerprints);
    let now = now_of(now_ms);
    // Core's threads verify without the GIL and take it in turn to convert their verdicts, so
    // that converting overlaps verifying.
    let failed = Mutex::new(None);
    py.detach(|| {
        verifier.verify_many_with(&valid, now, |start, verdicts| {
            Python::attach(|py| {
                let out = out.bind(py);
                let mut strings = SharedStrings::new(py, SHARED_STRINGS);
                for (offset, verdict) in verdicts.enumerate() {
                    let item = match verdict {
                        Ok(payload) => strings.object(payload),
                        Err(err) => Ok(verify_error(py, err).into_value(py).into_bound(py).into_any()),
                    };
                    let placed = match positions.get(start + offset) {
                        Some(&index) => item.and_then(|item| out.set_item(index, item)),
                        None => Err(crate::errors::internal("a verdict out of range")),
                    };
                    if let Err(err) = placed {
                        if let Ok(mut first) = failed.lock() {
                            first.get_or_insert(err);
                        }
                        return;
                    }
                }
            })
        })
    });
    match failed.into_inner().unwrap_or_else(PoisonError::into_inner) {
        Some(err) => Err(err),
        None => Ok(out.into_bound(py)),
    }
}

/// Strict decode with schema checks, no signature check (display only).
#[pyfunction]
pub fn decode_receipt<'py>(py: Python<'py>, receipt: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let receipt = data(py, receipt, "receipt")?;
    match py.detach(|| receipt::decode_receipt(&receipt)) {
        Ok(payload) => to_py(py, &payload),
        Err(err) => Err(verify_error(py, &err)),
    }
}

/// Verifies a checkpoint against exactly the presented members (and the previous checkpoint).
#[pyfunction]
#[pyo3(signature = (checkpoint, receipts, keys, expected_workspace_id, previous_checkpoint=None, trusted_key_fingerprints=None, now_ms=None))]
#[allow(clippy::too_many_arguments)]
pub fn verify_checkpoint<'py>(
    py: Python<'py>,
    checkpoint: &Bound<'py, PyAny>,
    receipts: &Bound<'py, PyAny>,
    keys: &KeySet,
    expected_workspace_id: &str,
    previous_checkpoint: Option<&Bound<'py, PyAny>>,
    trusted_key_fingerprints: Option<Vec<String>>,
    now_ms: Option<i64>,
) -> PyResult<()> {
    let checkpoint = data(py, checkpoint, "checkpoint")?;
    let mut members = Vec::new();
    for (i, item) in receipts.try_iter()?.enumerate() {
        members.push(item_to_value(&item?, "receipts", i, Floats::Accept).map_err(|err| schema_error(py, err))?);
    }
    let previous = match previous_checkpoint {
        Some(previous) if !previous.is_none() => Some(data(py, previous, "previous_checkpoint")?),
        _ => None,
    };
    let verifier = verifier(keys, expected_workspace_id, trusted_key_fingerprints);
    let now = now_of(now_ms);
    py.detach(|| receipt::verify_checkpoint(&verifier, &checkpoint, &members, previous.as_ref(), now))
        .map_err(|err| verify_error(py, &err))
}

/// Verifies a JSONL (or .jsonl.gz) export and optional checkpoint evidence like
/// `allowly-receipt-verify --export`. Returns the report as a dict (each line a tuple).
#[pyfunction]
#[pyo3(signature = (export_path, keys, expected_workspace_id, checkpoint_evidence_path=None, trusted_key_fingerprints=None, now_ms=None))]
pub fn verify_export<'py>(
    py: Python<'py>,
    export_path: PathBuf,
    keys: &KeySet,
    expected_workspace_id: &str,
    checkpoint_evidence_path: Option<PathBuf>,
    trusted_key_fingerprints: Option<Vec<String>>,
    now_ms: Option<i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let verifier = verifier(keys, expected_workspace_id, trusted_key_fingerprints);
    let now = now_of(now_ms);
    let report = py
        .detach(|| receipt::verify_export(&verifier, &export_path, checkpoint_evidence_path.as_deref(), now))
        .map_err(|err| pyo3::exceptions::PyOSError::new_err(err.to_string()))?;
    let out = PyDict::new(py);
    let lines = PyList::empty(py);
    // One tuple per line, in `ExportLine`'s field order: cheaper than a dict for every line.
    for line in &report.lines {
        let error = line.error.as_ref().map(|err| verify_error(py, err).into_value(py));
        lines.append((
            line.line,
            line.receipt_id.as_deref(),
            line.label.as_deref(),
            line.decision.as_deref(),
            error,
        ))?;
    }
    out.set_item("lines", lines)?;
    out.set_item("ok", report.ok)?;
    out.set_item("invalid", report.invalid)?;
    let checkpoints = PyList::empty(py);
    for (receipt_id, period_start, members) in &report.checkpoints {
        checkpoints.append((receipt_id.as_str(), period_start.as_str(), *members))?;
    }
    out.set_item("checkpoints", checkpoints)?;
    match &report.evidence_error {
        Some(err) => out.set_item("evidence_error", verify_error(py, err).into_value(py))?,
        None => out.set_item("evidence_error", py.None())?,
    }
    out.set_item("valid", report.is_valid())?;
    Ok(out)
}
