//! Kubernetes `Status` objects for failures before a stream starts.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode};

use crate::{BackendError, Body};

/// A `Status` failure response (`{"kind":"Status","apiVersion":"v1",...}`).
pub(crate) fn error(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// The response for a backend failure.
pub(crate) fn backend(err: &BackendError) -> Response<Body> {
    match err {
        BackendError::NotFound(m) => error(StatusCode::NOT_FOUND, "NotFound", m),
        BackendError::BadRequest(m) => error(StatusCode::BAD_REQUEST, "BadRequest", m),
        BackendError::Internal(m) => error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", m),
    }
}

/// Runs a backend call on the blocking pool: its value, or the `Status` response of its failure
/// (a call that panicked is an internal error).
pub(crate) async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
) -> Result<T, Response<Body>> {
    match tokio::task::spawn_blocking(call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(backend(&e)),
        Err(e) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &e.to_string(),
        )),
    }
}

/// `101 Switching Protocols` to a WebSocket speaking `protocol`, with the handshake's
/// `Sec-WebSocket-Accept`.
pub(crate) fn websocket_switch(protocol: &'static str, accept: &str) -> Response<Body> {
    use hyper::header::{
        HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_PROTOCOL, UPGRADE,
    };
    let mut resp = Response::new(http_body_util::Empty::new().boxed());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}
