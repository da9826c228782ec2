//! The engine handle: embedded or remote, behind core's `Api` trait.

use std::collections::HashMap;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

use allowly_core::api::Api;
use allowly_core::engine::DEFAULT_CONFIRMATION_TTL_SECONDS;
use allowly_core::model::{ActionResult, CheckRequest, ReceiptEnvelope, Resolution};
use allowly_core::ops::{self, Answer, Request};
use allowly_core::policy::Decision;
use allowly_core::remote::{FallbackMode, RemoteOptions, DEFAULT_CHECK_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS};
use allowly_core::{Allowly, Error, ErrorKind};
use parking_lot::RwLock;

use crate::allowly_result::*;
use crate::ffi::{
    bytes_arg, clear_string_out, guard, json_arg, json_value, opt_str_arg, str_arg, to_json, write_json, write_string,
    Failure,
};
use crate::{allowly_decision, allowly_fallback_mode, allowly_result};

/// An Allowly workspace, embedded in this process or behind an `allowly serve` runtime.
///
/// Opened with `allowly_engine_open_embedded()` or `allowly_engine_connect()`; closed with
/// `allowly_engine_close()` (optional) and freed with `allowly_engine_free()`. One handle may be
/// used by any number of threads at once, without locking by the caller.
pub struct allowly_engine {
    /// `None` once closed. Calls clone the `Arc` and release the lock at once, so a close never
    /// waits for a check, and an engine is dropped when its last in-flight call returns.
    api: RwLock<Option<Arc<dyn Api>>>,
}

impl allowly_engine {
    fn new(api: Arc<dyn Api>) -> allowly_engine {
        allowly_engine { api: RwLock::new(Some(api)) }
    }
}

/// The engine behind a handle argument: `NULL_PARAMETER` for NULL, `CLOSED` once closed.
///
/// # Safety
/// `engine` is NULL or a live handle from this library (not freed).
unsafe fn engine_arg(engine: *const allowly_engine) -> Result<Arc<dyn Api>, Failure> {
    // SAFETY: NULL or a live handle per this function's contract.
    let Some(engine) = (unsafe { engine.as_ref() }) else {
        return Err(Failure::null("engine"));
    };
    engine.api.read().clone().ok_or_else(Failure::closed)
}

/// Hands a new handle to C.
///
/// # Safety
/// `out` is valid for a write of one pointer (checked non-NULL by the caller).
unsafe fn write_engine(out: *mut *mut allowly_engine, api: Arc<dyn Api>) {
    let raw = Box::into_raw(Box::new(allowly_engine::new(api)));
    // SAFETY: non-NULL and writable per this function's contract.
    unsafe { *out = raw };
}

/// Opens the embedded engine on the workspace in the directory `home` (NUL-terminated UTF-8
/// path), creating the directory, its SQLite file and the first signing key on first use.
///
/// On success `*engine_out` is a new handle: release it with `allowly_engine_free()`. On failure
/// `*engine_out` is NULL.
///
/// The process may fork afterwards (the library registers `pthread_atfork` hooks for its
/// background thread); a child opens an engine of its own rather than use the parent's handle, and
/// no other thread may be inside an `allowly_` call at the fork (SQLite's rule).
///
/// # Safety
/// `home` is NULL or a NUL-terminated string; `engine_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn allowly_engine_open_embedded(
    home: *const c_char,
    engine_out: *mut *mut allowly_engine,
) -> allowly_result {
    guard(|| {
        if engine_out.is_null() {
            return Err(Failure::null("engine_out"));
        }
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { *engine_out = std::ptr::null_mut() };
        // SAFETY: per the contract.
        let home = unsafe { str_arg(home, "home") }?;
        crate::fork::register_hooks_once();
        let engine = Allowly::open_embedded(home)?;
        // SAFETY: checked non-NULL above.
        unsafe { write_engine(engine_out, Arc::new(engine)) };
        Ok(())
    })
}

/// One action's fallback mode for `allowly_engine_connect()`.
#[repr(C)]
pub struct allowly_fallback {
    /// The action (NUL-terminated UTF-8), e.g. `"search.web"`.
    pub action: *const c_char,
    /// `ALLOWLY_FALLBACK_FAIL_CLOSED` or `ALLOWLY_FALLBACK_FAIL_OPEN` (a `uint32_t`; other values
    /// are refused with `ALLOWLY_RESULT_INVALID_REQUEST`).
    pub mode: u32,
}

