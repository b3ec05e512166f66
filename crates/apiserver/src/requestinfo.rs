//! What a request asks for, in the terms authorization, the max-in-flight filter and the audit
//! log use: verb, API group and version, namespace, resource, subresource and name.
//!
//! Follows staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go
//! (`RequestInfoFactory.NewRequestInfo`): `/api/v1/...` and `/apis/GROUP/VERSION/...` are
//! resource requests; the verb comes from the method (`POST` create, `GET` get, `PUT` update,
//! `PATCH` patch, `DELETE` delete), a nameless `GET` is a `list` or (`?watch=1`) a `watch`, a
//! nameless `DELETE` a `deletecollection`; every other path is a non-resource request whose verb
//! is the lower-cased method.

use armorlet_store::FieldSelector;

use crate::http::Query;

/// The parsed request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Whether the path names an API resource (else: discovery, health, version...).
    pub is_resource_request: bool,
    /// The URL path.
    pub path: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`; for a
    /// non-resource request the lower-cased method.
    pub verb: String,
    /// `api` or `apis`.
    pub api_prefix: String,
    /// The API group (`""` for the core group).
    pub api_group: String,
    /// The API version.
    pub api_version: String,
    /// The namespace (`""` for cluster-scoped requests; a namespace's own name for it).
    pub namespace: String,
    /// The resource (plural), e.g. `pods`.
    pub resource: String,
    /// The subresource, e.g. `status`, `exec`.
    pub subresource: String,
    /// The object's name; for a list or watch, the `metadata.name` its field selector
    /// requires, if any.
    pub name: String,
    /// The field selector of a list or watch, as sent.
    pub field_selector: String,
}

/// Namespace subresources (`/api/v1/namespaces/NS/status`), which are not resources of
/// their own.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

impl RequestInfo {
    /// Parses a request's method, path and query.
    pub fn new(method: &str, path: &str, query: Option<&str>) -> RequestInfo {
        let mut info = RequestInfo {
            path: path.to_owned(),
            verb: method.to_ascii_lowercase(),
            ..RequestInfo::default()
        };
        let mut parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
            return info;
        }
        info.api_prefix = parts[0].to_owned();
        parts.remove(0);
        if info.api_prefix == "apis" {
            if parts.len() < 3 {
                return info;
            }
            info.api_group = parts.remove(0).to_owned();
        }
        info.is_resource_request = true;
        info.api_version = parts.remove(0).to_owned();
        info.verb = match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_owned();
        if parts[0] == "namespaces" && parts.len() > 1 {
            info.namespace = parts[1].to_owned();
            if parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts[2]) {
                parts.drain(..2);
            }
        }
        info.resource = parts[0].to_owned();
        if let Some(name) = parts.get(1) {
            info.name = (*name).to_owned();
        }
        if let Some(sub) = parts.get(2) {
            info.subresource = (*sub).to_owned();
        }
        let q = Query::parse(query);
        if info.name.is_empty() && info.verb == "get" {
            // Watch as the handlers read it (`watch=true|1`).
            info.verb = if q.flag("watch") { "watch" } else { "list" }.to_owned();
            info.field_selector = q.get("fieldSelector").unwrap_or("").to_owned();
            if let Some(name) = exact_match(&info.field_selector, "metadata.name") {
                if valid_path_segment(&name) {
                    info.name = name;
                }
            }
        }
        if info.name.is_empty() && info.verb == "delete" {
            info.verb = "deletecollection".into();
        }
        info
    }

    /// The `resource` or `resource/subresource` name rules and messages use.
    pub fn resource_and_subresource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// `resource.group`, as `Status` messages name a resource.
    pub fn qualified_resource(&self) -> String {
        if self.api_group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.api_group)
        }
    }

    /// The value of `field` the field selector requires (`field=value` or `field==value`).
    pub fn field_requires(&self, field: &str) -> Option<String> {
        exact_match(&self.field_selector, field)
    }
}

/// The value `selector` requires `field` to equal (fields.Selector.RequiresExactMatch).
fn exact_match(selector: &str, field: &str) -> Option<String> {
    let parsed = FieldSelector::parse(selector).ok()?;
    parsed
        .requirements
        .into_iter()
        .find(|r| r.field == field && !r.negated)
        .map(|r| r.value)
}

/// apimachinery's path.IsValidPathSegmentName.
fn valid_path_segment(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%'])
}

/// Long-running requests (kube-apiserver's `BasicLongRunningRequestCheck` with the verbs
/// `watch` and `proxy` and the subresources `attach`, `exec`, `proxy`, `log`, `portforward`;
/// cmd/kube-apiserver/app/server.go): they are exempt from the max-in-flight limits.
pub fn is_long_running(info: &RequestInfo) -> bool {
    matches!(info.verb.as_str(), "watch" | "proxy")
        || (info.is_resource_request
            && matches!(
                info.subresource.as_str(),
                "attach" | "exec" | "proxy" | "log" | "portforward"
            ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: &str, path: &str, query: Option<&str>) -> RequestInfo {
        RequestInfo::new(method, path, query)
    }

    #[test]
    fn resource_requests_are_parsed_like_the_apiserver() {
        let i = info("GET", "/api/v1/namespaces/default/pods/web", None);
        assert!(i.is_resource_request);
        assert_eq!(
            (
                i.verb.as_str(),
                i.namespace.as_str(),
                i.resource.as_str(),
                i.name.as_str()
            ),
            ("get", "default", "pods", "web")
        );
        let i = info("PATCH", "/api/v1/namespaces/default/pods/web/status", None);
        assert_eq!(
            (i.verb.as_str(), i.subresource.as_str()),
            ("patch", "status")
        );
        assert_eq!(i.resource_and_subresource(), "pods/status");
        let i = info(
            "GET",
            "/api/v1/pods",
            Some("fieldSelector=spec.nodeName%3Dn1&watch=true"),
        );
        assert_eq!(i.verb, "watch");
        assert_eq!(i.namespace, "");
        assert_eq!(i.field_requires("spec.nodeName").as_deref(), Some("n1"));
        let i = info(
            "GET",
            "/api/v1/namespaces/ns/secrets",
            Some("fieldSelector=metadata.name%3Ds1"),
        );
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("list", "s1"));
        let i = info(
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
            None,
        );
        assert_eq!(
            (
                i.api_group.as_str(),
                i.api_version.as_str(),
                i.qualified_resource().as_str()
            ),
            ("coordination.k8s.io", "v1", "leases.coordination.k8s.io")
        );
        assert_eq!(
            info("DELETE", "/api/v1/namespaces/a/pods", None).verb,
            "deletecollection"
        );
        assert_eq!(
            info("POST", "/api/v1/namespaces/a/pods", None).verb,
            "create"
        );
        // A namespace is named by its own namespace; `status` is its subresource.
        let i = info("PUT", "/api/v1/namespaces/a/status", None);
        assert_eq!(
            (
                i.namespace.as_str(),
                i.resource.as_str(),
                i.name.as_str(),
                i.subresource.as_str()
            ),
            ("a", "namespaces", "a", "status")
        );
        let i = info("GET", "/api/v1/nodes/n1", None);
        assert_eq!((i.resource.as_str(), i.name.as_str()), ("nodes", "n1"));
    }

    #[test]
    fn other_paths_are_non_resource_requests() {
        for p in [
            "/version",
            "/api",
            "/api/v1",
            "/apis/apps/v1",
            "/openapi/v3",
            "/healthz",
        ] {
            let i = info("GET", p, None);
            assert!(!i.is_resource_request, "{p}");
            assert_eq!(i.verb, "get");
        }
        assert_eq!(info("POST", "/version", None).verb, "post");
    }

    #[test]
    fn long_running_requests() {
        assert!(is_long_running(&info(
            "GET",
            "/api/v1/pods",
            Some("watch=1")
        )));
        assert!(is_long_running(&info(
            "POST",
            "/api/v1/namespaces/a/pods/p/exec",
            None
        )));
        assert!(is_long_running(&info(
            "GET",
            "/api/v1/namespaces/a/pods/p/log",
            None
        )));
        assert!(!is_long_running(&info("GET", "/api/v1/pods", None)));
    }
}
