//! Request routing and the REST verbs over the store.

use std::sync::Arc;
use std::time::Duration;

use armorlet_store::{
    time, DeleteOptions, DeleteOutcome, FieldSelector, LabelSelector, ListOptions, Store,
    StoreError, WriteOptions,
};
use bytes::Bytes;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, Response};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::audit;
use crate::auth::User;
use crate::authz;
use crate::body::Body;
use crate::convert;
use crate::crd::{self, FieldValidation};
use crate::defaults;
use crate::discovery;
use crate::error::ApiError;
use crate::http::{self, Query};
use crate::openapi;
use crate::patch::{self, PatchType};
use crate::registry::{self, ResourceDef};
use crate::requestinfo::RequestInfo;
use crate::table::{self, IncludeObject};

/// What every request handler shares.
pub struct State {
    /// The object store.
    pub store: Store,
    /// The admin and node bearer tokens.
    pub authenticator: crate::auth::Authenticator,
    /// The audit log of API writes.
    pub audit: Arc<audit::AuditLog>,
    /// `--max-requests-inflight` and `--max-mutating-requests-inflight`.
    pub inflight: crate::inflight::MaxInFlight,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Flips to true when the server shuts down; ends watches.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Serialises service IP and port allocation with the create that records it.
    pub allocation: std::sync::Mutex<()>,
    /// The emulated release for pod confinement admission on create.
    pub emulated_version: armorlet_confinement::EmulatedVersion,
    /// The served resources: the release's built-in ones and the custom ones.
    pub registry: registry::Registry,
    /// The `AppArmor` feature gate for pod validation.
    pub apparmor_feature_gate: bool,
    /// `--service-cluster-ip-range` and `--service-node-port-range`.
    pub service_ranges: crate::ServiceRanges,
    /// TLS client settings (with the kubelet client certificate) for node APIs.
    pub kubelet_client: Arc<tokio_rustls::rustls::ClientConfig>,
    /// The cluster CA (PEM), published as the `kube-root-ca.crt` ConfigMap.
    pub ca_pem: String,
    /// The PodSecurityPolicy admission plugin is enabled.
    pub pod_security_policy: bool,
    /// Wakes the controller pass (scheduler, DaemonSets, endpoints) before its next tick.
    pub schedule_soon: tokio::sync::Notify,
    /// Requests' store work running at once on the blocking pool (see [`State::blocking`]).
    pub blocking_slots: tokio::sync::Semaphore,
}

/// How many requests do their store work at once (on the blocking pool); the others wait
/// their turn, in arrival order, as futures. The store serialises its SQLite work anyway, so
/// more threads bring no throughput: under a burst they only added a thread each (tokio's pool
/// grows to 512), and with it the memory of its stack and malloc arena, which stays after the
/// burst (the load test saw 15 threads become 517 and RSS 33 → 110 MiB in 15 s at 1,000
/// requests/s).
pub const BLOCKING_REQUESTS: usize = 16;

impl State {
    /// Runs `f` (store work of a request) on the blocking pool once one of the
    /// [`BLOCKING_REQUESTS`] slots is free; slots are handed out first come, first served.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let _slot = self
            .blocking_slots
            .acquire()
            .await
            .map_err(|e| ApiError::internal(format!("request handler failed: {e}")))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ApiError::internal(format!("request handler failed: {e}")))
    }
}

impl State {
    /// The Node authorizer reads nodes and pods through selectors (`AuthorizeNodeWithSelectors`,
    /// on by default from 1.32).
    pub fn authorize_node_with_selectors(&self) -> bool {
        self.emulated_version
            .has(armorlet_confinement::Switch::AuthorizeNodeWithSelectors)
    }
}

type Result<T> = std::result::Result<T, ApiError>;

/// Paths readable without credentials, like kube-apiserver's `system:public-info-viewer` role.
fn is_public(path: &str) -> bool {
    matches!(path, "/version" | "/healthz" | "/livez" | "/readyz")
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

/// Handles one request from `peer`; never fails (errors become `Status` responses).
///
/// The filters run in kube-apiserver's order (server/config.go `DefaultBuildHandlerChain`):
/// authentication, audit, max-in-flight, authorization, then the handler with admission.
pub async fn handle(
    state: Arc<State>,
    req: Request<hyper::body::Incoming>,
    peer: std::net::SocketAddr,
) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let info = RequestInfo::new(method.as_str(), &path, req.uri().query());
    let audit_id = uuid::Uuid::new_v4().to_string();
    let mut record = audit::is_audited(&info).then(|| {
        let uri = req
            .uri()
            .path_and_query()
            .map_or_else(|| path.clone(), |p| p.as_str().to_owned());
        let agent = req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        audit::Record::begin(
            state.audit.clone(),
            audit_id.clone(),
            &info,
            uri,
            agent,
            peer,
        )
    });
    let (mut resp, error) = match serve(&state, req, &info, &mut record).await {
        Ok(r) => (r, None),
        Err(e) => (http::error(&e), Some(e)),
    };
    // The event is queued before the response goes out (see `audit`); exec and attach
    // streams took theirs along and log it when they end.
    if let Some(r) = record {
        let code = resp.status().as_u16();
        let error = error.or_else(|| match resp.body() {
            Body::Full(Some(b)) if code >= 400 => audit::error_of_body(code, b),
            _ => None,
        });
        r.finish(code, error.as_ref());
    }
    if let Ok(v) = HeaderValue::from_str(&audit_id) {
        resp.headers_mut().insert("audit-id", v);
    }
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    resp
}

/// The request's user: the bearer token's, or anonymous on a public path.
fn authenticate(state: &State, req: &Request<hyper::body::Incoming>) -> Result<User> {
    match req.headers().get(AUTHORIZATION) {
        None if is_public(req.uri().path()) => Ok(User::anonymous()),
        None => Err(ApiError::unauthorized()),
        Some(h) => {
            let token = h
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .unwrap_or("");
            state
                .authenticator
                .authenticate(token)
                .ok_or_else(ApiError::unauthorized)
        }
    }
}

/// Authorization (see [`authz`]); the decision goes into the audit event. A node's reads of
/// objects related through pods ask the store, on the blocking pool.
async fn authorize(
    state: &Arc<State>,
    user: &User,
    info: &RequestInfo,
    record: &mut Option<audit::Record>,
) -> Result<()> {
    let selectors = state.authorize_node_with_selectors();
    let needs_store = info.api_group.is_empty()
        && matches!(
            info.resource.as_str(),
            "secrets" | "configmaps" | "persistentvolumeclaims" | "serviceaccounts" | "pods"
        );
    let decided = if user.is_master() {
        Ok(())
    } else if needs_store {
        let (st, u, i) = (state.clone(), user.clone(), info.clone());
        state
            .blocking(move || authz::authorize(&u, &i, selectors, &*st))
            .await?
    } else {
        authz::authorize(user, info, selectors, &**state)
    };
    let (decision, result) = match decided {
        Ok(()) => (("allow", String::new()), Ok(())),
        Err((e, reason)) => (("forbid", reason), Err(e)),
    };
    if let Some(r) = record.as_mut() {
        r.decision = Some(decision);
    }
    result
}

/// Reads the body, refusing more than `max_body_bytes`.
///
/// An oversized body is still read and discarded up to [`DRAIN_CAP`] before the 413 goes out:
/// closing a socket with unread data makes the kernel send a reset, which can destroy the
/// response before the client reads it (Go's net/http drains for the same reason).
async fn read_body(state: &State, req: Request<hyper::body::Incoming>) -> Result<Bytes> {
    use http_body_util::BodyExt;
    let limit = state.max_body_bytes;
    let mut body = req.into_body();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("error reading request body: {e}")))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        seen += data.len();
        if seen > limit.saturating_add(DRAIN_CAP) {
            break;
        }
        if seen <= limit {
            buf.extend_from_slice(data);
        }
    }
    if seen > limit {
        return Err(ApiError::too_large(limit));
    }
    Ok(buf.freeze())
}

