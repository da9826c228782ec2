//! The boundary: panic guard, thread-local last error, C strings in and out, error mapping.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use allowly_core::receipt::VerifyError;
use allowly_core::{Error, ErrorKind};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::allowly_result;
use crate::allowly_result::*;

/// A failed call: the result code, the kind, the HTTP status, the stable string code and a message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) result: allowly_result,
    pub(crate) kind: ErrorKind,
    /// What `allowly serve` answered (remote) or answers for the same error (embedded); `None`
    /// when there is no such answer.
    pub(crate) status: Option<u16>,
    pub(crate) code: String,
    pub(crate) message: String,
}

impl Failure {
    /// A failure of the C boundary itself (an argument no engine saw).
    pub(crate) fn boundary(
        result: allowly_result,
        kind: ErrorKind,
        status: Option<u16>,
        code: &str,
        message: impl Into<String>,
    ) -> Failure {
        Failure { result, kind, status, code: code.to_string(), message: message.into() }
    }

    pub(crate) fn null(name: &str) -> Failure {
        let message = format!("`{name}` must not be NULL");
        Failure::boundary(ALLOWLY_RESULT_NULL_PARAMETER, ErrorKind::InvalidRequest, None, "null_parameter", message)
    }

    pub(crate) fn invalid_utf8(name: &str) -> Failure {
        let message = format!("`{name}` is not valid UTF-8");
        Failure::boundary(ALLOWLY_RESULT_INVALID_UTF8, ErrorKind::InvalidRequest, None, "invalid_utf8", message)
    }

    /// A JSON argument that is not JSON: what the HTTP runtime answers a body that is not JSON
    /// with (400 `invalid_json`).
    pub(crate) fn invalid_json(message: impl Into<String>) -> Failure {
        Failure::boundary(ALLOWLY_RESULT_INVALID_JSON, ErrorKind::InvalidRequest, Some(400), "invalid_json", message)
    }

    pub(crate) fn closed() -> Failure {
        let message = "the engine was closed with `allowly_engine_close`";
        Failure::boundary(ALLOWLY_RESULT_CLOSED, ErrorKind::InvalidRequest, None, "closed", message)
    }
}

/// The result code of an error of `kind`: the one table of the C API (documented on
/// `allowly_result`). Kinds with several ABI codes are refined in [`result_of`].
pub(crate) fn result_of_kind(kind: ErrorKind) -> allowly_result {
    match kind {
        ErrorKind::InvalidRequest => ALLOWLY_RESULT_INVALID_REQUEST,
        // "The API key is ... of the wrong kind for the call": what 403 meant in C from the start.
        ErrorKind::Unauthorized | ErrorKind::Forbidden => ALLOWLY_RESULT_UNAUTHORIZED,
        ErrorKind::NotFound => ALLOWLY_RESULT_NOT_FOUND,
        ErrorKind::Conflict => ALLOWLY_RESULT_CONFLICT,
        ErrorKind::RateLimited => ALLOWLY_RESULT_RATE_LIMITED,
        ErrorKind::Unavailable => ALLOWLY_RESULT_STORE_UNAVAILABLE,
        ErrorKind::Timeout => ALLOWLY_RESULT_TIMEOUT,
        ErrorKind::Unreachable => ALLOWLY_RESULT_UNREACHABLE,
        ErrorKind::Protocol => ALLOWLY_RESULT_PROTOCOL_ERROR,
        ErrorKind::Verification => ALLOWLY_RESULT_VERIFY_SCHEMA,
        ErrorKind::Internal => ALLOWLY_RESULT_INTERNAL_ERROR,
    }
}

/// The result code of `err`: [`result_of_kind`], except where the ABI has always told errors of
/// one kind apart: a verification failure by what failed (100 to 105), and two internal failures
/// by their stable code (`signing_failed`, `io_error`), which a runtime answers too, so that an
/// embedded and a remote engine give the same result code.
pub(crate) fn result_of(err: &Error) -> allowly_result {
    match (err.kind(), err) {
        (_, Error::Verification(verify)) => verify_result(verify),
        (ErrorKind::Internal, _) if err.code() == "signing_failed" => ALLOWLY_RESULT_SIGNING_FAILED,
        (ErrorKind::Internal, _) if err.code() == "io_error" => ALLOWLY_RESULT_IO_ERROR,
        (kind, _) => result_of_kind(kind),
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        Failure {
            result: result_of(&err),
            kind: err.kind(),
            status: err.http_status(),
            code: err.code().to_string(),
            message: err.to_string(),
        }
    }
}