/// Settings of `allowly_engine_connect()`. Zero-initialize it (`allowly_connect_options o = {0};`)
/// for the defaults, then set what you need.
#[repr(C)]
pub struct allowly_connect_options {
    /// Bound of one check, connect to last byte, in milliseconds; 0 means 1000. When it passes
    /// (or the runtime is unreachable or answers 408/5xx) a check answers the local fallback.
    pub check_timeout_ms: u64,
    /// Bound of every other call in milliseconds; 0 means 10000.
    pub request_timeout_ms: u64,
    /// Per-action fallback modes (`fallbacks_len` entries; NULL when 0). Unlisted actions fail closed.
    pub fallbacks: *const allowly_fallback,
    /// Number of entries in `fallbacks`.
    pub fallbacks_len: usize,
    /// The runtime's workspace id (NUL-terminated), needed only by `allowly_engine_key_document()`
    /// and `allowly_engine_workspace_id()`; NULL if unknown.
    pub workspace_id: *const c_char,
    /// Allow `http://` to a host other than a loopback address (the API key travels in clear).
    pub allow_insecure_http: bool,
}

/// Connects to an `allowly serve` runtime at `url` (e.g. `"http://127.0.0.1:8787"`) with an API
/// key (a runtime key for checks and authorizations, a setup key for policies). Validates the
/// arguments and opens no connection: the first call does. `options` may be NULL (defaults).
///
/// On success `*engine_out` is a new handle: release it with `allowly_engine_free()`. On failure
/// `*engine_out` is NULL.
///
/// # Safety
/// `url`, `api_key` are NULL or NUL-terminated; `options` is NULL or points to a valid
/// `allowly_connect_options` whose `fallbacks` has `fallbacks_len` readable entries;
/// `engine_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn allowly_engine_connect(
    url: *const c_char,
    api_key: *const c_char,
    options: *const allowly_connect_options,
    engine_out: *mut *mut allowly_engine,
) -> allowly_result {
    guard(|| {
        if engine_out.is_null() {
            return Err(Failure::null("engine_out"));
        }
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { *engine_out = std::ptr::null_mut() };
        // SAFETY: per the contract.
        let url = unsafe { str_arg(url, "url") }?;
        // SAFETY: per the contract.
        let api_key = unsafe { str_arg(api_key, "api_key") }?;
        let mut remote = RemoteOptions::default();
        // SAFETY: NULL or a valid options struct per the contract.
        if let Some(options) = unsafe { options.as_ref() } {
            remote.check_timeout_ms =
                if options.check_timeout_ms == 0 { DEFAULT_CHECK_TIMEOUT_MS } else { options.check_timeout_ms };
            remote.request_timeout_ms =
                if options.request_timeout_ms == 0 { DEFAULT_REQUEST_TIMEOUT_MS } else { options.request_timeout_ms };
            remote.allow_insecure_http = options.allow_insecure_http;
            // SAFETY: per the contract.
            remote.workspace_id =
                unsafe { opt_str_arg(options.workspace_id, "options.workspace_id") }?.map(String::from);
            // SAFETY: per the contract, `fallbacks` has `fallbacks_len` valid entries.
            remote.fallback_by_action = unsafe { fallbacks(options) }?;
        }
        let client = allowly_core::connect(url, api_key, remote)?;
        // SAFETY: checked non-NULL above.
        unsafe { write_engine(engine_out, Arc::new(client)) };
        Ok(())
    })
}

/// The per-action fallback modes of `options`.
///
/// # Safety
/// `options.fallbacks` is NULL or has `options.fallbacks_len` readable entries, each `action`
/// NULL or NUL-terminated.
unsafe fn fallbacks(options: &allowly_connect_options) -> Result<HashMap<String, FallbackMode>, Failure> {
    let mut map = HashMap::new();
    if options.fallbacks_len == 0 {
        return Ok(map);
    }
    if options.fallbacks.is_null() {
        return Err(Failure::null("options.fallbacks"));
    }
    if options.fallbacks_len > 10_000 {
        return Err(Error::invalid("options.fallbacks", "too many entries").into());
    }
    // SAFETY: non-NULL with `fallbacks_len` (bounded) readable entries per this function's contract.
    let entries = unsafe { std::slice::from_raw_parts(options.fallbacks, options.fallbacks_len) };
    for (i, entry) in entries.iter().enumerate() {
        // SAFETY: per this function's contract, each `action` is NULL or NUL-terminated.
        let action = unsafe { str_arg(entry.action, &format!("options.fallbacks[{i}].action")) }?;
        let mode = match entry.mode {
            m if m == allowly_fallback_mode::ALLOWLY_FALLBACK_FAIL_CLOSED as u32 => FallbackMode::FailClosed,
            m if m == allowly_fallback_mode::ALLOWLY_FALLBACK_FAIL_OPEN as u32 => FallbackMode::FailOpen,
            other => {
                let field = format!("options.fallbacks[{i}].mode");
                return Err(Error::invalid(field, format!("`{other}` is not a fallback mode")).into());
            }
        };
        map.insert(action.to_string(), mode);
    }
    Ok(map)
}

