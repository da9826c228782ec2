//! Runs engine calls on blocking threads (`tokio::task::spawn_blocking`), in arrival order.
//!
//! A workspace's store serializes its transactions, so many threads calling into it only queue on
//! its lock (unfairly) and pay a thread wake-up per request. Instead each shard keeps a FIFO of
//! jobs and at most `drainers` blocking tasks that run jobs back to back until the FIFO is empty:
//! under load a drainer stays on CPU, and answers come out in the order requests came in.
//! Workspaces are spread over shards by id, so one tenant's load does not queue behind another's
//! (beyond sharing a shard), and unknown workspace ids cannot make the server allocate queues.
//!
//! Checks are the hot path, so a drainer that meets a check takes the checks queued right behind
//! it for the same workspace too (up to [`MAX_CHECK_GROUP`]) and decides them together
//! ([`Allowly::check_many`]: on SQLite one write transaction and one commit for the group). Each
//! answer is still the one its check alone would have had at that place in the order, and none
//! leaves before its receipt is committed. Under load a group forms by itself: the checks that
//! arrive while one group commits make the next one.

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use allowly_core::model::{CheckRequest, CheckResponse};
use allowly_core::{Allowly, Result as EngineResult};
use parking_lot::Mutex;

const SHARDS: usize = 16;

/// At most this many checks share a transaction: bounds how long the first waits for the last.
pub const MAX_CHECK_GROUP: usize = 64;

enum Job {
    Run(Box<dyn FnOnce() + Send>),
    Check(CheckJob),
}

/// One check waiting in a shard: its workspace's engine, the request, and where its answer goes.
struct CheckJob {
    engine: Arc<Allowly>,
    request: CheckRequest,
    answer: tokio::sync::oneshot::Sender<Result<EngineResult<CheckResponse>, JobFailed>>,
}

struct Shard {
    state: Mutex<ShardState>,
}

#[derive(Default)]
struct ShardState {
    jobs: VecDeque<Job>,
    drainers: usize,
}

/// Why a job gave no answer.
#[derive(Debug)]
pub enum JobFailed {
    /// The job panicked (a bug); the drainer survived it.
    Panicked,
    /// The job was dropped without running (the runtime is shutting down).
    Dropped,
}

pub struct EngineQueue {
    shards: Vec<Arc<Shard>>,
    drainers_per_shard: usize,
    groups: Arc<GroupCounts>,
}

/// How checks were grouped so far (for `/metrics`).
#[derive(Default)]
pub struct GroupCounts {
    /// Transactions that decided checks.
    pub groups: AtomicU64,
    /// Checks they decided.
    pub checks: AtomicU64,
}

impl EngineQueue {
    pub fn new(drainers_per_shard: usize) -> EngineQueue {
        EngineQueue {
            shards: (0..SHARDS).map(|_| Arc::new(Shard { state: Mutex::new(ShardState::default()) })).collect(),
            drainers_per_shard: drainers_per_shard.max(1),
            groups: Arc::default(),
        }
    }

    /// (groups, checks) decided so far: checks per group is how much grouping saved.
    pub fn group_counts(&self) -> (u64, u64) {
        (self.groups.groups.load(Ordering::Relaxed), self.groups.checks.load(Ordering::Relaxed))
    }

    /// Runs `work` on a blocking thread of the shard of `key` (a workspace id) and returns its value.
    pub async fn run<T: Send + 'static>(
        &self,
        key: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, JobFailed> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.push(
            key,
            Job::Run(Box::new(move || {
                // The receiver may be gone (client disconnected): the work is still done, once.
                let _ = tx.send(catch_unwind(AssertUnwindSafe(work)).map_err(|_| JobFailed::Panicked));
            })),
        );
        rx.await.map_err(|_| JobFailed::Dropped)?
    }

    /// Decides `request` on `engine` (the workspace of `key`), grouped with the checks queued
    /// behind it for the same workspace.
    pub async fn check(
        &self,
        key: &str,
        engine: Arc<Allowly>,
        request: CheckRequest,
    ) -> Result<EngineResult<CheckResponse>, JobFailed> {
        let (answer, rx) = tokio::sync::oneshot::channel();
        self.push(key, Job::Check(CheckJob { engine, request, answer }));
        rx.await.map_err(|_| JobFailed::Dropped)?
    }

    fn push(&self, key: &str, job: Job) {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let shard = &self.shards[(hasher.finish() as usize) % self.shards.len()];
        let start_drainer = {
            let mut state = shard.state.lock();
            state.jobs.push_back(job);
            let start = state.drainers < self.drainers_per_shard;
            if start {
                state.drainers += 1;
            }
            start
        };
        if start_drainer {
            let shard = shard.clone();
            let groups = self.groups.clone();
            // The JoinHandle is not needed: every job answers through its own channel.
            drop(tokio::task::spawn_blocking(move || drain(&shard, &groups)));
        }
    }
}

/// Runs the shard's jobs until there are none left.
fn drain(shard: &Shard, groups: &GroupCounts) {
    loop {
        let next = {
            let mut state = shard.state.lock();
            match state.jobs.pop_front() {
                Some(job) => job,
                None => {
                    state.drainers -= 1;
                    return;
                }
            }
        };
        match next {
            Job::Run(work) => work(),
            Job::Check(first) => decide_group(first, shard, groups),
        }
    }
}

/// Decides `first` with the checks for the same workspace queued right behind it, in order.
fn decide_group(first: CheckJob, shard: &Shard, groups: &GroupCounts) {
    let CheckJob { engine, request, answer } = first;
    let mut requests = vec![request];
    let mut answers = vec![answer];
    {
        let mut state = shard.state.lock();
        while requests.len() < MAX_CHECK_GROUP {
            match state.jobs.pop_front() {
                Some(Job::Check(next)) if Arc::ptr_eq(&next.engine, &engine) => {
                    requests.push(next.request);
                    answers.push(next.answer);
                }
                Some(other) => {
                    state.jobs.push_front(other);
                    break;
                }
                None => break,
            }
        }
    }
    groups.groups.fetch_add(1, Ordering::Relaxed);
    groups.checks.fetch_add(requests.len() as u64, Ordering::Relaxed);
    let decided = catch_unwind(AssertUnwindSafe(|| match requests.as_slice() {
        [one] => vec![engine.check(one)],
        group => engine.check_many(group),
    }));
    match decided {
        Ok(decided) => {
            for (answer, decision) in answers.into_iter().zip(decided) {
                // The receiver may be gone (client disconnected): the decision stands, once.
                let _ = answer.send(Ok(decision));
            }
        }
        Err(_) => {
            for answer in answers {
                let _ = answer.send(Err(JobFailed::Panicked));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_every_job_and_survives_panics() {
        let queue = Arc::new(EngineQueue::new(2));
        let mut handles = Vec::new();
        for i in 0..200u64 {
            let queue = queue.clone();
            handles.push(tokio::spawn(async move { queue.run(&format!("ws_{}", i % 3), move || i * 2).await.ok() }));
        }
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.ok().flatten().unwrap_or(0);
        }
        assert_eq!(sum, (0..200u64).map(|i| i * 2).sum::<u64>());
        #[allow(clippy::panic)]
        let failed = queue.run("ws_x", || -> u8 { panic!("a bug") }).await;
        assert!(matches!(failed, Err(JobFailed::Panicked)));
        assert_eq!(queue.run("ws_x", || 7).await.ok(), Some(7), "the shard still works after a panic");
    }
}