impl From<VerifyError> for Failure {
    fn from(err: VerifyError) -> Failure {
        Failure::from(Error::Verification(err))
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

/// The name of `kind` as a static C string (`ErrorKind::as_str`).
pub(crate) fn kind_name(kind: ErrorKind) -> &'static CStr {
    match kind {
        ErrorKind::InvalidRequest => c"invalid_request",
        ErrorKind::Unauthorized => c"unauthorized",
        ErrorKind::Forbidden => c"forbidden",
        ErrorKind::NotFound => c"not_found",
        ErrorKind::Conflict => c"conflict",
        ErrorKind::RateLimited => c"rate_limited",
        ErrorKind::Unavailable => c"unavailable",
        ErrorKind::Timeout => c"timeout",
        ErrorKind::Unreachable => c"unreachable",
        ErrorKind::Protocol => c"protocol",
        ErrorKind::Verification => c"verification",
        ErrorKind::Internal => c"internal",
    }
}

// ---------------------------------------------------------------------------------------------
// Last error, per thread

struct LastError {
    code: CString,
    message: CString,
    /// `""` before the first failure.
    kind: &'static CStr,
    /// 0 when none.
    status: u16,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> =
        RefCell::new(LastError { code: CString::default(), message: CString::default(), kind: c"", status: 0 });
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
            slot.kind = kind_name(failure.kind);
            slot.status = failure.status.unwrap_or(0);
        }
    });
}

/// Reads the calling thread's last error (`None` if the slot is gone or busy, or on a panic).
fn last_error<T>(read: impl FnOnce(&LastError) -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(|| {
        LAST_ERROR.try_with(|slot| slot.try_borrow().map(|s| read(&s)).ok()).ok().flatten()
    }))
    .ok()
    .flatten()
}

/// Runs an exported function's body: catches any panic (reported as
/// `ALLOWLY_RESULT_INTERNAL_ERROR`), records failures as the thread's last error.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> allowly_result {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return ALLOWLY_RESULT_OK,
        Ok(Err(failure)) => failure,
        Err(_) => Failure::from(Error::internal("internal error caught at the C boundary")),
    };
    set_last_error(&failure);
    failure.result
}

/// The message of the most recent failed `allowly_` call on the calling thread (lowercase, for
/// people; may change between versions), or `""` if none failed yet. The pointer stays valid until
/// the next failing `allowly_` call on the same thread; never free it.
#[no_mangle]
pub extern "C" fn allowly_last_error_message() -> *const c_char {
    last_error(|e| e.message.as_ptr()).unwrap_or(c"".as_ptr())
}

/// The stable machine code of the most recent failed `allowly_` call on the calling thread, as
/// the engine and the HTTP API name it (e.g. `"authorization_not_found"`, `"rate_limited"`,
/// `"signature_mismatch"`; `exc.code` in Python, `err.code` in Node), or `""` if none failed yet.
/// Failures of the C boundary have their own: `"null_parameter"`, `"invalid_utf8"`, `"closed"`;
/// a JSON argument that is not JSON is `"invalid_json"`, as the HTTP API names a body that is not
/// JSON. Same lifetime as `allowly_last_error_message()`; never free it.
#[no_mangle]
pub extern "C" fn allowly_last_error_code() -> *const c_char {
    last_error(|e| e.code.as_ptr()).unwrap_or(c"".as_ptr())
}

/// The kind of the most recent failed `allowly_` call on the calling thread, the same in every
/// SDK and the one thing each maps (the result code comes from it; see `allowly_result`):
/// `"invalid_request"`, `"unauthorized"`, `"forbidden"`, `"not_found"`, `"conflict"`,
/// `"rate_limited"`, `"unavailable"`, `"timeout"`, `"unreachable"`, `"protocol"`,
/// `"verification"` or `"internal"`; `""` if none failed yet. Failures of the C boundary are
/// `"invalid_request"` (a NULL argument, invalid UTF-8, JSON that is not JSON, a closed handle).
/// A static string: valid forever; never free it.
#[no_mangle]
pub extern "C" fn allowly_last_error_kind() -> *const c_char {
    last_error(|e| e.kind.as_ptr()).unwrap_or(c"".as_ptr())
}