/// How much of an oversized body is read and thrown away before answering 413.
const DRAIN_CAP: usize = 16 * 1024 * 1024;

/// The parts of a request the verbs need, with the body already read.
struct Call {
    /// Who makes it (NodeRestriction admission restricts nodes).
    user: User,
    method: Method,
    query: Query,
    accept: String,
    content_type: String,
    body: Bytes,
    host: String,
    /// The User-Agent, the default field manager.
    user_agent: String,
    /// Audit annotations added by admission (the `PodSecurity` plugin's), for the request's
    /// audit event.
    audit: std::sync::Arc<std::sync::Mutex<crate::podsecurity::AuditAnnotations>>,
}

impl Call {
    /// Adds admission's audit annotations to the request's audit event.
    fn annotate(&self, annotations: crate::podsecurity::AuditAnnotations) {
        if annotations.is_empty() {
            return;
        }
        self.audit
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(annotations);
    }
}

async fn serve(
    state: &Arc<State>,
    req: Request<hyper::body::Incoming>,
    info: &RequestInfo,
    record: &mut Option<audit::Record>,
) -> Result<Response<Body>> {
    let user = authenticate(state, &req)?;
    if let Some(r) = record.as_mut() {
        r.user = Some(user.clone());
    }
    // Held until the response is built.
    let _slot = state.inflight.admit(info, &user)?;
    // Anonymous requests reach only the public paths (see `authenticate`).
    if user != User::anonymous() {
        authorize(state, &user, info, record).await?;
    }
    let path = req.uri().path().to_string();
    if let Some((ns, name, sub)) = node_subresource(&path) {
        return crate::nodeproxy::handle(
            state.clone(),
            state.kubelet_client.clone(),
            req,
            ns,
            name,
            sub,
            record,
        )
        .await;
    }
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (accept, content_type, host) = (header(ACCEPT), header(CONTENT_TYPE), header(HOST));
    let user_agent = header(USER_AGENT);
    let method = req.method().clone();
    let query = Query::parse(req.uri().query());
    let body = read_body(state, req).await?;
    // Typed clients (kubectl create namespace/configmap/secret, run) send protobuf.
    let base_type = content_type.split(';').next().unwrap_or("").trim();
    let (body, content_type) =
        if !body.is_empty() && base_type == "application/vnd.kubernetes.protobuf" {
            let json = crate::protobuf::decode(&body).map_err(|e| {
                ApiError::unsupported_media_type(format!(
                    "the body of the request could not be decoded as protobuf: {e}"
                ))
            })?;
            (
                Bytes::from(json.to_string()),
                "application/json".to_string(),
            )
        } else {
            (body, content_type)
        };
    if let Some(r) = record.as_mut() {
        if info.verb == "create" && info.name.is_empty() {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                r.name_from_object(meta_str(&v, "name"));
            }
        }
    }
    let audit_annotations = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let call = Call {
        user,
        method,
        query,
        accept,
        content_type,
        body,
        host,
        user_agent,
        audit: audit_annotations.clone(),
    };
    let result = route(state, call, &path).await;
    if let Some(r) = record.as_mut() {
        r.annotations.extend(std::mem::take(
            &mut *audit_annotations.lock().unwrap_or_else(|p| p.into_inner()),
        ));
    }
    result
}

/// Routes a request whose body is read to discovery, the resource verbs or a subresource.
async fn route(state: &Arc<State>, call: Call, path: &str) -> Result<Response<Body>> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let get_only = |r: Response<Body>| {
        if call.method == Method::GET {
            Ok(r)
        } else {
            Err(ApiError::method_not_allowed(call.method.as_str()))
        }
    };
    let aggregated = discovery::aggregated_version(&call.accept);
    // v2beta1 has v2's shape (apidiscovery/v2beta1/types.go).
    let aggregated_doc = |core: bool, version: &str| {
        let mut doc = discovery::aggregated(core, &state.registry);
        doc["apiVersion"] = json!(format!("apidiscovery.k8s.io/{version}"));
        http::response(
            200,
            &discovery::aggregated_content_type(version),
            doc.to_string(),
        )
    };
    match segs.as_slice() {
        ["version"] => get_only(http::json(200, &discovery::version(state.emulated_version))),
        ["healthz" | "livez" | "readyz", ..] => {
            get_only(http::response(200, "text/plain; charset=utf-8", "ok"))
        }
        ["api"] if aggregated.is_some() => {
            get_only(aggregated_doc(true, aggregated.unwrap_or("v2")))
        }
        ["apis"] if aggregated.is_some() => {
            get_only(aggregated_doc(false, aggregated.unwrap_or("v2")))
        }
        ["api"] => get_only(http::json(200, &discovery::api_versions(&call.host))),
        ["apis"] => get_only(http::json(200, &discovery::api_group_list(&state.registry))),
        ["api", "v1"] => get_only(http::json(
            200,
            &discovery::resource_list("", "v1", &state.registry),
        )),
        ["apis", g] => match discovery::group(g, &state.registry) {
            Some(v) => get_only(http::json(200, &v)),
            None => Err(ApiError::no_route()),
        },
        ["apis", g, v] if state.registry.has_group_version(g, v) => get_only(http::json(
            200,
            &discovery::resource_list(g, v, &state.registry),
        )),
        ["openapi", "v3"] => get_only(http::json(200, &openapi::root(&state.registry))),
        ["openapi", "v3", "api", v] => get_only(openapi_doc(state, &call, "", v).await?),
        ["openapi", "v3", "apis", g, v] => get_only(openapi_doc(state, &call, g, v).await?),
        ["api", "v1", "namespaces", ns, "pods", name, "binding"] if call.method == Method::POST => {
            binding(state, call, ns, name).await
        }
        ["api", "v1", rest @ ..] => in_blocking(state, call, "", "v1", rest).await,
        ["apis", g, v, rest @ ..] => in_blocking(state, call, g, v, rest).await,
        _ => Err(ApiError::no_route()),
    }
}

/// One group/version's OpenAPI v3 document, as kube-openapi's handler3 `HandleGroupVersion`
/// serves it: with the current `hash` it is immutable (`Cache-Control: public, immutable`,
/// `Expires` a year on), with another it is a 301 to the current URL.
async fn openapi_doc(state: &Arc<State>, call: &Call, g: &str, v: &str) -> Result<Response<Body>> {
    let (st, g2, v2) = (state.clone(), g.to_string(), v.to_string());
    // A first request may decompress and filter the document: off the async workers.
    let doc = tokio::task::spawn_blocking(move || openapi::document(&g2, &v2, &st.registry))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(ApiError::no_route)?;
    let etag = HeaderValue::from_str(&format!("\"{}\"", doc.hash)).ok();
    let mut r = match call.query.get("hash") {
        Some(h) if !h.is_empty() && h != doc.hash => {
            let url = format!("/openapi/v3/{}?hash={}", openapi::gv_path(g, v), doc.hash);
            let mut r = http::response(301, "text/html; charset=utf-8", "");
            if let Ok(l) = HeaderValue::from_str(&url) {
                r.headers_mut().insert(hyper::header::LOCATION, l);
            }
            r
        }
        Some(h) if !h.is_empty() => {
            let mut r = http::response(200, "application/json", doc.bytes.clone());
            let expires = openapi::expires_in_a_year();
            let h = r.headers_mut();
            h.insert(
                hyper::header::CACHE_CONTROL,
                HeaderValue::from_static("public, immutable"),
            );
            if let Ok(e) = HeaderValue::from_str(&expires) {
                h.insert(hyper::header::EXPIRES, e);
            }
            r
        }
        _ => http::response(200, "application/json", doc.bytes.clone()),
    };
    r.headers_mut()
        .insert(hyper::header::VARY, HeaderValue::from_static("Accept"));
    if let Some(e) = etag {
        r.headers_mut().insert(hyper::header::ETAG, e);
    }
    Ok(r)
}

