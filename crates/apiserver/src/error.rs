//! The one place where failures become Kubernetes `Status` objects.
//!
//! Reasons and codes follow staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go and
//! staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/types.go (`StatusReason`).

use armorlet_store::StoreError;
use serde_json::{json, Value};

/// A failed request, rendered as a `Status` body with its HTTP code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `StatusReason`, e.g. `NotFound`; empty for none.
    pub reason: &'static str,
    /// Human-readable message, printed by kubectl.
    pub message: String,
    /// `details`, when there are any.
    pub details: Option<Value>,
}

/// One `details.causes` entry of an Invalid error.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, ...
    pub reason: &'static str,
    /// E.g. `Required value` or `Invalid value: "x": ...`.
    pub message: String,
    /// The field path, e.g. `metadata.name`.
    pub field: String,
}

fn split_qualified(qualified: &str) -> (String, String) {
    match qualified.split_once('.') {
        Some((res, group)) => (res.to_string(), group.to_string()),
        None => (qualified.to_string(), String::new()),
    }
}

fn details(qualified: &str, name: &str) -> Value {
    let (kind, group) = split_qualified(qualified);
    let mut d = json!({"name": name, "kind": kind});
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    d
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 Forbidden for `qualified` `name` (errors.go `NewForbidden`: without a name the
    /// message names the resource alone, without a resource it is `forbidden: <why>`).
    pub fn forbidden(qualified: &str, name: &str, why: &str) -> Self {
        let message = match (qualified, name) {
            ("", _) => format!("forbidden: {why}"),
            (_, "") => format!("{qualified} is forbidden: {why}"),
            _ => format!("{qualified} \"{name}\" is forbidden: {why}"),
        };
        let mut e = Self::new(403, "Forbidden", message);
        let (kind, group) = split_qualified(qualified);
        let mut d = json!({});
        for (k, v) in [
            ("name", name),
            ("group", group.as_str()),
            ("kind", kind.as_str()),
        ] {
            if !v.is_empty() {
                d[k] = json!(v);
            }
        }
        e.details = Some(d);
        e
    }

    /// 429 TooManyRequests from the max-in-flight filter
    /// (staging/src/k8s.io/apiserver/pkg/server/filters/maxinflight.go `tooManyRequests`,
    /// which also sets `Retry-After: 1`; see [`crate::http::error`]).
    pub fn too_many_requests() -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        );
        e.details = Some(json!({"retryAfterSeconds": 1}));
        e
    }

    /// 404 NotFound for `qualified` `name`.
    pub fn not_found(qualified: &str, name: &str) -> Self {
        let mut e = Self::new(404, "NotFound", format!("{qualified} \"{name}\" not found"));
        e.details = Some(details(qualified, name));
        e
    }

    /// 404 for a path that names nothing.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    /// 410 Expired.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    /// 422 Invalid with field causes; `kind` is the Kind (`Pod`).
    pub fn invalid(kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let list: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let message = if list.len() == 1 {
            format!("{kind} \"{name}\" is invalid: {}", list[0])
        } else {
            format!("{kind} \"{name}\" is invalid: [{}]", list.join(", "))
        };
        let causes: Vec<Value> = causes
            .into_iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        Self {
            code: 422,
            reason: "Invalid",
            message,
            details: Some(json!({"name": name, "kind": kind, "causes": causes})),
        }
    }

    /// 409 Conflict of a server-side apply (`errors.NewApplyConflict`): the causes name each
    /// conflicting field and its manager; details carry nothing else.
    pub fn apply_conflict(message: String, causes: Vec<Cause>) -> Self {
        let causes: Vec<Value> = causes
            .into_iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        Self {
            code: 409,
            reason: "Conflict",
            message,
            details: Some(json!({"causes": causes})),
        }
    }

    /// 422 Invalid without field causes (kubectl prints `The request is invalid: ...`).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }

    /// 500 InternalError, always with a message.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        match e {
            StoreError::NotFound { resource, name } => Self::not_found(&resource, &name),
            StoreError::AlreadyExists { resource, name } => {
                let mut e = Self::new(409, "AlreadyExists", message);
                e.details = Some(details(&resource, &name));
                e
            }
            StoreError::Conflict { resource, name, .. } => {
                let mut e = Self::new(409, "Conflict", message);
                e.details = Some(details(&resource, &name));
                e
            }
            StoreError::Expired { .. } => Self::expired(message),
            StoreError::BadRequest { .. } | StoreError::Selector(_) => Self::bad_request(message),
            StoreError::Sqlite(_) | StoreError::Json(_) | StoreError::DataDir { .. } => {
                Self::internal(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_status_matches_the_kubernetes_shape() {
        let s = ApiError::from(StoreError::NotFound {
            resource: "pods".into(),
            name: "x".into(),
        })
        .to_status();
        assert_eq!(
            s,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                   "message":"pods \"x\" not found","reason":"NotFound",
                   "details":{"name":"x","kind":"pods"},"code":404})
        );
        let s = ApiError::not_found("daemonsets.apps", "d").to_status();
        assert_eq!(
            s["details"],
            json!({"name":"d","kind":"daemonsets","group":"apps"})
        );
    }

    #[test]
    fn forbidden_names_the_object_when_there_is_one() {
        let e = ApiError::forbidden("leases.coordination.k8s.io", "n2", "why");
        assert_eq!(
            e.message,
            "leases.coordination.k8s.io \"n2\" is forbidden: why"
        );
        assert_eq!(
            e.to_status()["details"],
            json!({"name": "n2", "group": "coordination.k8s.io", "kind": "leases"})
        );
        assert_eq!(
            ApiError::forbidden("pods", "", "why").message,
            "pods is forbidden: why"
        );
        assert_eq!(ApiError::forbidden("", "", "why").message, "forbidden: why");
        let e = ApiError::too_many_requests();
        assert_eq!((e.code, e.reason), (429, "TooManyRequests"));
        assert_eq!(e.to_status()["details"], json!({"retryAfterSeconds": 1}));
    }

    #[test]
    fn invalid_lists_causes_like_the_apiserver() {
        let e = ApiError::invalid(
            "Pod",
            "bad",
            vec![Cause {
                reason: "FieldValueRequired",
                message: "Required value".into(),
                field: "spec.containers[0].image".into(),
            }],
        );
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "Pod \"bad\" is invalid: spec.containers[0].image: Required value"
        );
        assert_eq!(
            e.to_status()["details"]["causes"][0]["field"],
            "spec.containers[0].image"
        );
    }
}
