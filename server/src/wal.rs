//! Keeps the SQLite workspace files' write-ahead logs short, off the request path.
//!
//! The engine's store commits on one connection under a lock, and each check appends a few pages
//! to the WAL. Left alone, the log grows until SQLite's auto-checkpoint runs inside the commit
//! that crosses its size, copying (and syncing) tens of megabytes while every other request of
//! the workspace waits: a latency tail of 50-100 ms every second or so under load. A PASSIVE
//! checkpoint from a connection of our own, every few tens of milliseconds while the log is
//! growing, does that work in small steps, concurrently with the writer and without its lock.
//! One thread serves every open workspace file of the home; it backs off while they are idle.
//! (The store could do this itself; until it does, the server does it for the SQLite home.)

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};

/// Interval while a log is growing, and the longest one while it is idle.
const BUSY_EVERY: Duration = Duration::from_millis(20);
const IDLE_EVERY: Duration = Duration::from_millis(500);

struct Log {
    path: PathBuf,
    conn: Option<Connection>,
    due: Instant,
    every: Duration,
    /// Frames in the log after the last checkpoint: unchanged means idle.
    last_frames: i64,
}

pub struct WalCheckpointer {
    logs: Arc<Mutex<Vec<Log>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WalCheckpointer {
    pub fn start() -> WalCheckpointer {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, flag) = (logs.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("allowly-wal".into())
            .spawn(move || run(&shared, &flag))
            .map_err(|err| tracing::warn!(target: "allowly::store", error = %err, "no WAL checkpointer thread"))
            .ok();
        WalCheckpointer { logs, stop, thread }
    }

    /// Starts checkpointing an existing database file.
    pub fn watch(&self, path: PathBuf) {
        let mut logs = self.logs.lock();
        if logs.iter().all(|log| log.path != path) {
            logs.push(Log { path, conn: None, due: Instant::now(), every: BUSY_EVERY, last_frames: -1 });
        }
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(logs: &Mutex<Vec<Log>>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(BUSY_EVERY);
        let now = Instant::now();
        for log in logs.lock().iter_mut().filter(|log| log.due <= now) {
            checkpoint(log);
            log.due = Instant::now() + log.every;
        }
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
        Err(err) => {
            tracing::debug!(target: "allowly::store", error = %err, "WAL checkpoint skipped");
            log.conn = None;
        }
    }
}