/// Closes the engine: later calls through this handle (from any thread) fail with
/// `ALLOWLY_RESULT_CLOSED`. Calls already running finish normally; the embedded store is closed
/// when the last of them returns. Closing twice is fine. The handle itself stays allocated until
/// `allowly_engine_free()`.
///
/// # Safety
/// `engine` is NULL (→ `ALLOWLY_RESULT_NULL_PARAMETER`) or a handle not yet freed.
#[no_mangle]
pub unsafe extern "C" fn allowly_engine_close(engine: *const allowly_engine) -> allowly_result {
    guard(|| {
        // SAFETY: NULL or a live handle per the contract.
        let Some(engine) = (unsafe { engine.as_ref() }) else {
            return Err(Failure::null("engine"));
        };
        let taken = engine.api.write().take();
        drop(taken);
        Ok(())
    })
}

/// Frees a handle (closing it first if needed) and sets `*engine` to NULL. `engine == NULL` and
/// `*engine == NULL` are ignored, so freeing the same variable twice is harmless. Using or freeing
/// another copy of the pointer after this is undefined behavior (the memory is gone): when threads
/// share a handle, call `allowly_engine_close()` to stop them, join them, then free.
///
/// # Safety
/// `engine` is NULL or points to NULL or to a handle from this library not yet freed, and no other
/// thread uses that handle during or after this call.
#[no_mangle]
pub unsafe extern "C" fn allowly_engine_free(engine: *mut *mut allowly_engine) {
    // SAFETY: the caller's contract is `free_boxed`'s; handles come from `Box::into_raw` in
    // `write_engine`.
    let _ = guard(|| unsafe { free_boxed(engine) });
}

// ---------------------------------------------------------------------------------------------
// Any operation of the catalog

/// Runs any operation of the API by name: the one call every other engine function is a
/// convenience over, the same operations, arguments and answers as the Python and Node SDKs and
/// the HTTP API.
///
/// - `operation` (NUL-terminated): an operation name of the catalog (`allowly_catalog()`), e.g.
///   `"check"`, `"create_authorization"`, `"get_authorization"`, `"list_policies"`,
///   `"revoke_api_key"`.
/// - `args_json` (`args_json_len` bytes, UTF-8, no NUL needed): a JSON object, the operation's HTTP
///   request merged into one object: the path's id under its field name (`{"authorization_id":
///   "auth_..."}`), the query (`{"limit": 10, "cursor": "..."}`) or the JSON body, and
///   `"idempotency_key"` for the `Idempotency-Key` header where the operation takes one. `{}` for
///   an operation without arguments.
///
/// On success `*answer_json_out` is the answer JSON, exactly the HTTP API's answer body (compact,
/// one line; `null` for the operations the HTTP API answers with 204): free it with
/// `allowly_string_free()`. A check that cannot be decided is answered, not failed, as by
/// `allowly_engine_check()`. On failure `*answer_json_out` is NULL, and the result code and
/// `allowly_last_error_code()`, `allowly_last_error_kind()` and `allowly_last_error_status()` are
/// those of the same failure in every SDK: `ALLOWLY_RESULT_NULL_PARAMETER` for a NULL argument,
/// `ALLOWLY_RESULT_INVALID_JSON` for `args_json` that is not JSON, `ALLOWLY_RESULT_INVALID_REQUEST`
/// for an unknown operation (message "unknown operation ...") or arguments of the wrong shape
/// (`allowly_last_error_message()` names the member).
///
/// # Safety
/// `engine` is NULL or a live handle; `operation` is NULL or NUL-terminated; `args_json` is NULL
/// or has `args_json_len` readable bytes; `answer_json_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn allowly_engine_call(
    engine: *const allowly_engine,
    operation: *const c_char,
    args_json: *const u8,
    args_json_len: usize,
    answer_json_out: *mut *mut c_char,
) -> allowly_result {
    guard(|| {
        if answer_json_out.is_null() {
            return Err(Failure::null("answer_json_out"));
        }
        // SAFETY: per the contract.
        unsafe { clear_string_out(answer_json_out) };
        // SAFETY: per the contract.
        let api = unsafe { engine_arg(engine) }?;
        // SAFETY: per the contract.
        let operation = unsafe { str_arg(operation, "operation") }?;
        // SAFETY: per the contract.
        let args = unsafe { bytes_arg(args_json, args_json_len, "args_json") }?;
        let answer = call_named(&*api, operation, args, "args_json")?;
        // SAFETY: per the contract.
        unsafe { write_json(answer_json_out, &answer) }
    })
}

