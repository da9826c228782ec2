//! Keys, receipts, daily checkpoints and exports.

use std::path::Path;

use serde_json::json;

use super::{new_signing_key, Allowly, ReceiptDraft, Subject};
use crate::error::{Error, Result};
use crate::model::{CheckpointInfo, Page, ReceiptFilter, ReceiptSummary, StoredReceipt};
use crate::ops::{ListReceipts, VerifyReceipts};
use crate::receipt::{self, CheckpointEvidence, EvidenceEntry, KeyDocument, KeyRecord, KeySet, Verifier, VerifyReport};
use crate::store::CheckpointRecord;
use crate::time::Timestamp;

/// Receipts read per transaction while exporting, so a long export never holds the store.
const EXPORT_PAGE: usize = 2000;

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExportSummary {
    pub receipts: u64,
    pub checkpoints: usize,
}

impl Allowly {
    /// The public key document (`GET /v1/workspaces/{id}/keys`): every key, retired ones included.
    pub fn key_document(&self) -> Result<KeyDocument> {
        let keys = self.read(|tx| tx.signing_keys())?;
        let public: Vec<KeyRecord> = keys
            .iter()
            .map(|k| KeyRecord {
                key_id: k.key_id.clone(),
                public_key: k.public_key,
                active_from: k.active_from,
                active_until: k.active_until,
            })
            .collect();
        Ok(KeyDocument::from_records(&self.workspace_id, &public))
    }

    /// Closes the active key's window now and opens a new key's; old receipts keep verifying.
    pub fn rotate_key(&self) -> Result<KeyRecord> {
        self.write(|tx| {
            let keys = tx.signing_keys()?;
            let mut active = keys
                .into_iter()
                .find(|k| k.active_until.is_none())
                .ok_or_else(|| Error::signing("the workspace has no active key"))?;
            // The old key's window ends one millisecond from now, so a check signed by it in this very
            // millisecond (another process, just before us) still falls inside; the window is never empty.
            let now = self.clock.now().max(active.active_from).plus_millis(1);
            active.active_until = Some(now);
            tx.put_signing_key(&active)?;
            let fresh = new_signing_key(now)?;
            tx.put_signing_key(&fresh)?;
            Ok(KeyRecord { key_id: fresh.key_id, public_key: fresh.public_key, active_from: now, active_until: None })
        })
    }

    pub fn receipt(&self, receipt_id: &str) -> Result<StoredReceipt> {
        crate::ids::check_identifier("receipt_id", receipt_id)?;
        self.read(|tx| {
            tx.receipt(receipt_id)?.ok_or_else(|| Error::not_found("receipt_not_found", "receipt", receipt_id))
        })
    }

    /// The audit lookup (`GET /v1/receipts`): receipts matching every given member, newest first.
    /// The cursor is the last receipt id of the previous page.
    pub fn list_receipts(&self, request: &ListReceipts) -> Result<Page<ReceiptSummary>> {
        let (limit, cursor) = request.page.validate()?;
        let filter = receipt_filter(request)?;
        let receipts = self.read(|tx| {
            let before = match cursor {
                None => None,
                Some(id) => {
                    let at = tx.receipt(id)?.map(|receipt| receipt.issued_at);
                    Some((at.ok_or_else(|| Error::invalid("cursor", "is not a receipt of this workspace"))?, id.into()))
                }
            };
            tx.find_receipts(&filter, before, limit + 1)
        })?;
        let rows = receipts.into_iter().map(|stored| Ok(receipt_summary(stored))).collect();
        Ok(super::lifecycle::page(rows, limit, |row| match row {
            Ok(summary) => summary.receipt_id.clone(),
            Err(row) => row.id.clone(),
        }))
    }

