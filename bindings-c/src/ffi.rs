//! The boundary: panic guard, thread-local last error, C strings in and out, error mapping.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use allowly_core::receipt::VerifyError;
use allowly_core::remote::RemoteError;
use allowly_core::Error;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::allowly_result;
use crate::allowly_result::*;

/// A failed call: the result code, the engine's stable string code and a message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) result: allowly_result,
    pub(crate) code: String,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(result: allowly_result, code: &str, message: impl Into<String>) -> Failure {
        Failure { result, code: code.to_string(), message: message.into() }
    }

    pub(crate) fn null(name: &str) -> Failure {
        Failure::new(ALLOWLY_RESULT_NULL_PARAMETER, "null_parameter", format!("`{name}` must not be NULL"))
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        let result = match &err {
            Error::InvalidRequest { .. } => ALLOWLY_RESULT_INVALID_REQUEST,
            Error::NotFound { .. } => ALLOWLY_RESULT_NOT_FOUND,
            Error::Unauthorized { .. } => ALLOWLY_RESULT_UNAUTHORIZED,
            Error::Conflict { .. } => ALLOWLY_RESULT_CONFLICT,
            Error::Store(_) | Error::OutcomeUnknown(_) => ALLOWLY_RESULT_STORE_UNAVAILABLE,
            Error::Signing(_) => ALLOWLY_RESULT_SIGNING_FAILED,
            Error::Verification(verify) => verify_result(verify),
            Error::Api { status, .. } => match status {
                400 | 413 | 422 => ALLOWLY_RESULT_INVALID_REQUEST,
                401 | 403 => ALLOWLY_RESULT_UNAUTHORIZED,
                404 => ALLOWLY_RESULT_NOT_FOUND,
                409 => ALLOWLY_RESULT_CONFLICT,
                429 => ALLOWLY_RESULT_RATE_LIMITED,
                _ => ALLOWLY_RESULT_API_ERROR,
            },
            Error::Unreachable { code, .. } => match *code {
                "timeout" => ALLOWLY_RESULT_TIMEOUT,
                "unreachable" => ALLOWLY_RESULT_UNREACHABLE,
                _ => ALLOWLY_RESULT_PROTOCOL_ERROR,
            },
            Error::Io(_) => ALLOWLY_RESULT_IO_ERROR,
        };
        Failure::new(result, err.code(), err.to_string())
    }
}

impl From<RemoteError> for Failure {
    fn from(err: RemoteError) -> Failure {
        Failure::from(Error::from(err))
    }
}

impl From<VerifyError> for Failure {
    fn from(err: VerifyError) -> Failure {
        Failure::new(verify_result(&err), err.code(), err.to_string())
    }
}

pub(crate) fn verify_result(err: &VerifyError) -> allowly_result {
    match err {
        VerifyError::Schema(_) => ALLOWLY_RESULT_VERIFY_SCHEMA,
        VerifyError::UnknownKey(_) => ALLOWLY_RESULT_VERIFY_UNKNOWN_KEY,
        VerifyError::KeyOutsideWindow(_) => ALLOWLY_RESULT_VERIFY_KEY_OUTSIDE_WINDOW,
        VerifyError::UntrustedKey(_) => ALLOWLY_RESULT_VERIFY_UNTRUSTED_KEY,
        VerifyError::SignatureMismatch(_) => ALLOWLY_RESULT_VERIFY_SIGNATURE_MISMATCH,
        VerifyError::Checkpoint(_) => ALLOWLY_RESULT_VERIFY_CHECKPOINT_MISMATCH,
    }
}

// ---------------------------------------------------------------------------------------------
// Last error, per thread

struct LastError {
    code: CString,
    message: CString,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> = RefCell::new(LastError { code: CString::default(), message: CString::default() });
}

/// A C string of `text`, with any NUL byte (never expected in messages) replaced.
fn c_string_lossy(text: &str) -> CString {
    CString::new(text.replace('\0', "\u{fffd}")).unwrap_or_default()
}

fn set_last_error(failure: &Failure) {
    // `try_with`: during thread teardown the slot may be gone; the result code still tells.
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            slot.code = c_string_lossy(&failure.code);
            slot.message = c_string_lossy(&failure.message);
        }
    });
}

/// Runs an exported function's body: catches any panic (reported as
/// `ALLOWLY_RESULT_INTERNAL_ERROR`), records failures as the thread's last error.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> allowly_result {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return ALLOWLY_RESULT_OK,
        Ok(Err(failure)) => failure,
        Err(_) => {
            Failure::new(ALLOWLY_RESULT_INTERNAL_ERROR, "internal_error", "internal error caught at the C boundary")
        }
    };
    set_last_error(&failure);
    failure.result
}

