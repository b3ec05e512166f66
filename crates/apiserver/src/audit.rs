//! The audit log of API writes: `D/audit/api.log` (mode 0600, its directory 0700), one JSON
//! line per write request, each an `audit.k8s.io/v1` `Event` at level `Metadata` as
//! kube-apiserver's log backend writes it with a policy that logs the verbs `create`,
//! `update`, `patch`, `delete` and `deletecollection` at `Metadata` and nothing else
//! (staging/src/k8s.io/apiserver/pkg/apis/audit/v1/types.go `Event`;
//! staging/src/k8s.io/apiserver/pkg/audit/request.go `NewEventFromRequest`,
//! `LogResponseObject`; endpoints/filters/audit.go). `exec` and `attach` on pods are
//! writes too and are logged as `create`, whichever method (POST or the WebSocket GET)
//! carried them, when their stream ends.
//!
//! Lines are written by one thread through a buffer that is flushed whenever no more lines
//! are waiting, so a request does not wait for the disk; a request's line is queued before
//! its response goes out, and [`AuditLog::close`] (at shutdown) writes and syncs everything
//! queued, so every write a client saw acknowledged is in the log once the server has
//! stopped normally.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::auth::User;
use crate::error::ApiError;
use crate::requestinfo::RequestInfo;

enum Msg {
    Line(String),
    Close(mpsc::Sender<()>),
}

/// The audit log's writer.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    tx: Mutex<mpsc::Sender<Msg>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

/// `D/audit/api.log`.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit").join("api.log")
}

impl AuditLog {
    /// Opens (appending) `D/audit/api.log` and starts its writer thread.
    pub fn open(data_dir: &Path) -> std::io::Result<Arc<AuditLog>> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let path = log_path(data_dir);
        let dir = path.parent().unwrap_or(data_dir);
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || write_loop(rx, std::io::BufWriter::with_capacity(64 * 1024, file)))?;
        Ok(Arc::new(AuditLog {
            path,
            tx: Mutex::new(tx),
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, msg: Msg) -> bool {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        tx.send(msg).is_ok()
    }

    /// Queues one event.
    pub fn write(&self, event: &Value) {
        let mut line = event.to_string();
        line.push('\n');
        if !self.send(Msg::Line(line)) {
            tracing::warn!("audit log closed: event dropped");
        }
    }

    /// Writes and syncs every queued event and stops the writer (blocking).
    pub fn close(&self) {
        let (ack, done) = mpsc::channel();
        if self.send(Msg::Close(ack)) {
            let _ = done.recv_timeout(std::time::Duration::from_secs(30));
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

/// Writes the queued lines. While the log cannot be written (its disk is full) the lines
/// that do not fit the buffer are dropped, as kube-apiserver's log backend drops the events
/// it fails to write (`audit.HandlePluginError`); the buffered ones are retried. The first
/// failure is logged, and so is the recovery, with the number of lines dropped meanwhile.
fn write_loop(rx: mpsc::Receiver<Msg>, mut out: std::io::BufWriter<std::fs::File>) {
    let mut failed = false;
    let mut dropped = 0u64;
    let mut report = |r: std::io::Result<()>, line: bool| match r {
        Err(e) => {
            if !failed {
                tracing::error!(error = %e, "cannot write the audit log");
            }
            failed = true;
            dropped += u64::from(line);
        }
        Ok(()) if failed && !line => {
            tracing::info!(dropped, "the audit log is writable again");
            failed = false;
            dropped = 0;
        }
        Ok(()) => {}
    };
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Line(l) => report(out.write_all(l.as_bytes()), true),
                Msg::Close(ack) => {
                    report(out.flush(), false);
                    report(out.get_ref().sync_data(), false);
                    let _ = ack.send(());
                    return;
                }
            }
            next = rx.try_recv().ok();
        }
        report(out.flush(), false);
    }
    report(out.flush(), false);
}

/// `2026-01-02T15:04:05.123456Z` (`metav1.MicroTime`).
pub fn micro_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = armorlet_store::time::format_rfc3339(d.as_secs() as i64);
    format!("{}.{:06}Z", secs.trim_end_matches('Z'), d.subsec_micros())
}

