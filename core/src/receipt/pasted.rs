//! Verification of what a person pastes or uploads (`POST /v1/verify`, the console's Verify
//! screen): one receipt, the API's envelope of one (`{"status":"signed","receipt":{...}}`), a
//! whole check response (every `results[].receipt`), or a JSONL export with, optionally, its
//! checkpoint evidence. The shape is recognised here; every receipt goes through the one
//! [`Verifier`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::export::{verify_export_from, ExportReport};
use super::verify::{Verifier, VerifyError};
use crate::canonical;
use crate::time::Timestamp;

/// The verdict on everything that was pasted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct VerifyReport {
    /// Every receipt verified, there was at least one, and the evidence (if any) verified.
    pub valid: bool,
    /// What the input was read as: `receipt`, `receipt_envelope`, `check_response` or `export`.
    pub input: String,
    pub ok: u64,
    pub invalid: u64,
    pub receipts: Vec<ReceiptVerdict>,
    /// The checkpoints of the evidence that verified.
    pub checkpoints: Vec<CheckpointVerdict>,
    /// Why the checkpoint evidence did not verify.
    pub evidence_error: Option<VerifyFailure>,
}

/// The verdict on one receipt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct ReceiptVerdict {
    pub valid: bool,
    /// 1-based line of an export.
    pub line: Option<u64>,
    pub receipt_id: Option<String>,
    /// `decision` (an action was decided) or `event` (a lifecycle event).
    pub kind: Option<String>,
    /// The action decided, or the event.
    pub subject: Option<String>,
    pub decision: Option<String>,
    pub issued_at: Option<String>,
    pub key_id: Option<String>,
    pub key_fingerprint: Option<String>,
    pub error: Option<VerifyFailure>,
}

/// Why a receipt did not verify, with the reference verifier's exception class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct VerifyFailure {
    /// `SignatureMismatchError`, `UnknownKeyError`, `KeyOutsideActiveWindowError`, `SchemaError`
    /// or `VerificationError`.
    pub class: String,
    pub code: String,
    pub message: String,
}

impl From<&VerifyError> for VerifyFailure {
    fn from(err: &VerifyError) -> VerifyFailure {
        VerifyFailure { class: err.reference_class().into(), code: err.code().into(), message: err.to_string() }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
pub struct CheckpointVerdict {
    pub receipt_id: String,
    pub period_start: String,
    pub members: u64,
}

/// What a pasted text holds.
enum Pasted {
    /// Receipts out of one JSON document, and what the document was.
    Receipts(&'static str, Vec<Value>),
    /// Anything else is read as a JSONL export.
    Export,
}

/// Verifies `input` (see the module documentation) and, for an export, `evidence`.
pub fn verify_pasted(verifier: &Verifier, input: &[u8], evidence: Option<&[u8]>, now: Timestamp) -> VerifyReport {
    match recognise(input) {
        Pasted::Receipts(shape, receipts) if evidence.is_none() => {
            let verdicts: Vec<ReceiptVerdict> =
                receipts.iter().map(|receipt| verdict(verifier, receipt, now)).collect();
            report(shape, verdicts, Vec::new(), None)
        }
        // Evidence is about an export: a single document with evidence is checked as a
        // one-line export, so the evidence is verified rather than ignored.
        _ => match verify_export_from(verifier, trimmed(input), evidence, now) {
            Ok(export) => export_report(&export),
            Err(err) => {
                let failure = VerifyFailure {
                    class: "SchemaError".into(),
                    code: "schema_error".into(),
                    message: format!("the export cannot be read: {err}"),
                };
                let line = ReceiptVerdict { error: Some(failure), ..ReceiptVerdict::default() };
                report("export", vec![line], Vec::new(), None)
            }
        },
    }
}

fn trimmed(input: &[u8]) -> &[u8] {
    let start = input.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(input.len());
    &input[start..]
}

fn recognise(input: &[u8]) -> Pasted {
    let Ok(document) = canonical::parse_document(trimmed(input)) else { return Pasted::Export };
    let Some(object) = document.as_object() else { return Pasted::Export };
    if object.contains_key("protected") {
        return Pasted::Receipts("receipt", vec![document]);
    }
    if let Some(receipt) = object.get("receipt").filter(|r| r.get("protected").is_some()) {
        return Pasted::Receipts("receipt_envelope", vec![receipt.clone()]);
    }
    // A check response's `results` map each action to its result (an SDK may list them instead).
    let results: Vec<&Value> = match object.get("results") {
        Some(Value::Object(by_action)) => by_action.values().collect(),
        Some(Value::Array(listed)) => listed.iter().collect(),
        _ => Vec::new(),
    };
    let receipts: Vec<Value> = results
        .into_iter()
        .filter_map(|result| result.get("receipt"))
        .map(|receipt| receipt.get("receipt").filter(|_| receipt.get("protected").is_none()).unwrap_or(receipt).clone())
        .collect();
    if !receipts.is_empty() {
        return Pasted::Receipts("check_response", receipts);
    }
    Pasted::Export
}

fn verdict(verifier: &Verifier, receipt: &Value, now: Timestamp) -> ReceiptVerdict {
    let (key_id, key_fingerprint) = verifier.signer(receipt).unzip();
    match verifier.verify(receipt, now) {
        Ok(payload) => {
            let text = |name: &str| payload.get(name).and_then(Value::as_str).map(str::to_string);
            let (kind, subject) = match text("action") {
                Some(action) => ("decision", Some(action)),
                None => ("event", text("event")),
            };
            ReceiptVerdict {
                valid: true,
                line: None,
                receipt_id: text("receipt_id"),
                kind: Some(kind.into()),
                subject,
                decision: text("decision"),
                issued_at: text("issued_at"),
                key_id,
                key_fingerprint,
                error: None,
            }
        }
        Err(err) => ReceiptVerdict {
            receipt_id: super::decode_receipt(receipt)
                .ok()
                .and_then(|payload| payload.get("receipt_id").and_then(Value::as_str).map(str::to_string)),
            key_id,
            key_fingerprint,
            error: Some(VerifyFailure::from(&err)),
            ..ReceiptVerdict::default()
        },
    }
}

fn export_report(export: &ExportReport) -> VerifyReport {
    let verdicts = export
        .lines
        .iter()
        .map(|line| ReceiptVerdict {
            valid: line.error.is_none(),
            line: Some(line.line),
            receipt_id: line.receipt_id.clone(),
            subject: line.label.clone(),
            decision: line.decision.clone(),
            error: line.error.as_ref().map(VerifyFailure::from),
            ..ReceiptVerdict::default()
        })
        .collect();
    let checkpoints = export
        .checkpoints
        .iter()
        .map(|(receipt_id, period_start, members)| CheckpointVerdict {
            receipt_id: receipt_id.clone(),
            period_start: period_start.clone(),
            members: *members as u64,
        })
        .collect();
    report("export", verdicts, checkpoints, export.evidence_error.as_ref().map(VerifyFailure::from))
}

fn report(
    input: &str,
    receipts: Vec<ReceiptVerdict>,
    checkpoints: Vec<CheckpointVerdict>,
    evidence_error: Option<VerifyFailure>,
) -> VerifyReport {
    let ok = receipts.iter().filter(|r| r.valid).count() as u64;
    let invalid = receipts.len() as u64 - ok;
    VerifyReport {
        valid: invalid == 0 && evidence_error.is_none() && (ok > 0 || !checkpoints.is_empty()),
        input: input.into(),
        ok,
        invalid,
        receipts,
        checkpoints,
        evidence_error,
    }
}
