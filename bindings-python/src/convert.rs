//! Python objects ⇄ JSON values. Only the JSON data model crosses: `dict` (string keys), `list`,
//! `tuple`, `str`, `int`, `bool`, `None`. Floats are refused on the request path (money and every
//! other number of the API are integers); the verifier accepts them as data so that a malformed
//! receipt gets the same `SchemaError` as in the reference verifier.

use allowly_core::canonical::{Node, Object};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// Nesting bound: deeper input is refused before it can exhaust the stack (core's canonical JSON
/// stops at 32 anyway).
const MAX_DEPTH: usize = 64;

/// Why a Python object is not JSON data, with the path of the offending member.
#[derive(Debug)]
pub struct ConvError {
    pub path: String,
    pub message: String,
}

impl ConvError {
    fn new(message: impl Into<String>) -> ConvError {
        ConvError { path: String::new(), message: message.into() }
    }

    /// The error of a member, seen from its container: the path grows on the way out, so that a
    /// conversion that succeeds never formats one.
    fn under(mut self, step: std::fmt::Arguments<'_>) -> ConvError {
        self.path.insert_str(0, &step.to_string());
        self
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Floats {
    Refuse,
    Accept,
}

/// Converts `obj` (named `name` in error messages) to a JSON value.
pub fn to_value(obj: &Bound<'_, PyAny>, name: &str, floats: Floats) -> Result<Value, ConvError> {
    convert(obj, floats, 0).map_err(|err| err.under(format_args!("{name}")))
}

/// [`to_value`] of the `index`-th item of `name`.
pub fn item_to_value(obj: &Bound<'_, PyAny>, name: &str, index: usize, floats: Floats) -> Result<Value, ConvError> {
    convert(obj, floats, 0).map_err(|err| err.under(format_args!("{name}[{index}]")))
}

fn convert(obj: &Bound<'_, PyAny>, floats: Floats, depth: usize) -> Result<Value, ConvError> {
    if depth > MAX_DEPTH {
        return Err(ConvError::new(format!("nesting deeper than {MAX_DEPTH} levels")));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        let text = s.to_str().map_err(|_| ConvError::new("string is not valid unicode (lone surrogate)"))?;
        return Ok(Value::String(text.to_owned()));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        if let Ok(v) = i.extract::<i64>() {
            return Ok(Value::Number(v.into()));
        }
        if let Ok(v) = i.extract::<u64>() {
            return Ok(Value::Number(v.into()));
        }
        return Err(ConvError::new("integer out of range"));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (key, item) in d.iter() {
            let Ok(key) = key.cast::<PyString>() else {
                return Err(ConvError::new("object keys must be strings"));
            };
            let key = key.to_str().map_err(|_| ConvError::new("key is not valid unicode"))?.to_owned();
            let value = convert(&item, floats, depth + 1).map_err(|err| err.under(format_args!(".{key}")))?;
            map.insert(key, value);
        }
        return Ok(Value::Object(map));
    }
    if let Ok(list) = obj.cast::<PyList>() {
        let mut out = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            out.push(convert(&item, floats, depth + 1).map_err(|err| err.under(format_args!("[{i}]")))?);
        }
        return Ok(Value::Array(out));
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        let mut out = Vec::with_capacity(tuple.len());
        for (i, item) in tuple.iter().enumerate() {
            out.push(convert(&item, floats, depth + 1).map_err(|err| err.under(format_args!("[{i}]")))?);
        }
        return Ok(Value::Array(out));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return match floats {
            Floats::Refuse => Err(ConvError::new("floats are not allowed: use integers (money in micros)")),
            Floats::Accept => Ok(Number::from_f64(f.value()).map(Value::Number).unwrap_or(Value::Null)),
        };
    }
    let type_name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".into());
    Err(ConvError::new(format!("`{type_name}` is not JSON data (dict, list, str, int, bool or None)")))
}

/// Converts a JSON value to Python objects.
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    SharedStrings::new(py, 0).convert(value)
}

/// Converts many JSON values of one kind (the receipts of a workspace) to Python objects. Their
/// keys, and most of their strings (workspace, agent, action, decision, policy...), repeat: each
/// such string becomes one Python string (made and hashed once), shared by every value.
pub struct SharedStrings<'py> {
    py: Python<'py>,
    strings: HashMap<String, Bound<'py, PyString>>,
    /// Distinct strings kept at most: the first ones seen, which include the repeating ones.
    capacity: usize,
}

impl<'py> SharedStrings<'py> {
    pub fn new(py: Python<'py>, capacity: usize) -> SharedStrings<'py> {
        SharedStrings { py, strings: HashMap::new(), capacity }
    }

    fn string(&mut self, text: &str) -> Bound<'py, PyString> {
        if let Some(shared) = self.strings.get(text) {
            return shared.clone();
        }
        let made = PyString::new(self.py, text);
        if self.strings.len() < self.capacity {
            self.strings.insert(text.to_owned(), made.clone());
        }
        made
    }

    pub fn convert(&mut self, value: &Value) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        Ok(match value {
            Value::Null => py.None().into_bound(py),
            Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    i.into_pyobject(py)?.into_any()
                } else if let Some(u) = n.as_u64() {
                    u.into_pyobject(py)?.into_any()
                } else {
                    n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
                }
            }
            Value::String(s) => self.string(s).into_any(),
            Value::Array(items) => {
                let list = PyList::empty(py);
                for item in items {
                    list.append(self.convert(item)?)?;
                }
                list.into_any()
            }
            Value::Object(map) => {
                let dict = PyDict::new(py);
                for (key, item) in map {
                    dict.set_item(self.string(key), self.convert(item)?)?;
                }
                dict.into_any()
            }
        })
    }

    /// A JSON object as core parsed it (a verified payload), members in document order.
    pub fn object(&mut self, object: &Object<'_>) -> PyResult<Bound<'py, PyAny>> {
        let dict = PyDict::new(self.py);
        for (key, item) in object.iter() {
            dict.set_item(self.string(key), self.node(item)?)?;
        }
        Ok(dict.into_any())
    }

    fn node(&mut self, node: &Node<'_>) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        Ok(match node {
            Node::Null => py.None().into_bound(py),
            Node::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
            Node::Int(i) => i.into_pyobject(py)?.into_any(),
            Node::Float(f) => f.into_pyobject(py)?.into_any(),
            Node::Str(s) => self.string(s).into_any(),
            Node::Array(items) => {
                let list = PyList::empty(py);
                for item in items {
                    list.append(self.node(item)?)?;
                }
                list.into_any()
            }
            Node::Object(object) => self.object(object)?,
        })
    }
}

/// Serializes a model type to Python objects through its HTTP JSON shape.
pub fn model_to_py<'py, T: serde::Serialize>(py: Python<'py>, model: &T) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(model)
        .map_err(|err| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot convert the answer: {err}")))?;
    to_py(py, &value)
}
