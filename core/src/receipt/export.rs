//! Receipt exports (JSONL, optionally gzip) and their bulk verification, with checkpoint evidence,
//! as `allowly-receipt-verify --export FILE --checkpoint-evidence FILE` does it.

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::checkpoint::{verify_checkpoint_with_members, Member};
use super::jws::SignedReceipt;
use super::seen::{IdDigest, SeenSet};
use super::verify::{
    decode_receipt, node_segments, parse_timestamp, str_field, value_str, Decoded, PendingSignature, Segments,
    Verifier, VerifyError,
};
use crate::canonical::{parse_document, parse_document_node};
use crate::time::Timestamp;

/// Lines handed to the worker threads at a time: small enough that reading the next block
/// overlaps verifying this one, large enough for efficient signature batches. Also bounds memory.
const BLOCK_LINES: usize = 2048;
const BLOCK_BYTES: usize = 4 << 20;
/// Lines a worker verifies at a time (one signature batch).
const CHUNK_LINES: usize = 256;
const PROGRESS_EVERY: u64 = 1000;

/// The checkpoint evidence document that accompanies an export.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointEvidence {
    /// Always [`CheckpointEvidence::VERSION`].
    pub version: String,
    /// Always [`CheckpointEvidence::CLAIM`]: the checkpoint proves what the issuer signed, not that
    /// nothing was omitted.
    pub claim: String,
    pub checkpoints: Vec<EvidenceEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EvidenceEntry {
    pub checkpoint: SignedReceipt,
    pub member_receipt_ids: Vec<String>,
}

impl CheckpointEvidence {
    pub const VERSION: &'static str = "receipt_checkpoint_evidence.v1";
    pub const CLAIM: &'static str = "issuer-signed set commitment only";

    pub fn new(checkpoints: Vec<EvidenceEntry>) -> CheckpointEvidence {
        CheckpointEvidence { version: Self::VERSION.to_owned(), claim: Self::CLAIM.to_owned(), checkpoints }
    }
}

/// Writes one signed receipt per line as the wrapper `{"receipt_id","workspace_id","created_at",
/// "receipt"}` (created_at = issued_at); gzip when the path ends in `.gz`. `progress(done)` is
/// called every thousand receipts and at the end. Returns the number of receipts written.
pub fn write_export(
    path: &Path,
    receipts: impl Iterator<Item = (String, String, String, SignedReceipt)>,
    progress: &mut dyn FnMut(u64),
) -> io::Result<u64> {
    let file = BufWriter::with_capacity(1 << 16, File::create(path)?);
    let mut sink = if is_gzip(path) {
        Sink::Gzip(Box::new(GzEncoder::new(file, Compression::default())))
    } else {
        Sink::Plain(file)
    };
    let mut line = Vec::with_capacity(2048);
    let mut written = 0u64;
    for (receipt_id, workspace_id, created_at, receipt) in receipts {
        line.clear();
        write_wrapper(&mut line, &receipt_id, &workspace_id, &created_at, &receipt);
        sink.writer().write_all(&line)?;
        written += 1;
        if written % PROGRESS_EVERY == 0 {
            progress(written);
        }
    }
    sink.finish()?;
    progress(written);
    Ok(written)
}

fn write_wrapper(out: &mut Vec<u8>, receipt_id: &str, workspace_id: &str, created_at: &str, receipt: &SignedReceipt) {
    use crate::canonical::write_string;
    out.extend_from_slice(b"{\"receipt_id\":");
    write_string(receipt_id, out);
    out.extend_from_slice(b",\"workspace_id\":");
    write_string(workspace_id, out);
    out.extend_from_slice(b",\"created_at\":");
    write_string(created_at, out);
    out.extend_from_slice(b",\"receipt\":{\"protected\":");
    write_string(&receipt.protected, out);
    out.extend_from_slice(b",\"payload\":");
    write_string(&receipt.payload, out);
    out.extend_from_slice(b",\"signature\":");
    write_string(&receipt.signature, out);
    out.extend_from_slice(b"}}\n");
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(Box<GzEncoder<BufWriter<File>>>),
}

impl Sink {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Plain(file) => file,
            Sink::Gzip(encoder) => encoder.as_mut(),
        }
    }

    /// Finishes the gzip stream and flushes, so that errors surface instead of being lost on drop.
    fn finish(self) -> io::Result<()> {
        let mut file = match self {
            Sink::Plain(file) => file,
            Sink::Gzip(encoder) => encoder.finish()?,
        };
        file.flush()
    }
}

fn is_gzip(path: &Path) -> bool {
    path.as_os_str().as_encoded_bytes().ends_with(b".gz")
}

/// The verdict on one non-empty line of an export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineResult {
    /// 1-based line number in the (decompressed) file.
    pub line: u64,
    /// Known once the receipt decoded, even when it then failed verification.
    pub receipt_id: Option<String>,
    /// The receipt's action or event (`?` if neither is a non-empty string), for valid lines.
    pub label: Option<String>,
    pub decision: Option<String>,
    pub error: Option<VerifyError>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Every non-empty line, in file order.
    pub lines: Vec<LineResult>,
    pub ok: u64,
    pub invalid: u64,
    /// Checkpoints of the evidence that verified: (checkpoint receipt_id, period_start, members).
    pub checkpoints: Vec<(String, String, usize)>,
    pub evidence_error: Option<VerifyError>,
}