/// The operation catalog as JSON: an array with one object per operation of
/// `allowly_engine_call()`, in catalog order, each its HTTP route: `{"operation", "method",
/// "path", "path_field", "access", "idempotency", "body", "status", "large_body"}` (`status` is
/// the success status; 204 answers `null`). `*catalog_json_out` receives it: free it with
/// `allowly_string_free()`.
///
/// # Safety
/// `catalog_json_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn allowly_catalog(catalog_json_out: *mut *mut c_char) -> allowly_result {
    guard(|| {
        if catalog_json_out.is_null() {
            return Err(Failure::null("catalog_json_out"));
        }
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { write_json(catalog_json_out, &ops::CATALOG) }
    })
}

/// Operation `operation` with the JSON arguments `args` (argument `name`), run on `api`.
fn call_named(api: &dyn Api, operation: &str, args: &[u8], name: &str) -> Result<Answer, Failure> {
    let request = Request::from_value(operation, json_value(args, name)?)?;
    Ok(api.call(request)?)
}

/// The body of an engine function answering one operation's JSON: clears `*out`, takes the
/// engine, builds the request with `make` (which reads the other arguments), runs it and writes
/// its answer, as `allowly_engine_call()` does.
///
/// # Safety
/// `engine` is NULL or a live handle; `out` is NULL (no answer wanted) or writable.
unsafe fn answer_with(
    engine: *const allowly_engine,
    out: *mut *mut c_char,
    make: impl FnOnce() -> Result<Request, Failure>,
) -> allowly_result {
    guard(|| {
        // SAFETY: per the contract.
        unsafe { clear_string_out(out) };
        // SAFETY: per the contract.
        let api = unsafe { engine_arg(engine) }?;
        let answer = api.call(make()?)?;
        // SAFETY: per the contract.
        unsafe { write_json(out, &answer) }
    })
}

// ---------------------------------------------------------------------------------------------
// Check

/// Decides one or more actions: `request_json` (`request_json_len` bytes, UTF-8 JSON, no NUL
/// needed) is the body of `POST /v1/check`: `{"authorization_id", "actions": [...],
/// "resource"?, "session_id"?, "estimated_cost_micros"?, "context"?}`.
///
/// On success `*response_json_out` is the response JSON, exactly the HTTP API's
/// (`{authorization_id, user_id, agent_id, authorization_expires_at, engine_version,
/// results: {action: {decision, reason, receipt, ...}}}`): free it with `allowly_string_free()`.
/// When the decision cannot be made (embedded store failure; remote timeout, unreachable, 408, 5xx)
/// the call still succeeds with the local fallback answer (`"is_fallback": true`, deny unless the
/// action is mapped to fail-open, no receipt). Any failure leaves `*response_json_out` NULL:
/// treat it as deny.
///
/// # Safety
/// `engine` is NULL or a live handle; `request_json` is NULL or has `request_json_len` readable
/// bytes; `response_json_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn allowly_engine_check(
    engine: *const allowly_engine,
    request_json: *const u8,
    request_json_len: usize,
    response_json_out: *mut *mut c_char,
) -> allowly_result {
    guard(|| {
        if response_json_out.is_null() {
            return Err(Failure::null("response_json_out"));
        }
        // SAFETY: per the contract.
        unsafe { clear_string_out(response_json_out) };
        // SAFETY: per the contract.
        let api = unsafe { engine_arg(engine) }?;
        // SAFETY: per the contract.
        let request: CheckRequest =
            json_arg(unsafe { bytes_arg(request_json, request_json_len, "request_json") }?, "request_json")?;
        let response = api.check_or_fallback(&request)?;
        // SAFETY: per the contract.
        unsafe { write_json(response_json_out, &response) }
    })
}

/// The answer for one action of `allowly_engine_check_action()`. Read it with the
/// `allowly_action_result_*()` accessors; free it with `allowly_action_result_free()`.
/// Immutable, so it may be read from any thread.
pub struct allowly_action_result {
    decision: allowly_decision,
    result: ActionResult,
    /// C strings made on first access (most callers read only the decision and the reason).
    reason: OnceLock<Option<CString>>,
    receipt_json: OnceLock<Option<CString>>,
    receipt_id: OnceLock<Option<CString>>,
    confirm_nonce: OnceLock<Option<CString>>,
    confirmation_id: OnceLock<Option<CString>>,
    escalation_id: OnceLock<Option<CString>>,
    json: OnceLock<Option<CString>>,
}

impl allowly_action_result {
    fn new(result: ActionResult) -> allowly_action_result {
        allowly_action_result {
            decision: decision_of(result.decision),
            result,
            reason: OnceLock::new(),
            receipt_json: OnceLock::new(),
            receipt_id: OnceLock::new(),
            confirm_nonce: OnceLock::new(),
            confirmation_id: OnceLock::new(),
            escalation_id: OnceLock::new(),
            json: OnceLock::new(),
        }
    }
}

