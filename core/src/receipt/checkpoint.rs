//! Daily checkpoints: a signed `receipt.checkpoint` receipt committing to the set of receipts
//! signed during one UTC day through a Merkle root.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

use super::jws::SignedReceipt;
use super::verify::{
    parse_timestamp, parse_timestamp_value, str_field, value_str, Decoded, Segments, Verifier, VerifyError,
};
use crate::canonical::hex;
use crate::time::Timestamp;

/// `sha256:` + SHA-256(0x02): the root of an empty day.
pub const EMPTY_MERKLE_ROOT: &str = "sha256:dbc1b4c900ffe48d575b5da5c638040125f65db0fe3e24494b76ea986457d986";

const CHECKPOINT_EVENT: &str = "receipt.checkpoint";

/// Merkle root of a set of signed receipts.
///
/// leaf = SHA-256(0x00 ‖ canonical(signed JWS object)), leaves sorted bytewise, an odd level
/// repeats its last leaf, node = SHA-256(0x01 ‖ left ‖ right), empty set = SHA-256(0x02).
/// Members must decode (as [`super::decode_receipt`]) and have unique receipt ids.
pub fn merkle_root(receipts: &[SignedReceipt]) -> Result<String, VerifyError> {
    let mut seen = HashSet::with_capacity(receipts.len());
    let mut leaves = Vec::with_capacity(receipts.len());
    for receipt in receipts {
        let decoded = Decoded::new(Segments::of(receipt))?;
        let parts = decoded.decode()?;
        let receipt_id = str_field(&parts.payload, "receipt_id");
        if !seen.insert(receipt_id.to_owned()) {
            return Err(VerifyError::Schema(format!("duplicate checkpoint member receipt_id: `{receipt_id}`")));
        }
        leaves.push(leaf_hash(&receipt.canonical_bytes()));
    }
    Ok(root_of_leaves(leaves))
}

/// The Merkle leaf of one member receipt, for issuers that stream a day's receipts.
pub fn merkle_leaf(receipt: &SignedReceipt) -> [u8; 32] {
    leaf_hash(&receipt.canonical_bytes())
}

/// The root over leaves from [`merkle_leaf`] (in any order; they are sorted here).
pub fn merkle_root_of_leaves(leaves: Vec<[u8; 32]>) -> String {
    root_of_leaves(leaves)
}

/// SHA-256(0x00 ‖ canonical envelope bytes).
pub(crate) fn leaf_hash(canonical_envelope: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(canonical_envelope);
    hasher.finalize().into()
}

pub(crate) fn root_of_leaves(mut level: Vec<[u8; 32]>) -> String {
    if level.is_empty() {
        return EMPTY_MERKLE_ROOT.to_owned();
    }
    // Sorting makes the root a commitment to the set, independent of signing order.
    level.sort_unstable();
    while level.len() > 1 {
        if level.len() % 2 == 1 {
            if let Some(&last) = level.last() {
                level.push(last);
            }
        }
        level = level
            .chunks_exact(2)
            .map(|pair| {
                let mut hasher = Sha256::new();
                hasher.update([0x01]);
                hasher.update(pair[0]);
                hasher.update(pair[1]);
                hasher.finalize().into()
            })
            .collect();
    }
    format!("sha256:{}", hex(&level[0]))
}

/// What a checkpoint needs of a member that already verified.
pub(crate) struct Member<'a> {
    pub(crate) receipt_id: &'a str,
    pub(crate) issued_at: Timestamp,
    pub(crate) is_checkpoint: bool,
    pub(crate) leaf: [u8; 32],
}

