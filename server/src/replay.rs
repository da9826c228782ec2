//! First answers remembered under an `Idempotency-Key`, in memory, for the calls whose idempotency
//! the engine does not store itself (policy create, publish and archive; authorization revoke;
//! confirmation resolve). Checks, authorization creates and settlements are idempotent in the
//! engine, durably and across servers; these are only within one server process's lifetime.

use std::collections::{HashMap, VecDeque};

use axum::http::StatusCode;
use parking_lot::Mutex;

use crate::error::ApiError;

/// How many answers are kept; the oldest are forgotten first.
const CAPACITY: usize = 10_000;

struct Entry {
    digest: String,
    status: StatusCode,
    body: Vec<u8>,
}

#[derive(Default)]
pub struct ReplayCache {
    inner: Mutex<(HashMap<String, Entry>, VecDeque<String>)>,
}

impl ReplayCache {
    /// The first answer under `slot`, if any; a conflict if it answered a different request.
    pub fn get(&self, slot: &str, digest: &str) -> Result<Option<(StatusCode, Vec<u8>)>, ApiError> {
        let inner = self.inner.lock();
        match inner.0.get(slot) {
            None => Ok(None),
            Some(entry) if entry.digest == digest => Ok(Some((entry.status, entry.body.clone()))),
            Some(_) => Err(ApiError::from(allowly_core::Error::conflict(
                "idempotency_key_reused",
                "this idempotency key was used for a different request",
            ))),
        }
    }

    /// Remembers a successful answer (the first one wins).
    pub fn put(&self, slot: String, digest: String, status: StatusCode, body: Vec<u8>) {
        let mut inner = self.inner.lock();
        let (map, order) = &mut *inner;
        if map.contains_key(&slot) {
            return;
        }
        while map.len() >= CAPACITY {
            match order.pop_front() {
                Some(oldest) => {
                    map.remove(&oldest);
                }
                None => break,
            }
        }
        order.push_back(slot.clone());
        map.insert(slot, Entry { digest, status, body });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_and_conflicts() -> Result<(), ApiError> {
        let cache = ReplayCache::default();
        assert!(cache.get("a", "1")?.is_none());
        cache.put("a".into(), "1".into(), StatusCode::CREATED, b"{}".to_vec());
        assert_eq!(cache.get("a", "1")?, Some((StatusCode::CREATED, b"{}".to_vec())));
        assert_eq!(cache.get("a", "2").err().map(|e| e.status), Some(StatusCode::CONFLICT));
        Ok(())
    }
}
