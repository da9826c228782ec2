//! The HTTP error body `{"error":{"code","message","fields":[{field,message}]}}` and the status of
//! every engine error code.

use allowly_core::{Error, FieldError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Marks a response whose error came from the store (counted by the metrics).
#[derive(Clone, Copy, Debug)]
pub struct StoreFailure;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub fields: Vec<FieldError>,
    /// `Retry-After` seconds.
    pub retry_after: Option<u32>,
    store_failure: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            fields: Vec::new(),
            retry_after: None,
            store_failure: false,
        }
    }

    /// 422 `invalid_request` naming one field.
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::from(Error::invalid(field, message))
    }

    /// 400 `invalid_json`: the body is not a JSON document.
    pub fn malformed_json(detail: impl std::fmt::Display) -> ApiError {
        let mut err = ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the request body is not valid JSON: {detail}"),
        );
        err.fields.push(FieldError { field: "body".into(), message: "is not valid JSON".into() });
        err
    }

    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "invalid_or_revoked_api_key", message)
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this call needs a setup API key; a runtime key may only check, authorize, resolve approvals, read receipts and settle budgets",
        )
    }

    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("the request body is over the limit of {limit} bytes"),
        )
    }

    pub fn internal(message: &str) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> ApiError {
        let code = err.code().to_string();
        let status = err
            .http_status()
            .and_then(|status| StatusCode::from_u16(status).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (status, message) = match &err {
            Error::InvalidRequest { .. }
            | Error::Verification(_)
            | Error::NotFound { .. }
            | Error::Unauthorized { .. }
            | Error::Conflict { .. } => (status, err.to_string()),
            Error::Store { message: detail, .. } => {
                // The detail may name files or SQL; it goes to the log, not to the caller.
                tracing::warn!(target: "allowly::store", error = %detail, "store failure");
                let mut out =
                    ApiError::new(status, &code, "the store is unavailable; nothing was changed, retry later");
                out.retry_after = Some(1);
                out.store_failure = true;
                return out;
            }
            Error::OutcomeUnknown { message: detail, .. } => {
                tracing::warn!(target: "allowly::store", error = %detail, "commit outcome unknown");
                let mut out = ApiError::new(
                    status,
                    &code,
                    "the store's connection broke while the request was being committed, so it may have been \
                     applied: retry it with the same Idempotency-Key to get its answer",
                );
                out.retry_after = Some(1);
                out.store_failure = true;
                return out;
            }
            Error::Signing { message: detail, .. } | Error::Io { message: detail, .. } => {
                tracing::error!(target: "allowly::engine", code, error = %detail, "engine failure");
                (status, "the engine failed; nothing was changed".to_string())
            }
            // Errors of other surfaces (e.g. the remote client's) never come out of an embedded engine.
            #[allow(unreachable_patterns)]
            other => {
                tracing::error!(target: "allowly::engine", code, error = %other, "unexpected engine error");
                (StatusCode::INTERNAL_SERVER_ERROR, "the engine failed".to_string())
            }
        };
        ApiError { status, code, message, fields: err.fields().to_vec(), retry_after: None, store_failure: false }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message, "fields": self.fields}});
        let mut response = crate::api::json_response(self.status, &body);
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.store_failure {
            response.extensions_mut().insert(StoreFailure);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_statuses() {
        let cases = [
            (Error::invalid("actions", "bad"), 422, "invalid_request"),
            (Error::not_found("receipt_not_found", "receipt", "r"), 404, "receipt_not_found"),
            (Error::conflict("budget_already_settled", "x"), 409, "budget_already_settled"),
            (
                Error::Unauthorized { code: "invalid_or_revoked_api_key", message: "no".into() },
                401,
                "invalid_or_revoked_api_key",
            ),
            (Error::store("disk I/O error at /secret/path"), 503, "store_unavailable"),
            (Error::signing("no randomness"), 500, "signing_failed"),
        ];
        for (err, status, code) in cases {
            let api = ApiError::from(err);
            assert_eq!((api.status.as_u16(), api.code.as_str()), (status, code));
            let response = api.into_response();
            if status == 503 {
                assert_eq!(response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("1"));
                assert!(response.extensions().get::<StoreFailure>().is_some());
            }
            if status == 401 {
                assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
            }
        }
        let store = ApiError::from(Error::store("disk I/O error at /secret/path"));
        assert!(!store.message.contains("/secret/path"), "store details stay in the log");
        assert_eq!(ApiError::invalid("limit", "x").fields.len(), 1);
    }
}