/// `POST pods/{name}/binding`: `{"kind":"Binding","target":{"name":NODE}}`; answers `201` with a
/// Success Status as kube-apiserver's `BindingREST.Create`.
async fn binding(state: &Arc<State>, call: Call, ns: &str, name: &str) -> Result<Response<Body>> {
    let body = parse_json(&call.body)?;
    let node = body["target"]["name"].as_str().unwrap_or("").to_string();
    let (st, ns, name) = (state.clone(), ns.to_string(), name.to_string());
    state
        .blocking(move || crate::scheduler::bind(&st, &ns, &name, &node))
        .await??;
    Ok(http::json(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// `/api/v1/namespaces/{ns}/pods/{name}/{log|exec|attach|portforward}`: served by
/// [`crate::nodeproxy`], which needs the raw request (exec/attach/portforward upgrade the
/// connection).
fn node_subresource(path: &str) -> Option<(String, String, crate::nodeproxy::Sub)> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["api", "v1", "namespaces", ns, "pods", name, sub] => {
            crate::nodeproxy::Sub::parse(sub).map(|s| (ns.to_string(), name.to_string(), s))
        }
        _ => None,
    }
}

/// Where a resource request points.
struct Target {
    def: Arc<ResourceDef>,
    namespace: String,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_target(
    group: &str,
    version: &str,
    rest: &[&str],
    served: &registry::Registry,
) -> Result<Target> {
    let find = |plural: &str| served.find(group, version, plural);
    let namespaced =
        rest.len() >= 3 && rest[0] == "namespaces" && find(rest[2]).is_some_and(|d| d.namespaced);
    let (def, namespace, tail) = if namespaced {
        let def = find(rest[2]).ok_or_else(ApiError::no_route)?;
        (def, rest[1].to_string(), &rest[3..])
    } else {
        let def = rest
            .first()
            .and_then(|r| find(r))
            .ok_or_else(ApiError::no_route)?;
        if def.namespaced && rest.len() > 1 {
            return Err(ApiError::no_route());
        }
        (def, String::new(), &rest[1..])
    };
    if tail.len() > 2 {
        return Err(ApiError::no_route());
    }
    let sub = tail.get(1).map(|s| s.to_string());
    match sub.as_deref() {
        None => {}
        Some("status") if def.has_status => {}
        Some("finalize") if def.plural == "namespaces" && def.group.is_empty() => {}
        Some(_) => return Err(ApiError::no_route()),
    }
    Ok(Target {
        def,
        namespace,
        name: tail.first().map(|s| s.to_string()),
        sub,
    })
}

/// Runs a resource request on the blocking pool: store calls wait for SQLite (and its fsync), which
/// must not stall the async workers that carry watches and other connections.
async fn in_blocking(
    state: &Arc<State>,
    call: Call,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Response<Body>> {
    let st = state.clone();
    let (group, version) = (group.to_string(), version.to_string());
    let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
    state
        .blocking(move || {
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            resource(&st, &call, &group, &version, &rest)
        })
        .await?
}

fn resource(
    state: &Arc<State>,
    call: &Call,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Response<Body>> {
    let t = parse_target(group, version, rest, &state.registry)?;
    if t.def.is(CRD_GROUP, "customresourcedefinitions") && call.method != Method::GET {
        // Definitions change what is served: the registry follows every write, and a
        // definition that is gone takes its objects with it.
        let before = state
            .store
            .list(&t.def.gvr(), None, &ListOptions::default())?
            .items;
        let resp = serve_resource(state, call, &t);
        crd::after_change(&state.registry, &state.store, &before)?;
        return resp;
    }
    serve_resource(state, call, &t)
}

fn serve_resource(state: &Arc<State>, call: &Call, t: &Target) -> Result<Response<Body>> {
    let resp = match (&call.method, t.name.is_some()) {
        (&Method::GET, false) if call.query.flag("watch") => watch(state, call, t),
        (&Method::GET, false) => list(state, call, t),
        (&Method::GET, true) => get(state, call, t),
        (&Method::POST, false) if !(t.def.namespaced && t.namespace.is_empty()) => {
            create(state, call, t)
        }
        (&Method::PUT, true) => update(state, call, t),
        (&Method::PATCH, true) => patch_item(state, call, t),
        (&Method::DELETE, true) => delete(state, call, t),
        (&Method::DELETE, false) => delete_collection(state, call, t),
        (m, _) => Err(ApiError::method_not_allowed(m.as_str())),
    }?;
    // kube-apiserver warns on every use of a deprecated API version
    // (k8s.io/apiserver/pkg/endpoints/deprecation: "%s is deprecated in v%d.%d+, unavailable
    // in v%d.%d+").
    Ok(if t.def.group == "policy" && t.def.version == "v1beta1" {
        with_warnings(
            resp,
            &[
                "policy/v1beta1 PodSecurityPolicy is deprecated in v1.21+, unavailable in v1.25+"
                    .into(),
            ],
        )
    } else {
        resp
    })
}

fn parse_json(body: &Bytes) -> Result<Value> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body could not be decoded as JSON: {e}"
        ))
    })?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(v)
}

fn meta_str<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Checks or fills `apiVersion` and `kind` against the URL's resource.
fn check_type_meta(def: &ResourceDef, obj: &mut Value) -> Result<()> {
    let want = def.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(av) if !av.is_empty() && av != want => {
            return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({want})"
        )))
        }
        _ => obj["apiVersion"] = json!(want),
    }
    match obj.get("kind").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k != def.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                def.kind
            )))
        }
        _ => obj["kind"] = json!(def.kind),
    }
    Ok(())
}

fn check_namespace(t: &Target, obj: &mut Value) -> Result<()> {
    if !t.def.namespaced {
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("namespace");
        }
        return Ok(());
    }
    let in_body = meta_str(obj, "namespace");
    if !in_body.is_empty() && in_body != t.namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn dry_run(call: &Call) -> bool {
    call.query.all("dryRun").contains(&"All")
}

fn write_opts(def: &ResourceDef, dry: bool) -> WriteOptions {
    WriteOptions {
        tracks_generation: def.tracks_generation,
        dry_run: dry,
    }
}

fn include(call: &Call) -> IncludeObject {
    IncludeObject::parse(call.query.get("includeObject"))
}

fn object_response(code: u16, call: &Call, def: &ResourceDef, obj: &Value) -> Response<Body> {
    let obj = &convert::from_storage(def, obj.clone());
    if http::wants_table(&call.accept) {
        let rv = Some(meta_str(obj, "resourceVersion").to_string());
        http::json(
            code,
            &table::table(def, std::slice::from_ref(obj), rv, None, include(call)),
        )
    } else {
        http::json(code, obj)
    }
}

fn get(state: &State, call: &Call, t: &Target) -> Result<Response<Body>> {
    let name = t.name.as_deref().unwrap_or("");
    let obj = state.store.get(&t.def.gvr(), &t.namespace, name)?;
    Ok(object_response(200, call, &t.def, &obj))
}

fn selectors(call: &Call, def: &ResourceDef) -> Result<(LabelSelector, FieldSelector)> {
    let labels = LabelSelector::parse(call.query.get("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut fields = FieldSelector::parse(call.query.get("fieldSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    for r in &mut fields.requirements {
        let known = r.field == "metadata.name"
            || r.field == "metadata.namespace"
            || def.field_labels.contains(&r.field);
        if !known {
            return Err(ApiError::bad_request(format!(
                "field label not supported: {}",
                r.field
            )));
        }
        // Core events select on `source` meaning `source.component`.
        if def.plural == "events" && def.group.is_empty() && r.field == "source" {
            r.field = "source.component".into();
        }
        r.field = convert::field_label(def, &r.field);
    }
    Ok((labels, fields))
}

fn namespace_filter(t: &Target) -> Option<&str> {
    (t.def.namespaced && !t.namespace.is_empty()).then_some(t.namespace.as_str())
}

/// An integer query parameter as kube-apiserver converts one
/// (`runtime.Convert_Slice_string_To_int64`): a 400 with Go's `strconv.ParseInt` error when it
/// is not a 64-bit integer.
fn int_param(call: &Call, key: &str) -> Result<Option<i64>> {
    match call.query.get(key) {
        None | Some("") => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|e| {
            let why = match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    "value out of range"
                }
                _ => "invalid syntax",
            };
            ApiError::bad_request(format!("strconv.ParseInt: parsing {s:?}: {why}"))
        }),
    }
}

