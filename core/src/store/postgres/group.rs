//! Batches: checks of one authorization that arrive together share one transaction. Kept apart
//! because this coordinator (turns, leader, poisoning, shared outcome) is threads-and-condvars
//! logic independent of the SQL each participant sends.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::commit::end_transaction;
use super::failure::Retry;
use super::transaction::TxState;
use super::PostgresStore;

/// Write transactions that begin by reading the same authorization (checks, revocations) while
/// another is open on it join that one: they run one after another in a single PostgreSQL
/// transaction, each seeing the previous ones' writes, and commit together. It is the serial
/// execution the authorization's row lock would impose anyway, with one lock hand-off, one flush
/// and one `COMMIT` for the group instead of one each, which is what lets a hot authorization
/// take thousands of checks a second. A participant whose work fails before it wrote anything
/// just leaves; if one fails after writing (or the transaction fails), nobody commits and every
/// participant runs its work again.
///
/// A check asks for the active signing key before it reads its authorization, so that question
/// is answered from the store's memory and verified against the key read, under the shared
/// signing lock, by the transaction the check ends up in; if the key changed, the check runs
/// again. The first participant (the leader) registers the batch, opens the transaction, reads
/// and locks the authorization and the active key in one round trip, and after its own work
/// closes the batch to newcomers, waits for the others and commits.
pub(super) struct Batch {
    authorization_id: String,
    /// The shared transaction; opened by the leader.
    pub(super) tx: Mutex<Option<TxState>>,
    pub(super) control: Mutex<Control>,
    /// Signals the leader that a participant finished.
    progress: Condvar,
    /// Signals the participants that the transaction ended.
    done: Condvar,
}

#[derive(Default)]
pub(super) struct Control {
    /// Participants, the leader included; final once the batch is closed to newcomers.
    pub(super) joined: usize,
    /// Participants whose work has ended.
    finished: usize,
    /// A participant is running its work.
    busy: bool,
    /// Participants waiting for their turn, in order of arrival (each woken alone).
    queue: VecDeque<Arc<Seat>>,
    /// Why the batch will not commit, once it will not.
    pub(super) poisoned: Option<(String, Retry)>,
    /// The end of the transaction, once known.
    outcome: Option<std::result::Result<(), (String, Retry)>>,
}

/// A participant's place in the queue for its turn.
#[derive(Default)]
struct Seat {
    granted: Mutex<bool>,
    ready: Condvar,
}

impl Batch {
    pub(super) fn new(authorization_id: &str) -> Batch {
        Batch {
            authorization_id: authorization_id.to_string(),
            tx: Mutex::new(None),
            control: Mutex::new(Control { joined: 1, busy: true, ..Control::default() }),
            progress: Condvar::new(),
            done: Condvar::new(),
        }
    }

    /// Waits for this participant's turn (joined under the store's batch lock, so the leader
    /// counts it) and returns why the batch will not commit, if it will not.
    pub(super) fn take_turn(&self, mut control: MutexGuard<'_, Control>) -> Option<(String, Retry)> {
        if !control.busy {
            control.busy = true;
            return control.poisoned.clone();
        }
        let seat = Arc::new(Seat::default());
        control.queue.push_back(seat.clone());
        drop(control);
        let mut granted = seat.granted.lock();
        while !*granted {
            seat.ready.wait(&mut granted);
        }
        drop(granted);
        self.control.lock().poisoned.clone()
    }

    /// Runs after a participant's work (or its abandonment): records whether the batch can still
    /// commit, and passes the turn on.
    pub(super) fn end_turn(&self, spoiled: Option<(String, Retry)>) {
        let mut control = self.control.lock();
        if control.poisoned.is_none() {
            control.poisoned = spoiled;
        }
        control.finished += 1;
        match control.queue.pop_front() {
            Some(next) => {
                *next.granted.lock() = true;
                next.ready.notify_one();
            }
            None => control.busy = false,
        }
        self.progress.notify_one();
    }

    /// The leader's part after its own work: close, wait for the others, end the transaction.
    pub(super) fn close(&self, store: &PostgresStore) {
        {
            let mut batches = store.batches.lock();
            if batches.get(&self.authorization_id).is_some_and(|open| std::ptr::eq(Arc::as_ptr(open), self)) {
                batches.remove(&self.authorization_id);
            }
        }
        let poisoned = {
            let mut control = self.control.lock();
            while control.finished < control.joined {
                self.progress.wait(&mut control);
            }
            control.poisoned.clone()
        };
        let state = self.tx.lock().take();
        let outcome = match (state, poisoned) {
            (Some(state), None) => {
                end_transaction(state, &store.workspace_id, true).map_err(|failure| (failure.message, failure.retry))
            }
            (Some(state), Some(poisoned)) => {
                let _ = end_transaction(state, &store.workspace_id, false);
                Err(poisoned)
            }
            (None, poisoned) => {
                Err(poisoned.unwrap_or_else(|| ("the shared transaction never started".into(), Retry::Conflict)))
            }
        };
        let mut control = self.control.lock();
        control.outcome = Some(outcome);
        self.done.notify_all();
    }

    pub(super) fn outcome(&self) -> std::result::Result<(), (String, Retry)> {
        let mut control = self.control.lock();
        loop {
            if let Some(outcome) = &control.outcome {
                return outcome.clone();
            }
            self.done.wait(&mut control);
        }
    }
}
