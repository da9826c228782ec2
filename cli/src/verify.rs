//! `allowly verify`: offline verification of one receipt or a whole export, with the reference
//! verifier's exit codes (0 valid, 1 invalid, 2 usage error) and line format.

use std::io::{Read as _, Write as _};
use std::path::Path;

use allowly_core::canonical;
use allowly_core::receipt::{
    is_fingerprint, verify_export_each, ExportSummary, KeySet, LineResult, Verifier, VerifyError,
};
use allowly_core::Timestamp;
use serde_json::{json, Value};

use crate::args::VerifyArgs;
use crate::commands::{EXIT_ERROR, EXIT_OK, EXIT_USAGE};
use crate::output::{self, Output};
use crate::progress::Progress;

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
        None => verify_whole_export(&verifier, args, now, out),
    }
}

/// An export, each line's verdict printed as soon as it is known: memory stays flat however long
/// the file is.
fn verify_whole_export(verifier: &Verifier, args: &VerifyArgs, now: Timestamp, out: &Output) -> Result<i32, Usage> {
    let mut printer = ExportPrinter::start(out.json);
    let mut progress = Progress::on_terminal("verified");
    let verified = verify_export_each(verifier, &args.input, args.checkpoint_evidence.as_deref(), now, &mut |line| {
        progress.set(line.line);
        printer.line(&line);
    });
    progress.finish();
    match verified {
        Ok(summary) => {
            printer.finish(&summary)?;
            Ok(if summary.is_valid() { EXIT_OK } else { EXIT_ERROR })
        }
        // Content the reference aborts on (an export that is not UTF-8) is invalid, not misuse.
        Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
            let error = json!({"code": "schema_error", "message": err.to_string()});
            printer.abort(&error, &format!("INVALID  {}: {err}", args.input.display()))?;
            Ok(EXIT_ERROR)
        }
        Err(err) => {
            let message = format!("cannot read the export: {err}");
            let error = json!({"code": "usage_error", "message": message, "fields": []});
            printer.abort(&error, &format!("error: {message}"))?;
            Ok(EXIT_USAGE)
        }
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

/// Prints an export's verdicts as they come: the reference's text lines, or one JSON document
/// whose `lines` array is written element by element (`lines` first, the totals after it).
struct ExportPrinter {
    json: bool,
    out: std::io::BufWriter<std::io::Stdout>,
    lines: u64,
    /// The first write error; a closed pipe (`| head`) ends the printing, not the verification.
    failed: Option<std::io::Error>,
}

impl ExportPrinter {
    fn start(json: bool) -> ExportPrinter {
        let mut printer =
            ExportPrinter { json, out: std::io::BufWriter::new(std::io::stdout()), lines: 0, failed: None };
        if json {
            printer.write("{\n  \"lines\": [");
        }
        printer
    }

    fn line(&mut self, line: &LineResult) {
        if self.json {
            let body = json!({
                "line": line.line, "receipt_id": line.receipt_id, "label": line.label, "decision": line.decision,
                "valid": line.error.is_none(), "error": line.error.as_ref().map(error_json),
            });
            let separator = if self.lines == 0 { "" } else { "," };
            write!(self, "{separator}\n    {body}");
        } else {
            // Formatted straight into the buffer: a million lines, no string each.
            let receipt_id = line.receipt_id.as_deref().unwrap_or("-");
            match &line.error {
                None => writeln!(
                    self,
                    "OK  {receipt_id}  {}  {}",
                    line.label.as_deref().unwrap_or("?"),
                    line.decision.as_deref().unwrap_or("?")
                ),
                Some(err) => {
                    writeln!(self, "INVALID  line {}  {receipt_id}  {}: {err}", line.line, err.reference_class())
                }
            }
        }
        self.lines += 1;
    }

    fn finish(mut self, summary: &ExportSummary) -> Result<(), Usage> {
        let valid = summary.is_valid();
        if self.json {
            let checkpoints: Vec<Value> = summary
                .checkpoints
                .iter()
                .map(|(receipt_id, period_start, members)| json!({"receipt_id": receipt_id, "period_start": period_start, "members": members}))
                .collect();
            let evidence_error = summary.evidence_error.as_ref().map(error_json);
            self.write(&format!(
                "\n  ],\n  \"ok\": {},\n  \"invalid\": {},\n  \"checked\": {},\n  \"checkpoints\": {},\n  \"evidence_error\": {},\n  \"valid\": {valid}\n}}\n",
                summary.ok,
                summary.invalid,
                summary.checked,
                Value::from(checkpoints),
                evidence_error.unwrap_or(Value::Null),
            ));
        } else {
            let mut text = String::new();
            for (receipt_id, period_start, members) in &summary.checkpoints {
                text.push_str(&format!("CHECKPOINT OK  {receipt_id}  {period_start}  {members} members\n"));
            }
            if let Some(err) = &summary.evidence_error {
                text.push_str(&format!("INVALID  checkpoint evidence  {}: {err}\n", err.reference_class()));
            }
            text.push_str(&format!("{} ok, {} invalid ({} checked)\n", summary.ok, summary.invalid, summary.checked));
            if summary.checked == 0 && summary.checkpoints.is_empty() {
                text.push_str("no receipts to verify\n");
            }
            self.write(&text);
        }
        self.flush()
    }

    /// Ends the output when the export could not be read to its end: the JSON document is closed
    /// with `valid: false` and the `error`; text gets `text` (on stderr for a usage error).
    fn abort(mut self, error: &Value, text: &str) -> Result<(), Usage> {
        if self.json {
            self.write(&format!("\n  ],\n  \"valid\": false,\n  \"error\": {error}\n}}\n"));
        } else if error["code"] == "usage_error" {
            self.flush()?;
            output::stderr(text);
            return Ok(());
        } else {
            self.write(&format!("{text}\n"));
        }
        self.flush()
    }

    fn write(&mut self, text: &str) {
        self.write_fmt(format_args!("{text}"));
    }

    /// What `write!(self, ...)` calls: output stops at the first error, kept for `flush`.
    fn write_fmt(&mut self, text: std::fmt::Arguments<'_>) {
        if self.failed.is_none() {
            if let Err(err) = self.out.write_fmt(text) {
                self.failed = Some(err);
            }
        }
    }

    fn flush(&mut self) -> Result<(), Usage> {
        let flushed = match self.failed.take() {
            Some(err) => Err(err),
            None => self.out.flush(),
        };
        match flushed {
            Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(Usage(format!("cannot write output: {err}")))
            }
            _ => Ok(()),
        }
    }
}

fn emit(out: &Output, body: &Value, text: &str) -> Result<(), Usage> {
    let printed = if out.json { out.json_value(body) } else { output::stdout(text) };
    printed.map_err(|err| Usage(err.to_string()))
}
