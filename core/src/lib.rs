//! The Allowly engine: policies, decisions, signed wire-5 receipts, stores and the verifier.
//!
//! One synchronous, `Send + Sync` facade ([`Allowly`]) serves the CLI, the HTTP server and the
//! language bindings. Every decision and lifecycle event is signed into a receipt and stored in the
//! same transaction as the state it changes.

pub mod api;
pub mod canonical;
pub mod error;
pub mod ids;
pub mod policy;
pub mod receipt;
pub mod time;

pub use error::{Error, ErrorKind, FieldError, Result};
pub use time::Timestamp;
pub mod engine;
pub mod model;
pub mod ops;
#[cfg(feature = "remote")]
pub mod remote;
pub mod store;

pub use engine::{Allowly, Clock, ManualClock, Options, SystemClock};
#[cfg(feature = "remote")]
pub use remote::{connect, RemoteClient, RemoteOptions};