/// Whether the request is logged: a write to a resource.
pub fn is_audited(info: &RequestInfo) -> bool {
    info.is_resource_request
        && matches!(
            audit_verb(info),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
}

/// The verb logged: `create` for exec, attach and portforward (their POST form's verb), else the
/// request's.
fn audit_verb(info: &RequestInfo) -> &str {
    if info.resource == "pods"
        && matches!(info.subresource.as_str(), "exec" | "attach" | "portforward")
    {
        "create"
    } else {
        &info.verb
    }
}

/// One request's event, from its arrival to its response.
#[derive(Debug)]
pub struct Record {
    log: Arc<AuditLog>,
    audit_id: String,
    received: String,
    request_uri: String,
    verb: String,
    source_ip: String,
    user_agent: String,
    object_ref: Value,
    /// Set once the request is authenticated.
    pub user: Option<User>,
    /// The authorizer's decision and reason, once authorization ran.
    pub decision: Option<(&'static str, String)>,
    /// Admission's audit annotations (`pod-security.kubernetes.io/...`).
    pub annotations: Vec<(String, String)>,
}

impl Record {
    /// Starts the event of a request to be logged (see [`is_audited`]).
    pub fn begin(
        log: Arc<AuditLog>,
        audit_id: String,
        info: &RequestInfo,
        request_uri: String,
        user_agent: String,
        peer: SocketAddr,
    ) -> Record {
        let mut object_ref = json!({"resource": info.resource});
        for (k, v) in [
            ("namespace", &info.namespace),
            ("name", &info.name),
            ("apiGroup", &info.api_group),
            ("apiVersion", &info.api_version),
            ("subresource", &info.subresource),
        ] {
            if !v.is_empty() {
                object_ref[k] = json!(v);
            }
        }
        Record {
            log,
            audit_id,
            received: micro_now(),
            request_uri,
            verb: audit_verb(info).to_owned(),
            source_ip: peer.ip().to_string(),
            user_agent,
            object_ref,
            user: None,
            decision: None,
            annotations: Vec::new(),
        }
    }

    /// The object's name when the URL has none (a create: the request object's name, as
    /// `LogRequestObject` fills it in).
    pub fn name_from_object(&mut self, name: &str) {
        if self.object_ref.get("name").is_none() && !name.is_empty() {
            self.object_ref["name"] = json!(name);
        }
    }

    /// Writes the event for a response with `code`, and the error's Status fields if it
    /// failed.
    pub fn finish(self, code: u16, error: Option<&ApiError>) {
        let mut status = json!({"metadata": {}, "code": code});
        if let Some(e) = error {
            let s = e.to_status();
            for k in ["status", "message", "reason", "details"] {
                if let Some(v) = s.get(k) {
                    status[k] = v.clone();
                }
            }
        }
        // A request that failed authentication is logged at ResponseStarted, without a
        // user (endpoints/filters/authn_audit.go `WithFailedAuthenticationAudit`).
        let (stage, user) = match &self.user {
            Some(u) => (
                "ResponseComplete",
                json!({"username": u.name, "groups": u.groups}),
            ),
            None => ("ResponseStarted", json!({})),
        };
        let mut ev = json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": self.audit_id,
            "stage": stage,
            "requestURI": self.request_uri,
            "verb": self.verb,
            "user": user,
            "sourceIPs": [self.source_ip],
            "userAgent": self.user_agent,
            "objectRef": self.object_ref,
            "responseStatus": status,
            "requestReceivedTimestamp": self.received,
            "stageTimestamp": micro_now(),
        });
        if self.user_agent.is_empty() {
            if let Some(m) = ev.as_object_mut() {
                m.remove("userAgent");
            }
        }
        if let Some((decision, reason)) = &self.decision {
            ev["annotations"] = json!({
                "authorization.k8s.io/decision": decision,
                "authorization.k8s.io/reason": reason,
            });
        }
        // Admission plugins' annotations (audit.AddAuditAnnotations) sit beside the
        // authorizer's.
        for (k, v) in &self.annotations {
            if !ev["annotations"].is_object() {
                ev["annotations"] = json!({});
            }
            ev["annotations"][k] = json!(v);
        }
        self.log.write(&ev);
    }
}