/// The HTTP status of the most recent failed `allowly_` call on the calling thread: the status
/// `allowly serve` answered (remote engine) or answers for the same error (embedded engine), as
/// Python's `AllowlyAPIError.status` and Node's `err.status` (e.g. 404 for a `"not_found"`, 422
/// for an `"invalid_request"`, 400 for a JSON argument that is not JSON). 0 when there is none: no
/// failure yet, a runtime that did not answer (`"timeout"`, `"unreachable"`) or whose answer broke
/// the wire contract (`"protocol"`; an unexpected status is given), and the failures of the C
/// boundary no server would see (a NULL argument, invalid UTF-8 in a string argument, a closed
/// handle).
#[no_mangle]
pub extern "C" fn allowly_last_error_status() -> u16 {
    last_error(|e| e.status).unwrap_or(0)
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
    std::str::from_utf8(bytes).map_err(|_| Failure::invalid_utf8(name))
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
        return Err(Error::invalid(name, "is too long").into());
    }
    // SAFETY: non-NULL, `len` readable bytes per this function's contract, `len` <= isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Parses a JSON document argument as the HTTP runtime parses a body: not JSON (or not UTF-8)
/// → `INVALID_JSON`; duplicate member names or values out of the canonical limits → `INVALID_REQUEST`.
pub(crate) fn json_value(bytes: &[u8], name: &str) -> Result<Value, Failure> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|err| Failure::invalid_json(format!("`{name}` is not JSON: {err}")))?;
    allowly_core::canonical::parse_document(bytes).map_err(|err| Error::invalid(name, err.to_string()))?;
    Ok(value)
}

/// A JSON argument of a request type: not JSON → `INVALID_JSON`; the wrong shape, duplicate
/// member names or values out of the canonical limits → `INVALID_REQUEST`.
pub(crate) fn json_arg<T: DeserializeOwned>(bytes: &[u8], name: &str) -> Result<T, Failure> {
    let value: T = serde_json::from_slice(bytes).map_err(|err| {
        // A shape error may be met before a syntax error further on: only JSON text of the wrong
        // shape is an invalid request.
        match serde_json::from_slice::<Value>(bytes) {
            Ok(_) => Failure::from(Error::invalid(name, err.to_string())),
            Err(syntax) => Failure::invalid_json(format!("`{name}` is not JSON: {syntax}")),
        }
    })?;
    allowly_core::canonical::parse_document(bytes).map_err(|err| Error::invalid(name, err.to_string()))?;
    Ok(value)
}

// ---------------------------------------------------------------------------------------------
// Strings out

/// A string for C, to be freed with `allowly_string_free()`.
pub(crate) fn c_string(text: String) -> Result<CString, Failure> {
    CString::new(text).map_err(|_| Error::internal("an output string contains a NUL byte").into())
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
    serde_json::to_writer(&mut buffer, value)
        .map_err(|err| Failure::from(Error::internal(format!("cannot encode the answer: {err}"))))?;
    buffer.push(0);
    let text = CString::from_vec_with_nul(buffer)
        .map_err(|_| Failure::from(Error::internal("an output string contains a NUL byte")))?;
    // SAFETY: non-NULL and writable per this function's contract.
    unsafe { *out = text.into_raw() };
    Ok(())
}

/// JSON text of a response.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string(value)
        .map_err(|err| Failure::from(Error::internal(format!("cannot encode the answer: {err}"))))
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

#[cfg(test)]
mod tests {
    use super::*;
    use allowly_core::receipt::VerifyError;

    #[test]
    fn kind_names_are_the_core_names() {
        for kind in ErrorKind::ALL {
            assert_eq!(kind_name(kind).to_str().ok(), Some(kind.as_str()));
        }
    }