/// Verifies a signed checkpoint and recomputes it from exactly the presented member set (the
/// reference's `verify_checkpoint`): the checkpoint and every member verify, members are not
/// checkpoints and fall inside the period, the count and root match, and with `previous` the chain
/// link (id, root, non-overlapping periods) holds.
pub fn verify_checkpoint(
    verifier: &Verifier,
    checkpoint: &Value,
    members: &[Value],
    previous: Option<&Value>,
    now: Timestamp,
) -> Result<(), VerifyError> {
    let checkpoint = verify_checkpoint_receipt(verifier, checkpoint, now, "checkpoint receipt")?;
    let period = period(&checkpoint)?;
    let mut payloads = Vec::with_capacity(members.len());
    let mut leaves = Vec::with_capacity(members.len());
    // Each member is verified and placed in the period before the next one is looked at, so the
    // first failure is the one the reference reports.
    for member in members {
        let Value::Object(payload) = verifier.verify(member, now)? else {
            return Err(VerifyError::Schema("checkpoint member must be a receipt object".into()));
        };
        // A verified member is exactly the three-string envelope.
        let leaf =
            SignedReceipt::from_value(member).map(|signed| leaf_hash(&signed.canonical_bytes())).unwrap_or_default();
        check_member_in_period(&member_of(&payload, leaf)?, period)?;
        payloads.push(payload);
        leaves.push(leaf);
    }
    let checked: Vec<Member<'_>> =
        payloads.iter().zip(leaves).map(|(payload, leaf)| member_of(payload, leaf)).collect::<Result<_, _>>()?;
    check_commitment(verifier, &checkpoint, &checked, previous, now)
}

/// [`verify_checkpoint`] over members that were already verified (an export's lines).
pub(crate) fn verify_checkpoint_with_members(
    verifier: &Verifier,
    checkpoint: &Value,
    members: &[Member<'_>],
    previous: Option<&Value>,
    now: Timestamp,
) -> Result<Map<String, Value>, VerifyError> {
    let checkpoint = verify_checkpoint_receipt(verifier, checkpoint, now, "checkpoint receipt")?;
    let period = period(&checkpoint)?;
    for member in members {
        check_member_in_period(member, period)?;
    }
    check_commitment(verifier, &checkpoint, members, previous, now)?;
    Ok(checkpoint)
}

fn verify_checkpoint_receipt(
    verifier: &Verifier,
    receipt: &Value,
    now: Timestamp,
    what: &str,
) -> Result<Map<String, Value>, VerifyError> {
    let Value::Object(payload) = verifier.verify(receipt, now)? else {
        return Err(VerifyError::Schema(format!("{what} must be an object")));
    };
    if payload.get("event").and_then(Value::as_str) != Some(CHECKPOINT_EVENT) {
        return Err(VerifyError::Schema(format!("{what} must have event='receipt.checkpoint'")));
    }
    Ok(payload)
}

/// `[period_start, period_end)` of a verified checkpoint (its context was validated).
fn period(checkpoint: &Map<String, Value>) -> Result<(Timestamp, Timestamp), VerifyError> {
    let context = &checkpoint["context"];
    Ok((parse_timestamp_value(&context["period_start"])?, parse_timestamp_value(&context["period_end"])?))
}

fn member_of(payload: &Map<String, Value>, leaf: [u8; 32]) -> Result<Member<'_>, VerifyError> {
    Ok(Member {
        receipt_id: value_str(payload, "receipt_id"),
        issued_at: parse_timestamp(value_str(payload, "issued_at"))?,
        is_checkpoint: payload.get("event").and_then(Value::as_str) == Some(CHECKPOINT_EVENT),
        leaf,
    })
}

fn check_member_in_period(member: &Member<'_>, (start, end): (Timestamp, Timestamp)) -> Result<(), VerifyError> {
    if member.is_checkpoint {
        return Err(VerifyError::Schema("receipt.checkpoint cannot be a checkpoint member".into()));
    }
    if !(start <= member.issued_at && member.issued_at < end) {
        return Err(VerifyError::Schema(format!(
            "checkpoint member `{}` falls outside checkpoint period",
            member.receipt_id
        )));
    }
    Ok(())
}