/// The Status fields of a failed response's body (a `Status` object), for [`Record::finish`].
pub fn error_of_body(code: u16, body: &[u8]) -> Option<ApiError> {
    let v: Value = serde_json::from_slice(body).ok()?;
    if v["kind"] != "Status" {
        return None;
    }
    let reason: &'static str = match v["reason"].as_str().unwrap_or("") {
        "BadRequest" => "BadRequest",
        "Unauthorized" => "Unauthorized",
        "Forbidden" => "Forbidden",
        "NotFound" => "NotFound",
        "AlreadyExists" => "AlreadyExists",
        "Conflict" => "Conflict",
        "Invalid" => "Invalid",
        "MethodNotAllowed" => "MethodNotAllowed",
        "Expired" => "Expired",
        "RequestEntityTooLarge" => "RequestEntityTooLarge",
        "UnsupportedMediaType" => "UnsupportedMediaType",
        "TooManyRequests" => "TooManyRequests",
        "InternalError" => "InternalError",
        _ => "",
    };
    Some(ApiError {
        code,
        reason,
        message: v["message"].as_str().unwrap_or("").to_owned(),
        details: v.get("details").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_are_logged_as_metadata_events_and_close_flushes_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let info = RequestInfo::new("POST", "/api/v1/namespaces/default/configmaps", None);
        assert!(is_audited(&info));
        assert!(!is_audited(&RequestInfo::new("GET", "/api/v1/pods", None)));
        assert!(is_audited(&RequestInfo::new(
            "GET",
            "/api/v1/namespaces/a/pods/p/exec",
            None
        )));
        let mut r = Record::begin(
            log.clone(),
            "id-1".into(),
            &info,
            "/api/v1/namespaces/default/configmaps?fieldManager=kubectl-create".into(),
            "kubectl/v1.32.0".into(),
            peer,
        );
        r.user = Some(User::admin());
        r.decision = Some(("allow", String::new()));
        r.annotations.push((
            "pod-security.kubernetes.io/enforce-policy".into(),
            "privileged:latest".into(),
        ));
        r.name_from_object("cm");
        r.finish(201, None);
        let denied = RequestInfo::new("DELETE", "/api/v1/nodes/n2", None);
        let mut r = Record::begin(
            log.clone(),
            "id-2".into(),
            &denied,
            "/api/v1/nodes/n2".into(),
            String::new(),
            peer,
        );
        r.user = Some(User::node("n1"));
        r.finish(403, Some(&ApiError::forbidden("nodes", "n2", "no")));
        log.close();
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        let e = &lines[0];
        assert_eq!(e["kind"], "Event");
        assert_eq!(e["apiVersion"], "audit.k8s.io/v1");
        assert_eq!(e["level"], "Metadata");
        assert_eq!(e["stage"], "ResponseComplete");
        assert_eq!(e["verb"], "create");
        assert_eq!(
            e["user"],
            json!({"username": "admin", "groups": ["system:masters", "system:authenticated"]})
        );
        assert_eq!(e["sourceIPs"], json!(["127.0.0.1"]));
        assert_eq!(
            e["objectRef"],
            json!({"resource": "configmaps", "namespace": "default", "name": "cm", "apiVersion": "v1"})
        );
        assert_eq!(e["responseStatus"], json!({"metadata": {}, "code": 201}));
        assert_eq!(e["annotations"]["authorization.k8s.io/decision"], "allow");
        assert_eq!(
            e["annotations"]["pod-security.kubernetes.io/enforce-policy"],
            "privileged:latest"
        );
        assert!(e["requestReceivedTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z'));
        assert_eq!(lines[1]["responseStatus"]["reason"], "Forbidden");
        assert_eq!(lines[1]["responseStatus"]["code"], 403);
        assert!(lines[1].get("userAgent").is_none());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(log.path()), 0o600);
        assert_eq!(mode(log.path().parent().unwrap()), 0o700);
    }
}
