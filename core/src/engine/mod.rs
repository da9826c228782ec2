//! The engine facade: one synchronous, `Send + Sync` entry point for the CLI, the server and the
//! bindings. Each operation runs in one store transaction that also signs and stores its receipts.

mod api_keys;
mod check;
mod dispatch;
mod lifecycle;
mod overview;
mod receipts;
mod related;

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use lru::LruCache;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::canonical;
use crate::error::{Error, Result};
use crate::ids;
use crate::model::{ReceiptFacts, SigningKeyRecord, StoredReceipt};
use crate::policy::{Definition, PolicyRef};
use crate::receipt::{ReceiptSigner, SCHEMA_VERSION};
use crate::store::{Durability, MemoryStore, SqliteStore, Store, Tx, UnreadableRow};
use crate::time::Timestamp;

pub use api_keys::ApiKeyParts;
pub use lifecycle::{Idempotent, DEFAULT_CONFIRMATION_TTL_SECONDS, MAX_PAGE_SIZE, STATUS_SCAN_ROWS};
pub use overview::{Counted, DayOfDecisions, Overview, OVERVIEW_DAYS};
pub use receipts::ExportSummary;
pub use related::RelatedReceipt;

/// Name of the workspace file inside an embedded home directory.
pub const DATABASE_FILE: &str = "allowly.db";

/// The time source; tests and tools use [`ManualClock`] to place receipts on chosen days.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock(AtomicI64::new(start.millis()))
    }
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.millis(), Ordering::SeqCst);
    }
    pub fn advance_millis(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

/// Tunables with the defaults a user of the service would expect.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long a pending confirmation waits for the user.
    pub confirmation_window_seconds: i64,
    /// How long a pending escalation waits, and how long an approval stays usable.
    pub escalation_window_seconds: i64,
    /// Base of the `url` in pending receipt envelopes (`{base}/v1/receipts/{id}`).
    pub public_base_url: String,
    /// Where `authorization_provenance.source` says authorizations come from.
    pub provenance_source: String,
    /// The id a new workspace gets (generated when `None`); a store that already holds a
    /// different workspace is refused.
    pub workspace_id: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            confirmation_window_seconds: 600,
            escalation_window_seconds: 86_400,
            public_base_url: "http://127.0.0.1:8787".into(),
            provenance_source: "allowly.embedded".into(),
            workspace_id: None,
        }
    }
}

/// The workspace's current signing key, cached between transactions.
struct ActiveSigner {
    signer: Arc<ReceiptSigner>,
    active_from: Timestamp,
}

/// The Allowly engine on one workspace.
pub struct Allowly {
    store: Box<dyn Store>,
    clock: Box<dyn Clock>,
    options: Options,
    workspace_id: String,
    active_signer: Mutex<Option<ActiveSigner>>,
    definitions: Mutex<LruCache<String, Arc<Definition>>>,
}

impl Allowly {
    /// Opens the embedded workspace in `home` (created with its signing key on first use).
    pub fn open_embedded(home: impl AsRef<Path>) -> Result<Allowly> {
        let home = home.as_ref();
        std::fs::create_dir_all(home)
            .map_err(|err| Error::io(format!("cannot create `{}`: {err}", home.display())).caused_by(err))?;
        let store = SqliteStore::open(&home.join(DATABASE_FILE), Durability::default())?;
        Allowly::with_store(Box::new(store), Box::new(SystemClock), Options::default())
    }

    /// A workspace that lives in memory only.
    pub fn in_memory() -> Result<Allowly> {
        Allowly::with_store(Box::new(MemoryStore::new()), Box::new(SystemClock), Options::default())
    }

    /// The engine on any store and clock; creates the workspace and its first key if the store is empty.
    pub fn with_store(store: Box<dyn Store>, clock: Box<dyn Clock>, options: Options) -> Result<Allowly> {
        let now = clock.now();
        let mut workspace_id = String::new();
        store.write(&mut |tx| {
            workspace_id = match (tx.workspace_id()?, &options.workspace_id) {
                (Some(existing), Some(wanted)) if &existing != wanted => {
                    return Err(Error::store(format!("the store holds workspace `{existing}`, not `{wanted}`")));
                }
                (Some(existing), _) => existing,
                (None, wanted) => {
                    let created = match wanted {
                        Some(wanted) => wanted.clone(),
                        None => ids::new_id("ws_", now)?,
                    };
                    tx.set_workspace_id(&created)?;
                    created
                }
            };
            if tx.active_key_id()?.is_none() {
                tx.put_signing_key(&new_signing_key(now)?)?;
            }
            Ok(())
        })?;
        Ok(Allowly {
            store,
            clock,
            options,
            workspace_id,
            active_signer: Mutex::new(None),
            definitions: Mutex::new(LruCache::new(NonZeroUsize::MIN.saturating_add(1023))),
        })
    }