fn list(state: &State, call: &Call, t: &Target) -> Result<Response<Body>> {
    let (labels, fields) = selectors(call, &t.def)?;
    // kube-apiserver: zero or negative means no limit.
    let limit = int_param(call, "limit")?
        .filter(|l| *l > 0)
        .map(|l| usize::try_from(l).unwrap_or(usize::MAX));
    let result = state.store.list(
        &t.def.gvr(),
        namespace_filter(t),
        &ListOptions {
            labels,
            fields,
            limit,
            continue_token: call.query.get("continue").map(str::to_string),
        },
    )?;
    let rv = result.resource_version.to_string();
    let items: Vec<Value> = result
        .items
        .into_iter()
        .map(|o| convert::from_storage(&t.def, o))
        .collect();
    if http::wants_table(&call.accept) {
        return Ok(http::json(
            200,
            &table::table(
                &t.def,
                &items,
                Some(rv),
                result.continue_token,
                include(call),
            ),
        ));
    }
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = result.continue_token {
        meta["continue"] = json!(c);
        meta["remainingItemCount"] = json!(result.remaining_item_count);
    }
    Ok(http::json(
        200,
        &json!({
            "kind": format!("{}List", t.def.kind),
            "apiVersion": t.def.api_version(),
            "metadata": meta,
            "items": items,
        }),
    ))
}

fn ensure_namespace_accepts(state: &State, t: &Target, name: &str) -> Result<()> {
    if !t.def.namespaced {
        return Ok(());
    }
    let ns_def = registry::core("namespaces");
    let ns = state
        .store
        .get(&ns_def.gvr(), "", &t.namespace)
        .map_err(|e| match e {
            StoreError::NotFound { .. } => ApiError::not_found("namespaces", &t.namespace),
            other => other.into(),
        })?;
    if ns.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(ApiError::forbidden(
            &t.def.qualified(),
            name,
            &format!(
                "unable to create new content in namespace {} because it is being terminated",
                t.namespace
            ),
        ));
    }
    Ok(())
}

/// Creates `obj` in `t` after defaulting; shared by POST and server-side apply.
/// Warning texts collected on the way are appended to `warnings` (also when the create fails).
///
/// `manager` is the field manager of the create (an Update in `managedFields`); `None` keeps
/// the managedFields `obj` has (a server-side apply's create computed them).
#[allow(clippy::too_many_arguments)]
fn create_object(
    state: &State,
    t: &Target,
    mut obj: Value,
    dry: bool,
    fv: FieldValidation,
    warnings: &mut Vec<String>,
    audit: &mut crate::podsecurity::AuditAnnotations,
    manager: Option<&str>,
) -> Result<Value> {
    check_type_meta(&t.def, &mut obj)?;
    check_namespace(t, &mut obj)?;
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    if t.def.namespaced {
        // Admission sees the namespace of the URL, as kube-apiserver's does.
        obj["metadata"]["namespace"] = json!(t.namespace);
    }
    let mut name = meta_str(&obj, "name").to_string();
    if name.is_empty() {
        let prefix = meta_str(&obj, "generateName").to_string();
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                &t.def.kind,
                "",
                vec![crate::error::Cause {
                    reason: "FieldValueRequired",
                    message: "Required value: name or generateName is required".into(),
                    field: "metadata.name".into(),
                }],
            ));
        }
        name = defaults::generate_name(&prefix);
        obj["metadata"]["name"] = json!(name);
    }
    defaults::validate_name(&t.def, &name)?;
    ensure_namespace_accepts(state, t, &name)?;
    defaults::on_create(&t.def, &mut obj);
    decode_builtin(state, &t.def, &mut obj, fv, warnings)?;
    if let Some(m) = manager {
        // After defaulting, before admission, as kube-apiserver's create handler.
        let api_version = t.def.api_version();
        let w = writer(t, m, &api_version);
        crate::fieldmanager::update(None, &mut obj, &w, &time::now_rfc3339());
    }
    write_checks(&t.def, None, &mut obj, fv, warnings)?;
    if t.def.plural == "pods" && t.def.group.is_empty() {
        admit_pod_create(state, &mut obj, warnings)?;
    }
    crate::podsecurity::admit(
        state,
        &t.def,
        t.sub.as_deref(),
        &t.namespace,
        &obj,
        None,
        None,
        warnings,
        audit,
    )?;
    let _allocating = if t.def.plural == "services" && t.def.group.is_empty() {
        let guard = state.allocation.lock().unwrap_or_else(|p| p.into_inner());
        allocate_service(state, &mut obj)?;
        Some(guard)
    } else {
        None
    };
    let obj = convert::to_storage(&t.def, obj);
    let created = state
        .store
        .create(&t.def.gvr(), &t.namespace, obj, &write_opts(&t.def, dry))?;
    if !dry && t.def.group.is_empty() && t.def.plural == "pods" {
        state.schedule_soon.notify_one();
    }
    Ok(created)
}

/// Creates a pod for an in-process controller (the DaemonSet controller) through the same
/// defaults and admission as a client's pod.
pub(crate) fn create_pod_as_controller(
    state: &State,
    namespace: &str,
    pod: Value,
) -> Result<Value> {
    let t = Target {
        def: registry::core("pods"),
        namespace: namespace.to_owned(),
        name: None,
        sub: None,
    };
    create_object(
        state,
        &t,
        pod,
        false,
        FieldValidation::Strict,
        &mut Vec::new(),
        &mut Vec::new(),
        Some("kube-controller-manager"),
    )
}

/// The field manager of a write: `fieldManager`, else the User-Agent's product.
fn field_manager(call: &Call) -> Result<String> {
    match call.query.get("fieldManager") {
        Some(m) if !m.is_empty() => {
            crate::fieldmanager::validate_manager(m)?;
            Ok(m.to_owned())
        }
        _ => Ok(crate::fieldmanager::manager_from_user_agent(
            &call.user_agent,
        )),
    }
}

/// Who writes through `t`'s endpoint, for `managedFields`.
fn writer<'a>(
    t: &'a Target,
    manager: &'a str,
    api_version: &'a str,
) -> crate::fieldmanager::Writer<'a> {
    use crate::fieldmanager::Scope;
    let (subresource, scope) = match t.sub.as_deref() {
        Some("status") => ("status", Scope::Status),
        Some(s) => (s, Scope::All),
        None if t.def.has_status => ("", Scope::Main),
        None => ("", Scope::All),
    };
    crate::fieldmanager::Writer {
        manager,
        api_version,
        subresource,
        scope,
    }
}

/// The stored form of an update or patch result (`new` merged for the endpoint), after the
/// write-time validation; a refusal is left in `refused` for the caller to return, and the
/// store is told to abort.
#[allow(clippy::too_many_arguments)]
fn validated_for_storage(
    state: &State,
    call: &Call,
    t: &Target,
    old: &Value,
    new: Value,
    fv: FieldValidation,
    warnings: &mut Vec<String>,
    psa: &mut crate::podsecurity::UpdateContext,
    refused: &mut Option<ApiError>,
    manager: Option<&str>,
) -> std::result::Result<Value, StoreError> {
    let mut new = merge_for_endpoint(t, old, new);
    if let Err(e) = decode_builtin(state, &t.def, &mut new, fv, warnings) {
        *refused = Some(e);
        return Err(StoreError::BadRequest {
            message: "invalid".into(),
        });
    }
    if let Some(m) = manager {
        let api_version = t.def.api_version();
        let w = writer(t, m, &api_version);
        crate::fieldmanager::update(Some(old), &mut new, &w, &time::now_rfc3339());
    }
    let admitted = node_admission(
        state,
        call,
        t,
        authz::Operation::Update,
        Some(old),
        Some(&new),
    );
    let mut audit = Vec::new();
    let checked = admitted
        .and_then(|()| write_checks(&t.def, Some(old), &mut new, fv, warnings))
        .and_then(|()| {
            crate::podsecurity::admit(
                state,
                &t.def,
                t.sub.as_deref(),
                &t.namespace,
                &new,
                Some(old),
                Some(psa),
                warnings,
                &mut audit,
            )
        });
    call.annotate(audit);
    if let Err(e) = checked {
        *refused = Some(e);
        return Err(StoreError::BadRequest {
            message: "invalid".into(),
        });
    }
    Ok(convert::to_storage(&t.def, new))
}

