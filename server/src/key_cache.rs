//! API keys this server authenticated in the last second, so a busy key costs one store read per
//! second instead of one per request (a blocking job and, on PostgreSQL, three round trips).
//!
//! An entry is trusted for [`FRESH_FOR`] after the store confirmed it; after that the next request
//! authenticates against the store again. So a key revoked anywhere (another server on the same
//! PostgreSQL database, the CLI on the same SQLite home) is refused by every server within one
//! second, and a key revoked through this server at once (`forget_key`). Entries are keyed by the
//! SHA-256 of the presented key: the cache never holds a secret. Refusals are never cached.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use allowly_core::model::ApiKeyKind;
use allowly_core::Allowly;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

/// How long an authentication stands without asking the store again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// Beyond this many keys, stale entries are dropped (and all of them if none is stale): a flood of
/// distinct valid keys cannot grow the server.
const MAX_ENTRIES: usize = 10_000;

/// A key the store confirmed: its workspace's engine, its id and kind.
#[derive(Clone)]
pub struct KnownKey {
    pub engine: Arc<Allowly>,
    pub key_id: String,
    pub kind: ApiKeyKind,
}

#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<[u8; 32], (KnownKey, Instant)>>,
}

impl KeyCache {
    /// The key, if the store confirmed it less than [`FRESH_FOR`] ago.
    pub fn get(&self, presented: &str) -> Option<KnownKey> {
        let digest = digest(presented);
        let entries = self.entries.lock();
        let (key, confirmed) = entries.get(&digest)?;
        (confirmed.elapsed() < FRESH_FOR).then(|| key.clone())
    }

    /// Remembers a key the store has just confirmed.
    pub fn remember(&self, presented: &str, key: KnownKey) {
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, confirmed)| confirmed.elapsed() < FRESH_FOR);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(digest(presented), (key, Instant::now()));
    }

    /// Forgets key `key_id` of workspace `workspace_id` (revoked through this server).
    pub fn forget_key(&self, workspace_id: &str, key_id: &str) {
        self.entries.lock().retain(|_, (key, _)| !(key.key_id == key_id && key.engine.workspace_id() == workspace_id));
    }
}

fn digest(presented: &str) -> [u8; 32] {
    Sha256::digest(presented.as_bytes()).into()
}
