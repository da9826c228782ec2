//! Runs engine calls on blocking threads (`tokio::task::spawn_blocking`), in arrival order.
//!
//! A workspace's store serializes its transactions, so many threads calling into it only queue on
//! its lock (unfairly) and pay a thread wake-up per request. Instead each shard keeps a FIFO of
//! jobs and at most `drainers` blocking tasks that run jobs back to back until the FIFO is empty:
//! under load a drainer stays on CPU, and answers come out in the order requests came in.
//! Workspaces are spread over shards by id, so one tenant's load does not queue behind another's
//! (beyond sharing a shard), and unknown workspace ids cannot make the server allocate queues.

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use parking_lot::Mutex;

type Job = Box<dyn FnOnce() + Send>;

const SHARDS: usize = 16;

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
}

impl EngineQueue {
    pub fn new(drainers_per_shard: usize) -> EngineQueue {
        EngineQueue {
            shards: (0..SHARDS).map(|_| Arc::new(Shard { state: Mutex::new(ShardState::default()) })).collect(),
            drainers_per_shard: drainers_per_shard.max(1),
        }
    }

    /// Runs `work` on a blocking thread of the shard of `key` (a workspace id) and returns its value.
    pub async fn run<T: Send + 'static>(
        &self,
        key: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, JobFailed> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let shard = &self.shards[(hasher.finish() as usize) % self.shards.len()];
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The receiver may be gone (client disconnected): the work is still done, once.
            let _ = tx.send(catch_unwind(AssertUnwindSafe(work)).map_err(|_| JobFailed::Panicked));
        });
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
            // The JoinHandle is not needed: every job answers through its own channel.
            drop(tokio::task::spawn_blocking(move || drain(&shard)));
        }
        rx.await.map_err(|_| JobFailed::Dropped)?
    }
}

/// Runs the shard's jobs until there are none left.
fn drain(shard: &Shard) {
    loop {
        let job = {
            let mut state = shard.state.lock();
            match state.jobs.pop_front() {
                Some(job) => job,
                None => {
                    state.drainers -= 1;
                    return;
                }
            }
        };
        job();
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