/// The NodeRestriction admission of a node's write (see [`authz::admit`]); nothing for other
/// users.
fn node_admission(
    state: &State,
    call: &Call,
    t: &Target,
    op: authz::Operation,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Result<()> {
    let Some(node) = call.user.node_name() else {
        return Ok(());
    };
    let target = authz::Target {
        group: &t.def.group,
        resource: &t.def.plural,
        subresource: t.sub.as_deref().unwrap_or(""),
        namespace: &t.namespace,
        name: t.name.as_deref().unwrap_or(""),
    };
    authz::admit(node, op, target, old, new, state)
}

/// A built-in object as kube-apiserver's decoder leaves it: the fields its kind does not
/// have (at the emulated release) dropped, with warnings or a strict decoding error as
/// `fieldValidation` asks ([`crate::fields`]).
fn decode_builtin(
    state: &State,
    def: &ResourceDef,
    obj: &mut Value,
    fv: FieldValidation,
    warnings: &mut Vec<String>,
) -> Result<()> {
    if let Some((components, root)) = crate::openapi::kind_schema(def, &state.registry) {
        warnings.extend(crate::fields::check_unknown(
            (&def.kind, &def.version),
            &components,
            &root,
            obj,
            fv,
        )?);
    }
    Ok(())
}

/// The checks of every create and update (`old`): CustomResourceDefinitions and custom objects
/// ([`crd`]), PodSecurityPolicies.
fn write_checks(
    def: &ResourceDef,
    old: Option<&Value>,
    obj: &mut Value,
    fv: FieldValidation,
    warnings: &mut Vec<String>,
) -> Result<()> {
    if def.is(CRD_GROUP, "customresourcedefinitions") {
        crd::default_definition(obj);
        crd::validate_definition(obj, old)?;
        obj["status"] = crd::definition_status(obj, old, &armorlet_store::time::now_rfc3339());
    }
    if def.custom.is_some() {
        warnings.extend(crd::check_object(def, obj, fv)?);
    }
    validate_policy_object(def, obj)
}

const CRD_GROUP: &str = "apiextensions.k8s.io";

/// The `fieldValidation` of a write.
fn field_validation(call: &Call) -> Result<FieldValidation> {
    FieldValidation::parse(call.query.get("fieldValidation"))
}

/// A PodSecurityPolicy must validate (pkg/apis/policy/validation) on every write.
fn validate_policy_object(def: &ResourceDef, obj: &Value) -> Result<()> {
    if !def.is("policy", "podsecuritypolicies") {
        return Ok(());
    }
    let causes = armorlet_confinement::psp::validate_policy(obj);
    if causes.is_empty() {
        return Ok(());
    }
    let mut e = ApiError::invalid(
        "PodSecurityPolicy",
        meta_str(obj, "name"),
        causes
            .into_iter()
            .map(|c| crate::error::Cause {
                reason: c.reason.as_str(),
                message: c.message,
                field: c.field,
            })
            .collect(),
    );
    // kube-apiserver names the kind with its group in the message (details.kind stays bare).
    e.message = e
        .message
        .replacen("PodSecurityPolicy ", "PodSecurityPolicy.policy ", 1);
    Err(e)
}

/// The PodSecurityPolicy admission plugin (`--enable-admission-plugins=PodSecurityPolicy`):
/// the policies in the store decide, after the ServiceAccount admission.
fn admit_pod_security_policy(state: &State, obj: &mut Value) -> Result<()> {
    if !state.pod_security_policy {
        return Ok(());
    }
    let psp = registry::builtin("policy", "v1beta1", "podsecuritypolicies")
        .expect("PodSecurityPolicy is registered");
    let policies = state
        .store
        .list(&psp.gvr(), None, &ListOptions::default())?
        .items;
    match armorlet_confinement::psp::admit(obj, &policies) {
        Ok(_) => Ok(()),
        Err(armorlet_confinement::psp::Rejected(why)) => {
            Err(ApiError::forbidden("pods", meta_str(obj, "name"), &why))
        }
    }
}

/// Pod confinement admission (issue 5 part 3): annotation/field sync, validation and warnings
/// of the emulated release, mapped to kube-apiserver's errors.
fn admit_pod_create(state: &State, obj: &mut Value, warnings: &mut Vec<String>) -> Result<()> {
    use armorlet_confinement::{admit_create, invalid_message, CreateError, ValidateOptions};
    crate::admission::admit_pod(obj);
    crate::profiles::admit_pod(state, obj, warnings)?;
    admit_pod_security_policy(state, obj)?;
    let options = ValidateOptions {
        apparmor_feature_gate: state.apparmor_feature_gate,
        ..ValidateOptions::at(state.emulated_version)
    };
    let outcome = admit_create(obj, &options);
    warnings.extend(outcome.warnings);
    match outcome.result {
        Ok(()) => Ok(()),
        Err(CreateError::Invalid { name, causes }) => {
            // kube-apiserver's Status.message is `Pod "x" is invalid: ...`; kubectl adds "The ".
            let message = invalid_message(&name, &causes);
            let mut e = ApiError::invalid(
                "Pod",
                &name,
                causes
                    .into_iter()
                    .map(|c| crate::error::Cause {
                        reason: c.reason.as_str(),
                        message: c.message,
                        field: c.field,
                    })
                    .collect(),
            );
            e.message = message;
            Err(e)
        }
        Err(e @ CreateError::UnknownFields { .. }) => Err(ApiError::bad_request(e.to_string())),
        Err(e @ CreateError::Shape(_)) => Err(ApiError::bad_request(e.to_string())),
    }
}

/// Adds one `Warning: 299 - "<text>"` header per warning, as kube-apiserver does.
fn with_warnings(mut resp: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let text = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("299 - \"{text}\"")) {
            resp.headers_mut().append(hyper::header::WARNING, v);
        }
    }
    resp
}

fn invalid_service(obj: &Value, field: &str, message: String) -> ApiError {
    ApiError::invalid(
        "Service",
        meta_str(obj, "name"),
        vec![crate::error::Cause {
            reason: "FieldValueInvalid",
            message,
            field: field.into(),
        }],
    )
}

