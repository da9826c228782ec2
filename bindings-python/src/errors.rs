//! Core errors → the exceptions of `allowly._errors` (defined in Python so that they carry plain
//! attributes and are easy to subclass and pickle). The class of an engine error is one lookup
//! from its kind (`Error::kind()`), made once, in `allowly._errors.error_of`: this file hands over
//! the kind, the stable `code()`, the message, `http_status()`, `fields()` and
//! `retry_after_seconds()`, and never picks a class itself.

use allowly_core::receipt::VerifyError;
use allowly_core::{Error, ErrorKind, FieldError};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyList;

use crate::convert::ConvError;

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn attribute<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let module = ERRORS.get_or_try_init(py, || py.import("allowly._errors").map(Bound::unbind))?;
    module.bind(py).getattr(name)
}

/// Calls `allowly._errors.<name>(*args)` and makes the exception it returns a `PyErr`.
fn raise<'py, A>(py: Python<'py>, name: &str, args: A) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    match attribute(py, name).and_then(|make| make.call1(args)) {
        Ok(instance) => PyErr::from_value(instance),
        Err(err) => err,
    }
}

fn fields_to_py<'py>(py: Python<'py>, fields: &[FieldError]) -> PyResult<Bound<'py, PyList>> {
    let field_class = attribute(py, "FieldError")?;
    let list = PyList::empty(py);
    for field in fields {
        list.append(field_class.call1((field.field.as_str(), field.message.as_str()))?)?;
    }
    Ok(list)
}

/// An engine or remote-client error as a Python exception. An embedded error carries the HTTP
/// status the server answers for the same error (core's `http_status()`), so embedded and remote
/// callers catch the same class with the same `code` and `status`.
pub fn engine_error(py: Python<'_>, err: Error) -> PyErr {
    let fields = match fields_to_py(py, err.fields()) {
        Ok(fields) => fields,
        Err(err) => return err,
    };
    let args = (err.kind().as_str(), err.code(), err.to_string(), err.http_status(), fields, err.retry_after_seconds());
    raise(py, "error_of", args)
}

/// The kind of an error answer a runtime gives with HTTP `status` (core's mapping): the kind of
/// an `AllowlyAPIError` made by hand from a status, as the official client's constructor takes.
#[pyfunction]
pub fn error_kind_of_status(status: i64) -> &'static str {
    u16::try_from(status).map_or(ErrorKind::Protocol, ErrorKind::of_http_status).as_str()
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
