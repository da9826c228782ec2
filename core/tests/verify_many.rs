//! `Verifier::verify_many` (the bindings' batch verification) gives, receipt by receipt, the
//! verdict of `Verifier::verify` on the wire-5 vectors, repeated and mixed so that batches hold
//! valid and invalid signatures together.

use allowly_core::receipt::{KeySet, Verifier};
use allowly_core::Timestamp;
use serde_json::Value;

mod wire5;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The vectors' verifier and instant, and their receipts of the named groups, in that order.
fn fixture(groups: [&str; 2]) -> Result<(Verifier, Timestamp, Vec<Value>), Box<dyn std::error::Error>> {
    let doc = wire5::load()?;
    let now = doc["now"].as_str().and_then(Timestamp::parse).ok_or("no now")?;
    let (_, keys) = KeySet::from_document(&doc["keys"])?;
    let trusted: Vec<String> = doc["trusted_key_fingerprints"]
        .as_array()
        .ok_or("no trusted fingerprints")?
        .iter()
        .filter_map(|fp| fp.as_str().map(str::to_owned))
        .collect();
    let verifier = Verifier::new(keys, doc["workspace_id"].as_str().ok_or("no workspace")?, trusted);
    let mut receipts = Vec::new();
    for group in groups {
        for case in doc[group].as_array().ok_or("no cases")? {
            receipts.push(case["receipt"].clone());
        }
    }
    Ok((verifier, now, receipts))
}

#[test]
fn verify_many_matches_verify_receipt_by_receipt() -> TestResult {
    let (verifier, now, receipts) = fixture(["should_verify", "should_reject"])?;
    // Several rounds, interleaved, so that signature batches mix good and bad signatures.
    let mut mixed = Vec::new();
    for round in 0..12 {
        for (i, receipt) in receipts.iter().enumerate() {
            if (i + round) % 3 != 0 {
                mixed.push(receipt.clone());
            }
        }
    }
    let many = verifier.verify_many(&mixed, now);
    assert_eq!(many.len(), mixed.len());
    let mut rejected = 0;
    for (receipt, verdict) in mixed.iter().zip(&many) {
        let single = verifier.verify(receipt, now);
        assert_eq!(verdict, &single);
        rejected += usize::from(single.is_err());
    }
    assert!(rejected > 0 && rejected < mixed.len());
    assert!(verifier.verify_many(&[], now).is_empty());
    Ok(())
}

#[test]
fn verify_many_with_hands_over_each_verdict_once_at_its_index() -> TestResult {
    let (verifier, now, receipts) = fixture(["should_reject", "should_verify"])?;
    // Enough receipts for several runs per thread.
    let many: Vec<Value> = receipts.iter().cycle().take(5000).cloned().collect();
    let slots = std::sync::Mutex::new(vec![None; many.len()]);
    verifier.verify_many_with(&many, now, |start, verdicts| {
        let Ok(mut slots) = slots.lock() else { return };
        for (offset, verdict) in verdicts.enumerate() {
            let verdict = verdict.map(|payload| Value::Object(payload.to_map())).map_err(Clone::clone);
            assert!(slots[start + offset].replace(verdict).is_none(), "receipt {} handed over twice", start + offset);
        }
    });
    let slots = slots.into_inner()?;
    let expected = receipts.iter().map(|receipt| verifier.verify(receipt, now)).collect::<Vec<_>>();
    for (i, slot) in slots.iter().enumerate() {
        assert_eq!(slot.as_ref(), Some(&expected[i % receipts.len()]), "receipt {i}");
    }
    Ok(())
}
