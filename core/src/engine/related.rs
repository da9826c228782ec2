//! The receipts around one receipt: the confirmation or escalation that unlocked an allow, the
//! question a resolution answered, the answer a question got. Receipts name one another only in
//! part (an escalation's id rides in the allow it unlocked, a resolution names the receipt that
//! asked), so the rest is found as the engine decided it: the newest approved confirmation of the
//! same action and resource whose window covered the allow.

use serde_json::Value;

use super::Allowly;
use crate::error::Result;
use crate::model::{ReceiptFilter, StoredReceipt};
use crate::receipt::decode_receipt;
use crate::store::Tx;
use crate::time::Timestamp;

/// Resolutions searched around a receipt (newest first); prompts of one authorization are few.
const SEARCHED: usize = 50;

/// A receipt related to another, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelatedReceipt {
    /// How it relates, as a sentence's subject: `Confirmation that unlocked this allow`.
    pub relation: &'static str,
    pub receipt_id: String,
    pub decision: String,
    pub issued_at: Timestamp,
}

struct Decoded {
    stored: StoredReceipt,
    payload: Value,
}

impl Decoded {
    fn of(stored: StoredReceipt) -> Option<Decoded> {
        let payload = decode_receipt(&stored.receipt.to_value()).ok()?;
        Some(Decoded { stored, payload })
    }

    fn text(&self, pointer: &str) -> Option<&str> {
        self.payload.pointer(pointer).and_then(Value::as_str)
    }

    fn related(&self, relation: &'static str) -> RelatedReceipt {
        RelatedReceipt {
            relation,
            receipt_id: self.stored.receipt_id.clone(),
            decision: self.stored.facts.decision.clone(),
            issued_at: self.stored.issued_at,
        }
    }
}

impl Allowly {
    /// The receipts related to `receipt_id` (none for most receipts).
    pub fn related_receipts(&self, receipt_id: &str) -> Result<Vec<RelatedReceipt>> {
        let receipt = self.receipt(receipt_id)?;
        let Some(receipt) = Decoded::of(receipt) else { return Ok(Vec::new()) };
        self.read(|tx| related(tx, &receipt))
    }
}

fn related(tx: &mut dyn Tx, receipt: &Decoded) -> Result<Vec<RelatedReceipt>> {
    let mut found = Vec::new();
    let facts = &receipt.stored.facts;
    match (facts.event.as_deref(), facts.decision.as_str(), facts.reason.as_str()) {
        // An allow an approver's escalation unlocked carries the escalation's id.
        (None, "allow", "escalation_approved") => {
            let escalation = match receipt.text("/context/escalation/id") {
                Some(id) => tx.escalation(id)?,
                None => None,
            };
            if let Some(e) = escalation {
                let unlocked = "Escalation that unlocked this allow";
                found.extend(lookup(tx, unlocked, e.resolution_receipt_id.as_deref())?);
                found.extend(lookup(tx, "Escalation asked by", Some(&e.source_receipt_id))?);
            }
        }
        (None, "allow", "user_confirmed") => {
            if let Some(approval) = approving_confirmation(tx, receipt)? {
                found.push(approval.related("Confirmation that unlocked this allow"));
                found.extend(lookup(tx, "Confirmation asked by", approval.text("/context/source_receipt_id"))?);
            }
        }
        (None, "confirm", _) => {
            found.extend(answer(tx, receipt, "confirmation.resolve")?.map(|r| r.related("Answered by")));
        }
        (None, "escalate", _) => {
            found.extend(answer(tx, receipt, "escalation.resolve")?.map(|r| r.related("Answered by")));
        }
        (Some("confirmation.resolve" | "escalation.resolve"), _, _) => {
            let asked = receipt.text("/context/source_receipt_id");
            found.extend(lookup(tx, "Answers the question asked by", asked)?);
        }
        _ => {}
    }
    Ok(found)
}

/// Receipt `id`, if given and stored, as related by `relation`.
fn lookup(tx: &mut dyn Tx, relation: &'static str, id: Option<&str>) -> Result<Option<RelatedReceipt>> {
    let Some(id) = id else { return Ok(None) };
    Ok(tx.receipt(id)?.and_then(Decoded::of).map(|r| r.related(relation)))
}

/// Resolution receipts (`event`) of the receipt's authorization, newest first, issued between
/// `since` and `until`.
fn resolutions(
    tx: &mut dyn Tx,
    receipt: &Decoded,
    event: &str,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Result<Vec<Decoded>> {
    let filter = ReceiptFilter {
        authorization_id: receipt.stored.authorization_id.clone(),
        event: Some(event.to_string()),
        since,
        until,
        ..ReceiptFilter::default()
    };
    if filter.authorization_id.is_none() {
        return Ok(Vec::new());
    }
    Ok(tx.find_receipts(&filter, None, SEARCHED)?.into_iter().filter_map(Decoded::of).collect())
}

/// The resolution that names `receipt` as the question it answers.
fn answer(tx: &mut dyn Tx, receipt: &Decoded, event: &str) -> Result<Option<Decoded>> {
    let id = receipt.stored.receipt_id.as_str();
    let found = resolutions(tx, receipt, event, Some(receipt.stored.issued_at), None)?;
    Ok(found.into_iter().find(|r| r.text("/context/source_receipt_id") == Some(id)))
}

/// The approval an allow `user_confirmed` used: the newest approved confirmation of the same
/// action and resource, issued before the allow, whose window was still open at it.
fn approving_confirmation(tx: &mut dyn Tx, allow: &Decoded) -> Result<Option<Decoded>> {
    let issued_at = allow.stored.issued_at;
    let found = resolutions(tx, allow, "confirmation.resolve", None, Some(issued_at.plus_millis(1)))?;
    Ok(found.into_iter().find(|r| {
        let window = r.payload.pointer("/context/ttl_seconds").and_then(Value::as_i64).unwrap_or(0);
        r.stored.facts.decision == "confirmation_approved"
            && r.text("/context/action") == allow.stored.facts.action.as_deref()
            && r.text("/resource") == allow.text("/resource")
            && issued_at < r.stored.issued_at.plus_seconds(window)
    }))
}