    pub fn workspace_id(&self) -> &str {
        &self.workspace_id
    }

    /// `sha256:<hex>` of this engine's canonical manifest; stamped on every receipt.
    pub fn engine_version(&self) -> &'static str {
        engine_version()
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Runs `work` in one write transaction and returns its value.
    fn write<T>(&self, mut work: impl FnMut(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let mut out = None;
        self.store.write(&mut |tx| {
            out = Some(work(tx)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::store("transaction produced no result"))
    }

    fn read<T>(&self, mut work: impl FnMut(&mut dyn Tx) -> Result<T>) -> Result<T> {
        let mut out = None;
        self.store.read(&mut |tx| {
            out = Some(work(tx)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::store("transaction produced no result"))
    }

    /// The signer for a transaction, and the earliest instant it may sign at. Another process may
    /// have rotated the key, so the cached signer is checked against the store every time.
    fn signer(&self, tx: &mut dyn Tx) -> Result<(Arc<ReceiptSigner>, Timestamp)> {
        let active_id = tx.active_key_id()?.ok_or_else(|| Error::signing("the workspace has no active key"))?;
        let mut cached = self.active_signer.lock();
        if let Some(active) = cached.as_ref().filter(|a| a.signer.key_id() == active_id) {
            return Ok((active.signer.clone(), active.active_from));
        }
        let record = tx
            .signing_keys()?
            .into_iter()
            .find(|k| k.key_id == active_id)
            .ok_or_else(|| Error::signing("the active key is missing"))?;
        let signer = Arc::new(ReceiptSigner::new(&record.key_id, &record.secret_key));
        *cached = Some(ActiveSigner { signer: signer.clone(), active_from: record.active_from });
        Ok((signer, record.active_from))
    }

    /// The parsed definition of a policy edition, from the cache or the store (editions are immutable).
    fn definition(&self, tx: &mut dyn Tx, policy_ref: &PolicyRef) -> Result<Arc<Definition>> {
        if let Some(found) = self.definitions.lock().get(&policy_ref.definition_sha256) {
            return Ok(found.clone());
        }
        // An edition that is missing, invalid or altered is a stored row that does not load, not an
        // outage: a check denies rather than leave a client to its fallback.
        let id = format!("{}@{}", policy_ref.policy_id, policy_ref.policy_version);
        let unreadable = |reason: String| UnreadableRow::new("policy edition", &id, reason).error();
        let edition = tx
            .policy_edition(&policy_ref.policy_id, Some(policy_ref.policy_version))?
            .ok_or_else(|| unreadable("an authorization refers to it, but it is missing".into()))?;
        let definition = Arc::new(
            Definition::parse(&edition.definition).map_err(|err| unreadable(format!("it is invalid: {err}")))?,
        );
        if definition.sha256 != policy_ref.definition_sha256 {
            return Err(unreadable("it does not match its digest".into()));
        }
        self.definitions.lock().put(policy_ref.definition_sha256.clone(), definition.clone());
        Ok(definition)
    }

    /// Signs and stores one receipt inside the caller's transaction.
    fn issue(&self, tx: &mut dyn Tx, signing: &Signing, mut draft: ReceiptDraft<'_>) -> Result<StoredReceipt> {
        let signer = &signing.signer;
        let receipt_id = match draft.receipt_id.take() {
            Some(id) => id,
            None => ids::new_id("rcp_", draft.issued_at)?,
        };
        let payload = self.canonical_payload(&receipt_id, &draft)?;
        let receipt = signer.sign_canonical(&payload).map_err(|err| Error::signing(err.to_string()).caused_by(err))?;
        let (action, event) = match draft.subject {
            Subject::Action(action) => (Some(action.to_string()), None),
            Subject::Event(event) => (None, Some(event.to_string())),
        };
        let stored = StoredReceipt {
            receipt_id,
            issued_at: draft.issued_at,
            authorization_id: draft.authorization_id.map(str::to_string),
            is_checkpoint: matches!(draft.subject, Subject::Event("receipt.checkpoint")),
            facts: ReceiptFacts {
                user_id: draft.user_id.to_string(),
                agent_id: draft.agent_id.to_string(),
                action,
                event,
                decision: draft.decision.to_string(),
                reason: draft.reason.to_string(),
            },
            receipt,
        };
        tx.put_receipt(&stored)?;
        Ok(stored)
    }

    /// The receipt payload as canonical JSON, written field by field in canonical key order (the
    /// envelope's keys are fixed ASCII names; nested values go through the canonicalizer).
    fn canonical_payload(&self, receipt_id: &str, draft: &ReceiptDraft<'_>) -> Result<Vec<u8>> {
        let invalid = |err: canonical::CanonicalError| Error::invalid("context", err.to_string());
        let mut out = Vec::with_capacity(1024);
        let member = |out: &mut Vec<u8>, name: &str| {
            out.push(if out.is_empty() { b'{' } else { b',' });
            canonical::write_string(name, out);
            out.push(b':');
        };
        let optional = |out: &mut Vec<u8>, text: Option<&str>| match text {
            Some(text) => canonical::write_string(text, out),
            None => out.extend_from_slice(b"null"),
        };
        if let Subject::Action(action) = draft.subject {
            member(&mut out, "action");
            canonical::write_string(action, &mut out);
        }
        member(&mut out, "agent_id");
        canonical::write_string(draft.agent_id, &mut out);
        member(&mut out, "authorization_id");
        optional(&mut out, draft.authorization_id);
        member(&mut out, "context");
        canonical::write_canonical(&draft.context, &mut out).map_err(invalid)?;
        member(&mut out, "decision");
        canonical::write_string(draft.decision, &mut out);
        member(&mut out, "engine_version");
        canonical::write_string(engine_version(), &mut out);
        if let Subject::Event(event) = draft.subject {
            member(&mut out, "event");
            canonical::write_string(event, &mut out);
        }
        member(&mut out, "issued_at");
        canonical::write_string(&draft.issued_at.to_string(), &mut out);
        if let Some(policy_eval) = &draft.policy_eval {
            member(&mut out, "policy_eval");
            canonical::write_canonical(policy_eval, &mut out).map_err(invalid)?;
        }
        member(&mut out, "policy_ref");
        match draft.policy_ref {
            Some(r) => {
                out.extend_from_slice(b"{\"definition_sha256\":");
                canonical::write_string(&r.definition_sha256, &mut out);
                out.extend_from_slice(b",\"policy_id\":");
                canonical::write_string(&r.policy_id, &mut out);
                out.extend_from_slice(format!(",\"policy_version\":{}}}", r.policy_version).as_bytes());
            }
            None => out.extend_from_slice(b"null"),
        }
        member(&mut out, "reason");
        canonical::write_string(draft.reason, &mut out);
        member(&mut out, "receipt_id");
        canonical::write_string(receipt_id, &mut out);
        member(&mut out, "resource");
        optional(&mut out, draft.resource);
        member(&mut out, "schema_version");
        canonical::write_string(SCHEMA_VERSION, &mut out);
        member(&mut out, "user_id");
        canonical::write_string(draft.user_id, &mut out);
        member(&mut out, "workspace_id");
        canonical::write_string(&self.workspace_id, &mut out);
        out.push(b'}');
        Ok(out)
    }

    /// The key a transaction signs with and the instant it acts at: now, but never before the
    /// active key's window opened (clocks of processes sharing a file may differ by a little).
    fn signing(&self, tx: &mut dyn Tx) -> Result<Signing> {
        let (signer, active_from) = self.signer(tx)?;
        Ok(Signing { signer, now: self.clock.now().max(active_from) })
    }
}

/// The signer and clock reading of one transaction, fetched once.
struct Signing {
    signer: Arc<ReceiptSigner>,
    now: Timestamp,
}

/// What a receipt is about: an action decision or a lifecycle event.
#[derive(Clone, Copy)]
enum Subject<'a> {
    Action(&'a str),
    Event(&'a str),
}

/// The fields of a receipt before it is signed.
struct ReceiptDraft<'a> {
    receipt_id: Option<String>,
    issued_at: Timestamp,
    subject: Subject<'a>,
    decision: &'a str,
    reason: &'a str,
    user_id: &'a str,
    agent_id: &'a str,
    resource: Option<&'a str>,
    /// A JSON object.
    context: Value,
    authorization_id: Option<&'a str>,
    policy_ref: Option<&'a PolicyRef>,
    policy_eval: Option<Value>,
}

fn new_signing_key(now: Timestamp) -> Result<SigningKeyRecord> {
    let mut secret_key = [0u8; 32];
    ids::random_bytes(&mut secret_key)?;
    let key_id = ids::new_id("key_", now)?;
    let public_key = ReceiptSigner::new(&key_id, &secret_key).public_key();
    Ok(SigningKeyRecord { key_id, secret_key, public_key, active_from: now, active_until: None })
}

/// The canonical manifest naming this engine; its digest is `engine_version`.
pub fn engine_manifest() -> Value {
    json!({
        "schema": "allowly.engine.v1",
        "engine": "allowly-core",
        "version": env!("CARGO_PKG_VERSION"),
        "policy_profile": "allowly.policy.v1",
        "evaluator": {"profile": "allowly.basic.v1", "implementation": "native-rust"},
        "receipt_schema_version": SCHEMA_VERSION,
    })
}

pub fn engine_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let digest = canonical::canonical_sha256_hex(&engine_manifest()).unwrap_or_default();
        format!("sha256:{digest}")
    })
}
