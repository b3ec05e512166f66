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
