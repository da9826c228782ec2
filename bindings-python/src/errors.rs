//! Core errors → the typed Python exceptions of `allowly._errors` (defined in Python so that they
//! carry plain attributes and are easy to subclass and pickle). Every core error code reaches
//! Python as `exc.code`; nothing is flattened to a string.

use allowly_core::receipt::VerifyError;
use allowly_core::{Error, FieldError};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyList;

use crate::convert::ConvError;

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let module = ERRORS.get_or_try_init(py, || py.import("allowly._errors").map(Bound::unbind))?;
    module.bind(py).getattr(name)
}

/// Instantiates `allowly._errors.<name>(*args)` as a `PyErr`.
fn raise<'py, A>(py: Python<'py>, name: &str, args: A) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    match class(py, name).and_then(|cls| cls.call1(args)) {
        Ok(instance) => PyErr::from_value(instance),
        Err(err) => err,
    }
}

fn fields_to_py<'py>(py: Python<'py>, fields: &[FieldError]) -> PyResult<Bound<'py, PyList>> {
    let field_class = class(py, "FieldError")?;
    let list = PyList::empty(py);
    for field in fields {
        list.append(field_class.call1((field.field.as_str(), field.message.as_str()))?)?;
    }
    Ok(list)
}

fn api_error(
    py: Python<'_>,
    status: u16,
    code: &str,
    message: &str,
    fields: &[FieldError],
    retry_after_seconds: Option<f64>,
) -> PyErr {
    let fields = match fields_to_py(py, fields) {
        Ok(fields) => fields,
        Err(err) => return err,
    };
    raise(py, "AllowlyAPIError", (status, code, message, fields, retry_after_seconds))
}

/// An engine or remote-client error as a Python exception. Embedded errors get the HTTP status the
/// server answers for the same error, so embedded and remote callers catch the same thing.
pub fn engine_error(py: Python<'_>, err: Error) -> PyErr {
    let code = err.code().to_string();
    let message = err.to_string();
    match &err {
        Error::Api { status, code, message, fields, retry_after_seconds } => {
            api_error(py, *status, code, message, fields, *retry_after_seconds)
        }
        Error::Unreachable { code: "timeout", .. } => raise(py, "AllowlyTimeoutError", (code, message)),
        Error::Unreachable { code: "protocol_error", .. } => raise(py, "AllowlyProtocolError", (code, message)),
        Error::Unreachable { .. } => raise(py, "AllowlyConnectionError", (code, message)),
        // The server answers a store failure with `Retry-After: 1`.
        embedded => {
            let retry_after = matches!(embedded, Error::Store(_) | Error::OutcomeUnknown(_)).then_some(1.0);
            let status = embedded.http_status().unwrap_or(500);
            api_error(py, status, &code, &message, embedded.fields(), retry_after)
        }
    }
}

/// A verification failure as the reference verifier's exception class (`SchemaError`, ...).
pub fn verify_error(py: Python<'_>, err: &VerifyError) -> PyErr {
    raise(py, err.reference_class(), (err.to_string(), err.code()))
}

/// Request data that is not JSON (or has a float): `AllowlyTypeError`, a `TypeError`.
pub fn input_error(py: Python<'_>, err: ConvError) -> PyErr {
    raise(py, "AllowlyTypeError", (format!("invalid `{}`: {}", err.path, err.message), err.path))
}

/// Data handed to the verifier that is not JSON: a `SchemaError`, as the reference raises.
pub fn schema_error(py: Python<'_>, err: ConvError) -> PyErr {
    raise(py, "SchemaError", (format!("invalid `{}`: {}", err.path, err.message), "schema_error"))
}

/// A setting the client cannot use (`ValueError`).
pub fn config_error(py: Python<'_>, message: String) -> PyErr {
    raise(py, "AllowlyConfigError", (message,))
}

pub fn internal(message: impl Into<String>) -> PyErr {
    PyRuntimeError::new_err(message.into())
}
