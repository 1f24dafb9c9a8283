//! The daemon's long-running tasks, by name, in one `JoinSet`: a service
//! that ends early is noticed, and shutdown waits for all of them, bounded.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::{Id, JoinSet};
use tokio::time::Instant;

/// What a service task returns when it ends.
pub type ServiceResult = anyhow::Result<()>;

/// The running services.
#[derive(Debug, Default)]
pub struct Services {
    tasks: JoinSet<ServiceResult>,
    names: HashMap<Id, &'static str>,
}

/// How a drain ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Drained {
    /// Services that ended with an error or panicked, with what happened.
    pub failed: Vec<(&'static str, String)>,
    /// Services still running at the deadline, aborted.
    pub aborted: Vec<&'static str>,
}

impl Services {
    /// No services yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `service` as a task named `name`. It must return once the
    /// shutdown token it was given is cancelled.
    pub fn spawn(
        &mut self,
        name: &'static str,
        service: impl Future<Output = ServiceResult> + Send + 'static,
    ) {
        let handle = self.tasks.spawn(service);
        self.names.insert(handle.id(), name);
    }

    /// Waits for the next service to end; `None` when none is left.
    pub async fn next_exit(&mut self) -> Option<(&'static str, ServiceResult)> {
        let joined = self.tasks.join_next_with_id().await?;
        Some(self.name_outcome(joined))
    }

    /// Waits for every service to end, until `deadline`; then aborts the
    /// ones left. The caller has cancelled their shutdown token.
    pub async fn drain(mut self, deadline: Instant) -> Drained {
        let mut failed = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                Ok(None) => break,
                Ok(Some(joined)) => {
                    if let (name, Err(error)) = self.name_outcome(joined) {
                        failed.push((name, format!("{error:#}")));
                    }
                }
                Err(_elapsed) => {
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        let mut aborted: Vec<&'static str> = self.names.values().copied().collect();
        aborted.sort_unstable();
        // Reap the aborted tasks so nothing outlives the drain.
        while self.tasks.join_next().await.is_some() {}
        Drained { failed, aborted }
    }

    fn name_outcome(
        &mut self,
        joined: Result<(Id, ServiceResult), tokio::task::JoinError>,
    ) -> (&'static str, ServiceResult) {
        let (id, result) = match joined {
            Ok((id, result)) => (id, result),
            Err(error) => {
                let id = error.id();
                let what = if error.is_panic() {
                    "panicked"
                } else {
                    "was cancelled"
                };
                (id, Err(anyhow::anyhow!("{what}")))
            }
        };
        let name = self.names.remove(&id).unwrap_or("unnamed");
        (name, result)
    }
}

/// The whole stop on SIGTERM or SIGINT, from the signal to the exit: the
/// calls in progress, the journal's flush and the services all fit in it
/// ([`StopDeadlines`]). The one figure README, the Dockerfile and the
/// compose file state; a container manager must wait at least this long
/// before killing the process.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The stop's deadlines, all cut from one grace (the daemon's is
/// [`SHUTDOWN_GRACE`], or `--shutdown-grace`) counted from the signal:
/// calls in progress may end by themselves for its first three quarters;
/// at two fifths, callers still waiting in a queue keep their place as
/// callbacks (`call::Call::handle_drain`: their goodbye, about 8 s, fits
/// before three quarters with the default grace); calls still up at three
/// quarters are hung up and have until seven eighths to send their BYEs;
/// the journal's flush and the services share what is left, and at the end
/// the services still running are aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopDeadlines {
    /// Waiting callers keep their place (as callbacks) from then on; until
    /// then they are offered agents as usual, in the cluster's order.
    pub places: Instant,
    /// Calls in progress end by themselves until then.
    pub calls: Instant,
    /// The calls hung up at `calls` send their BYEs until then.
    pub byes: Instant,
    /// Everything is stopped by then.
    pub all: Instant,
}

impl StopDeadlines {
    /// The deadlines of a stop signalled at `signal` with `grace`.
    pub fn new(signal: Instant, grace: Duration) -> Self {
        StopDeadlines {
            places: signal + grace * 2 / 5,
            calls: signal + grace * 3 / 4,
            byes: signal + grace * 7 / 8,
            all: signal + grace,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::sync::CancellationToken;

    #[test]
    fn the_stop_deadlines_are_cut_from_the_one_grace_in_order() {
        let signal = Instant::now();
        let stop = StopDeadlines::new(signal, SHUTDOWN_GRACE);
        assert_eq!(stop.places - signal, Duration::from_secs(12));
        assert_eq!(stop.calls - signal, Duration::from_millis(22_500));
        assert_eq!(stop.byes - signal, Duration::from_millis(26_250));
        assert_eq!(stop.all - signal, SHUTDOWN_GRACE);
        assert!(signal < stop.places && stop.places < stop.calls);
        assert!(stop.calls < stop.byes && stop.byes < stop.all);
    }

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_services_that_stop_on_cancel() {
        let shutdown = CancellationToken::new();
        let mut services = Services::new();
        for name in ["a", "b"] {
            let shutdown = shutdown.clone();
            services.spawn(name, async move {
                shutdown.cancelled().await;
                Ok(())
            });
        }
        shutdown.cancel();
        let drained = services.drain(Instant::now() + SHUTDOWN_GRACE).await;
        assert_eq!(
            drained,
            Drained {
                failed: vec![],
                aborted: vec![]
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn drain_aborts_a_service_that_outlives_the_grace_period() {
        let shutdown = CancellationToken::new();
        let mut services = Services::new();
        services.spawn("stubborn", std::future::pending());
        let polite = shutdown.clone();
        services.spawn("polite", async move {
            polite.cancelled().await;
            Err(anyhow::anyhow!("closing failed"))
        });
        shutdown.cancel();
        let start = Instant::now();
        let drained = services.drain(start + SHUTDOWN_GRACE).await;
        assert_eq!(start.elapsed(), SHUTDOWN_GRACE);
        assert_eq!(drained.aborted, vec!["stubborn"]);
        assert_eq!(
            drained.failed,
            vec![("polite", "closing failed".to_string())]
        );
    }

    #[tokio::test]
    async fn next_exit_names_a_service_that_ended_early_or_panicked() {
        let mut services = Services::new();
        services.spawn("quitter", async { Err(anyhow::anyhow!("socket closed")) });
        let (name, result) = services.next_exit().await.unwrap();
        assert_eq!(name, "quitter");
        assert_eq!(result.unwrap_err().to_string(), "socket closed");

        services.spawn("panicker", async { panic!("boom") });
        let (name, result) = services.next_exit().await.unwrap();
        assert_eq!(name, "panicker");
        assert_eq!(result.unwrap_err().to_string(), "panicked");
        assert!(services.next_exit().await.is_none());
    }
}