    /// Verifies pasted receipts (`POST /v1/verify`) against `key_document` (this workspace's by
    /// default), trusting `trusted_key_fingerprints` (this workspace's keys by default).
    pub fn verify_receipts(&self, request: &VerifyReceipts) -> Result<VerifyReport> {
        let input = match &request.input {
            serde_json::Value::String(text) => text.clone().into_bytes(),
            document => serde_json::to_vec(document).map_err(|err| Error::invalid("input", err.to_string()))?,
        };
        if input.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::invalid("input", "paste a receipt, a check response or an export"));
        }
        let own = self.key_document()?;
        let document = request.key_document.clone().unwrap_or_else(|| own.to_value());
        let (workspace_id, keys) =
            KeySet::from_document(&document).map_err(|err| Error::invalid("key_document", err.to_string()))?;
        let trusted: Vec<String> = match &request.trusted_key_fingerprints {
            Some(fingerprints) => {
                if let Some(fingerprint) = fingerprints.iter().find(|f| !receipt::is_fingerprint(f)) {
                    let message = format!("`{fingerprint}` is not `sha256:<64 lowercase hex>`");
                    return Err(Error::invalid("trusted_key_fingerprints", message));
                }
                fingerprints.clone()
            }
            // This workspace's own keys, even when another key document was given: a foreign
            // document's keys are not trusted unless the caller says so.
            None => own_fingerprints(&own),
        };
        let evidence = request
            .checkpoint_evidence
            .as_ref()
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|err| Error::invalid("checkpoint_evidence", err.to_string()))?;
        let verifier = Verifier::new(keys, &workspace_id, trusted);
        Ok(receipt::verify_pasted(&verifier, &input, evidence.as_deref(), self.clock.now()))
    }

    /// A verifier of this workspace's receipts: its key document, trusting its own keys.
    pub fn own_verifier(&self) -> Result<Verifier> {
        let document = self.key_document()?;
        let (workspace_id, keys) = KeySet::from_document(&document.to_value())
            .map_err(|err| Error::signing(format!("the workspace's key document does not read back: {err}")))?;
        Ok(Verifier::new(keys, &workspace_id, own_fingerprints(&document)))
    }

    /// The newest receipts, newest last (for `receipts show`).
    pub fn recent_receipts(&self, limit: usize) -> Result<Vec<StoredReceipt>> {
        self.read(|tx| tx.latest_receipts(limit))
    }

    /// Issues a `receipt.checkpoint` for every whole UTC day, from the day of the first receipt (or
    /// after the last checkpoint) up to yesterday, each chained to the previous one.
    pub fn create_checkpoints(&self) -> Result<Vec<CheckpointInfo>> {
        self.write(|tx| {
            let signing = self.signing(tx)?;
            let now = signing.now;
            let existing = tx.checkpoints()?;
            let mut previous = existing.last().cloned();
            let mut day = match &previous {
                Some(last) => last.period_start.plus_days(1),
                None => match tx.first_receipt_at()? {
                    Some(first) => first.start_of_day(),
                    None => return Ok(Vec::new()),
                },
            };
            let mut issued = Vec::new();
            while day.plus_days(1) <= now {
                let period_end = day.plus_days(1);
                let mut leaves = Vec::new();
                tx.for_each_receipt_between(day, period_end, &mut |stored| {
                    if !stored.is_checkpoint {
                        leaves.push(receipt::merkle_leaf(&stored.receipt));
                    }
                    Ok(())
                })?;
                let receipt_count = leaves.len();
                let merkle_root = receipt::merkle_root_of_leaves(leaves);
                let stored = self.issue(
                    tx,
                    &signing,
                    ReceiptDraft {
                        receipt_id: None,
                        issued_at: now,
                        subject: Subject::Event("receipt.checkpoint"),
                        decision: "receipt_set_committed",
                        reason: "signed_receipt_set_checkpointed",
                        user_id: "",
                        agent_id: "allowly.checkpoint",
                        resource: None,
                        context: json!({
                            "period_start": day.to_string(),
                            "period_end": period_end.to_string(),
                            "receipt_count": receipt_count,
                            "merkle_root": merkle_root,
                            "previous_checkpoint_id": previous.as_ref().map(|p| p.receipt_id.clone()),
                            "previous_merkle_root": previous.as_ref().map(|p| p.merkle_root.clone()),
                        }),
                        authorization_id: None,
                        policy_ref: None,
                        policy_eval: None,
                    },
                )?;
                let record = CheckpointRecord {
                    period_start: day,
                    receipt_id: stored.receipt_id.clone(),
                    merkle_root: merkle_root.clone(),
                };
                tx.put_checkpoint(&record)?;
                issued.push(CheckpointInfo {
                    receipt_id: stored.receipt_id,
                    period_start: day.to_string(),
                    receipt_count: receipt_count as u64,
                    merkle_root,
                });
                previous = Some(record);
                day = period_end;
            }
            Ok(issued)
        })
    }

    /// Writes every receipt as JSONL (gzip when `out` ends in `.gz`) and, if asked, the checkpoint
    /// evidence document naming each checkpoint's members. `progress` gets the running count.
    pub fn export_receipts(
        &self,
        out: &Path,
        evidence_out: Option<&Path>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ExportSummary> {
        let mut failure = None;
        let mut after: Option<(Timestamp, String)> = None;
        let mut buffer: std::vec::IntoIter<StoredReceipt> = Vec::new().into_iter();
        let rows = std::iter::from_fn(|| loop {
            if let Some(next) = buffer.next() {
                return Some((next.receipt_id, self.workspace_id.clone(), next.issued_at.to_string(), next.receipt));
            }
            if failure.is_some() {
                return None;
            }
            match self.read(|tx| tx.receipts_after(after.clone(), EXPORT_PAGE)) {
                Ok(page) if page.is_empty() => return None,
                Ok(page) => {
                    after = page.last().map(|r| (r.issued_at, r.receipt_id.clone()));
                    buffer = page.into_iter();
                }
                Err(err) => {
                    failure = Some(err);
                    return None;
                }
            }
        });
        let written = receipt::write_export(out, rows, progress)
            .map_err(|err| Error::io(format!("cannot write `{}`: {err}", out.display())).caused_by(err))?;
        if let Some(err) = failure {
            return Err(err);
        }
        let mut checkpoints = 0;
        if let Some(evidence_path) = evidence_out {
            let evidence = self.checkpoint_evidence()?;
            checkpoints = evidence.checkpoints.len();
            let text = serde_json::to_vec_pretty(&evidence).map_err(|err| Error::io(err.to_string()).caused_by(err))?;
            std::fs::write(evidence_path, text).map_err(|err| {
                Error::io(format!("cannot write `{}`: {err}", evidence_path.display())).caused_by(err)
            })?;
        }
        Ok(ExportSummary { receipts: written, checkpoints })
    }

    /// Every checkpoint with the ids of the receipts it commits to.
    pub fn checkpoint_evidence(&self) -> Result<CheckpointEvidence> {
        self.read(|tx| {
            let mut entries = Vec::new();
            for record in tx.checkpoints()? {
                let checkpoint = tx
                    .receipt(&record.receipt_id)?
                    .ok_or_else(|| Error::store(format!("checkpoint receipt `{}` is missing", record.receipt_id)))?;
                let mut member_receipt_ids = Vec::new();
                tx.for_each_receipt_between(record.period_start, record.period_start.plus_days(1), &mut |stored| {
                    if !stored.is_checkpoint {
                        member_receipt_ids.push(stored.receipt_id.clone());
                    }
                    Ok(())
                })?;
                entries.push(EvidenceEntry { checkpoint: checkpoint.receipt, member_receipt_ids });
            }
            Ok(CheckpointEvidence {
                version: "receipt_checkpoint_evidence.v1".into(),
                claim: "issuer-signed set commitment only".into(),
                checkpoints: entries,
            })
        })
    }
}

