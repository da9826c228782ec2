//! `allowly verify`: offline verification of one receipt or a whole export, with the reference
//! verifier's exit codes (0 valid, 1 invalid, 2 usage error) and line format.

use std::io::Read as _;
use std::path::Path;

use allowly_core::canonical;
use allowly_core::receipt::{is_fingerprint, verify_export, ExportReport, KeySet, Verifier, VerifyError};
use allowly_core::Timestamp;
use serde_json::{json, Value};

use crate::args::VerifyArgs;
use crate::commands::{EXIT_ERROR, EXIT_OK, EXIT_USAGE};
use crate::output::{self, Output};

/// A problem with how `verify` was called (unreadable files, a key document that does not load):
/// nothing was verified, so it is neither valid nor invalid.
struct Usage(String);

pub fn run(args: &VerifyArgs, out: &Output) -> i32 {
    match verify(args, out) {
        Ok(code) => code,
        Err(Usage(message)) => {
            if out.json {
                let body = json!({"error": {"code": "usage_error", "message": message, "fields": []}});
                let _ = out.json_value(&body);
            } else {
                output::stderr(&format!("error: {message}"));
            }
            EXIT_USAGE
        }
    }
}

fn verify(args: &VerifyArgs, out: &Output) -> Result<i32, Usage> {
    let verifier = load_verifier(args)?;
    if let Some(evidence) = &args.checkpoint_evidence {
        // Checked up front so that a mistyped path is a usage error, not an invalid export.
        std::fs::metadata(evidence).map_err(|err| Usage(format!("cannot read `{}`: {err}", evidence.display())))?;
    }
    let now = Timestamp::now();
    match single_receipt(&args.input)? {
        Some(single) => {
            if args.checkpoint_evidence.is_some() {
                return Err(Usage("--checkpoint-evidence needs an export, not a single receipt".into()));
            }
            // Verified from the bytes, so the strict reader (no floats, no duplicate names) decides.
            let verdict = match single {
                Single::Bare(bytes) => verifier.verify_json(&bytes, now),
                Single::Wrapped(bytes) => canonical::parse_strict(&bytes)
                    .map_err(VerifyError::from)
                    .and_then(|wrapper| verifier.verify(&wrapper["receipt"], now)),
            };
            report_receipt(&verdict, out)
        }
        None => match verify_export(&verifier, &args.input, args.checkpoint_evidence.as_deref(), now) {
            Ok(report) => report_export(&report, out),
            // Content the reference aborts on (an export that is not UTF-8) is invalid, not misuse.
            Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
                let text = format!("INVALID  {}: {err}", args.input.display());
                emit(
                    out,
                    &json!({"valid": false, "error": {"code": "schema_error", "message": err.to_string()}}),
                    &text,
                )?;
                Ok(EXIT_ERROR)
            }
            Err(err) => Err(Usage(format!("cannot read the export: {err}"))),
        },
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Usage> {
    std::fs::read(path).map_err(|err| Usage(format!("cannot read `{}`: {err}", path.display())))
}

fn load_verifier(args: &VerifyArgs) -> Result<Verifier, Usage> {
    let keys_path = args.keys.display();
    let document = canonical::parse_document(&read(&args.keys)?)
        .map_err(|err| Usage(format!("`{keys_path}` is not a key document: {err}")))?;
    let (document_workspace, keys) =
        KeySet::from_document(&document).map_err(|err| Usage(format!("`{keys_path}` is not a key document: {err}")))?;
    // The workspace comes from the caller's configuration; a key document of another workspace
    // cannot vouch for it.
    if document_workspace != args.workspace_id {
        return Err(Usage(format!(
            "`{keys_path}` is the key document of `{document_workspace}`, not of `{}`",
            args.workspace_id
        )));
    }
    if let Some(fingerprint) = args.trusted_key_fingerprints.iter().find(|f| !is_fingerprint(f)) {
        return Err(Usage(format!("trusted key fingerprint `{fingerprint}` is not `sha256:<64 lowercase hex>`")));
    }
    Ok(Verifier::new(keys, &args.workspace_id, args.trusted_key_fingerprints.iter().cloned()))
}

/// Receipts are a few KiB; anything larger is an export.
const MAX_SINGLE_RECEIPT_BYTES: u64 = 1 << 20;

/// A file that holds one receipt rather than an export.
enum Single {
    /// The receipt object itself.
    Bare(Vec<u8>),
    /// The API's `{"status":"signed","receipt":{...}}` (`allowly receipts show ID --json`).
    Wrapped(Vec<u8>),
}

/// Whether `path` holds exactly one JSON object that is a receipt (it has `protected`) or the
/// API's envelope of one; `None` means an export.
fn single_receipt(path: &Path) -> Result<Option<Single>, Usage> {
    let unreadable = |err: std::io::Error| Usage(format!("cannot read `{}`: {err}", path.display()));
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_SINGLE_RECEIPT_BYTES + 1).read_to_end(&mut head))
        .map_err(unreadable)?;
    if head.len() as u64 > MAX_SINGLE_RECEIPT_BYTES || head.starts_with(&[0x1f, 0x8b]) {
        return Ok(None);
    }
    let Ok(value) = canonical::parse_document(&head) else { return Ok(None) };
    let Some(object) = value.as_object() else { return Ok(None) };
    if object.contains_key("protected") {
        return Ok(Some(Single::Bare(head)));
    }
    let wrapped = object.contains_key("status") && object.get("receipt").is_some_and(|r| r.get("protected").is_some());
    Ok(wrapped.then_some(Single::Wrapped(head)))
}

