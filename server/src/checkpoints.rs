//! Daily checkpoints (docs/verifying-receipts.md) while the server runs: every so often it issues, in each
//! workspace, the `receipt.checkpoint` receipts of the UTC days that have ended, so evidence exists
//! up to yesterday without anyone running `allowly checkpoints create`.
//!
//! Servers sharing a PostgreSQL database may all try at once: the engine issues a day once (its
//! checkpoint row is unique; the transaction that loses the race runs again and finds it). A day
//! is left alone for a grace period after it ends, so a receipt signed by a server whose clock
//! runs a little behind still falls into a day that has not been checkpointed yet.

use std::sync::Arc;
use std::time::Duration;

use allowly_core::Timestamp;

use crate::backend::Backend;

/// When and how the server issues checkpoints.
#[derive(Clone, Copy, Debug)]
pub struct CheckpointSchedule {
    /// How often to look for ended days (the first look is at start).
    pub every: Duration,
    /// How long after midnight UTC the previous day waits for late receipts.
    pub grace: Duration,
}

impl Default for CheckpointSchedule {
    fn default() -> CheckpointSchedule {
        CheckpointSchedule { every: Duration::from_secs(600), grace: Duration::from_secs(300) }
    }
}

/// Runs forever (the task is dropped with the server); engine work runs on a blocking thread.
pub async fn run(backend: Arc<dyn Backend>, schedule: CheckpointSchedule) {
    let mut ticks = tokio::time::interval(schedule.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = Timestamp::now();
        let since_midnight =
            Duration::from_millis(u64::try_from(now.millis() - now.start_of_day().millis()).unwrap_or(0));
        if since_midnight < schedule.grace {
            continue;
        }
        let backend = backend.clone();
        if tokio::task::spawn_blocking(move || issue_due(backend.as_ref())).await.is_err() {
            tracing::error!(target: "allowly::checkpoints", "the checkpoint pass failed unexpectedly");
        }
    }
}

/// Issues the checkpoints that are due in every workspace; failures are logged and retried on
/// the next pass.
fn issue_due(backend: &dyn Backend) {
    let workspace_ids = match backend.workspace_ids() {
        Ok(ids) => ids,
        Err(err) => {
            tracing::warn!(target: "allowly::checkpoints", error = %err, "cannot list the workspaces");
            return;
        }
    };
    for workspace_id in workspace_ids {
        let issued = backend.workspace(&workspace_id).and_then(|engine| match engine {
            Some(engine) => engine.create_checkpoints(),
            None => Ok(Vec::new()),
        });
        match issued {
            Ok(issued) => {
                for checkpoint in issued {
                    tracing::info!(target: "allowly::checkpoints", workspace = %workspace_id,
                        day = %checkpoint.period_start, receipts = checkpoint.receipt_count,
                        receipt_id = %checkpoint.receipt_id, "daily checkpoint issued");
                }
            }
            Err(err) => {
                tracing::warn!(target: "allowly::checkpoints", workspace = %workspace_id, error = %err,
                    "checkpoints not issued; will retry")
            }
        }
    }
}
