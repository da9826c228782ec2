//! Offline receipt verification.

use std::ffi::c_char;

use allowly_core::canonical;
use allowly_core::receipt::{KeySet, Verifier};
use allowly_core::{Error, Timestamp};

use crate::allowly_result;
use crate::ffi::{bytes_arg, clear_string_out, guard, str_arg, write_json, Failure};

/// Verifies a signed receipt offline, as the reference verifier of wire 5 does.
///
/// - `receipt_json` (`receipt_json_len` bytes): the JWS object `{"protected","payload","signature"}`.
/// - `key_document_json` (`key_document_json_len` bytes): the workspace's key document
///   (`GET /v1/workspaces/{id}/keys`, or `allowly_engine_key_document()`); it must be the document
///   of `expected_workspace_id`.
/// - `expected_workspace_id` (NUL-terminated) and `trusted_fingerprints` (`trusted_len`
///   NUL-terminated `"sha256:<hex>"` strings) come from your own configuration, never from the
///   receipt. With no trusted fingerprint no key is trusted.
///
/// Returns `ALLOWLY_RESULT_OK` if the receipt verifies; then `*payload_json_out` (if not NULL)
/// is the decoded payload JSON: free it with `allowly_string_free()`. Otherwise a typed code:
/// `ALLOWLY_RESULT_VERIFY_SCHEMA` (shape, encoding, timestamps, a receipt of another workspace),
/// `ALLOWLY_RESULT_VERIFY_UNKNOWN_KEY`, `ALLOWLY_RESULT_VERIFY_KEY_OUTSIDE_WINDOW`,
/// `ALLOWLY_RESULT_VERIFY_UNTRUSTED_KEY`, `ALLOWLY_RESULT_VERIFY_SIGNATURE_MISMATCH`; a key
/// document that is not JSON gives `ALLOWLY_RESULT_INVALID_JSON`, one of the wrong shape or of
/// another workspace `ALLOWLY_RESULT_INVALID_REQUEST`; a receipt that is not JSON gives
/// `ALLOWLY_RESULT_VERIFY_SCHEMA`, like the reference.
///
/// # Safety
/// Buffers are NULL or have the given number of readable bytes; strings are NULL or
/// NUL-terminated; `trusted_fingerprints` is NULL (only with `trusted_len` 0) or has `trusted_len`
/// readable pointers; `payload_json_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn allowly_verify_receipt(
    receipt_json: *const u8,
    receipt_json_len: usize,
    key_document_json: *const u8,
    key_document_json_len: usize,
    expected_workspace_id: *const c_char,
    trusted_fingerprints: *const *const c_char,
    trusted_len: usize,
    payload_json_out: *mut *mut c_char,
) -> allowly_result {
    guard(|| {
        // SAFETY: per the contract.
        unsafe { clear_string_out(payload_json_out) };
        // SAFETY: per the contract.
        let receipt = unsafe { bytes_arg(receipt_json, receipt_json_len, "receipt_json") }?;
        // SAFETY: per the contract.
        let document = unsafe { bytes_arg(key_document_json, key_document_json_len, "key_document_json") }?;
        // SAFETY: per the contract.
        let workspace_id = unsafe { str_arg(expected_workspace_id, "expected_workspace_id") }?;
        let mut trusted = Vec::new();
        if trusted_len > 0 {
            if trusted_fingerprints.is_null() {
                return Err(Failure::null("trusted_fingerprints"));
            }
            if trusted_len > 10_000 {
                return Err(Error::invalid("trusted_fingerprints", "too many").into());
            }
            // SAFETY: non-NULL with `trusted_len` (bounded) readable pointers per the contract.
            let pointers = unsafe { std::slice::from_raw_parts(trusted_fingerprints, trusted_len) };
            for (i, pointer) in pointers.iter().enumerate() {
                // SAFETY: each entry is NULL or NUL-terminated per the contract.
                trusted.push(unsafe { str_arg(*pointer, &format!("trusted_fingerprints[{i}]")) }?.to_string());
            }
        }

        let document = canonical::parse_document(document)
            .map_err(|err| Failure::invalid_json(format!("`key_document_json` is not a key document: {err}")))?;
        let (document_workspace, keys) = KeySet::from_document(&document)
            .map_err(|err| Error::invalid("key_document_json", format!("is not a key document: {err}")))?;
        // A key document of another workspace cannot vouch for this one (as `allowly verify`).
        if document_workspace != workspace_id {
            let message = format!("the key document is of `{document_workspace}`, not of `{workspace_id}`");
            return Err(Error::invalid("key_document_json", message).into());
        }
        let verifier = Verifier::new(keys, workspace_id, trusted);
        let payload = verifier.verify_json(receipt, Timestamp::now())?;
        // SAFETY: per the contract.
        unsafe { write_json(payload_json_out, &payload) }
    })
}
