//! The wire-5 conformance vectors (verdicts of the reference verifier `allowly-receipt-format`
//! 5.0.0) must get the same verdicts, error classes, canonical bytes and Merkle roots here.

use allowly_core::canonical::{parse_strict, to_canonical_vec};
use allowly_core::receipt::{
    merkle_root, verify_checkpoint, KeySet, SignedReceipt, Verifier, VerifyError, EMPTY_MERKLE_ROOT,
};
use allowly_core::Timestamp;
use serde_json::Value;

mod wire5;

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Vectors {
    doc: Value,
    verifier: Verifier,
    now: Timestamp,
}

fn load() -> Result<Vectors, Box<dyn std::error::Error>> {
    let doc = wire5::load()?;
    let now = doc["now"].as_str().and_then(Timestamp::parse).ok_or("vectors have no valid `now`")?;
    let workspace_id = doc["workspace_id"].as_str().ok_or("vectors have no workspace_id")?.to_owned();
    let (document_workspace, keys) = KeySet::from_document(&doc["keys"])?;
    assert_eq!(document_workspace, workspace_id);
    let trusted: Vec<String> = doc["trusted_key_fingerprints"]
        .as_array()
        .ok_or("vectors have no trusted fingerprints")?
        .iter()
        .filter_map(|fp| fp.as_str().map(str::to_owned))
        .collect();
    assert_eq!(trusted.len(), 2, "the README promises two trusted keys of three");
    let verifier = Verifier::new(keys, &workspace_id, trusted);
    Ok(Vectors { doc, verifier, now })
}

fn cases<'a>(doc: &'a Value, group: &str) -> Result<&'a Vec<Value>, String> {
    doc[group]
        .as_array()
        .filter(|cases| !cases.is_empty())
        .ok_or_else(|| format!("vector group `{group}` is missing or empty"))
}

fn name(case: &Value) -> &str {
    case["name"].as_str().unwrap_or("?")
}

#[test]
fn should_verify_vectors_verify() -> TestResult {
    let v = load()?;
    for case in cases(&v.doc, "should_verify")? {
        let receipt = &case["receipt"];
        let payload =
            v.verifier.verify(receipt, v.now).map_err(|e| format!("{}: {e} ({})", name(case), e.reference_class()))?;
        assert!(payload["receipt_id"].is_string(), "{}", name(case));
        // The same bytes through the strict JSON entry point.
        let json = serde_json::to_vec(receipt)?;
        assert_eq!(v.verifier.verify_json(&json, v.now).ok(), Some(payload), "{}", name(case));
    }
    Ok(())
}

#[test]
fn should_reject_vectors_fail_with_the_reference_class() -> TestResult {
    let v = load()?;
    let mut seen_classes = std::collections::BTreeSet::new();
    for case in cases(&v.doc, "should_reject")? {
        let expected = case["expected_class"].as_str().ok_or("vector without expected_class")?;
        match v.verifier.verify(&case["receipt"], v.now) {
            Ok(_) => return Err(format!("{} verified, expected {expected}", name(case)).into()),
            Err(err) => assert_eq!(err.reference_class(), expected, "{}: {err}", name(case)),
        }
        seen_classes.insert(expected.to_owned());
    }
    // Every class of the reference is exercised, so a verifier that maps all errors to one fails.
    assert_eq!(seen_classes.len(), 5, "{seen_classes:?}");
    Ok(())
}

#[test]
fn untrusted_key_vector_maps_to_untrusted_key_code() -> TestResult {
    let v = load()?;
    let case =
        cases(&v.doc, "should_reject")?.iter().find(|c| name(c) == "untrusted_key").ok_or("no untrusted_key vector")?;
    let err = v.verifier.verify(&case["receipt"], v.now).err();
    assert!(matches!(err, Some(VerifyError::UntrustedKey(_))), "{err:?}");
    Ok(())
}

#[test]
fn canonical_golden_vector_is_byte_exact() -> TestResult {
    let v = load()?;
    for case in cases(&v.doc, "canonical")? {
        let expected = case["canonical"].as_str().ok_or("canonical vector without text")?;
        assert_eq!(String::from_utf8(to_canonical_vec(&case["input"])?)?, expected);
        // Reading the canonical text back strictly and writing it again is the identity.
        assert_eq!(to_canonical_vec(&parse_strict(expected.as_bytes())?)?, expected.as_bytes());
    }
    Ok(())
}

#[test]
fn checkpoint_vectors_match_roots_and_verdicts() -> TestResult {
    let v = load()?;
    for case in cases(&v.doc, "checkpoints")? {
        let members: Vec<Value> = case["members"].as_array().ok_or("checkpoint case without members")?.clone();
        let signed: Vec<SignedReceipt> =
            members.iter().map(|m| serde_json::from_value(m.clone())).collect::<Result<_, _>>()?;
        let expected_root = case["expected_merkle_root"].as_str().ok_or("no expected root")?;
        let valid = case["valid"].as_bool().ok_or("no verdict")?;
        let root = merkle_root(&signed)?;
        // `expected_merkle_root` is what the checkpoint commits to; an incomplete set must miss it.
        assert_eq!(root == expected_root, valid, "{}: root {root}", name(case));
        if case["checkpoint"].is_null() {
            // A root-only case (the empty set): nothing signed to verify.
            assert!(members.is_empty(), "{}", name(case));
            assert_eq!(root, EMPTY_MERKLE_ROOT, "{}", name(case));
            continue;
        }
        let previous = Some(&case["previous_checkpoint"]).filter(|p| !p.is_null());
        let verdict = verify_checkpoint(&v.verifier, &case["checkpoint"], &members, previous, v.now);
        assert_eq!(verdict.is_ok(), valid, "{}: {verdict:?}", name(case));
        if let Err(err) = verdict {
            assert_eq!(err.reference_class(), "VerificationError", "{}: {err}", name(case));
        }
    }
    Ok(())
}

#[test]
fn checkpoints_verify_only_with_their_own_previous() -> TestResult {
    let v = load()?;
    let linked =
        cases(&v.doc, "checkpoints")?.iter().find(|c| name(c) == "day_two_linked").ok_or("no day_two_linked")?;
    let day_one = cases(&v.doc, "checkpoints")?.iter().find(|c| name(c) == "day_one").ok_or("no day_one")?;
    let members = linked["members"].as_array().ok_or("no members")?;
    // Passing day two as its own predecessor breaks the link.
    let wrong = verify_checkpoint(&v.verifier, &linked["checkpoint"], members, Some(&linked["checkpoint"]), v.now);
    assert!(matches!(wrong, Err(VerifyError::Checkpoint(_))), "{wrong:?}");
    assert_eq!(linked["previous_checkpoint"], day_one["checkpoint"]);
    Ok(())
}