/// Fills `spec.clusterIP(s)` and node ports the way the service REST storage does
/// (pkg/registry/core/service/storage/alloc.go): the lowest free address and port here, where
/// kube-apiserver picks at random; addresses and ports asked for must be free.
fn allocate_service(state: &State, obj: &mut Value) -> Result<()> {
    let ty = obj
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if ty == "ExternalName" {
        return Ok(());
    }
    let existing = state
        .store
        .list(
            &registry::core("services").gvr(),
            None,
            &ListOptions::default(),
        )?
        .items;
    let used_ips: std::collections::HashSet<String> = existing
        .iter()
        .filter_map(|s| s.pointer("/spec/clusterIP").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let used_ports: std::collections::HashSet<i64> = existing
        .iter()
        .flat_map(|s| {
            s.pointer("/spec/ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
        .collect();
    let asked = obj
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ip = if asked == "None" {
        asked
    } else if !asked.is_empty() {
        if used_ips.contains(&asked) {
            return Err(invalid_service(
                obj,
                "spec.clusterIPs",
                format!("Invalid value: []string{{{asked:?}}}: failed to allocate IP {asked}: provided IP is already allocated"),
            ));
        }
        asked
    } else {
        let (base, size) = state.service_ranges.cluster_ips();
        // The network address, the first address (the `kubernetes` service) and the broadcast
        // address are never handed out.
        (2..size.saturating_sub(1))
            .map(|i| std::net::Ipv4Addr::from(base + i).to_string())
            .find(|ip| !used_ips.contains(ip))
            .ok_or_else(|| ApiError::internal("failed to allocate a service IP: range is full"))?
    };
    obj["spec"]["clusterIP"] = json!(ip);
    obj["spec"]["clusterIPs"] = json!([ip]);
    if ip != "None" {
        obj["spec"]["ipFamilies"] = json!(["IPv4"]);
        obj["spec"]["ipFamilyPolicy"] = json!("SingleStack");
    }
    obj["spec"]["internalTrafficPolicy"] = json!("Cluster");
    if ty == "NodePort" || ty == "LoadBalancer" {
        let name = meta_str(obj, "name").to_string();
        obj["spec"]["externalTrafficPolicy"] = json!("Cluster");
        let mut taken = used_ports;
        let bad_port = |i: usize, message: String| {
            ApiError::invalid(
                "Service",
                &name,
                vec![crate::error::Cause {
                    reason: "FieldValueInvalid",
                    message,
                    field: format!("spec.ports[{i}].nodePort"),
                }],
            )
        };
        let ports = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut);
        for (i, p) in ports.into_iter().flatten().enumerate() {
            match p.get("nodePort").and_then(Value::as_i64) {
                Some(n) if n != 0 => {
                    let range = &state.service_ranges.node_ports;
                    if !range.contains(&n) {
                        // pkg/registry/core/service/portallocator: ErrNotInRange.
                        return Err(bad_port(
                            i,
                            format!(
                                "Invalid value: {n}: provided port is not in the valid range. The range of valid ports is {}-{}",
                                range.start(),
                                range.end()
                            ),
                        ));
                    }
                    if taken.contains(&n) {
                        return Err(bad_port(
                            i,
                            format!("Invalid value: {n}: provided port is already allocated"),
                        ));
                    }
                    taken.insert(n);
                }
                _ => {
                    let n = state
                        .service_ranges
                        .node_ports
                        .clone()
                        .find(|n| !taken.contains(n))
                        .ok_or_else(|| {
                            ApiError::internal("failed to allocate a node port: range is full")
                        })?;
                    taken.insert(n);
                    p["nodePort"] = json!(n);
                }
            }
        }
    }
    Ok(())
}

fn create(state: &State, call: &Call, t: &Target) -> Result<Response<Body>> {
    let obj = parse_json(&call.body)?;
    node_admission(state, call, t, authz::Operation::Create, None, Some(&obj))?;
    let mut warnings = Vec::new();
    let fv = field_validation(call)?;
    let mut audit = Vec::new();
    let manager = field_manager(call)?;
    let created = create_object(
        state,
        t,
        obj,
        dry_run(call),
        fv,
        &mut warnings,
        &mut audit,
        Some(&manager),
    );
    call.annotate(audit);
    let resp = match created {
        Ok(created) => object_response(201, call, &t.def, &created),
        Err(e) => http::error(&e),
    };
    Ok(with_warnings(resp, &warnings))
}

/// Combines a new object with the stored one according to the endpoint: the main endpoint keeps
/// the stored status, `/status` changes only status, `/finalize` only `spec.finalizers`.
fn merge_for_endpoint(t: &Target, old: &Value, mut new: Value) -> Value {
    match t.sub.as_deref() {
        Some("status") => {
            let mut out = old.clone();
            out["status"] = new.get("status").cloned().unwrap_or(json!({}));
            out["metadata"]["resourceVersion"] = json!(meta_str(&new, "resourceVersion"));
            out
        }
        Some("finalize") => {
            let mut out = old.clone();
            out["spec"]["finalizers"] = new
                .pointer("/spec/finalizers")
                .cloned()
                .unwrap_or(json!([]));
            out["metadata"]["resourceVersion"] = json!(meta_str(&new, "resourceVersion"));
            out
        }
        _ => {
            if t.def.has_status {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            if t.def.plural == "namespaces" && t.def.group.is_empty() {
                new["spec"] = old.get("spec").cloned().unwrap_or(json!({}));
            }
            // An allocated cluster IP stays when an update leaves it out.
            if t.def.plural == "services" && t.def.group.is_empty() && new.is_object() {
                let missing = new
                    .pointer("/spec/clusterIP")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty);
                if missing {
                    for f in ["clusterIP", "clusterIPs"] {
                        if let Some(v) = old.pointer(&format!("/spec/{f}")) {
                            new["spec"][f] = v.clone();
                        }
                    }
                }
            }
            new
        }
    }
}

fn update(state: &State, call: &Call, t: &Target) -> Result<Response<Body>> {
    let name = t.name.clone().unwrap_or_default();
    let mut obj = parse_json(&call.body)?;
    check_type_meta(&t.def, &mut obj)?;
    check_namespace(t, &mut obj)?;
    let body_name = meta_str(&obj, "name");
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let mut invalid = None;
    let fv = field_validation(call)?;
    let manager = field_manager(call)?;
    let mut warnings = Vec::new();
    let mut psa =
        crate::podsecurity::UpdateContext::prepare(state, &t.def, t.sub.as_deref(), &t.namespace)?;
    let updated = state.store.guaranteed_update(
        &t.def.gvr(),
        &t.namespace,
        &name,
        &write_opts(&t.def, dry_run(call)),
        |old| {
            let old = convert::from_storage(&t.def, old);
            validated_for_storage(
                state,
                call,
                t,
                &old,
                obj,
                fv,
                &mut warnings,
                &mut psa,
                &mut invalid,
                Some(&manager),
            )
        },
    );
    if let Some(e) = invalid {
        return Err(e);
    }
    let updated = updated?;
    existing_pod_warnings(state, &name, &psa, &mut warnings);
    Ok(with_warnings(
        object_response(200, call, &t.def, &updated),
        &warnings,
    ))
}

fn patch_item(state: &State, call: &Call, t: &Target) -> Result<Response<Body>> {
    let name = t.name.clone().unwrap_or_default();
    let ty = PatchType::from_content_type(&call.content_type)?;
    // ValidatePatchOptions (staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/validation).
    let option_error = |reason: &'static str, field: &str, message: &str| {
        let mut e = ApiError::invalid(
            "PatchOptions.meta.k8s.io",
            "",
            vec![crate::error::Cause {
                reason,
                message: message.into(),
                field: field.into(),
            }],
        );
        if let Some(d) = e.details.as_mut() {
            d["kind"] = json!("PatchOptions");
            d["group"] = json!("meta.k8s.io");
        }
        e
    };
    if ty == PatchType::Apply && call.query.get("fieldManager").is_none_or(str::is_empty) {
        return Err(option_error(
            "FieldValueRequired",
            "fieldManager",
            "Required value: is required for apply patch",
        ));
    }
    if ty != PatchType::Apply && call.query.get("force").is_some() {
        return Err(option_error(
            "FieldValueForbidden",
            "force",
            "Forbidden: may not be specified for non-apply patch",
        ));
    }
    let patch_doc: Value = serde_json::from_slice(&call.body).map_err(|e| {
        if ty == PatchType::Apply {
            ApiError::unsupported_media_type(format!(
                "server-side apply accepts JSON bodies only for now: {e}"
            ))
        } else {
            ApiError::bad_request(format!("error decoding patch: {e}"))
        }
    })?;
    let dry = dry_run(call);
    let fv = field_validation(call)?;
    let manager = field_manager(call)?;
    let force = call.query.flag("force");
    let api_version = t.def.api_version();
    let now = time::now_rfc3339();
    let mut warnings = Vec::new();
    if ty == PatchType::Apply && t.sub.is_none() {
        match state.store.get(&t.def.gvr(), &t.namespace, &name) {
            Err(StoreError::NotFound { .. }) => {
                let mut obj = patch_doc;
                if meta_str(&obj, "name") != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({}) does not match the name on the URL ({name})",
                        meta_str(&obj, "name")
                    )));
                }
                if let Some(m) = obj.as_object_mut() {
                    m.remove("status");
                }
                node_admission(state, call, t, authz::Operation::Create, None, Some(&obj))?;
                // The applier owns what it applied, not what defaulting adds.
                let obj = crate::fieldmanager::apply(
                    None,
                    &obj,
                    &writer(t, &manager, &api_version),
                    force,
                    &now,
                )?;
                let mut warnings = Vec::new();
                let mut audit = Vec::new();
                let created =
                    create_object(state, t, obj, dry, fv, &mut warnings, &mut audit, None);
                call.annotate(audit);
                let resp = match created {
                    Ok(created) => object_response(201, call, &t.def, &created),
                    Err(e) => http::error(&e),
                };
                return Ok(with_warnings(resp, &warnings));
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
    }
    let mut patch_error = None;
    let mut psa =
        crate::podsecurity::UpdateContext::prepare(state, &t.def, t.sub.as_deref(), &t.namespace)?;
    let result = state.store.guaranteed_update(
        &t.def.gvr(),
        &t.namespace,
        &name,
        &write_opts(&t.def, dry),
        |old| {
            let old = convert::from_storage(&t.def, old);
            let mut doc = old.clone();
            let patched = if ty == PatchType::Apply {
                let w = writer(t, &manager, &api_version);
                crate::fieldmanager::apply(Some(&old), &patch_doc, &w, force, &now)
                    .map(|merged| doc = merged)
            } else {
                patch::apply(ty, &mut doc, &patch_doc)
            };
            if let Err(e) = patched {
                patch_error = Some(e);
                return Err(StoreError::BadRequest {
                    message: "patch failed".into(),
                });
            }
            if !doc.is_object() {
                patch_error = Some(ApiError::bad_request("the patch did not produce an object"));
                return Err(StoreError::BadRequest {
                    message: "patch failed".into(),
                });
            }
            doc["apiVersion"] = json!(t.def.api_version());
            doc["kind"] = json!(t.def.kind);
            validated_for_storage(
                state,
                call,
                t,
                &old,
                doc,
                fv,
                &mut warnings,
                &mut psa,
                &mut patch_error,
                (ty != PatchType::Apply).then_some(manager.as_str()),
            )
        },
    );
    if let Some(e) = patch_error {
        return Err(e);
    }
    let result = result?;
    existing_pod_warnings(state, &name, &psa, &mut warnings);
    Ok(with_warnings(
        object_response(200, call, &t.def, &result),
        &warnings,
    ))
}