/// The message of the most recent failed `allowly_` call on the calling thread (lowercase, for
/// people; may change between versions), or `""` if none failed yet. The pointer stays valid until
/// the next failing `allowly_` call on the same thread; never free it.
#[no_mangle]
pub extern "C" fn allowly_last_error_message() -> *const c_char {
    catch_unwind(|| LAST_ERROR.try_with(|slot| slot.try_borrow().map(|s| s.message.as_ptr()).ok()).ok().flatten())
        .ok()
        .flatten()
        .unwrap_or(c"".as_ptr())
}

/// The stable machine code of the most recent failed `allowly_` call on the calling thread, as
/// the engine and the HTTP API name it (e.g. `"authorization_not_found"`, `"rate_limited"`,
/// `"signature_mismatch"`), or `""` if none failed yet. Same lifetime as
/// `allowly_last_error_message()`; never free it.
#[no_mangle]
pub extern "C" fn allowly_last_error_code() -> *const c_char {
    catch_unwind(|| LAST_ERROR.try_with(|slot| slot.try_borrow().map(|s| s.code.as_ptr()).ok()).ok().flatten())
        .ok()
        .flatten()
        .unwrap_or(c"".as_ptr())
}

/// The name of a result code, e.g. `"ALLOWLY_RESULT_NOT_FOUND"`: a static string; never free it.
/// Unknown values give `"ALLOWLY_RESULT_UNKNOWN"`.
#[no_mangle]
pub extern "C" fn allowly_result_name(result: u32) -> *const c_char {
    let name: &'static CStr = match result {
        0 => c"ALLOWLY_RESULT_OK",
        1 => c"ALLOWLY_RESULT_NULL_PARAMETER",
        2 => c"ALLOWLY_RESULT_INVALID_UTF8",
        3 => c"ALLOWLY_RESULT_INVALID_JSON",
        4 => c"ALLOWLY_RESULT_INVALID_REQUEST",
        5 => c"ALLOWLY_RESULT_NOT_FOUND",
        6 => c"ALLOWLY_RESULT_UNAUTHORIZED",
        7 => c"ALLOWLY_RESULT_CONFLICT",
        8 => c"ALLOWLY_RESULT_RATE_LIMITED",
        9 => c"ALLOWLY_RESULT_API_ERROR",
        10 => c"ALLOWLY_RESULT_TIMEOUT",
        11 => c"ALLOWLY_RESULT_UNREACHABLE",
        12 => c"ALLOWLY_RESULT_PROTOCOL_ERROR",
        13 => c"ALLOWLY_RESULT_STORE_UNAVAILABLE",
        14 => c"ALLOWLY_RESULT_SIGNING_FAILED",
        15 => c"ALLOWLY_RESULT_IO_ERROR",
        16 => c"ALLOWLY_RESULT_CLOSED",
        17 => c"ALLOWLY_RESULT_INTERNAL_ERROR",
        100 => c"ALLOWLY_RESULT_VERIFY_SCHEMA",
        101 => c"ALLOWLY_RESULT_VERIFY_UNKNOWN_KEY",
        102 => c"ALLOWLY_RESULT_VERIFY_KEY_OUTSIDE_WINDOW",
        103 => c"ALLOWLY_RESULT_VERIFY_UNTRUSTED_KEY",
        104 => c"ALLOWLY_RESULT_VERIFY_SIGNATURE_MISMATCH",
        105 => c"ALLOWLY_RESULT_VERIFY_CHECKPOINT_MISMATCH",
        _ => c"ALLOWLY_RESULT_UNKNOWN",
    };
    name.as_ptr()
}

// ---------------------------------------------------------------------------------------------
// Strings and buffers in

/// A required NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid for `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: non-NULL and NUL-terminated per this function's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes)
        .map_err(|_| Failure::new(ALLOWLY_RESULT_INVALID_UTF8, "invalid_utf8", format!("`{name}` is not valid UTF-8")))
}

/// An optional NUL-terminated UTF-8 string argument (NULL = absent).
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { str_arg(ptr, name) }.map(Some)
}

/// A required byte buffer (`ptr`, `len`).
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes that stay valid for `'a`.
pub(crate) unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    if len > isize::MAX as usize {
        return Err(Failure::new(ALLOWLY_RESULT_INVALID_REQUEST, "invalid_request", format!("`{name}` is too long")));
    }
    // SAFETY: non-NULL, `len` readable bytes per this function's contract, `len` <= isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Parses a JSON document argument as the HTTP runtime parses a body: not JSON (or not UTF-8)