impl ExportReport {
    /// The reference's exit code 0: no invalid line, the evidence (if any) verified, and at least
    /// one receipt or checkpoint was checked.
    pub fn is_valid(&self) -> bool {
        self.summary().is_valid()
    }

    fn summary(&self) -> ExportSummary {
        ExportSummary {
            checked: self.lines.len() as u64,
            ok: self.ok,
            invalid: self.invalid,
            checkpoints: self.checkpoints.clone(),
            evidence_error: self.evidence_error.clone(),
        }
    }
}

/// What verifying an export found, without its lines (which went to the caller one at a time):
/// memory stays flat whatever the size of the export.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Non-empty lines checked.
    pub checked: u64,
    pub ok: u64,
    pub invalid: u64,
    /// Checkpoints of the evidence that verified: (checkpoint receipt_id, period_start, members).
    pub checkpoints: Vec<(String, String, usize)>,
    pub evidence_error: Option<VerifyError>,
}

impl ExportSummary {
    /// See [`ExportReport::is_valid`].
    pub fn is_valid(&self) -> bool {
        self.invalid == 0 && self.evidence_error.is_none() && (self.checked > 0 || !self.checkpoints.is_empty())
    }
}

/// Verifies a JSONL or .jsonl.gz export (bare receipts or wrappers; a duplicate receipt_id is
/// invalid) and optionally a checkpoint evidence document, exactly as
/// `allowly-receipt-verify --export ... --checkpoint-evidence ...` does.
///
/// Lines are verified in parallel, signatures in batches. I/O errors, and an export that is not
/// UTF-8 (on which the reference aborts), are returned as `Err`. Every line's verdict is kept in
/// the report: for exports of any size, [`verify_export_each`] hands them over one at a time.
pub fn verify_export(
    verifier: &Verifier,
    export_path: &Path,
    evidence_path: Option<&Path>,
    now: Timestamp,
) -> io::Result<ExportReport> {
    let mut lines = Vec::new();
    let summary = verify_export_each(verifier, export_path, evidence_path, now, &mut |line| lines.push(line))?;
    Ok(report_of(lines, summary))
}

/// [`verify_export`] that hands each line's verdict to `on_line` in file order as soon as its
/// block is verified, and keeps only what the duplicate rule and the evidence need: 16 bytes per
/// receipt id (and, with evidence, the member data of each receipt).
pub fn verify_export_each(
    verifier: &Verifier,
    export_path: &Path,
    evidence_path: Option<&Path>,
    now: Timestamp,
    on_line: &mut dyn FnMut(LineResult),
) -> io::Result<ExportSummary> {
    let file = File::open(export_path)?;
    let reader: Box<dyn BufRead> = if is_gzip(export_path) {
        Box::new(BufReader::with_capacity(1 << 16, MultiGzDecoder::new(BufReader::new(file))))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    let evidence = evidence_path.map(std::fs::read).transpose()?;
    verify_export_from_each(verifier, reader, evidence.as_deref(), now, on_line)
}

/// [`verify_export`] of an export read from `reader` (uncompressed JSONL), with the checkpoint
/// evidence document's bytes.
pub fn verify_export_from(
    verifier: &Verifier,
    reader: impl BufRead,
    evidence: Option<&[u8]>,
    now: Timestamp,
) -> io::Result<ExportReport> {
    let mut lines = Vec::new();
    let summary = verify_export_from_each(verifier, reader, evidence, now, &mut |line| lines.push(line))?;
    Ok(report_of(lines, summary))
}

fn report_of(lines: Vec<LineResult>, summary: ExportSummary) -> ExportReport {
    let ExportSummary { ok, invalid, checkpoints, evidence_error, .. } = summary;
    ExportReport { lines, ok, invalid, checkpoints, evidence_error }
}

/// [`verify_export_each`] of an export read from `reader` (uncompressed JSONL).
pub fn verify_export_from_each(
    verifier: &Verifier,
    reader: impl BufRead,
    evidence: Option<&[u8]>,
    now: Timestamp,
    on_line: &mut dyn FnMut(LineResult),
) -> io::Result<ExportSummary> {
    verify_lines_in_order(verifier, reader, evidence, now, SeenSet::<0>::DEFAULT_TABLE_BYTES, on_line)
}

/// The one implementation of the above; `table_bytes` is the ids' table size before it spills
/// to disk (tests make it small).
fn verify_lines_in_order(
    verifier: &Verifier,
    mut reader: impl BufRead,
    evidence: Option<&[u8]>,
    now: Timestamp,
    table_bytes: usize,
    on_line: &mut dyn FnMut(LineResult),
) -> io::Result<ExportSummary> {
    let want_leaves = evidence.is_some();
    let mut tally = Tally::new(want_leaves, table_bytes);
    std::thread::scope(|scope| -> io::Result<()> {
        let mut first = Block::default();
        // Line numbers run on across blocks (each block buffer is reused for every other block).
        let mut lines_read = 0u64;
        let mut more = first.fill(&mut reader, &mut lines_read)?;
        let mut running = Running::spawn(scope, verifier, Arc::new(first), now, want_leaves);
        let mut spare = Block::default();
        loop {
            // The next block is read while the workers verify this one, and recorded while the
            // workers verify the next.
            let next = if more {
                more = spare.fill(&mut reader, &mut lines_read)?;
                Some(std::mem::take(&mut spare))
            } else {
                None
            };
            let (block, outcomes) = running.join();
            spare = Arc::try_unwrap(block).unwrap_or_default();
            let next = next.map(|block| Running::spawn(scope, verifier, Arc::new(block), now, want_leaves));
            for outcome in outcomes {
                if let Verdict::NotText = outcome.verdict {
                    let message = format!("export line {} is not valid utf-8", outcome.line);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, message));
                }
                on_line(tally.record(outcome)?);
            }
            match next {
                Some(next) => running = next,
                None => return Ok(()),
            }
        }
    })?;
    let mut summary = tally.summary;
    if let Some(bytes) = evidence {
        match check_evidence(verifier, bytes, &tally.seen, now, &mut summary.checkpoints) {
            Ok(()) => {}
            Err(EvidenceFailure::Invalid(err)) => summary.evidence_error = Some(err),
            Err(EvidenceFailure::Io(err)) => return Err(err),
        }
    }
    Ok(summary)
}

