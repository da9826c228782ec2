//! Keeps the SQLite workspace files' write-ahead logs short, off the commit path.
//!
//! Each commit appends a few pages to the WAL. Left alone, the log grows until SQLite's
//! auto-checkpoint runs inside the commit that crosses its size, copying (and syncing) tens of
//! megabytes while every other caller of the workspace waits: a stall of 50–100 ms every few
//! thousand checks. A PASSIVE checkpoint from a connection of our own, every few tens of
//! milliseconds while a log is growing, does that work in small steps, concurrently with the
//! writer and without its lock. One thread serves every open store of the process; it backs off
//! while they are idle and ends when the last store closes.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
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

static CHECKPOINTER: Mutex<Checkpointer> =
    Mutex::new(Checkpointer { logs: Vec::new(), next_id: 0, thread: None, generation: 0 });
/// Wakes the thread early: a store closed, or the thread must end.
static WAKE: Condvar = Condvar::new();

/// A store's place in the checkpointer; dropping it stops checkpointing that file.
pub(crate) struct WalWatch {
    id: u64,
}

/// Starts checkpointing the WAL of the database file at `path` (which exists).
pub(crate) fn watch(path: &Path) -> WalWatch {
    let mut state = CHECKPOINTER.lock();
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
            let mut state = CHECKPOINTER.lock();
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
    let mut state = CHECKPOINTER.lock();
    while state.generation == generation {
        let now = Instant::now();
        for log in state.logs.iter_mut().filter(|log| log.due <= now) {
            checkpoint(log);
            log.due = Instant::now() + log.every;
        }
        WAKE.wait_for(&mut state, BUSY_EVERY);
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