    #[test]
    fn result_codes_come_from_the_kind() {
        let remote = |status: u16, code: &str| Error::Api {
            status,
            code: code.into(),
            message: String::new(),
            fields: Vec::new(),
            retry_after_seconds: None,
        };
        let cases: Vec<(Error, allowly_result, ErrorKind, u16)> = vec![
            (Error::invalid("x", "bad"), ALLOWLY_RESULT_INVALID_REQUEST, ErrorKind::InvalidRequest, 422),
            (remote(422, "invalid_request"), ALLOWLY_RESULT_INVALID_REQUEST, ErrorKind::InvalidRequest, 422),
            (remote(413, "request_too_large"), ALLOWLY_RESULT_INVALID_REQUEST, ErrorKind::InvalidRequest, 413),
            (
                Error::not_found("authorization_not_found", "authorization", "a"),
                ALLOWLY_RESULT_NOT_FOUND,
                ErrorKind::NotFound,
                404,
            ),
            (remote(404, "authorization_not_found"), ALLOWLY_RESULT_NOT_FOUND, ErrorKind::NotFound, 404),
            (remote(401, "invalid_or_revoked_api_key"), ALLOWLY_RESULT_UNAUTHORIZED, ErrorKind::Unauthorized, 401),
            (remote(403, "forbidden"), ALLOWLY_RESULT_UNAUTHORIZED, ErrorKind::Forbidden, 403),
            (Error::conflict("budget_already_settled", "x"), ALLOWLY_RESULT_CONFLICT, ErrorKind::Conflict, 409),
            (remote(429, "rate_limited"), ALLOWLY_RESULT_RATE_LIMITED, ErrorKind::RateLimited, 429),
            (Error::store("busy"), ALLOWLY_RESULT_STORE_UNAVAILABLE, ErrorKind::Unavailable, 503),
            (remote(503, "store_unavailable"), ALLOWLY_RESULT_STORE_UNAVAILABLE, ErrorKind::Unavailable, 503),
            (Error::Timeout { timeout_ms: 5 }, ALLOWLY_RESULT_TIMEOUT, ErrorKind::Timeout, 0),
            (remote(504, "gateway_timeout"), ALLOWLY_RESULT_TIMEOUT, ErrorKind::Timeout, 504),
            (Error::unreachable("refused"), ALLOWLY_RESULT_UNREACHABLE, ErrorKind::Unreachable, 0),
            (Error::Protocol("odd".into()), ALLOWLY_RESULT_PROTOCOL_ERROR, ErrorKind::Protocol, 0),
            (remote(302, "found"), ALLOWLY_RESULT_PROTOCOL_ERROR, ErrorKind::Protocol, 302),
            (Error::signing("no key"), ALLOWLY_RESULT_SIGNING_FAILED, ErrorKind::Internal, 500),
            (remote(500, "signing_failed"), ALLOWLY_RESULT_SIGNING_FAILED, ErrorKind::Internal, 500),
            (Error::io("denied"), ALLOWLY_RESULT_IO_ERROR, ErrorKind::Internal, 500),
            (Error::internal("bug"), ALLOWLY_RESULT_INTERNAL_ERROR, ErrorKind::Internal, 500),
            (remote(500, "internal_error"), ALLOWLY_RESULT_INTERNAL_ERROR, ErrorKind::Internal, 500),
            (
                Error::Verification(VerifyError::SignatureMismatch("x".into())),
                ALLOWLY_RESULT_VERIFY_SIGNATURE_MISMATCH,
                ErrorKind::Verification,
                422,
            ),
        ];
        for (err, result, kind, status) in cases {
            let what = format!("{err:?}");
            let failure = Failure::from(err);
            assert_eq!((failure.result, failure.kind, failure.status.unwrap_or(0)), (result, kind, status), "{what}");
        }
        // Every kind has a result code, and only the verification kind maps into 100..=105.
        for kind in ErrorKind::ALL {
            let code = result_of_kind(kind) as u32;
            assert!(code != ALLOWLY_RESULT_OK as u32 && code != ALLOWLY_RESULT_API_ERROR as u32, "{kind}");
            assert_eq!(code >= 100, kind == ErrorKind::Verification, "{kind}");
        }
    }

    #[test]
    fn the_last_error_keeps_kind_and_status() {
        assert_eq!(guard(|| Err(Error::not_found("policy_not_found", "policy", "p").into())), ALLOWLY_RESULT_NOT_FOUND);
        assert_eq!(guard(|| Ok(())), ALLOWLY_RESULT_OK, "a success leaves the last failure as it is");
        assert_eq!(allowly_last_error_status(), 404);
        // SAFETY: a static NUL-terminated string.
        assert_eq!(unsafe { CStr::from_ptr(allowly_last_error_kind()) }, c"not_found");
        // SAFETY: NUL-terminated, valid until the next failure on this thread.
        assert_eq!(unsafe { CStr::from_ptr(allowly_last_error_code()) }, c"policy_not_found");
        assert_eq!(guard(|| Err(Failure::null("x"))), ALLOWLY_RESULT_NULL_PARAMETER);
        assert_eq!(allowly_last_error_status(), 0);
        // SAFETY: a static NUL-terminated string.
        assert_eq!(unsafe { CStr::from_ptr(allowly_last_error_kind()) }, c"invalid_request");
    }
}
