//! Signed receipts of the Allowly Receipt Format, wire 5: signing, keys, verification, daily
//! checkpoints and exports.
//!
//! The verifier mirrors the reference `allowly-receipt-format` 5.0.0 (`verify_receipt`,
//! `verify_checkpoint`, `allowly-receipt-verify --export`): same checks, same order, same error
//! classes. (Exports and `Verifier::verify_many` check signatures in batches; see `batch.rs` for
//! the one theoretical difference, which only a key's own holder could provoke.)

mod batch;
pub mod checkpoint;
pub mod export;
pub mod jws;
pub mod keys;
pub mod pasted;
mod seen;
pub mod verify;

pub use checkpoint::{merkle_leaf, merkle_root, merkle_root_of_leaves, verify_checkpoint, EMPTY_MERKLE_ROOT};
pub use export::{
    verify_export, verify_export_each, verify_export_from, verify_export_from_each, write_export, CheckpointEvidence,
    EvidenceEntry, ExportReport, ExportSummary, LineResult,
};
pub use jws::{ReceiptSigner, SignedReceipt};
pub use keys::{fingerprint, is_fingerprint, KeyDocument, KeyRecord, KeySet, PublishedKey};
pub use pasted::{verify_pasted, VerifyReport};
pub use verify::{decode_receipt, PayloadVerdict, Verifier, VerifyError};

/// The `schema_version` of every receipt this crate signs and accepts.
pub const SCHEMA_VERSION: &str = "5";