/// `<action|event>  <decision>` of a verified payload.
fn subject(payload: &Value) -> (String, String) {
    let text = |key: &str| payload.get(key).and_then(Value::as_str).map(str::to_string);
    (
        text("action").or_else(|| text("event")).unwrap_or_else(|| "-".into()),
        text("decision").unwrap_or_else(|| "-".into()),
    )
}

fn error_json(err: &VerifyError) -> Value {
    json!({"code": err.code(), "class": err.reference_class(), "message": err.to_string()})
}

fn report_receipt(verdict: &Result<Value, VerifyError>, out: &Output) -> Result<i32, Usage> {
    let (body, text, code) = match verdict {
        Ok(payload) => {
            let receipt_id = payload.get("receipt_id").and_then(Value::as_str).unwrap_or("-");
            let (subject, decision) = subject(payload);
            (
                json!({"valid": true, "receipt_id": receipt_id, "payload": payload}),
                format!("OK  {receipt_id}  {subject}  {decision}"),
                EXIT_OK,
            )
        }
        Err(err) => (
            json!({"valid": false, "error": error_json(err)}),
            format!("INVALID  {}: {err}", err.reference_class()),
            EXIT_ERROR,
        ),
    };
    emit(out, &body, &text)?;
    Ok(code)
}

fn report_export(report: &ExportReport, out: &Output) -> Result<i32, Usage> {
    let code = if report.is_valid() { EXIT_OK } else { EXIT_ERROR };
    let checked = report.lines.len();
    if out.json {
        let lines: Vec<Value> = report
            .lines
            .iter()
            .map(|line| {
                json!({
                    "line": line.line, "receipt_id": line.receipt_id, "label": line.label, "decision": line.decision,
                    "valid": line.error.is_none(), "error": line.error.as_ref().map(error_json),
                })
            })
            .collect();
        let checkpoints: Vec<Value> = report
            .checkpoints
            .iter()
            .map(|(receipt_id, period_start, members)| json!({"receipt_id": receipt_id, "period_start": period_start, "members": members}))
            .collect();
        let body = json!({
            "valid": code == EXIT_OK, "ok": report.ok, "invalid": report.invalid, "checked": checked,
            "lines": lines, "checkpoints": checkpoints, "evidence_error": report.evidence_error.as_ref().map(error_json),
        });
        emit(out, &body, "")?;
        return Ok(code);
    }
    let mut text = String::new();
    for line in &report.lines {
        let receipt_id = line.receipt_id.as_deref().unwrap_or("-");
        match &line.error {
            None => text.push_str(&format!(
                "OK  {receipt_id}  {}  {}\n",
                line.label.as_deref().unwrap_or("?"),
                line.decision.as_deref().unwrap_or("?")
            )),
            Some(err) => {
                text.push_str(&format!("INVALID  line {}  {receipt_id}  {}: {err}\n", line.line, err.reference_class()))
            }
        }
    }
    for (receipt_id, period_start, members) in &report.checkpoints {
        text.push_str(&format!("CHECKPOINT OK  {receipt_id}  {period_start}  {members} members\n"));
    }
    if let Some(err) = &report.evidence_error {
        text.push_str(&format!("INVALID  checkpoint evidence  {}: {err}\n", err.reference_class()));
    }
    text.push_str(&format!("{} ok, {} invalid ({checked} checked)", report.ok, report.invalid));
    if checked == 0 && report.checkpoints.is_empty() {
        text.push_str("\nno receipts to verify");
    }
    emit(out, &Value::Null, &text)?;
    Ok(code)
}

fn emit(out: &Output, body: &Value, text: &str) -> Result<(), Usage> {
    let printed = if out.json { out.json_value(body) } else { output::stdout(text) };
    printed.map_err(|err| Usage(err.to_string()))
}