/// The store's filter for an audit lookup; a malformed member is an invalid request naming it.
fn receipt_filter(request: &ListReceipts) -> Result<ReceiptFilter> {
    let member = |field: &str, value: &Option<String>| -> Result<Option<String>> {
        match value.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => crate::ids::check_identifier(field, text).map(|()| Some(text.to_string())),
        }
    };
    let instant = |field: &str, value: &Option<String>| -> Result<Option<Timestamp>> {
        match value.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => Timestamp::parse_input(text).map(Some).map_err(|message| Error::invalid(field, message)),
        }
    };
    Ok(ReceiptFilter {
        user_id: member("user_id", &request.user_id)?,
        agent_id: member("agent_id", &request.agent_id)?,
        action: member("action", &request.action)?,
        event: member("event", &request.event)?,
        decision: member("decision", &request.decision)?,
        reason: member("reason", &request.reason)?,
        authorization_id: member("authorization_id", &request.authorization_id)?,
        since: instant("since", &request.since)?,
        until: instant("until", &request.until)?,
    })
}

/// What a stored receipt says, for a list; the resource comes from its payload.
fn own_fingerprints(document: &KeyDocument) -> Vec<String> {
    document.keys.iter().map(|key| key.public_key_fingerprint.clone()).collect()
}

fn receipt_summary(stored: StoredReceipt) -> ReceiptSummary {
    let resource = receipt::decode_receipt(&stored.receipt.to_value())
        .ok()
        .and_then(|payload| payload.get("resource").and_then(serde_json::Value::as_str).map(str::to_string));
    let facts = stored.facts;
    ReceiptSummary {
        receipt_id: stored.receipt_id,
        issued_at: stored.issued_at.to_string(),
        action: facts.action,
        event: facts.event,
        decision: facts.decision,
        reason: facts.reason,
        user_id: facts.user_id,
        agent_id: facts.agent_id,
        authorization_id: stored.authorization_id,
        resource,
        receipt: stored.receipt,
    }
}