/// Count, Merkle root and the link to the previous checkpoint, in the reference's order.
fn check_commitment(
    verifier: &Verifier,
    checkpoint: &Map<String, Value>,
    members: &[Member<'_>],
    previous: Option<&Value>,
    now: Timestamp,
) -> Result<(), VerifyError> {
    let context = &checkpoint["context"];
    let committed = context["receipt_count"].as_i64().unwrap_or(-1);
    if usize::try_from(committed).ok() != Some(members.len()) {
        return Err(VerifyError::Checkpoint(format!(
            "checkpoint receipt_count mismatch: committed {committed}, got {}",
            members.len()
        )));
    }
    let mut seen = HashSet::with_capacity(members.len());
    for member in members {
        if !seen.insert(member.receipt_id) {
            return Err(VerifyError::Schema(format!(
                "duplicate checkpoint member receipt_id: `{}`",
                member.receipt_id
            )));
        }
    }
    let root = root_of_leaves(members.iter().map(|member| member.leaf).collect());
    let committed_root = context["merkle_root"].as_str().unwrap_or_default();
    if committed_root != root {
        return Err(VerifyError::Checkpoint(format!(
            "checkpoint merkle_root mismatch: committed {committed_root}, got {root}"
        )));
    }
    let Some(previous) = previous else {
        return Ok(());
    };
    let previous = verify_checkpoint_receipt(verifier, previous, now, "previous checkpoint")?;
    let previous_context = &previous["context"];
    if context["previous_checkpoint_id"] != previous["receipt_id"] {
        return Err(VerifyError::Checkpoint("checkpoint previous_checkpoint_id mismatch".into()));
    }
    if context["previous_merkle_root"] != previous_context["merkle_root"] {
        return Err(VerifyError::Checkpoint("checkpoint previous_merkle_root mismatch".into()));
    }
    if parse_timestamp_value(&previous_context["period_end"])? > parse_timestamp_value(&context["period_start"])? {
        return Err(VerifyError::Checkpoint("checkpoint periods overlap or are out of order".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::sha256_hex;
    use crate::receipt::verify::test_support::*;

    const DAY: &str = "2026-09-14T00:00:00.000Z";

    fn signed(receipt_id: &str, issued_at: &str) -> SignedReceipt {
        signer(1).sign(&action_payload(receipt_id, issued_at)).unwrap_or_else(|_| SignedReceipt {
            protected: String::new(),
            payload: String::new(),
            signature: String::new(),
        })
    }

    fn day_members() -> Vec<SignedReceipt> {
        ["2026-09-14T00:00:00.000Z", "2026-09-14T12:00:00.000Z", "2026-09-14T23:59:59.999Z"]
            .iter()
            .enumerate()
            .map(|(i, at)| signed(&format!("rcp_{i}"), at))
            .collect()
    }

    fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update([0x01]);
        hasher.update(left);
        hasher.update(right);
        hasher.finalize().into()
    }

    #[test]
    fn empty_root_is_sha256_of_0x02() {
        assert_eq!(EMPTY_MERKLE_ROOT, format!("sha256:{}", sha256_hex(&[0x02])));
        assert_eq!(merkle_root(&[]).ok().as_deref(), Some(EMPTY_MERKLE_ROOT));
    }

    #[test]
    fn root_sorts_leaves_and_repeats_the_last_of_an_odd_level() {
        let members = day_members();
        let mut leaves: Vec<[u8; 32]> = members.iter().map(|m| leaf_hash(&m.canonical_bytes())).collect();
        leaves.sort_unstable();
        let expected = node(&node(&leaves[0], &leaves[1]), &node(&leaves[2], &leaves[2]));
        assert_eq!(merkle_root(&members).ok(), Some(format!("sha256:{}", hex(&expected))));
        let reversed: Vec<SignedReceipt> = members.iter().rev().cloned().collect();
        assert_eq!(merkle_root(&reversed).ok(), merkle_root(&members).ok());
        let single = leaf_hash(&members[0].canonical_bytes());
        assert_eq!(merkle_root(&members[..1]).ok(), Some(format!("sha256:{}", hex(&single))));
    }

    #[test]
    fn root_refuses_duplicates_and_undecodable_members() {
        let members = day_members();
        let duplicate = [members[0].clone(), members[0].clone()];
        assert!(matches!(merkle_root(&duplicate), Err(VerifyError::Schema(_))));
        let mut broken = members[0].clone();
        broken.payload.push('=');
        assert!(matches!(merkle_root(&[broken]), Err(VerifyError::Schema(_))));
    }

    fn checkpoint_for(members: &[SignedReceipt], id: &str, day: &str, previous: Option<(&str, &str)>) -> Value {
        let root = merkle_root(members).unwrap_or_default();
        sign(&signer(1), &checkpoint_payload(id, day, members.len(), &root, previous))
    }

    #[test]
    fn verify_checkpoint_recomputes_the_presented_set() {
        let verifier = default_verifier();
        let members = day_members();
        let values: Vec<Value> = members.iter().map(SignedReceipt::to_value).collect();
        let checkpoint = checkpoint_for(&members, "rcp_cp1", DAY, None);
        assert_eq!(verify_checkpoint(&verifier, &checkpoint, &values, None, now()), Ok(()));

        let missing = verify_checkpoint(&verifier, &checkpoint, &values[1..], None, now());
        assert!(matches!(missing, Err(VerifyError::Checkpoint(ref m)) if m.contains("receipt_count")), "{missing:?}");

        // Same count, different set: the root gives it away.
        let swapped = [values[0].clone(), values[1].clone(), signed("rcp_x", "2026-09-14T01:00:00.000Z").to_value()];
        let swapped = verify_checkpoint(&verifier, &checkpoint, &swapped, None, now());
        assert!(matches!(swapped, Err(VerifyError::Checkpoint(ref m)) if m.contains("merkle_root")), "{swapped:?}");

        let late = [values[0].clone(), values[1].clone(), signed("rcp_late", "2026-09-15T00:00:00.000Z").to_value()];
        assert!(matches!(verify_checkpoint(&verifier, &checkpoint, &late, None, now()), Err(VerifyError::Schema(_))));

        let as_member = [values[0].clone(), values[1].clone(), checkpoint.clone()];
        assert!(matches!(
            verify_checkpoint(&verifier, &checkpoint, &as_member, None, now()),
            Err(VerifyError::Schema(_))
        ));

        let not_checkpoint = values[0].clone();
        assert!(matches!(
            verify_checkpoint(&verifier, &not_checkpoint, &values, None, now()),
            Err(VerifyError::Schema(_))
        ));
    }

    #[test]
    fn verify_checkpoint_checks_the_chain_link() {
        let verifier = default_verifier();
        let day_one = day_members();
        let first = checkpoint_for(&day_one, "rcp_cp1", DAY, None);
        let first_root = merkle_root(&day_one).unwrap_or_default();
        let day_two = vec![signed("rcp_d2", "2026-09-15T10:00:00.000Z")];
        let values: Vec<Value> = day_two.iter().map(SignedReceipt::to_value).collect();
        let next_day = "2026-09-15T00:00:00.000Z";

        let linked = checkpoint_for(&day_two, "rcp_cp2", next_day, Some(("rcp_cp1", &first_root)));
        assert_eq!(verify_checkpoint(&verifier, &linked, &values, Some(&first), now()), Ok(()));

        let wrong_id = checkpoint_for(&day_two, "rcp_cp2", next_day, Some(("rcp_other", &first_root)));
        let wrong_root = checkpoint_for(&day_two, "rcp_cp2", next_day, Some(("rcp_cp1", EMPTY_MERKLE_ROOT)));
        for bad in [wrong_id, wrong_root] {
            assert!(matches!(
                verify_checkpoint(&verifier, &bad, &values, Some(&first), now()),
                Err(VerifyError::Checkpoint(_))
            ));
        }
        // A "previous" checkpoint from a later day overlaps.
        let later = checkpoint_for(&[], "rcp_cp1", "2026-09-16T00:00:00.000Z", None);
        let later_link = checkpoint_for(&day_two, "rcp_cp2", next_day, Some(("rcp_cp1", EMPTY_MERKLE_ROOT)));
        let overlap = verify_checkpoint(&verifier, &later_link, &values, Some(&later), now());
        assert!(matches!(overlap, Err(VerifyError::Checkpoint(ref m)) if m.contains("overlap")), "{overlap:?}");
    }

    #[test]
    fn checkpoint_context_must_be_one_utc_day() {
        let verifier = default_verifier();
        let mut payload = checkpoint_payload("rcp_cp", DAY, 0, EMPTY_MERKLE_ROOT, None);
        assert_eq!(verify_checkpoint(&verifier, &sign(&signer(1), &payload), &[], None, now()), Ok(()));
        payload["context"]["period_start"] = serde_json::json!("2026-09-14T00:00:00.001Z");
        assert!(matches!(
            verify_checkpoint(&verifier, &sign(&signer(1), &payload), &[], None, now()),
            Err(VerifyError::Schema(_))
        ));
        let mut half_link = checkpoint_payload("rcp_cp", DAY, 0, EMPTY_MERKLE_ROOT, None);
        half_link["context"]["previous_checkpoint_id"] = serde_json::json!("rcp_prev");
        assert!(matches!(
            verify_checkpoint(&verifier, &sign(&signer(1), &half_link), &[], None, now()),
            Err(VerifyError::Schema(_))
        ));
    }
}