/// → `INVALID_JSON`; duplicate member names or values out of the canonical limits → `INVALID_REQUEST`.
pub(crate) fn json_value(bytes: &[u8], name: &str) -> Result<Value, Failure> {
    let value: Value = serde_json::from_slice(bytes).map_err(|err| {
        Failure::new(ALLOWLY_RESULT_INVALID_JSON, "malformed_json", format!("`{name}` is not JSON: {err}"))
    })?;
    allowly_core::canonical::parse_document(bytes).map_err(|err| {
        Failure::new(ALLOWLY_RESULT_INVALID_REQUEST, "invalid_request", format!("invalid `{name}`: {err}"))
    })?;
    Ok(value)
}

/// A JSON argument of a request type: not JSON → `INVALID_JSON`; the wrong shape, duplicate
/// member names or values out of the canonical limits → `INVALID_REQUEST`.
pub(crate) fn json_arg<T: DeserializeOwned>(bytes: &[u8], name: &str) -> Result<T, Failure> {
    let value: T = serde_json::from_slice(bytes).map_err(|err| {
        // A shape error may be met before a syntax error further on: only JSON text of the wrong
        // shape is an invalid request.
        match serde_json::from_slice::<Value>(bytes) {
            Ok(_) => {
                Failure::new(ALLOWLY_RESULT_INVALID_REQUEST, "invalid_request", format!("invalid `{name}`: {err}"))
            }
            Err(syntax) => {
                Failure::new(ALLOWLY_RESULT_INVALID_JSON, "malformed_json", format!("`{name}` is not JSON: {syntax}"))
            }
        }
    })?;
    allowly_core::canonical::parse_document(bytes).map_err(|err| {
        Failure::new(ALLOWLY_RESULT_INVALID_REQUEST, "invalid_request", format!("invalid `{name}`: {err}"))
    })?;
    Ok(value)
}

// ---------------------------------------------------------------------------------------------
// Strings out

/// A string for C, to be freed with `allowly_string_free()`.
pub(crate) fn c_string(text: String) -> Result<CString, Failure> {
    CString::new(text).map_err(|_| {
        Failure::new(ALLOWLY_RESULT_INTERNAL_ERROR, "internal_error", "an output string contains a NUL byte")
    })
}

/// Writes `text` to an optional `char **` output (NULL = not wanted).
///
/// # Safety
/// `out` is NULL or valid for a write of one pointer.
pub(crate) unsafe fn write_string(out: *mut *mut c_char, text: String) -> Result<(), Failure> {
    if out.is_null() {
        return Ok(());
    }
    let raw = c_string(text)?.into_raw();
    // SAFETY: non-NULL and writable per this function's contract.
    unsafe { *out = raw };
    Ok(())
}

/// Writes the JSON text of `value` to an optional `char **` output (NULL = not wanted), encoded
/// straight into one NUL-terminated buffer (a check answer is a few KiB).
///
/// # Safety
/// `out` is NULL or valid for a write of one pointer.
pub(crate) unsafe fn write_json<T: serde::Serialize>(out: *mut *mut c_char, value: &T) -> Result<(), Failure> {
    if out.is_null() {
        return Ok(());
    }
    let mut buffer = Vec::with_capacity(4096);
    serde_json::to_writer(&mut buffer, value).map_err(|err| {
        Failure::new(ALLOWLY_RESULT_INTERNAL_ERROR, "internal_error", format!("cannot encode the answer: {err}"))
    })?;
    buffer.push(0);
    let text = CString::from_vec_with_nul(buffer).map_err(|_| {
        Failure::new(ALLOWLY_RESULT_INTERNAL_ERROR, "internal_error", "an output string contains a NUL byte")
    })?;
    // SAFETY: non-NULL and writable per this function's contract.
    unsafe { *out = text.into_raw() };
    Ok(())
}

/// JSON text of a response.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string(value).map_err(|err| {
        Failure::new(ALLOWLY_RESULT_INTERNAL_ERROR, "internal_error", format!("cannot encode the answer: {err}"))
    })
}

/// Sets an optional `char **` output to NULL up front, so that it is NULL on every failure.
///
/// # Safety
/// `out` is NULL or valid for a write of one pointer.
pub(crate) unsafe fn clear_string_out(out: *mut *mut c_char) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable per this function's contract.
        unsafe { *out = std::ptr::null_mut() };
    }
}

/// Frees a string returned by an `allowly_` function (`*_json_out`, `*_id_out`). NULL is ignored.
/// Freeing the same string twice, or a string not returned by this library, is undefined behavior.
///
/// # Safety
/// `string` is NULL or a pointer returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn allowly_string_free(string: *mut c_char) {
    if string.is_null() {
        return;
    }
    let _ = catch_unwind(|| {
        // SAFETY: per the contract, `string` came from `CString::into_raw` in this library and is
        // freed once.
        drop(unsafe { CString::from_raw(string) });
    });
}
