//! Deleting expired rows: a [`Sweeper`] task the application starts and
//! stops, or a store's `delete_expired` from a cron job. Loads never
//! return an expired row either way; sweeping only reclaims the space.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use http_sessions_core::store::StoreError;
use tokio::task::JoinHandle;

/// How often a [`Sweeper`] sweeps unless told otherwise.
pub const DEFAULT_SWEEP_EVERY: Duration = Duration::from_secs(60);

/// How many rows one statement of a sweep deletes at most: small enough
/// that no sweep holds locks for long, on any database.
pub const DEFAULT_SWEEP_BATCH: u32 = 1_000;

/// A store whose expired rows can be deleted.
#[async_trait]
pub trait Sweep: Send + Sync + 'static {
    /// Deletes up to `batch` expired rows; how many it deleted. Rows
    /// another instance is deleting at the same time are skipped, not
    /// waited for.
    ///
    /// # Errors
    ///
    /// The database's, as [`StoreError`]s.
    async fn delete_expired_batch(&self, batch: u32) -> Result<u64, StoreError>;

    /// Deletes every expired row, `batch` at a time; how many.
    ///
    /// # Errors
    ///
    /// As [`delete_expired_batch`](Self::delete_expired_batch); the rows
    /// deleted before the error stay deleted.
    async fn delete_expired_in(&self, batch: u32) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = self.delete_expired_batch(batch).await?;
            total += deleted;
            if deleted < u64::from(batch) {
                return Ok(total);
            }
        }
    }
}

/// A background task deleting a store's expired rows, every
/// [`DEFAULT_SWEEP_EVERY`] unless told otherwise. Stopped by
/// [`stop`](Self::stop) or when dropped. Several instances of an
/// application may each run one: a batch skips the rows another is
/// deleting.
pub struct Sweeper {
    task: JoinHandle<()>,
}

impl Sweeper {
    /// Starts sweeping `store` every `every`, on the current Tokio runtime.
    /// A failed sweep is logged and tried again at the next tick.
    pub fn start<S: Sweep>(store: S, every: Duration) -> Self {
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match store.delete_expired_in(DEFAULT_SWEEP_BATCH).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::debug!(deleted, "deleted expired sessions"),
                    Err(error) => {
                        tracing::warn!(%error, "could not delete expired sessions; trying again later");
                    }
                }
            }
        });
        Self { task }
    }

    /// Stops the task; a batch under way is abandoned (its transaction
    /// rolls back).
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for Sweeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sweeper")
            .field("running", &!self.task.is_finished())
            .finish()
    }
}
