//! `GET /containerLogs/{ns}/{pod}/{container}`: the container's CRI log, streamed as
//! `text/plain` with one chunk per read (the kubelet's `getContainerLogs` in
//! `pkg/kubelet/server/server.go`, flushing per write).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::crilog::{self, LogOptions};
use crate::{query_bool, query_get, query_pairs, status, Body, NodeBackend};

/// Parses the kubelet's log query parameters; the error names the bad parameter.
pub fn parse_options(query: Option<&str>) -> Result<(LogOptions, bool), String> {
    let q = query_pairs(query);
    let int = |key: &str| -> Result<Option<i64>, String> {
        query_get(&q, key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("{key}: invalid integer {v:?}"))
            })
            .transpose()
    };
    let non_negative = |key: &str| -> Result<Option<u64>, String> {
        match int(key)? {
            Some(v) if v < 0 => Err(format!("{key}: must be greater than or equal to 0")),
            v => Ok(v.map(|v| v as u64)),
        }
    };
    let tail_lines = non_negative("tailLines")?;
    let limit_bytes = match int("limitBytes")? {
        Some(v) if v < 1 => return Err("limitBytes: must be greater than 0".into()),
        v => v.map(|v| v as u64),
    };
    let since = match (int("sinceSeconds")?, query_get(&q, "sinceTime")) {
        (Some(_), Some(_)) => {
            return Err("at most one of sinceTime or sinceSeconds may be specified".into())
        }
        (Some(s), None) if s < 1 => return Err("sinceSeconds: must be greater than 0".into()),
        (Some(s), None) => Some(OffsetDateTime::now_utc() - Duration::from_secs(s as u64)),
        (None, Some(t)) => Some(
            OffsetDateTime::parse(t, &Rfc3339)
                .map_err(|e| format!("sinceTime: invalid time {t:?}: {e}"))?,
        ),
        (None, None) => None,
    };
    let opts = LogOptions {
        tail_lines,
        since,
        timestamps: query_bool(&q, "timestamps"),
        limit_bytes,
        follow: query_bool(&q, "follow"),
    };
    Ok((opts, query_bool(&q, "previous")))
}

/// Serves one log request.
pub(crate) async fn handle(
    backend: Arc<dyn NodeBackend>,
    ns: &str,
    pod: &str,
    container: &str,
    query: Option<&str>,
) -> Response<Body> {
    let (opts, previous) = match parse_options(query) {
        Ok(o) => o,
        Err(m) => return status::error(StatusCode::BAD_REQUEST, "BadRequest", &m),
    };
    let (ns, pod, container) = (ns.to_string(), pod.to_string(), container.to_string());
    let target =
        match status::blocking(move || backend.log_target(&ns, &pod, &container, previous)).await {
            Ok(t) => t,
            Err(resp) => return resp,
        };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::task::spawn_blocking(move || {
        let running = target.running.clone();
        let result = crilog::read_log(&target.path, &opts, &*running, &mut |chunk| {
            tx.blocking_send(Bytes::from(chunk)).is_ok()
        });
        if let Err(e) = result {
            // A missing file means the container wrote nothing yet: an empty log, as the kubelet.
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %target.path.display(), error = %e, "reading container log failed");
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed());
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        let (o, prev) = parse_options(Some(
            "tailLines=2&timestamps=true&previous=true&follow=true",
        ))
        .unwrap();
        assert_eq!(o.tail_lines, Some(2));
        assert!(o.timestamps && o.follow && prev);
        assert!(parse_options(Some("tailLines=-1"))
            .unwrap_err()
            .contains("tailLines"));
        assert!(parse_options(Some("limitBytes=0"))
            .unwrap_err()
            .contains("limitBytes"));
        assert!(parse_options(Some("sinceTime=yesterday"))
            .unwrap_err()
            .contains("sinceTime"));
        assert!(parse_options(Some("sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z")).is_err());
        assert!(parse_options(Some("sinceSeconds=5"))
            .unwrap()
            .0
            .since
            .is_some());
    }
}
