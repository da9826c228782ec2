//! `@allowly/sdk`: the Allowly engine for Node through napi-rs.
//!
//! The binding converts types and errors only. An operation is called by its name in the core's
//! catalog (`allowly_core::ops`) with the wire's snake_case JSON, built with
//! `Request::from_value`, run by [`Api::call`] (embedded engine or remote runtime alike) and
//! answered with the HTTP API's JSON; errors reach JS as structured details (`kind`, `code`,
//! `status`, ...), never as JSON inside a message. Engine work runs on the libuv thread pool
//! (napi `AsyncTask`), never on the event loop.
//!
//! [`Api::call`]: allowly_core::api::Api::call

mod convert;

// `#[napi]` expands to `extern "C"` glue with `unsafe` blocks; the allowance is limited to this
// module, which holds nothing but the exported items.
#[allow(unsafe_code)]
mod js;