/// After a namespace update that tightened its enforce level: the `PodSecurity` warnings about
/// its existing pods (kube-apiserver computes them in admission; here they need the store,
/// which the update's transaction holds).
fn existing_pod_warnings(
    state: &State,
    namespace: &str,
    psa: &crate::podsecurity::UpdateContext,
    warnings: &mut Vec<String>,
) {
    if let Some(enforce) = psa.check_pods {
        warnings.extend(crate::podsecurity::existing_pods(state, namespace, enforce));
    }
}

/// DeleteOptions from the body and the query.
pub(crate) struct DeleteRequest {
    pub(crate) grace: Option<i64>,
    pub(crate) uid: Option<String>,
    pub(crate) resource_version: Option<String>,
    pub(crate) dry_run: bool,
    /// `propagationPolicy` (or the deprecated `orphanDependents`); `None`: the object's own
    /// garbage collection finalizers, else Background (every kind served here defaults to it).
    pub(crate) propagation: Option<crate::gc::Propagation>,
}

fn delete_request(call: &Call) -> Result<DeleteRequest> {
    let body: Value = if call.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        parse_json(&call.body)?
    };
    let grace =
        match body.get("gracePeriodSeconds").and_then(Value::as_i64) {
            Some(g) => Some(g),
            None => match call.query.get("gracePeriodSeconds") {
                Some(g) => Some(g.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}"))
                })?),
                None => None,
            },
        };
    let policy = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or(call.query.get("propagationPolicy"));
    let orphan_dependents = body
        .get("orphanDependents")
        .and_then(Value::as_bool)
        .or(call
            .query
            .get("orphanDependents")
            .and_then(|v| v.parse::<bool>().ok()));
    let propagation = match policy {
        Some(p) => {
            if orphan_dependents.is_some() {
                // staging/src/k8s.io/apimachinery/pkg/api/validation/objectmeta.go
                // ValidateDeleteOptions.
                return Err(ApiError::unprocessable(format!(
                    "propagationPolicy: Invalid value: {p:?}: orphanDependents and deletionPropagation cannot be both set"
                )));
            }
            Some(crate::gc::Propagation::parse(p).ok_or_else(|| ApiError::unprocessable(format!(
                "propagationPolicy: Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            )))?)
        }
        None => orphan_dependents.map(|o| {
            if o {
                crate::gc::Propagation::Orphan
            } else {
                crate::gc::Propagation::Background
            }
        }),
    };
    let dry = body
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "All"))
        || dry_run(call);
    Ok(DeleteRequest {
        grace,
        uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
        dry_run: dry,
        propagation,
    })
}

/// Deletes one object with the kind's grace policy; shared by DELETE, deletecollection, the
/// namespace cascade and the garbage collector.
pub(crate) fn delete_object(
    state: &State,
    def: &ResourceDef,
    namespace: &str,
    name: &str,
    req: &DeleteRequest,
) -> Result<DeleteOutcome> {
    let gvr = def.gvr();
    let grace = if def.plural == "pods" && def.group.is_empty() {
        let pod = state.store.get(&gvr, namespace, name)?;
        Some(defaults::pod_grace_period(&pod, req.grace))
    } else {
        None
    };
    let (add_finalizers, remove_finalizers) = crate::gc::finalizer_changes(req.propagation);
    Ok(state.store.delete(
        &gvr,
        namespace,
        name,
        &DeleteOptions {
            grace_period_seconds: grace,
            precondition_uid: req.uid.clone(),
            precondition_resource_version: req.resource_version.clone(),
            dry_run: req.dry_run,
            keep: false,
            add_finalizers,
            remove_finalizers,
        },
    )?)
}

fn deleted_response(call: &Call, t: &Target, outcome: DeleteOutcome) -> Response<Body> {
    match outcome {
        DeleteOutcome::Pending(obj) => object_response(200, call, &t.def, &obj),
        DeleteOutcome::Deleted(obj) if t.def.plural == "pods" || t.def.plural == "namespaces" => {
            object_response(200, call, &t.def, &obj)
        }
        DeleteOutcome::Deleted(obj) => {
            let mut details = json!({"name": meta_str(&obj, "name"), "kind": t.def.plural, "uid": meta_str(&obj, "uid")});
            if !t.def.group.is_empty() {
                details["group"] = json!(t.def.group);
            }
            http::json(
                200,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
            )
        }
    }
}

fn delete(state: &State, call: &Call, t: &Target) -> Result<Response<Body>> {
    let name = t.name.clone().unwrap_or_default();
    let req = delete_request(call)?;
    if call.user.node_name().is_some() {
        // A missing object is the delete's 404.
        if let Ok(old) = state.store.get(&t.def.gvr(), &t.namespace, &name) {
            let old = convert::from_storage(&t.def, old);
            node_admission(state, call, t, authz::Operation::Delete, Some(&old), None)?;
        }
    }
    if t.def.plural == "namespaces" && t.def.group.is_empty() {
        return delete_namespace(state, call, t, &name, &req);
    }
    let outcome = delete_object(state, &t.def, &t.namespace, &name, &req)?;
    Ok(deleted_response(call, t, outcome))
}

fn delete_collection(state: &State, call: &Call, t: &Target) -> Result<Response<Body>> {
    let (labels, fields) = selectors(call, &t.def)?;
    let req = delete_request(call)?;
    let items = state
        .store
        .list(
            &t.def.gvr(),
            namespace_filter(t),
            &ListOptions {
                labels,
                fields,
                ..Default::default()
            },
        )?
        .items;
    let mut out = Vec::new();
    for item in items {
        let ns = meta_str(&item, "namespace").to_string();
        let name = meta_str(&item, "name").to_string();
        if t.def.plural == "namespaces" && t.def.group.is_empty() {
            continue;
        }
        match delete_object(state, &t.def, &ns, &name, &req) {
            Ok(DeleteOutcome::Deleted(o) | DeleteOutcome::Pending(o)) => {
                out.push(convert::from_storage(&t.def, o))
            }
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(http::json(
        200,
        &json!({"kind": format!("{}List", t.def.kind), "apiVersion": t.def.api_version(),
                "metadata": {"resourceVersion": state.store.current_resource_version()?.to_string()},
                "items": out}),
    ))
}

/// Namespaces that may not be deleted (pkg/registry/core/namespace/storage/storage.go and the
/// NamespaceLifecycle admission plugin).
const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

fn delete_namespace(
    state: &State,
    call: &Call,
    t: &Target,
    name: &str,
    req: &DeleteRequest,
) -> Result<Response<Body>> {
    if IMMORTAL_NAMESPACES.contains(&name) {
        return Err(ApiError::forbidden(
            "namespaces",
            name,
            "this namespace may not be deleted",
        ));
    }
    let gvr = t.def.gvr();
    let outcome = state.store.delete(
        &gvr,
        "",
        name,
        &DeleteOptions {
            precondition_uid: req.uid.clone(),
            precondition_resource_version: req.resource_version.clone(),
            dry_run: req.dry_run,
            keep: true,
            ..Default::default()
        },
    )?;
    if req.dry_run {
        return Ok(deleted_response(call, t, outcome));
    }
    let marked =
        state
            .store
            .guaranteed_update(&gvr, "", name, &WriteOptions::default(), |mut ns| {
                ns["status"] = json!({"phase": "Terminating"});
                Ok(ns)
            })?;
    match finalize_namespace(state, name)? {
        Some(gone) => Ok(deleted_response(call, t, DeleteOutcome::Deleted(gone))),
        None => Ok(deleted_response(call, t, DeleteOutcome::Pending(marked))),
    }
}

/// The namespace controller's job, done inline and by a periodic sweep: delete everything in a
/// terminating namespace, then the namespace itself once it is empty. Returns the namespace's
/// last state if it is gone.
pub fn finalize_namespace(state: &State, name: &str) -> Result<Option<Value>> {
    let req = DeleteRequest {
        grace: None,
        uid: None,
        resource_version: None,
        dry_run: false,
        propagation: None,
    };
    for (key, obj) in state.store.keys_in_namespace(name)? {
        let Some(def) = state.registry.by_key(&key) else {
            continue;
        };
        match delete_object(state, &def, name, &obj, &req) {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    if !state.store.keys_in_namespace(name)?.is_empty() {
        return Ok(None);
    }
    let gvr = registry::core("namespaces").gvr();
    match state
        .store
        .delete(&gvr, "", name, &DeleteOptions::default())
    {
        Ok(DeleteOutcome::Deleted(o)) => Ok(Some(o)),
        Ok(DeleteOutcome::Pending(_)) => Ok(None),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Runs [`finalize_namespace`] on every terminating namespace.
pub fn sweep_terminating_namespaces(state: &State) -> Result<()> {
    let gvr = registry::core("namespaces").gvr();
    let all = state.store.list(&gvr, None, &ListOptions::default())?;
    for ns in all.items {
        if ns.pointer("/metadata/deletionTimestamp").is_some() {
            finalize_namespace(state, meta_str(&ns, "name"))?;
        }
    }
    Ok(())
}

/// Creates a namespace if it does not exist yet (startup).
pub fn ensure_namespace(state: &State, name: &str) -> Result<()> {
    let def = registry::core("namespaces");
    match state.store.get(&def.gvr(), "", name) {
        Ok(_) => Ok(()),
        Err(StoreError::NotFound { .. }) => {
            let t = Target {
                def,
                namespace: String::new(),
                name: None,
                sub: None,
            };
            match create_object(
                state,
                &t,
                json!({"metadata": {"name": name}}),
                false,
                FieldValidation::Strict,
                &mut Vec::new(),
                &mut Vec::new(),
                Some("kube-apiserver"),
            ) {
                Ok(_) => Ok(()),
                Err(e) if e.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn watch_line(ty: &str, object: Value) -> Bytes {
    let mut line = json!({"type": ty, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn watch(state: &Arc<State>, call: &Call, t: &Target) -> Result<Response<Body>> {
    let (labels, fields) = selectors(call, &t.def)?;
    let send_initial = call.query.flag("sendInitialEvents");
    let from = match call.query.get("resourceVersion") {
        _ if send_initial => None,
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        ),
    };
    let bookmarks = call.query.flag("allowWatchBookmarks");
    // kube-apiserver: none or 0 is the server's default, a negative timeout ends at once.
    let timeout = match int_param(call, "timeoutSeconds")? {
        None | Some(0) => Duration::from_secs(1800),
        Some(s) => Duration::from_secs(s.clamp(0, 86_400) as u64),
    };
    let as_table = http::wants_table(&call.accept);
    let include = include(call);
    let def = t.def.clone();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let response = http::json(200, &json!({}));
    let (parts, _) = response.into_parts();
    let response = Response::from_parts(parts, Body::Stream(rx));
    let mut w = match state
        .store
        .watch(&def.gvr(), namespace_filter(t), from, labels, fields)
    {
        Ok(w) => w,
        Err(e @ StoreError::Expired { .. }) => {
            let status = ApiError::from(e).to_status();
            let _ = tx.try_send(watch_line("ERROR", status));
            return Ok(response);
        }
        Err(e) => return Err(e.into()),
    };
    let mut shutdown = state.shutdown.clone();
    let interval = state.bookmark_interval.max(Duration::from_millis(10));
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        let mut initial_end_pending = send_initial && bookmarks;
        let bookmark = |rv: u64, initial_end: bool| {
            let mut meta = json!({"resourceVersion": rv.to_string()});
            if initial_end {
                meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            watch_line(
                "BOOKMARK",
                json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": meta}),
            )
        };
        loop {
            if initial_end_pending {
                if let Some(rv) = w.bookmark_resource_version() {
                    initial_end_pending = false;
                    if tx.send(bookmark(rv, true)).await.is_err() {
                        break;
                    }
                }
            }
            tokio::select! {
                ev = w.next() => {
                    let line = match ev {
                        Ok(ev) => {
                            let obj = convert::from_storage(&def, ev.object);
                            let object = if as_table {
                                table::table(&def, std::slice::from_ref(&obj), Some(ev.resource_version.to_string()), None, include)
                            } else {
                                obj
                            };
                            watch_line(ev.event.as_str(), object)
                        }
                        Err(e) => {
                            let _ = tx.send(watch_line("ERROR", ApiError::from(e).to_status())).await;
                            break;
                        }
                    };
                    if tx.send(line).await.is_err() {
                        break;
                    }
                }
                _ = ticker.tick(), if bookmarks && !as_table => {
                    if let Some(rv) = w.bookmark_resource_version() {
                        if tx.send(bookmark(rv, false)).await.is_err() {
                            break;
                        }
                    }
                }
                _ = &mut deadline => break,
                _ = shutdown.changed() => break,
                _ = tx.closed() => break,
            }
        }
    });
    Ok(response)
}

/// Seconds since the Unix epoch; re-exported for the server's uptime logging.
pub fn now() -> i64 {
    time::now_unix()
}
