//! Conversions between Python objects and runstore values, and from runstore errors to the
//! Python exception hierarchy defined in `python/runstore/_errors.py`.

use std::collections::BTreeMap;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PySequence, PyString, PyTuple,
};

use runstore::{Error, Value};

/// The deepest nesting accepted from Python (a cycle would otherwise recurse forever).
const DEPTH_MAX: usize = 64;

/// A Python object as a [`Value`]: `None`, `bool`, `int`, `float`, `str`, lists, tuples and
/// dicts with string keys; numpy scalars and arrays through `__index__`, `__float__` and
/// `tolist()`.
pub(crate) fn to_value(object: &Bound<'_, PyAny>) -> PyResult<Value> {
    to_value_at(object, 0)
}

fn to_value_at(object: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > DEPTH_MAX {
        return Err(PyTypeError::new_err(format!(
            "value nested deeper than {DEPTH_MAX} levels"
        )));
    }
    if object.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = object.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if object.is_instance_of::<PyInt>() {
        return int_value(object);
    }
    if let Ok(f) = object.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = object.cast::<PyString>() {
        return Ok(Value::Str(s.to_cow()?.into_owned()));
    }
    if let Ok(dict) = object.cast::<PyDict>() {
        let mut map = BTreeMap::new();
        for (key, value) in dict.iter() {
            map.insert(key_string(&key)?, to_value_at(&value, depth + 1)?);
        }
        return Ok(Value::Map(map));
    }
    if object.is_instance_of::<PyList>() || object.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for item in object.try_iter()? {
            items.push(to_value_at(&item?, depth + 1)?);
        }
        return Ok(Value::List(items));
    }
    // numpy scalars and arrays (and anything like them): `tolist()` gives Python values.
    if object.hasattr("tolist")? {
        let list = object.call_method0("tolist")?;
        return to_value_at(&list, depth + 1);
    }
    if let Ok(index) = object.call_method0("__index__") {
        return int_value(&index);
    }
    if object.hasattr("__float__")? {
        return object.extract::<f64>().map(Value::Float);
    }
    if let Ok(mapping) = object.cast::<PyMapping>() {
        let mut map = BTreeMap::new();
        for item in mapping.items()?.try_iter()? {
            let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
            map.insert(key_string(&key)?, to_value_at(&value, depth + 1)?);
        }
        return Ok(Value::Map(map));
    }
    if let Ok(sequence) = object.cast::<PySequence>() {
        let mut items = Vec::new();
        for item in sequence.try_iter()? {
            items.push(to_value_at(&item?, depth + 1)?);
        }
        return Ok(Value::List(items));
    }
    let type_name = object.get_type().name()?;
    Err(PyTypeError::new_err(format!(
        "cannot store a value of type {type_name}: use None, bool, int, float, str, list or dict"
    )))
}

/// A Python int as a [`Value::Int`]; one outside `i64` is `InvalidValue` (a `ValueError`), as
/// the store refuses it from JSON text, never a rounded float.
fn int_value(int: &Bound<'_, PyAny>) -> PyResult<Value> {
    match int.extract::<i64>() {
        Ok(value) => Ok(Value::Int(value)),
        Err(_) => Err(py_err(
            int.py(),
            Error::InvalidValue {
                reason: format!(
                    "integer {} does not fit in i64; write it as a string or a float",
                    int.str()?
                ),
            },
        )),
    }
}

fn key_string(key: &Bound<'_, PyAny>) -> PyResult<String> {
    match key.cast::<PyString>() {
        Ok(s) => Ok(s.to_cow()?.into_owned()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "dict keys must be strings, got {}",
            key.get_type().name()?
        ))),
    }
}

/// A [`Value`] as a Python object (maps become dicts, lists lists).
pub(crate) fn from_value<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::List(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(from_value(py, item)?)?;
            }
            list.into_any()
        }
        Value::Map(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, from_value(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The name of the Python exception class (in `runstore._errors`) for `error`: the base class
/// `Error` for a kind this module does not know yet (`runstore::Error` is non-exhaustive).
fn class_name(error: &Error) -> &'static str {
    match error {
        Error::NotAStore { .. } => "NotAStore",
        Error::UnsupportedVersion { .. } | Error::UnsupportedCatalogVersion { .. } => {
            "UnsupportedVersion"
        }
        Error::Corrupted { .. } => "Corrupted",
        Error::Io { .. } => "IoError",
        Error::Database { .. } => "DatabaseError",
        Error::NeedsRepair { .. } => "NeedsRepair",
        Error::NeedsUpgrade { .. } => "NeedsUpgrade",
        Error::AlreadyOpen { .. } => "AlreadyOpen",
        Error::ReadOnly => "ReadOnly",
        Error::InvalidName { .. } => "InvalidName",
        Error::InvalidUrl { .. } => "InvalidUrl",
        Error::NotFound { .. } => "NotFound",
        Error::AlreadyExists { .. } => "AlreadyExists",
        Error::InvalidStatus { .. } => "InvalidStatus",
        Error::NoActiveRun => "NoActiveRun",
        Error::InvalidInput { .. } => "InvalidInput",
        Error::RowCountMismatch { .. } => "RowCountMismatch",
        Error::SchemaMismatch { .. } => "SchemaMismatch",
        Error::InvalidQuery { .. } | Error::UnknownKey { .. } => "InvalidQuery",
        Error::InvalidValue { .. } => "InvalidValue",
        _ => "Error",
    }
}

/// `error` as an instance of its Python exception class, with the Rust message (and the
/// messages of its sources, joined with ": ").
pub(crate) fn py_err(py: Python<'_>, error: Error) -> PyErr {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if let Error::AlreadyOpen { holder, .. } = &error {
        if *holder == runstore::Holder::ThisProcess {
            message.push_str(
                "; close the other handle first (store.close(), or the end of its with block)",
            );
        }
        message.push_str(
            "; open with read_only=True to read beside the writer, shared=True if every \
             writer opens it shared (a sweep), or timeout=SECONDS to wait for it to close",
        );
    }
    py_error_of_class(py, class_name(&error), message)
}

/// An instance of the class `class` of `runstore._errors` carrying `message`.
pub(crate) fn py_error_of_class(py: Python<'_>, class: &str, message: String) -> PyErr {
    let make = || -> PyResult<PyErr> {
        let module =
            ERRORS.get_or_try_init(py, || py.import("runstore._errors").map(Bound::unbind))?;
        let instance = module.bind(py).getattr(class)?.call1((message.clone(),))?;
        Ok(PyErr::from_value(instance))
    };
    make().unwrap_or_else(|import_error| {
        PyRuntimeError::new_err(format!(
            "{message} (and the error class failed: {import_error})"
        ))
    })
}

/// Extension: `.py(py)?` maps a runstore result to a Python one.
pub(crate) trait IntoPyResult<T> {
    /// The result with a runstore error turned into its Python exception.
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for runstore::Result<T> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|error| py_err(py, error))
    }
}
