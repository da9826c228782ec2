//! `@allowly/sdk`: the Allowly engine for Node through napi-rs.
//!
//! The binding converts types and errors only: every call goes to the core's [`Api`] trait
//! (embedded engine or remote runtime alike), arguments arrive as the wire's snake_case JSON and
//! answers leave as JSON, which the package's JS wrapper maps to camelCase and typed errors.
//! Engine work runs on the libuv thread pool (napi `AsyncTask`), never on the event loop.
//!
//! [`Api`]: allowly_core::api::Api

mod convert;

// `#[napi]` expands to `extern "C"` glue with `unsafe` blocks; the allowance is limited to this
// module, which holds nothing but the exported items.
#[allow(unsafe_code)]
mod js;
