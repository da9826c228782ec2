//! Many receipts at once: Ed25519 signatures checked in batches, and work spread over the cores.
//! Used by [`Verifier::verify_many`](super::Verifier::verify_many) and export verification.
//!
//! A batch is one equation over all its signatures, with random 128-bit weights `z`:
//!
//! ```text
//! [-Σ z·s] B + Σ z·R + Σ_keys [Σ_{signed by A} z·k] A = 0,   k = SHA-512(R ‖ A ‖ M) mod ℓ
//! ```
//!
//! This is the equation of `ed25519_dalek::verify_batch` with the terms of each key summed first.
//! The receipts of a workspace share one or two keys, so the multiscalar multiplication has
//! n + keys + 1 points instead of 2n + 1, which makes a signature about a third cheaper.
//!
//! A batch accepts every set of individually valid signatures. It could also accept a signature
//! that the single (cofactorless) check rejects, but only one built by the key's own holder with a
//! small-order component: nobody else can produce one for a trusted key. A batch that fails is
//! narrowed down (eighths re-batched, small groups checked one by one), so a rejected signature
//! always gets the single check's verdict.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha512};
use std::iter::once;

use super::verify::{PendingSignature, VerifyError};

/// Signatures verified together at most: larger batches are cheaper per signature, with little
/// gain past this size.
const SIGNATURE_BATCH: usize = 2048;
/// Failed groups this small are checked signature by signature.
const SINGLE_CHECK_BELOW: usize = 64;

/// Checks `pending` signatures (each tagged with its caller's index); `reject(index, error)` is
/// called for each one that does not verify.
pub(crate) fn settle(pending: &[(usize, PendingSignature)], reject: &mut impl FnMut(usize, VerifyError)) {
    // Equal groups: a short last batch would cost more per signature.
    let groups = pending.len().div_ceil(SIGNATURE_BATCH).max(1);
    for group in pending.chunks(pending.len().div_ceil(groups).max(1)) {
        settle_group(group, reject);
    }
}

fn settle_group(group: &[(usize, PendingSignature)], reject: &mut impl FnMut(usize, VerifyError)) {
    if group.len() > 1 && batch_verifies(group) {
        return;
    }
    if group.len() > SINGLE_CHECK_BELOW {
        for part in group.chunks(group.len().div_ceil(8)) {
            settle_group(part, reject);
        }
        return;
    }
    for (index, signature) in group {
        if let Err(err) = signature.verify() {
            reject(*index, err);
        }
    }
}

/// Whether the batch equation holds for every signature of `group`. False also when a signature
/// cannot take part (unusable key, non-canonical `s`, `R` not a point) or no randomness is
/// available: the group is then narrowed down to single checks.
fn batch_verifies(group: &[(usize, PendingSignature)]) -> bool {
    let mut weights = vec![[0u8; 16]; group.len()];
    if crate::ids::random_bytes(weights.as_flattened_mut()).is_err() {
        return false;
    }
    let mut basepoint_weight = Scalar::ZERO;
    // The distinct keys with the sum of their terms' weights; usually one.
    let mut keys: Vec<(VerifyingKey, Scalar)> = Vec::with_capacity(2);
    let mut r_weights = Vec::with_capacity(group.len());
    let mut r_points = Vec::with_capacity(group.len());
    for ((_, pending), weight) in group.iter().zip(&weights) {
        let Some(key) = pending.key else {
            return false;
        };
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(*pending.signature.s_bytes())) else {
            return false;
        };
        let Some(r) = CompressedEdwardsY(*pending.signature.r_bytes()).decompress() else {
            return false;
        };
        let hash: [u8; 64] = Sha512::new()
            .chain_update(pending.signature.r_bytes())
            .chain_update(key.as_bytes())
            .chain_update(&pending.message)
            .finalize()
            .into();
        let k = Scalar::from_bytes_mod_order_wide(&hash);
        let z = Scalar::from(u128::from_le_bytes(*weight));
        basepoint_weight += z * s;
        match keys.iter_mut().find(|(known, _)| *known == key) {
            Some((_, key_weight)) => *key_weight += z * k,
            None => keys.push((key, z * k)),
        }
        r_weights.push(z);
        r_points.push(r);
    }
    let scalars = once(-basepoint_weight).chain(keys.iter().map(|(_, weight)| *weight)).chain(r_weights);
    let points = once(ED25519_BASEPOINT_POINT).chain(keys.iter().map(|(key, _)| key.to_edwards())).chain(r_points);
    EdwardsPoint::vartime_multiscalar_mul(scalars, points).is_identity()
}

