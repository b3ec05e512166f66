//! kube-apiserver's max-in-flight filter (`--max-requests-inflight`,
//! `--max-mutating-requests-inflight`), following
//! staging/src/k8s.io/apiserver/pkg/server/filters/maxinflight.go `WithMaxInFlightLimit`:
//! at most N non-mutating (`get`, `list`, `watch`) and M mutating requests are served at
//! once; one more is refused at once (no queue) with 429 `TooManyRequests` and
//! `Retry-After: 1`. Long-running requests (watches, exec, attach, logs; see
//! [`requestinfo::is_long_running`]) are not counted, and `system:masters` is never refused
//! ("so powerful that they should always get an answer"). A limit of 0 means no limit.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::User;
use crate::error::ApiError;
use crate::requestinfo::{self, RequestInfo};

/// kube-apiserver's default `--max-requests-inflight`.
pub const DEFAULT_MAX_REQUESTS_INFLIGHT: usize = 400;
/// kube-apiserver's default `--max-mutating-requests-inflight`.
pub const DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT: usize = 200;

/// The two limits.
#[derive(Debug)]
pub struct MaxInFlight {
    non_mutating: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
}

/// A slot held while a request is served (`None`: the request is not counted).
pub type Slot = Option<OwnedSemaphorePermit>;

impl MaxInFlight {
    /// Limits of `non_mutating` and `mutating` requests (0: unlimited).
    pub fn new(non_mutating: usize, mutating: usize) -> MaxInFlight {
        let sem = |n: usize| (n > 0).then(|| Arc::new(Semaphore::new(n)));
        MaxInFlight {
            non_mutating: sem(non_mutating),
            mutating: sem(mutating),
        }
    }

    /// Takes a slot for the request, or refuses it with 429.
    pub fn admit(&self, info: &RequestInfo, user: &User) -> Result<Slot, ApiError> {
        if requestinfo::is_long_running(info) {
            return Ok(None);
        }
        let mutating = !matches!(info.verb.as_str(), "get" | "list" | "watch");
        let sem = if mutating {
            &self.mutating
        } else {
            &self.non_mutating
        };
        let Some(sem) = sem else {
            return Ok(None);
        };
        match sem.clone().try_acquire_owned() {
            Ok(permit) => Ok(Some(permit)),
            Err(_) if user.is_master() => Ok(None),
            Err(_) => Err(ApiError::too_many_requests()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_count_reads_and_writes_apart_and_spare_long_running_requests_and_masters() {
        let limits = MaxInFlight::new(1, 1);
        let node = User::node("n1");
        let get = RequestInfo::new("GET", "/api/v1/namespaces/a/pods/p", None);
        let post = RequestInfo::new("POST", "/api/v1/namespaces/a/pods", None);
        let watch = RequestInfo::new("GET", "/api/v1/pods", Some("watch=1"));
        let exec = RequestInfo::new("POST", "/api/v1/namespaces/a/pods/p/exec", None);
        let read = limits.admit(&get, &node).unwrap();
        assert!(read.is_some());
        let e = limits.admit(&get, &node).unwrap_err();
        assert_eq!(
            (e.code, e.reason, e.message.as_str()),
            (
                429,
                "TooManyRequests",
                "Too many requests, please try again later."
            )
        );
        // Writes have their own limit; long-running requests and masters pass.
        let write = limits.admit(&post, &node).unwrap();
        assert!(write.is_some());
        assert_eq!(limits.admit(&post, &node).unwrap_err().code, 429);
        assert!(limits.admit(&watch, &node).unwrap().is_none());
        assert!(limits.admit(&exec, &node).unwrap().is_none());
        assert!(limits.admit(&get, &User::admin()).unwrap().is_none());
        // A finished request frees its slot.
        drop(read);
        assert!(limits.admit(&get, &node).unwrap().is_some());
        // 0 is no limit.
        let none = MaxInFlight::new(0, 0);
        for _ in 0..3 {
            assert!(none.admit(&post, &node).unwrap().is_none());
        }
    }
}