/// The cached C string of `cell`, made by `make` on first use (NULL when `make` gives none).
fn lazy(cell: &OnceLock<Option<CString>>, make: impl FnOnce() -> Option<String>) -> *const c_char {
    cell.get_or_init(|| make().and_then(|text| CString::new(text).ok()))
        .as_ref()
        .map_or(std::ptr::null(), |s| s.as_ptr())
}

fn decision_of(decision: Decision) -> allowly_decision {
    match decision {
        Decision::Allow => allowly_decision::ALLOWLY_DECISION_ALLOW,
        Decision::Deny => allowly_decision::ALLOWLY_DECISION_DENY,
        Decision::Confirm => allowly_decision::ALLOWLY_DECISION_CONFIRM,
        Decision::Escalate => allowly_decision::ALLOWLY_DECISION_ESCALATE,
    }
}

/// Decides one action: a typed convenience over `allowly_engine_check()`. `context_json` is the
/// check's `context` object (`context_json_len` bytes), or NULL for none.
///
/// `*decision_out` is set to `ALLOWLY_DECISION_DENY` first and changed only on success, so every
/// failure reads as deny. On success `*result_out` (if `result_out` is not NULL) is a new result
/// with the reason, the receipt JSON, the confirmation nonce or escalation id: free it with
/// `allowly_action_result_free(&result)`. On failure `*result_out` is NULL. A fallback answer (remote
/// runtime unavailable) is a success with `allowly_action_result_is_fallback()` true.
///
/// # Safety
/// `engine` is NULL or a live handle; `authorization_id`, `action` are NULL or NUL-terminated;
/// `context_json` is NULL or has `context_json_len` readable bytes; `decision_out` is NULL or
/// writable; `result_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn allowly_engine_check_action(
    engine: *const allowly_engine,
    authorization_id: *const c_char,
    action: *const c_char,
    context_json: *const u8,
    context_json_len: usize,
    decision_out: *mut allowly_decision,
    result_out: *mut *mut allowly_action_result,
) -> allowly_result {
    guard(|| {
        if decision_out.is_null() {
            return Err(Failure::null("decision_out"));
        }
        // SAFETY: checked non-NULL; writable per the contract.
        unsafe { *decision_out = allowly_decision::ALLOWLY_DECISION_DENY };
        if !result_out.is_null() {
            // SAFETY: checked non-NULL; writable per the contract.
            unsafe { *result_out = std::ptr::null_mut() };
        }
        // SAFETY: per the contract.
        let api = unsafe { engine_arg(engine) }?;
        // SAFETY: per the contract.
        let authorization_id = unsafe { str_arg(authorization_id, "authorization_id") }?;
        // SAFETY: per the contract.
        let action = unsafe { str_arg(action, "action") }?;
        let context = if context_json.is_null() {
            None
        } else {
            // SAFETY: per the contract.
            Some(json_value(unsafe { bytes_arg(context_json, context_json_len, "context_json") }?, "context_json")?)
        };
        let request = CheckRequest {
            authorization_id: authorization_id.to_string(),
            actions: vec![action.to_string()],
            context,
            ..Default::default()
        };
        let response = api.check_or_fallback(&request)?;
        let Some(result) = response.results.0.into_iter().find_map(|(name, result)| (name == action).then_some(result))
        else {
            return Err(Error::Protocol(format!("the answer has no result for `{action}`")).into());
        };
        let decision = decision_of(result.decision);
        if !result_out.is_null() {
            let handle = Box::new(allowly_action_result::new(result));
            // SAFETY: checked non-NULL; writable per the contract.
            unsafe { *result_out = Box::into_raw(handle) };
        }
        // SAFETY: checked non-NULL above.
        unsafe { *decision_out = decision };
        Ok(())
    })
}

/// Frees a result of `allowly_engine_check_action()` and sets `*result` to NULL. `result == NULL`
/// and `*result == NULL` are ignored, so freeing the same variable twice is harmless; freeing
/// another copy of the pointer afterwards is undefined behavior. Strings borrowed from the result
/// are invalid afterwards.
///
/// # Safety
/// `result` is NULL or points to NULL or to a result from this library not yet freed.
#[no_mangle]
pub unsafe extern "C" fn allowly_action_result_free(result: *mut *mut allowly_action_result) {
    // SAFETY: the caller's contract is `free_boxed`'s; results come from `Box::into_raw` in
    // `allowly_engine_check_action`.
    let _ = guard(|| unsafe { free_boxed(result) });
}

/// Drops the box `*slot` points to and sets `*slot` to NULL; NULL `slot` or `*slot` is a no-op.
///
/// # Safety
/// `slot` is NULL or readable and writable, and `*slot` is NULL or from `Box::into_raw` of a
/// `Box<T>` not yet freed.
unsafe fn free_boxed<T>(slot: *mut *mut T) -> Result<(), Failure> {
    if slot.is_null() {
        return Ok(());
    }
    // SAFETY: non-NULL, and readable/writable per the contract.
    let raw = unsafe { std::mem::replace(&mut *slot, std::ptr::null_mut()) };
    if !raw.is_null() {
        // SAFETY: from `Box::into_raw` per the contract, and freed once: the slot is now NULL.
        drop(unsafe { Box::from_raw(raw) });
    }
    Ok(())
}