/// The duplicate rule's digest of a receipt id.
fn id_digest(id: &str) -> IdDigest {
    let digest = Sha256::digest(id.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// The ids of the lines that verified so far, with their member data when there is evidence to
/// check; bounded in memory whatever the export's size (see `seen.rs`).
enum Seen {
    Ids(SeenSet<0>),
    Members(SeenSet<{ VerifiedLine::BYTES }>),
}

impl Seen {
    fn contains(&self, id: &IdDigest) -> io::Result<bool> {
        match self {
            Seen::Ids(ids) => ids.contains(id),
            Seen::Members(members) => members.contains(id),
        }
    }

    fn insert(&mut self, id: IdDigest, line: VerifiedLine) -> io::Result<()> {
        match self {
            Seen::Ids(ids) => ids.insert(id, []),
            Seen::Members(members) => members.insert(id, line.to_bytes()),
        }
    }

    fn member(&self, id: &str) -> io::Result<Option<VerifiedLine>> {
        match self {
            Seen::Ids(_) => Ok(None),
            Seen::Members(members) => Ok(members.get(&id_digest(id))?.map(VerifiedLine::from_bytes)),
        }
    }
}

/// The running counts of an export and the ids seen, line by line in file order.
struct Tally {
    summary: ExportSummary,
    seen: Seen,
}

/// What an export keeps of a verified line for the checkpoint evidence.
struct VerifiedLine {
    issued_at: Timestamp,
    is_checkpoint: bool,
    leaf: [u8; 32],
}

impl VerifiedLine {
    const BYTES: usize = 8 + 1 + 32;

    fn to_bytes(&self) -> [u8; Self::BYTES] {
        let mut bytes = [0u8; Self::BYTES];
        bytes[..8].copy_from_slice(&self.issued_at.millis().to_le_bytes());
        bytes[8] = u8::from(self.is_checkpoint);
        bytes[9..].copy_from_slice(&self.leaf);
        bytes
    }

    fn from_bytes(bytes: [u8; Self::BYTES]) -> VerifiedLine {
        let (mut millis, mut leaf) = ([0u8; 8], [0u8; 32]);
        millis.copy_from_slice(&bytes[..8]);
        leaf.copy_from_slice(&bytes[9..]);
        let issued_at = Timestamp::from_millis(i64::from_le_bytes(millis));
        VerifiedLine { issued_at, is_checkpoint: bytes[8] == 1, leaf }
    }
}

/// A line checked by a worker: everything but the duplicate rule, which needs file order.
struct LineOutcome {
    line: u64,
    receipt_id: Option<String>,
    /// The id's digest, computed by the worker to spare the thread that applies the rule.
    digest: Option<IdDigest>,
    verdict: Verdict,
}

enum Verdict {
    Valid(LineSummary),
    Invalid(VerifyError),
    /// Not UTF-8: the reference aborts the whole export on such a line.
    NotText,
}

struct LineSummary {
    label: String,
    decision: String,
    verified: VerifiedLine,
}

impl Tally {
    fn new(want_members: bool, table_bytes: usize) -> Tally {
        let seen = if want_members {
            Seen::Members(SeenSet::with_table_bytes(table_bytes))
        } else {
            Seen::Ids(SeenSet::with_table_bytes(table_bytes))
        };
        Tally { summary: ExportSummary::default(), seen }
    }

    /// The line's verdict with the duplicate rule applied; `Err` only when the ids seen so far
    /// could not be read back from their temporary file.
    fn record(&mut self, outcome: LineOutcome) -> io::Result<LineResult> {
        let LineOutcome { line, receipt_id, digest, verdict } = outcome;
        self.summary.checked += 1;
        let verdict = match (verdict, &digest) {
            // Like the reference, a receipt id is taken by the first line that *verified* with it.
            (Verdict::Valid(_), Some(id)) if self.seen.contains(id)? => Verdict::Invalid(VerifyError::Schema(format!(
                "duplicate receipt_id in export: `{}`",
                receipt_id.as_deref().unwrap_or_default()
            ))),
            (verdict, _) => verdict,
        };
        let error = match verdict {
            Verdict::Valid(LineSummary { label, decision, verified: line_data }) => {
                if let Some(id) = digest {
                    self.seen.insert(id, line_data)?;
                }
                self.summary.ok += 1;
                return Ok(LineResult { line, receipt_id, label: Some(label), decision: Some(decision), error: None });
            }
            Verdict::Invalid(err) => err,
            Verdict::NotText => VerifyError::Schema("line is not valid utf-8".into()),
        };
        self.summary.invalid += 1;
        Ok(LineResult { line, receipt_id, label: None, decision: None, error: Some(error) })
    }
}

/// A run of raw lines of the export in one buffer (terminators removed, nothing else done: the
/// workers decode and strip them).
#[derive(Default)]
struct Block {
    text: Vec<u8>,
    lines: Vec<(u64, Range<usize>)>,
}

impl Block {
    /// Refills the block with the next lines; returns false at the end of the file.
    /// `lines_read` counts the file's lines so far, this block's included once it returns.
    fn fill(&mut self, reader: &mut dyn BufRead, lines_read: &mut u64) -> io::Result<bool> {
        self.text.clear();
        self.lines.clear();
        while self.lines.len() < BLOCK_LINES && self.text.len() < BLOCK_BYTES {
            let start = self.text.len();
            if reader.read_until(b'\n', &mut self.text)? == 0 {
                return Ok(false);
            }
            // Universal newlines, as Python's text mode reads: `\n`, `\r\n` and a lone `\r` end a line.
            let mut end = self.text.len();
            if self.text[end - 1] == b'\n' {
                end -= 1;
            }
            if end > start && self.text[end - 1] == b'\r' {
                end -= 1;
            }
            let mut piece = start;
            while let Some(offset) = find_carriage_return(&self.text[piece..end]) {
                self.push(piece..piece + offset, lines_read);
                piece += offset + 1;
            }
            self.push(piece..end, lines_read);
        }
        Ok(true)
    }

    fn push(&mut self, range: Range<usize>, lines_read: &mut u64) {
        *lines_read += 1;
        self.lines.push((*lines_read, range));
    }
}

/// Position of the first `\r`, testing 16 bytes at a time without branches (vectorized).
fn find_carriage_return(bytes: &[u8]) -> Option<usize> {
    let mut blocks = bytes.chunks_exact(16);
    let mut base = 0;
    for block in blocks.by_ref() {
        let mask = block.iter().enumerate().fold(0u32, |mask, (i, &b)| mask | (u32::from(b == b'\r') << i));
        if mask != 0 {
            return Some(base + mask.trailing_zeros() as usize);
        }
        base += 16;
    }
    blocks.remainder().iter().position(|&b| b == b'\r').map(|i| base + i)
}

/// Python's `str.strip()`: Unicode whitespace plus the separators U+001C–U+001F.
fn python_strip(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// A block being verified on all cores.
struct Running<'scope> {
    block: Arc<Block>,
    workers: Vec<std::thread::ScopedJoinHandle<'scope, Vec<VerifiedChunk>>>,
}

/// A chunk's index in its block, and its lines' outcomes.
type VerifiedChunk = (usize, Vec<LineOutcome>);

impl<'scope> Running<'scope> {
    /// Workers take the block's chunks one at a time, so a worker slowed down (by the thread that
    /// reads and prints, which shares the cores) takes fewer of them instead of holding up the rest.
    fn spawn<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        verifier: &'env Verifier,
        block: Arc<Block>,
        now: Timestamp,
        want_leaves: bool,
    ) -> Running<'scope> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let chunks = block.lines.len().div_ceil(CHUNK_LINES);
        let next_chunk = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let workers = (0..cores.min(chunks).max(1))
            .map(|_| {
                let block = Arc::clone(&block);
                let next_chunk = Arc::clone(&next_chunk);
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let chunk = next_chunk.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(lines) = block.lines.chunks(CHUNK_LINES).nth(chunk) else { return done };
                        done.push((chunk, verify_lines(verifier, &block.text, lines, now, want_leaves)));
                    }
                })
            })
            .collect();
        Running { block, workers }
    }

    /// The block back (for its buffer) and its outcomes in file order.
    fn join(self) -> (Arc<Block>, Vec<LineOutcome>) {
        let mut chunks = Vec::new();
        for worker in self.workers {
            match worker.join() {
                Ok(done) => chunks.extend(done),
                // A worker only panics on a bug; let it surface rather than drop lines silently.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        chunks.sort_unstable_by_key(|(index, _)| *index);
        let outcomes = chunks.into_iter().flat_map(|(_, outcomes)| outcomes).collect();
        (self.block, outcomes)
    }
}

fn verify_lines(
    verifier: &Verifier,
    text: &[u8],
    lines: &[(u64, Range<usize>)],
    now: Timestamp,
    want_leaves: bool,
) -> Vec<LineOutcome> {
    let mut outcomes = Vec::with_capacity(lines.len());
    let mut pending: Vec<(usize, PendingSignature)> = Vec::with_capacity(lines.len());
    for (line, range) in lines {
        let Ok(raw) = std::str::from_utf8(text.get(range.clone()).unwrap_or_default()) else {
            outcomes.push(LineOutcome { line: *line, receipt_id: None, digest: None, verdict: Verdict::NotText });
            continue;
        };
        let stripped = python_strip(raw);
        if stripped.is_empty() {
            continue;
        }
        let (receipt_id, checked) = check_line(verifier, stripped, now, want_leaves);
        let verdict = match checked {
            Ok((summary, signature)) => {
                pending.push((outcomes.len(), signature));
                Verdict::Valid(summary)
            }
            Err(err) => Verdict::Invalid(err),
        };
        let digest = receipt_id.as_deref().map(id_digest);
        outcomes.push(LineOutcome { line: *line, receipt_id, digest, verdict });
    }
    super::batch::settle(&pending, &mut |index, err| {
        if let Some(outcome) = outcomes.get_mut(index) {
            outcome.verdict = Verdict::Invalid(err);
        }
    });
    outcomes
}

/// Everything the reference does for one line, short of the signature check and duplicate rule.
fn check_line(
    verifier: &Verifier,
    line: &str,
    now: Timestamp,
    want_leaves: bool,
) -> (Option<String>, Result<(LineSummary, PendingSignature), VerifyError>) {
    let value = match parse_document_node(line) {
        Ok(value) => value,
        Err(err) => return (None, Err(VerifyError::Schema(format!("not json ({err})")))),
    };
    // A line is a bare receipt or a wrapper whose `receipt` member is an object.
    let receipt = match value.get("receipt") {
        Some(inner) if inner.is_object() => inner,
        _ => &value,
    };
    if !receipt.is_object() {
        return (None, Err(VerifyError::Schema("not a json object".into())));
    }
    let decoded = node_segments(receipt).and_then(|segments| Ok((segments, Decoded::new(segments)?)));
    let (segments, decoded) = match decoded {
        Ok(decoded) => decoded,
        Err(err) => return (None, Err(err)),
    };
    let parts = match decoded.decode() {
        Ok(parts) => parts,
        Err(err) => return (None, Err(err)),
    };
    let payload = &parts.payload;
    let receipt_id = str_field(payload, "receipt_id").to_owned();
    let checked = verifier
        .check_workspace(payload)
        .and_then(|()| verifier.check_claims(&parts, segments, now))
        .and_then(|signature| {
            let label = ["action", "event"]
                .iter()
                .find_map(|name| payload[name].as_str().filter(|s| !s.is_empty()))
                .unwrap_or("?");
            let leaf = if want_leaves { envelope_leaf(segments) } else { [0; 32] };
            let verified = VerifiedLine {
                issued_at: parse_timestamp(str_field(payload, "issued_at"))?,
                is_checkpoint: payload["event"].as_str() == Some("receipt.checkpoint"),
                leaf,
            };
            let summary =
                LineSummary { label: label.to_owned(), decision: str_field(payload, "decision").to_owned(), verified };
            Ok((summary, signature))
        });
    (Some(receipt_id), checked)
}

/// The Merkle leaf of an envelope whose segments decoded: canonical base64url needs no escaping,
/// so its canonical JSON is hashed piece by piece instead of being built.
fn envelope_leaf(segments: Segments<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for piece in [
        "\0{\"payload\":\"",
        segments.payload,
        "\",\"protected\":\"",
        segments.protected,
        "\",\"signature\":\"",
        segments.signature,
        "\"}",
    ] {
        hasher.update(piece.as_bytes());
    }
    hasher.finalize().into()
}

/// Why checkpoint evidence did not pass: it is invalid, or the members could not be read back.
enum EvidenceFailure {
    Invalid(VerifyError),
    Io(io::Error),
}

impl From<VerifyError> for EvidenceFailure {
    fn from(err: VerifyError) -> Self {
        EvidenceFailure::Invalid(err)
    }
}

impl From<io::Error> for EvidenceFailure {
    fn from(err: io::Error) -> Self {
        EvidenceFailure::Io(err)
    }
}

/// The reference's `_verify_checkpoint_evidence`, over the lines that verified.
fn check_evidence(
    verifier: &Verifier,
    bytes: &[u8],
    verified: &Seen,
    now: Timestamp,
    passed: &mut Vec<(String, String, usize)>,
) -> Result<(), EvidenceFailure> {
    let schema = |message: &str| VerifyError::Schema(message.to_owned());
    let evidence = parse_document(bytes).map_err(VerifyError::from)?;
    if evidence.get("version").and_then(Value::as_str) != Some(CheckpointEvidence::VERSION) {
        return Err(schema("unsupported checkpoint evidence document").into());
    }
    let entries = evidence
        .get("checkpoints")
        .and_then(Value::as_array)
        .ok_or_else(|| schema("checkpoint evidence checkpoints must be an array"))?;

    let mut checkpoints: HashMap<String, &Value> = HashMap::with_capacity(entries.len());
    for entry in entries {
        let fields_ok = entry
            .as_object()
            .is_some_and(|e| e.len() == 2 && e.contains_key("checkpoint") && e.contains_key("member_receipt_ids"));
        if !fields_ok {
            return Err(schema("checkpoint evidence entry has wrong fields").into());
        }
        let checkpoint = &entry["checkpoint"];
        let payload = decode_receipt(checkpoint)?;
        let id = payload["receipt_id"].as_str().unwrap_or_default().to_owned();
        if checkpoints.insert(id, checkpoint).is_some() {
            return Err(schema("duplicate checkpoint receipt_id in evidence").into());
        }
    }

    // Entries are independent, so they are checked in parallel and reported in order: the first
    // failure ends the evidence, as in the reference, with the entries before it passed.
    let check = |entry: &Value| check_evidence_entry(verifier, entry, &checkpoints, verified, now);
    for result in super::batch::parallel_chunks(entries, 1, |_, chunk| chunk.iter().map(check).collect()) {
        passed.push(result?);
    }
    Ok(())
}

/// One evidence entry: unique member ids that all verified, then the checkpoint recomputed from
/// them. Returns (checkpoint receipt_id, period_start, member count).
fn check_evidence_entry(
    verifier: &Verifier,
    entry: &Value,
    checkpoints: &HashMap<String, &Value>,
    verified: &Seen,
    now: Timestamp,
) -> Result<(String, String, usize), EvidenceFailure> {
    let checkpoint = &entry["checkpoint"];
    let ids: Option<Vec<&str>> =
        entry["member_receipt_ids"].as_array().and_then(|ids| ids.iter().map(Value::as_str).collect());
    let ids = ids.filter(|ids| {
        let mut unique: Vec<&str> = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        unique.len() == ids.len()
    });
    let Some(ids) = ids else {
        return Err(VerifyError::Schema("checkpoint evidence member_receipt_ids must be unique strings".into()).into());
    };
    let lines = ids.iter().map(|id| verified.member(id)).collect::<io::Result<Vec<_>>>()?;
    let missing: Vec<&str> =
        ids.iter().zip(&lines).filter(|(_, line)| line.is_none()).map(|(id, _)| *id).take(5).collect();
    if !missing.is_empty() {
        let message = format!("checkpoint evidence omits member receipt(s): {}", missing.join(", "));
        return Err(VerifyError::Checkpoint(message).into());
    }
    let payload = decode_receipt(checkpoint)?;
    let previous = payload["context"]
        .get("previous_checkpoint_id")
        .and_then(Value::as_str)
        .and_then(|id| checkpoints.get(id).copied());
    let members: Vec<Member<'_>> = ids
        .iter()
        .zip(lines)
        .filter_map(|(id, line)| line.map(|line| (id, line)))
        .map(|(id, line)| Member {
            receipt_id: id,
            issued_at: line.issued_at,
            is_checkpoint: line.is_checkpoint,
            leaf: line.leaf,
        })
        .collect();
    let checkpoint = verify_checkpoint_with_members(verifier, checkpoint, &members, previous, now)?;
    let period_start = checkpoint["context"]["period_start"].as_str().unwrap_or_default().to_owned();
    Ok((value_str(&checkpoint, "receipt_id").to_owned(), period_start, ids.len()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::receipt::checkpoint::merkle_root;
    use crate::receipt::verify::test_support::*;

    const DAY_ONE: &str = "2026-09-14T00:00:00.000Z";
    const DAY_TWO: &str = "2026-09-15T00:00:00.000Z";

    type Row = (String, String, String, SignedReceipt);

    /// `per_day` action receipts on each of two days, both days checkpointed and chained; the
    /// checkpoints are export lines too.
    fn corpus(per_day: usize) -> (Vec<Row>, CheckpointEvidence) {
        let signer = signer(1);
        let mut rows = Vec::new();
        let mut entries = Vec::new();
        let mut previous: Option<(String, String)> = None;
        for (day_index, day) in [DAY_ONE, DAY_TWO].into_iter().enumerate() {
            let mut members = Vec::new();
            for i in 0..per_day {
                let issued_at = ts(day).plus_millis(i as i64 * 1000).to_string();
                let id = format!("rcp_d{day_index}_{i}");
                let signed = signer.sign(&action_payload(&id, &issued_at)).unwrap();
                rows.push((id, WORKSPACE.to_owned(), issued_at, signed.clone()));
                members.push(signed);
            }
            let root = merkle_root(&members).unwrap();
            let id = format!("rcp_cp{day_index}");
            let link = previous.as_ref().map(|(id, root)| (id.as_str(), root.as_str()));
            let payload = checkpoint_payload(&id, day, members.len(), &root, link);
            let checkpoint = signer.sign(&payload).unwrap();
            rows.push((
                id.clone(),
                WORKSPACE.to_owned(),
                payload["issued_at"].as_str().unwrap().to_owned(),
                checkpoint.clone(),
            ));
            let member_receipt_ids = rows.iter().rev().skip(1).take(per_day).map(|row| row.0.clone()).collect();
            entries.push(EvidenceEntry { checkpoint, member_receipt_ids });
            previous = Some((id, root));
        }
        (rows, CheckpointEvidence::new(entries))
    }

    fn write_evidence(dir: &Path, evidence: &CheckpointEvidence) -> std::path::PathBuf {
        let path = dir.join("evidence.json");
        std::fs::write(&path, serde_json::to_vec(evidence).unwrap()).unwrap();
        path
    }

    #[test]
    fn export_round_trips_plain_and_gzip_with_checkpoint_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let (rows, evidence) = corpus(3);
        let evidence_path = write_evidence(dir.path(), &evidence);
        for name in ["export.jsonl", "export.jsonl.gz"] {
            let path = dir.path().join(name);
            let mut progress = Vec::new();
            let written = write_export(&path, rows.clone().into_iter(), &mut |done| progress.push(done)).unwrap();
            assert_eq!(written, rows.len() as u64);
            assert_eq!(progress.last(), Some(&written));
            let raw = std::fs::read(&path).unwrap();
            assert_eq!(raw.starts_with(&[0x1f, 0x8b]), name.ends_with(".gz"), "{name}");

            let report = verify_export(&default_verifier(), &path, Some(&evidence_path), now()).unwrap();
            assert!(report.is_valid(), "{name}: {report:?}");
            assert_eq!((report.ok, report.invalid), (rows.len() as u64, 0));
            let lines: Vec<u64> = report.lines.iter().map(|l| l.line).collect();
            assert_eq!(lines, (1..=rows.len() as u64).collect::<Vec<_>>());
            assert_eq!(report.lines[0].receipt_id.as_deref(), Some("rcp_d0_0"));
            assert_eq!(report.lines[0].label.as_deref(), Some("email.send"));
            assert_eq!(report.lines[3].label.as_deref(), Some("receipt.checkpoint"));
            assert_eq!(report.lines[0].decision.as_deref(), Some("allow"));
            assert_eq!(
                report.checkpoints,
                vec![("rcp_cp0".to_owned(), DAY_ONE.to_owned(), 3), ("rcp_cp1".to_owned(), DAY_TWO.to_owned(), 3)]
            );
        }
    }

    #[test]
    fn a_tampered_line_is_named_and_breaks_the_evidence() {
        let dir = tempfile::tempdir().unwrap();
        // Enough lines for several threads and signature batches.
        let (mut rows, evidence) = corpus(130);
        let victim = 200;
        let other = signer(1).sign(&action_payload(&rows[victim].0, "2026-09-15T00:01:00.000Z")).unwrap();
        rows[victim].3.payload = other.payload;
        let path = dir.path().join("export.jsonl");
        write_export(&path, rows.into_iter(), &mut |_| {}).unwrap();

        let report =
            verify_export(&default_verifier(), &path, Some(&write_evidence(dir.path(), &evidence)), now()).unwrap();
        assert!(!report.is_valid());
        assert_eq!(report.invalid, 1);
        let bad: Vec<&LineResult> = report.lines.iter().filter(|l| l.error.is_some()).collect();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, victim as u64 + 1);
        assert_eq!(bad[0].receipt_id.as_deref(), Some("rcp_d1_69"));
        assert!(matches!(bad[0].error, Some(VerifyError::SignatureMismatch(_))));
        // Day two names the tampered receipt as a member, which no longer verified.
        assert!(
            matches!(&report.evidence_error, Some(VerifyError::Checkpoint(m)) if m.contains("rcp_d1_69")),
            "{:?}",
            report.evidence_error
        );
    }

    #[test]
    fn line_numbers_run_on_across_blocks_and_lines_arrive_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (rows, _) = corpus(2);
        let receipt = serde_json::to_string(&rows[0].3).unwrap();
        // Three blocks of blank lines (read, numbered, skipped), a receipt, then a line that is no
        // receipt: the verdicts name the file's own line numbers.
        let mut text = "\n".repeat(3 * BLOCK_LINES);
        text.push_str(&format!("{receipt}\nnot json\n"));
        let path = dir.path().join("long.jsonl");
        std::fs::write(&path, text).unwrap();

        let mut seen = Vec::new();
        let summary = verify_export_each(&default_verifier(), &path, None, now(), &mut |line| {
            seen.push((line.line, line.error.is_none()))
        })
        .unwrap();
        let first = 3 * BLOCK_LINES as u64 + 1;
        assert_eq!(seen, vec![(first, true), (first + 1, false)]);
        assert_eq!((summary.checked, summary.ok, summary.invalid), (2, 1, 1));
        assert!(!summary.is_valid());
    }

    #[test]
    fn lines_follow_the_reference_reading_rules() {
        let dir = tempfile::tempdir().unwrap();
        let (rows, _) = corpus(2);
        let wrapper = |row: &Row| {
            let mut line = Vec::new();
            write_wrapper(&mut line, &row.0, &row.1, &row.2, &row.3);
            String::from_utf8(line).unwrap().trim_end().to_owned()
        };
        let bare = |row: &Row| serde_json::to_string(&row.3).unwrap();
        let lenient = format!("{{\"x\": 1.5, \"receipt\": {}}}", bare(&rows[3]));
        let text = [
            wrapper(&rows[0]),                   // 1 ok
            bare(&rows[1]),                      // 2 ok, bare receipt
            "  \u{3000} ".to_owned(),            // 3 blank: skipped
            bare(&rows[0]),                      // 4 duplicate of line 1
            "not json".to_owned(),               // 5
            "[1]".to_owned(),                    // 6 not an object
            lenient,                             // 7 ok: numbers outside the receipt are the wrapper's business
            format!("\u{1c}{}", bare(&rows[4])), // 8 ok after Python's strip
        ]
        .join("\r\n");
        let path = dir.path().join("mixed.jsonl");
        std::fs::write(&path, text).unwrap();

        let report = verify_export(&default_verifier(), &path, None, now()).unwrap();
        let summary: Vec<(u64, Option<&str>, bool)> =
            report.lines.iter().map(|l| (l.line, l.receipt_id.as_deref(), l.error.is_none())).collect();
        assert_eq!(
            summary,
            vec![
                (1, Some("rcp_d0_0"), true),
                (2, Some("rcp_d0_1"), true),
                (4, Some("rcp_d0_0"), false),
                (5, None, false),
                (6, None, false),
                (7, Some("rcp_d1_0"), true),
                (8, Some("rcp_d1_1"), true),
            ]
        );
        assert!(matches!(&report.lines[2].error, Some(VerifyError::Schema(m)) if m.contains("duplicate")));
        assert_eq!((report.ok, report.invalid), (4, 3));
        assert!(!report.is_valid());
    }

    #[test]
    fn ids_spilled_to_disk_give_the_same_verdicts_as_ids_in_memory() {
        let (mut rows, evidence) = corpus(130);
        // Lines seen long before, repeated after many spills: the first line, a middle one, and
        // a day-one checkpoint.
        for index in [0, 77, 130] {
            rows.push(rows[index].clone());
        }
        let mut text = Vec::new();
        for row in &rows {
            write_wrapper(&mut text, &row.0, &row.1, &row.2, &row.3);
        }
        let evidence = serde_json::to_vec(&evidence).unwrap();
        let verify = |table_bytes: usize, evidence: Option<&[u8]>| {
            let mut lines = Vec::new();
            let summary = verify_lines_in_order(
                &default_verifier(),
                text.as_slice(),
                evidence,
                now(),
                table_bytes,
                &mut |line| lines.push(line),
            )
            .unwrap();
            report_of(lines, summary)
        };
        for evidence in [None, Some(evidence.as_slice())] {
            // A few hundred bytes of table: it spills every 7 to 14 ids.
            let spilled = verify(300, evidence);
            assert_eq!(spilled, verify(SeenSet::<0>::DEFAULT_TABLE_BYTES, evidence));
            let duplicates: Vec<(u64, Option<&str>)> = spilled
                .lines
                .iter()
                .filter(|line| matches!(&line.error, Some(VerifyError::Schema(m)) if m.contains("duplicate")))
                .map(|line| (line.line, line.receipt_id.as_deref()))
                .collect();
            assert_eq!(duplicates, vec![(263, Some("rcp_d0_0")), (264, Some("rcp_d0_77")), (265, Some("rcp_cp0"))]);
            assert_eq!((spilled.ok, spilled.invalid), (262, 3));
            assert_eq!(
                spilled.checkpoints.len(),
                if evidence.is_some() { 2 } else { 0 },
                "{:?}",
                spilled.evidence_error
            );
        }
    }

    #[test]
    fn envelope_leaf_hashes_the_canonical_envelope() {
        let (rows, _) = corpus(1);
        let signed = &rows[0].3;
        let leaf = crate::receipt::checkpoint::leaf_hash(&signed.canonical_bytes());
        assert_eq!(envelope_leaf(Segments::of(signed)), leaf);
    }

    #[test]
    fn an_empty_export_or_bad_evidence_is_not_valid() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.jsonl");
        std::fs::write(&empty, "\n\n").unwrap();
        let report = verify_export(&default_verifier(), &empty, None, now()).unwrap();
        assert!(report.lines.is_empty() && !report.is_valid());

        let (rows, evidence) = corpus(1);
        let path = dir.path().join("export.jsonl");
        write_export(&path, rows.into_iter(), &mut |_| {}).unwrap();
        let mut wrong_version = serde_json::to_value(&evidence).unwrap();
        wrong_version["version"] = serde_json::json!("receipt_checkpoint_evidence.v0");
        let evidence_path = dir.path().join("wrong.json");
        std::fs::write(&evidence_path, wrong_version.to_string()).unwrap();
        let report = verify_export(&default_verifier(), &path, Some(&evidence_path), now()).unwrap();
        assert!(matches!(report.evidence_error, Some(VerifyError::Schema(_))));
        assert!(!report.is_valid());
        assert_eq!(report.invalid, 0);

        assert!(verify_export(&default_verifier(), &dir.path().join("absent.jsonl"), None, now()).is_err());
        std::fs::write(&empty, b"\xff\n").unwrap();
        assert!(verify_export(&default_verifier(), &empty, None, now()).is_err());
    }
}
