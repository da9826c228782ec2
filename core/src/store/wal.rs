//! Keeps the SQLite workspace files' write-ahead logs short, off the commit path.
//!
//! Each commit appends a few pages to the WAL. Left alone, the log grows until SQLite's
//! auto-checkpoint runs inside the commit that crosses its size, copying (and syncing) tens of
//! megabytes while every other caller of the workspace waits: a stall of 50–100 ms every few
//! thousand checks. A PASSIVE checkpoint from a connection of our own, every few tens of
//! milliseconds while a log is growing, does that work in small steps, concurrently with the
//! writer and without its lock. One thread serves every open store of the process; it backs off
//! while they are idle and ends when the last store closes.
//!
//! A process that forks calls [`before_fork`] and then one of the two `after_fork_*` hooks (the
//! bindings register them): a child must not inherit the thread's lock held mid-checkpoint, nor
//! the parent's thread and connections.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

/// Interval while a log is growing, and the longest one while it is idle.
const BUSY_EVERY: Duration = Duration::from_millis(20);
const IDLE_EVERY: Duration = Duration::from_millis(500);

struct Log {
    id: u64,
    path: PathBuf,
    conn: Option<Connection>,
    due: Instant,
    every: Duration,
    /// Frames in the log after the last checkpoint: unchanged means idle.
    last_frames: i64,
}

struct Checkpointer {
    logs: Vec<Log>,
    next_id: u64,
    thread: Option<JoinHandle<()>>,
    /// Which thread is current: a thread whose generation is behind ends.
    generation: u64,
}

// std's Mutex and Condvar, not parking_lot's: on Linux their whole state is the word in these
// statics, while parking_lot keeps waiters in a process-wide table whose locks a child forked
// mid-wait inherits held (its first wait would never end).
static CHECKPOINTER: Mutex<Checkpointer> =
    Mutex::new(Checkpointer { logs: Vec::new(), next_id: 0, thread: None, generation: 0 });
/// Wakes the thread early: a store closed, or the thread must end.
static WAKE: Condvar = Condvar::new();

/// The checkpointer's state. A panic cannot leave it half-changed, so a poisoned lock is taken as is.
fn lock_state() -> MutexGuard<'static, Checkpointer> {
    CHECKPOINTER.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    /// The checkpointer's state, held by a thread between [`before_fork`] and an `after_fork_*`.
    static HELD_FOR_FORK: RefCell<Option<MutexGuard<'static, Checkpointer>>> = const { RefCell::new(None) };
}

/// To call just before `fork()`: waits for a checkpoint under way to end and holds the checkpointer
/// until [`after_fork_in_parent`] or [`after_fork_in_child`], so that the child does not start life
/// with its lock held by a thread it does not have, or with SQLite mid-call. Other threads must not
/// be inside an engine call at the fork (SQLite's rule for every fork).
pub fn before_fork() {
    // `try_with`: these hooks run from C's `pthread_atfork` too, where a panic would abort.
    let _ = HELD_FOR_FORK.try_with(|held| {
        let mut held = held.borrow_mut();
        if held.is_none() {
            *held = Some(lock_state());
        }
    });
}

/// To call in the parent after `fork()`: lets the checkpointer go on.
pub fn after_fork_in_parent() {
    let _ = HELD_FOR_FORK.try_with(|held| drop(held.borrow_mut().take()));
}

/// To call in the child after `fork()`. The parent's thread does not exist in the child and its
/// SQLite connections are the parent's: they are forgotten, never used or closed here. The stores
/// the child inherited stay watched; the next store the child opens starts a thread of its own.
pub fn after_fork_in_child() {
    let _ = HELD_FOR_FORK.try_with(|held| {
        if let Some(mut state) = held.borrow_mut().take() {
            for log in &mut state.logs {
                std::mem::forget(log.conn.take());
            }
            std::mem::forget(state.thread.take());
            state.generation += 1;
        }
    });
}

/// A store's place in the checkpointer; dropping it stops checkpointing that file.
pub(crate) struct WalWatch {
    id: u64,
}

/// Starts checkpointing the WAL of the database file at `path` (which exists).
pub(crate) fn watch(path: &Path) -> WalWatch {
    let mut state = lock_state();
    let id = state.next_id;
    state.next_id += 1;
    state.logs.push(Log {
        id,
        path: path.to_path_buf(),
        conn: None,
        due: Instant::now(),
        every: BUSY_EVERY,
        last_frames: -1,
    });
    if state.thread.is_none() {
        let generation = state.generation;
        // Without the thread the store still works; SQLite's own auto-checkpoint takes over.
        state.thread = std::thread::Builder::new().name("allowly-wal".into()).spawn(move || run(generation)).ok();
    }
    WalWatch { id }
}

impl Drop for WalWatch {
    fn drop(&mut self) {
        let retired = {
            let mut state = lock_state();
            state.logs.retain(|log| log.id != self.id);
            if state.logs.is_empty() {
                state.generation += 1;
                state.thread.take()
            } else {
                None
            }
        };
        WAKE.notify_all();
        if let Some(thread) = retired {
            let _ = thread.join();
        }
    }
}

fn run(generation: u64) {
    let mut state = lock_state();
    while state.generation == generation {
        let now = Instant::now();
        for log in state.logs.iter_mut().filter(|log| log.due <= now) {
            checkpoint(log);
            log.due = Instant::now() + log.every;
        }
        state = WAKE.wait_timeout(state, BUSY_EVERY).unwrap_or_else(PoisonError::into_inner).0;
    }
}

fn checkpoint(log: &mut Log) {
    if log.conn.is_none() {
        log.conn =
            Connection::open_with_flags(&log.path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .ok();
    }
    let Some(conn) = log.conn.as_ref() else { return };
    // PASSIVE never waits for readers or writers; a busy log is simply tried again later.
    // Columns: busy, frames in the log, frames checkpointed.
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get::<_, i64>(1)) {
        Ok(frames) => {
            let idle = frames == log.last_frames;
            log.every = if idle { (log.every * 2).min(IDLE_EVERY) } else { BUSY_EVERY };
            log.last_frames = frames;
        }
        // Reopened on the next turn.
        Err(_) => log.conn = None,
    }
}