/// Borrows one string field of a result (NULL result or absent field → NULL), made on first use.
///
/// # Safety
/// `result` is NULL or a live result.
unsafe fn field(
    result: *const allowly_action_result,
    get: impl Fn(&allowly_action_result) -> *const c_char,
) -> *const c_char {
    // SAFETY: NULL or a live result per the contract.
    match unsafe { result.as_ref() } {
        Some(result) => catch_unwind(AssertUnwindSafe(|| get(result))).unwrap_or(std::ptr::null()),
        None => std::ptr::null(),
    }
}

/// The decision (`ALLOWLY_DECISION_DENY` for a NULL result).
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn allowly_action_result_decision(result: *const allowly_action_result) -> allowly_decision {
    // SAFETY: NULL or a live result per the contract.
    unsafe { result.as_ref() }.map_or(allowly_decision::ALLOWLY_DECISION_DENY, |r| r.decision)
}

/// Whether the answer is a local fallback (remote runtime unavailable, or embedded store failure):
/// no receipt was signed. False for a NULL result.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn allowly_action_result_is_fallback(result: *const allowly_action_result) -> bool {
    // SAFETY: NULL or a live result per the contract.
    unsafe { result.as_ref() }.is_some_and(|r| r.result.is_fallback)
}

/// The reason code, e.g. `"authorization_granted_action_active"`, `"user_confirmed"`,
/// `"budget_exceeded"`, `"fallback_closed_timeout"`. Borrowed: valid until the result is freed;
/// NULL only for a NULL result.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn allowly_action_result_reason(result: *const allowly_action_result) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(result, |r| lazy(&r.reason, || Some(r.result.reason.clone()))) }
}

/// The signed receipt, a JWS JSON object `{"protected","payload","signature"}` for
/// `allowly_verify_receipt()`; NULL for a fallback answer. Borrowed: valid until the result is freed.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn allowly_action_result_receipt_json(result: *const allowly_action_result) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe {
        field(result, |r| {
            lazy(&r.receipt_json, || match &r.result.receipt {
                Some(ReceiptEnvelope::Signed { receipt }) => serde_json::to_string(receipt).ok(),
                _ => None,
            })
        })
    }
}

/// The receipt id (`rcp_...`, for `allowly_engine_settle_budget()`), or NULL. Borrowed.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn allowly_action_result_receipt_id(result: *const allowly_action_result) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(result, |r| lazy(&r.receipt_id, || r.result.receipt_id.clone())) }
}

/// For `ALLOWLY_DECISION_CONFIRM`: the bearer nonce that `allowly_engine_resolve_confirmation()`
/// takes; NULL otherwise. Borrowed.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn allowly_action_result_confirm_nonce(result: *const allowly_action_result) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(result, |r| lazy(&r.confirm_nonce, || r.result.confirm_nonce.clone())) }
}

/// For `ALLOWLY_DECISION_CONFIRM`: the confirmation id (`cnf_...`); NULL otherwise. Borrowed.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn allowly_action_result_confirmation_id(result: *const allowly_action_result) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(result, |r| lazy(&r.confirmation_id, || r.result.confirmation_id.clone())) }
}

/// For `ALLOWLY_DECISION_ESCALATE`: the escalation id (`esc_...`) that
/// `allowly_engine_resolve_escalation()` takes; NULL otherwise. Borrowed.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn allowly_action_result_escalation_id(result: *const allowly_action_result) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(result, |r| lazy(&r.escalation_id, || r.result.escalation_id.clone())) }
}

/// The whole action result as the HTTP API's JSON (`{decision, reason, receipt, budget, ...}`).
/// Borrowed: valid until the result is freed; NULL only for a NULL result.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn allowly_action_result_json(result: *const allowly_action_result) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { field(result, |r| lazy(&r.json, || serde_json::to_string(&r.result).ok())) }
}

// ---------------------------------------------------------------------------------------------
// Lifecycle: conveniences over `allowly_engine_call()`.

