//! The API server's availability as the agent sees it.
//!
//! A node keeps running its pods while the API server is unreachable (stopped, restarting,
//! partitioned away, or failing with 5xx): containers keep running and are restarted by the
//! node on its own, from the pods it last saw. What needs the API server waits for it: every
//! part of the agent reports its calls' outcomes here, and the periodic callers (pod status
//! writes, the Service rules, the Security Profiles Operator pass, the profile labels) skip
//! their calls while [`ApiHealth::due`] says no, so the agent retries with exponential
//! back-off instead of once per pass, and logs one line when the outage starts and one when
//! it ends, instead of one per failed call. The pod watch and the heartbeat keep their own
//! retry timing (client-go's reflector back-off; the lease controller's), and the event
//! writer client-go's `recordToSink` retries.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The first back-off of the periodic callers.
const INITIAL: Duration = Duration::from_secs(1);
/// Their longest back-off (the kubelet's status manager syncs every 10 s,
/// pkg/kubelet/status/status_manager.go `syncPeriod`).
const MAX: Duration = Duration::from_secs(10);

/// How long one call of a periodic caller may take before it counts as failed (so a server
/// that accepts connections but never answers cannot stall the agent's loop).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `e` says that the API server is unreachable or failing, rather than refusing this
/// request: no response at all, or a 5xx or 429 one.
pub fn is_unavailable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 || s.code == 429,
        kube::Error::SerdeError(_) | kube::Error::BuildRequest(_) => false,
        _ => true,
    }
}

/// The error of a call that did not finish within [`CALL_TIMEOUT`].
pub fn timed_out() -> kube::Error {
    kube::Error::Service(
        format!(
            "no response from the API server within {}s",
            CALL_TIMEOUT.as_secs()
        )
        .into(),
    )
}

/// `fut` bounded by [`CALL_TIMEOUT`].
pub async fn bounded<T>(
    fut: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, kube::Error> {
    tokio::time::timeout(CALL_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

#[derive(Debug, Default)]
struct State {
    /// Failed calls since the outage started.
    failures: u32,
    /// When the outage started (the first failed call), `None` while the server answers.
    since: Option<Instant>,
    /// The periodic callers wait until then.
    retry_at: Option<Instant>,
}

/// Shared by every part of one agent.
#[derive(Debug, Clone, Default)]
pub struct ApiHealth(Arc<Mutex<State>>);

impl ApiHealth {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a periodic caller may call the API server now.
    pub fn due(&self) -> bool {
        self.state().retry_at.is_none_or(|t| Instant::now() >= t)
    }

    /// Records a call's outcome; `what` names the call for the log. An error that is not
    /// unavailability (a 4xx refusal) says nothing about the server's health and is ignored.
    pub fn record<T>(&self, what: &str, result: &Result<T, kube::Error>) {
        match result {
            Ok(_) => self.succeeded(),
            Err(e) => self.failed(what, e),
        }
    }

    /// Records a failed call.
    pub fn failed(&self, what: &str, e: &kube::Error) {
        if !is_unavailable(e) {
            return;
        }
        let mut s = self.state();
        s.failures += 1;
        let exp = s.failures.saturating_sub(1).min(16);
        let delay = INITIAL.saturating_mul(1 << exp).min(MAX);
        s.retry_at = Some(Instant::now() + delay);
        if s.since.is_none() {
            s.since = Some(Instant::now());
            tracing::warn!(
                call = what,
                error = %e,
                "the API server is unavailable (unreachable or failing): pods keep running; calls to it wait, with back-off"
            );
        } else {
            tracing::debug!(call = what, error = %e, "the API server is still unavailable");
        }
    }

    /// Records a call that worked: the outage, if any, is over.
    pub fn succeeded(&self) {
        let mut s = self.state();
        if let Some(since) = s.since.take() {
            tracing::info!(
                after_secs = since.elapsed().as_secs(),
                failed_calls = s.failures,
                "the API server is available again"
            );
        }
        s.failures = 0;
        s.retry_at = None;
    }
}

/// An exponential back-off for a loop of its own (the pod watch): `initial`, doubling, at
/// most `max`.
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A back-off starting at `initial`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The wait before the next attempt; the one after it doubles.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// Back to `initial` (an attempt worked).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable() -> kube::Error {
        kube::Error::Service("connection refused".into())
    }

    #[test]
    fn outage_backs_off_and_ends_on_success() {
        let h = ApiHealth::default();
        let down = |h: &ApiHealth| h.state().since.is_some();
        assert!(h.due() && !down(&h));
        h.failed("x", &unreachable());
        assert!(!h.due() && down(&h));
        for _ in 0..20 {
            h.failed("x", &unreachable());
        }
        let wait = h.state().retry_at.unwrap() - Instant::now();
        assert!(wait <= MAX, "{wait:?}");
        h.succeeded();
        assert!(h.due() && !down(&h));
    }

    #[test]
    fn refusals_are_not_outages() {
        let h = ApiHealth::default();
        let forbidden = kube::Error::Api(Box::new(kube::core::Status {
            code: 403,
            ..Default::default()
        }));
        h.failed("x", &forbidden);
        assert!(h.due() && h.state().since.is_none());
        let full = kube::Error::Api(Box::new(kube::core::Status {
            code: 500,
            ..Default::default()
        }));
        h.failed("x", &full);
        assert!(h.state().since.is_some());
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let mut b = Backoff::new(Duration::from_millis(800), Duration::from_secs(30));
        let waits: Vec<u64> = (0..8).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(waits, [800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(800));
    }
}
