//! Fail closed: when the store fails, a check is a typed error, or for embedded SDKs the local
//! fail-closed answer of docs/decisions.md — never an allow without a receipt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use allowly_core::model::{AuthorizationCreate, CheckRequest};
use allowly_core::policy::Decision;
use allowly_core::store::{MemoryStore, Store, Tx};
use allowly_core::{Allowly, Error, ManualClock, Options, Result};
use serde_json::json;

/// A real store with a switch that makes every transaction fail, as a full disk or a lost
/// database would.
struct Breakable {
    inner: MemoryStore,
    broken: Arc<AtomicBool>,
}

impl Store for Breakable {
    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(Error::store("disk I/O error"));
        }
        self.inner.write(work)
    }

    fn read(&self, work: &mut dyn FnMut(&mut dyn Tx) -> Result<()>) -> Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(Error::store("disk I/O error"));
        }
        self.inner.read(work)
    }
}

#[test]
fn a_failing_store_fails_closed() {
    let broken = Arc::new(AtomicBool::new(false));
    let store = Breakable { inner: MemoryStore::new(), broken: broken.clone() };
    let clock = Arc::new(ManualClock::new(common::start()));
    let engine = Allowly::with_store(Box::new(store), Box::new(clock), Options::default()).unwrap();
    engine.create_policy(&common::support_policy()).unwrap();
    let id = engine
        .create_authorization(&AuthorizationCreate {
            user_id: "u".into(),
            policy_id: "support_agent".into(),
            ..Default::default()
        })
        .unwrap()
        .authorization_id;
    let request = CheckRequest {
        authorization_id: id,
        actions: vec!["email.send".into(), "crm.read".into()],
        context: Some(json!({"recipient_domain": "example.com"})),
        ..Default::default()
    };
    assert_eq!(
        engine.check_or_fallback(&request).unwrap().results.get("email.send").unwrap().decision,
        Decision::Allow
    );

    broken.store(true, Ordering::SeqCst);
    assert_eq!(engine.check(&request).unwrap_err().code(), "store_unavailable");
    let fallback = engine.check_or_fallback(&request).unwrap();
    assert_eq!(fallback.engine_version, "sdk_fallback");
    for (_, result) in fallback.results.iter() {
        assert_eq!((result.decision, result.reason.as_str()), (Decision::Deny, "fallback_closed_unavailable"));
        assert!(result.is_fallback && result.receipt.is_none() && result.receipt_id.is_none());
    }
    let invalid = CheckRequest { actions: vec![], ..request.clone() };
    assert_eq!(
        engine.check_or_fallback(&invalid).unwrap_err().code(),
        "invalid_request",
        "bad input stays a typed error"
    );

    broken.store(false, Ordering::SeqCst);
    let healthy = engine.check_or_fallback(&request).unwrap();
    assert!(!healthy.results.get("email.send").unwrap().is_fallback);
}

#[test]
fn the_engine_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Allowly>();
}