/// Creates an authorization from the JSON body of `POST /v1/authorizations`
/// (`{"user_id", "policy_id", "policy_version"?, "actions"?, "expires_at"?,
/// "budget_limit_micros"?, "metadata"?, "replaces"?, "idempotency_key"?}`): operation
/// `create_authorization` of `allowly_engine_call()`, with the new id apart.
///
/// On success, `*authorization_id_out` (if not NULL) is the new `auth_...` id and
/// `*response_json_out` (if not NULL) the response JSON: free each with `allowly_string_free()`.
/// Both are NULL on failure.
///
/// # Safety
/// `engine` is NULL or a live handle; `request_json` is NULL or has `request_json_len` readable
/// bytes; each output is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn allowly_engine_create_authorization(
    engine: *const allowly_engine,
    request_json: *const u8,
    request_json_len: usize,
    authorization_id_out: *mut *mut c_char,
    response_json_out: *mut *mut c_char,
) -> allowly_result {
    guard(|| {
        // SAFETY: per the contract.
        unsafe {
            clear_string_out(authorization_id_out);
            clear_string_out(response_json_out);
        }
        // SAFETY: per the contract.
        let api = unsafe { engine_arg(engine) }?;
        // SAFETY: per the contract.
        let bytes = unsafe { bytes_arg(request_json, request_json_len, "request_json") }?;
        let Answer::CreateAuthorization(created) = call_named(&*api, "create_authorization", bytes, "request_json")?
        else {
            return Err(Error::internal("`create_authorization` was answered with another operation's answer").into());
        };
        let json = to_json(&created)?;
        // Both outputs are prepared before either is written, so a failure leaks nothing.
        let id = crate::ffi::c_string(created.authorization_id)?;
        // SAFETY: per the contract.
        unsafe { write_string(response_json_out, json) }?;
        if !authorization_id_out.is_null() {
            // SAFETY: checked non-NULL; writable per the contract.
            unsafe { *authorization_id_out = id.into_raw() };
        }
        Ok(())
    })
}

/// Revokes an authorization (and its pending confirmations). `revoked_by` may be NULL.
/// `*response_json_out` (if not NULL) receives the response JSON: free it with `allowly_string_free()`.
/// Operation `revoke_authorization` of `allowly_engine_call()`.
///
/// # Safety
/// `engine` is NULL or a live handle; strings are NULL or NUL-terminated; `response_json_out` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn allowly_engine_revoke_authorization(
    engine: *const allowly_engine,
    authorization_id: *const c_char,
    revoked_by: *const c_char,
    response_json_out: *mut *mut c_char,
) -> allowly_result {
    let make = || {
        Ok(Request::from(ops::RevokeAuthorization {
            // SAFETY: per the contract.
            authorization_id: unsafe { str_arg(authorization_id, "authorization_id") }?.to_string(),
            // SAFETY: per the contract.
            revoked_by: unsafe { opt_str_arg(revoked_by, "revoked_by") }?.map(str::to_string),
            notes: None,
            idempotency_key: None,
        }))
    };
    // SAFETY: per the contract.
    unsafe { answer_with(engine, response_json_out, make) }
}

/// Approves (for `ttl_seconds`; 0 or less means the default 60) or rejects a pending
/// confirmation by the nonce a check returned. `*response_json_out` (if not NULL) receives the
/// response JSON: free it with `allowly_string_free()`. Operation `resolve_confirmation` of
/// `allowly_engine_call()`.
///
/// # Safety
/// `engine` is NULL or a live handle; `nonce` is NULL or NUL-terminated; `response_json_out` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn allowly_engine_resolve_confirmation(
    engine: *const allowly_engine,
    nonce: *const c_char,
    approved: bool,
    ttl_seconds: i64,
    response_json_out: *mut *mut c_char,
) -> allowly_result {
    let make = || {
        Ok(Request::from(ops::ResolveConfirmation {
            // SAFETY: per the contract.
            nonce: unsafe { str_arg(nonce, "nonce") }?.to_string(),
            approved,
            ttl_seconds: Some(if ttl_seconds > 0 { ttl_seconds } else { DEFAULT_CONFIRMATION_TTL_SECONDS }),
            idempotency_key: None,
        }))
    };
    // SAFETY: per the contract.
    unsafe { answer_with(engine, response_json_out, make) }
}

/// Approves or rejects a pending escalation by id. `resolved_by` (the approver) is required;
/// `note` may be NULL. `*response_json_out` (if not NULL) receives the response JSON: free it with
/// `allowly_string_free()`. Operation `resolve_escalation` of `allowly_engine_call()`.
///
/// # Safety
/// `engine` is NULL or a live handle; strings are NULL or NUL-terminated; `response_json_out` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn allowly_engine_resolve_escalation(
    engine: *const allowly_engine,
    escalation_id: *const c_char,
    approved: bool,
    resolved_by: *const c_char,
    note: *const c_char,
    response_json_out: *mut *mut c_char,
) -> allowly_result {
    let make = || {
        Ok(Request::from(ops::ResolveEscalation {
            // SAFETY: per the contract.
            escalation_id: unsafe { str_arg(escalation_id, "escalation_id") }?.to_string(),
            resolution: if approved { Resolution::Approved } else { Resolution::Rejected },
            // SAFETY: per the contract.
            resolved_by: unsafe { str_arg(resolved_by, "resolved_by") }?.to_string(),
            // SAFETY: per the contract.
            note: unsafe { opt_str_arg(note, "note") }?.map(str::to_string),
            idempotency_key: None,
        }))
    };
    // SAFETY: per the contract.
    unsafe { answer_with(engine, response_json_out, make) }
}

