//! The kubelet's container restart back-off: 10 s doubling up to 300 s, reset
//! after the container ran 10 minutes without trouble
//! (pkg/kubelet/kubelet.go `backOffPeriod`/`MaxContainerBackOff`,
//! k8s.io/client-go/util/flowcontrol/backoff.go).

use std::time::{Duration, Instant};

/// Initial back-off.
pub const INITIAL: Duration = Duration::from_secs(10);
/// Maximum back-off.
pub const MAX: Duration = Duration::from_secs(300);
/// A container that ran this long resets its back-off.
pub const RESET_AFTER: Duration = Duration::from_secs(600);

/// One container's back-off entry.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    period: Option<Duration>,
    until: Option<Instant>,
}

impl Backoff {
    /// Whether a restart must wait; the current period when it must.
    pub fn waiting(&self, now: Instant) -> Option<Duration> {
        match (self.until, self.period) {
            (Some(u), Some(p)) if now < u => Some(p),
            _ => None,
        }
    }

    /// Records a failure (a restart happens now): the next restart waits the next period.
    pub fn next(&mut self, now: Instant, ran_for: Option<Duration>) {
        if ran_for.is_some_and(|r| r >= RESET_AFTER) {
            self.period = None;
        }
        let p = match self.period {
            None => INITIAL,
            Some(p) => (p * 2).min(MAX),
        };
        self.period = Some(p);
        self.until = Some(now + p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_cap_and_resets() {
        let mut b = Backoff::default();
        let t = Instant::now();
        assert_eq!(b.waiting(t), None);
        b.next(t, None);
        assert_eq!(b.waiting(t), Some(INITIAL));
        for _ in 0..10 {
            b.next(t, None);
        }
        assert_eq!(b.waiting(t), Some(MAX));
        b.next(t, Some(RESET_AFTER));
        assert_eq!(b.waiting(t), Some(INITIAL));
        assert_eq!(b.waiting(t + MAX), None);
    }
}