/// `f(start, chunk)` on consecutive chunks of `items` (`start` is the index of the chunk's first
/// item), one chunk per core (fewer when a chunk would have fewer than `min_per_thread` items), the
/// results concatenated in order.
pub(crate) fn parallel_chunks<T: Sync, R: Send>(
    items: &[T],
    min_per_thread: usize,
    f: impl Fn(usize, &[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cores.min(items.len() / min_per_thread.max(1)).max(1);
    if threads == 1 {
        return f(0, items);
    }
    let size = items.len().div_ceil(threads);
    let mut chunks = items.chunks(size).enumerate().map(|(i, chunk)| (i * size, chunk));
    let (_, first) = chunks.next().unwrap_or_default();
    std::thread::scope(|scope| {
        let f = &f;
        let workers: Vec<_> = chunks.map(|(start, chunk)| scope.spawn(move || f(start, chunk))).collect();
        // The calling thread takes the first chunk itself.
        let mut results = f(0, first);
        results.reserve(items.len().saturating_sub(results.len()));
        for worker in workers {
            match worker.join() {
                Ok(part) => results.extend(part),
                // A worker only panics on a bug; let it surface rather than drop results silently.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Signer, SigningKey};

    fn pending(seed: u8, message: &[u8]) -> PendingSignature {
        let signer = SigningKey::from_bytes(&[seed; 32]);
        PendingSignature {
            key: Some(signer.verifying_key()),
            message: message.to_vec(),
            signature: signer.sign(message),
        }
    }

    fn rejected(group: &[(usize, PendingSignature)]) -> Vec<usize> {
        let mut bad = Vec::new();
        settle(group, &mut |index, err| {
            assert!(matches!(err, VerifyError::SignatureMismatch(_)));
            bad.push(index);
        });
        bad.sort_unstable();
        bad
    }

    #[test]
    fn valid_signatures_of_several_keys_pass_as_one_batch() {
        let group: Vec<_> = (0..300).map(|i| (i, pending(1 + (i % 3) as u8, format!("m{i}").as_bytes()))).collect();
        assert!(batch_verifies(&group));
        assert!(rejected(&group).is_empty());
    }

    #[test]
    fn every_bad_signature_is_named_and_no_good_one() {
        let mut group: Vec<_> = (0..700).map(|i| (i, pending(1 + (i % 2) as u8, format!("m{i}").as_bytes()))).collect();
        // A changed message, a signature of another key, a non-canonical `s`, an `R` that is not a point.
        group[3].1.message.push(b'!');
        group[250].1.key = Some(SigningKey::from_bytes(&[9; 32]).verifying_key());
        let mut bytes = group[400].1.signature.to_bytes();
        bytes[63] |= 0xF0;
        group[400].1.signature = Signature::from_bytes(&bytes);
        let mut bytes = group[699].1.signature.to_bytes();
        bytes[..32].fill(0);
        let y_of_no_point = |y: &u8| {
            let mut r = [0u8; 32];
            r[0] = *y;
            CompressedEdwardsY(r).decompress().is_none()
        };
        bytes[0] = (2u8..).find(y_of_no_point).unwrap();
        group[699].1.signature = Signature::from_bytes(&bytes);
        group[500].1.key = None;
        assert!(!batch_verifies(&group));
        assert_eq!(rejected(&group), vec![3, 250, 400, 500, 699]);
        // Small groups and a single signature take the same paths.
        assert_eq!(rejected(&group[..5]), vec![3]);
        assert_eq!(rejected(&group[3..4]), vec![3]);
        assert!(rejected(&[]).is_empty());
    }

    #[test]
    fn parallel_chunks_keeps_the_order() {
        let items: Vec<u32> = (0..10_000).collect();
        let tagged = parallel_chunks(&items, 16, |start, chunk| {
            chunk.iter().enumerate().map(|(i, item)| (start + i, item * 2)).collect()
        });
        assert_eq!(tagged, items.iter().map(|&i| (i as usize, i * 2)).collect::<Vec<_>>());
        assert!(parallel_chunks(&[] as &[u32], 16, |_, chunk| chunk.to_vec()).is_empty());
    }
}