/// Settles the actual cost of a check against its reservation, once per check receipt.
/// `*response_json_out` (if not NULL) receives the response JSON: free it with
/// `allowly_string_free()`. Operation `settle_budget` of `allowly_engine_call()`.
///
/// # Safety
/// `engine` is NULL or a live handle; `check_receipt_id` is NULL or NUL-terminated;
/// `response_json_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn allowly_engine_settle_budget(
    engine: *const allowly_engine,
    check_receipt_id: *const c_char,
    actual_cost_micros: i64,
    response_json_out: *mut *mut c_char,
) -> allowly_result {
    let make = || {
        Ok(Request::from(ops::SettleBudget {
            // SAFETY: per the contract.
            check_receipt_id: unsafe { str_arg(check_receipt_id, "check_receipt_id") }?.to_string(),
            actual_cost_micros,
            idempotency_key: None,
        }))
    };
    // SAFETY: per the contract.
    unsafe { answer_with(engine, response_json_out, make) }
}

/// Publishes a policy edition from the JSON body of `POST /v1/policies` (`{"policy_id",
/// "profile", "agent_id", "actions", "default_expiry_days", "description"?}`); a remote engine
/// needs a setup key. `*response_json_out` (if not NULL) receives the answer of
/// `POST /v1/setup/policies/publish` (`{"policy_ref", "agent_id", "created_by", "created_at",
/// "authorization_migrations", "archived_policy_ids", "revoked_confirmation_count"}`): free it with
/// `allowly_string_free()`. Operation `publish_policy` of `allowly_engine_call()` (a remote engine
/// makes up the idempotency key the runtime requires unless the body has `"idempotency_key"`).
///
/// # Safety
/// `engine` is NULL or a live handle; `policy_json` is NULL or has `policy_json_len` readable
/// bytes; `response_json_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn allowly_engine_publish_policy(
    engine: *const allowly_engine,
    policy_json: *const u8,
    policy_json_len: usize,
    response_json_out: *mut *mut c_char,
) -> allowly_result {
    let make = || {
        // SAFETY: per the contract.
        let body = json_value(unsafe { bytes_arg(policy_json, policy_json_len, "policy_json") }?, "policy_json")?;
        Ok(Request::from_value("publish_policy", body)?)
    };
    // SAFETY: per the contract.
    unsafe { answer_with(engine, response_json_out, make) }
}

/// The workspace's public key document JSON (`{workspace_id, keys:[...]}`, retired keys included),
/// for `allowly_verify_receipt()`. A remote engine needs `options.workspace_id`.
/// `*key_document_json_out` receives it: free it with `allowly_string_free()`.
///
/// # Safety
/// `engine` is NULL or a live handle; `key_document_json_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn allowly_engine_key_document(
    engine: *const allowly_engine,
    key_document_json_out: *mut *mut c_char,
) -> allowly_result {
    guard(|| {
        if key_document_json_out.is_null() {
            return Err(Failure::null("key_document_json_out"));
        }
        // SAFETY: per the contract.
        unsafe { clear_string_out(key_document_json_out) };
        // SAFETY: per the contract.
        let api = unsafe { engine_arg(engine) }?;
        let document = api.key_document()?;
        // SAFETY: per the contract.
        unsafe { write_json(key_document_json_out, &document) }
    })
}

/// The workspace id (`ws_...`): always known when embedded; for a remote engine the configured
/// `options.workspace_id` (else `ALLOWLY_RESULT_NOT_FOUND`). `*workspace_id_out` receives it:
/// free it with `allowly_string_free()`.
///
/// # Safety
/// `engine` is NULL or a live handle; `workspace_id_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn allowly_engine_workspace_id(
    engine: *const allowly_engine,
    workspace_id_out: *mut *mut c_char,
) -> allowly_result {
    guard(|| {
        if workspace_id_out.is_null() {
            return Err(Failure::null("workspace_id_out"));
        }
        // SAFETY: per the contract.
        unsafe { clear_string_out(workspace_id_out) };
        // SAFETY: per the contract.
        let api = unsafe { engine_arg(engine) }?;
        let Some(id) = api.workspace_id() else {
            return Err(Failure::boundary(
                ALLOWLY_RESULT_NOT_FOUND,
                ErrorKind::NotFound,
                None,
                "workspace_unknown",
                "the workspace id is unknown: set `options.workspace_id` when connecting",
            ));
        };
        // SAFETY: per the contract.
        unsafe { write_string(workspace_id_out, id) }
    })
}
