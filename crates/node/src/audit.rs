//! The node's seccomp audit trail: a thread reading the kernel's audit
//! records (`armorlet-audit`), keeping those of this node's containers and
//! appending them to `D/nodes/<node>/audit.log`, which `armorlet audit` reads.
//! On a real node these lines are in the host's syslog (the seccomp tutorial's
//! `tail -f /var/log/syslog`).

use armorlet_audit::{AuditLog, AuditReader, LandlockRecord, Owner, Record};
use armorlet_runtime::Runtime;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::spec::labels;

/// The running audit thread; stops when dropped.
pub struct AuditTrail {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AuditTrail {
    /// Starts the reader. `None` (with a warning) when no audit source can be
    /// opened: pods still run, their audit lines are just not collected.
    pub fn start(runtime: Arc<Runtime>, log: PathBuf, hostname: String) -> Option<AuditTrail> {
        let mut reader = match AuditReader::open().or_else(|_| AuditReader::open_kmsg()) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "no kernel audit source: seccomp audit lines are not collected");
                return None;
            }
        };
        tracing::info!(source = ?reader.source(), log = %log.display(), "collecting seccomp audit records");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || {
                let owners = Owners::new(runtime);
                let mut domains = Domains::default();
                while !stopping.load(Ordering::Relaxed) {
                    let written = match reader.next_any_timeout(Duration::from_millis(500)) {
                        Ok(Some(Record::Seccomp(rec))) => {
                            AuditLog::record(&log, &rec, &hostname, &owners).map(|_| ())
                        }
                        Ok(Some(Record::Landlock(rec))) => {
                            landlock_record(&rec, &mut domains, &owners, &log, &hostname)
                        }
                        Ok(None) => Ok(()),
                        Err(e) => {
                            tracing::warn!(error = %e, "audit reader failed; stopping it");
                            return;
                        }
                    };
                    if let Err(e) = written {
                        tracing::warn!(error = %e, "cannot write the audit log");
                    }
                }
            })
            .ok()?;
        Some(AuditTrail {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for AuditTrail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What is known of the Landlock domains seen so far.
#[derive(Default)]
struct Domains {
    /// Domain → container id of the process that created it.
    owner: HashMap<String, String>,
    /// Denials of domains whose allocation record has not arrived yet (the
    /// kernel sends a domain's first denial before its allocation record).
    pending: HashMap<String, Vec<LandlockRecord>>,
}

/// Landlock reports a domain's creator once (after its first denial): the
/// domain is mapped to the creator's container then, and each denial of a
/// domain of ours is logged with the AppArmor profile its plan enforces. A
/// creator that exited before its record was read cannot be attributed (a
/// short-lived `kubectl exec` command), and its denials are not logged.
fn landlock_record(
    rec: &LandlockRecord,
    domains: &mut Domains,
    owners: &Owners,
    log: &std::path::Path,
    hostname: &str,
) -> Result<(), armorlet_audit::AuditError> {
    if let Some(pid) = rec.pid {
        let pending = domains.pending.remove(&rec.domain).unwrap_or_default();
        if let Some(id) = armorlet_audit::container_id_of(pid) {
            for denial in &pending {
                log_denial(denial, &id, owners, log, hostname)?;
            }
            domains.owner.insert(rec.domain.clone(), id);
        }
        return Ok(());
    }
    if !rec.is_access() {
        if rec.text.contains("status=deallocated") {
            domains.owner.remove(&rec.domain);
            domains.pending.remove(&rec.domain);
        }
        return Ok(());
    }
    match domains.owner.get(&rec.domain) {
        Some(id) => log_denial(rec, id, owners, log, hostname),
        None => {
            let queue = domains.pending.entry(rec.domain.clone()).or_default();
            if queue.len() < 64 {
                queue.push(rec.clone());
            }
            Ok(())
        }
    }
}

fn log_denial(
    rec: &LandlockRecord,
    container_id: &str,
    owners: &Owners,
    log: &std::path::Path,
    hostname: &str,
) -> Result<(), armorlet_audit::AuditError> {
    let Some(owner) = armorlet_audit::Attribute::owner(owners, container_id) else {
        return Ok(());
    };
    let profile = owners.profile_of(container_id);
    AuditLog::append(log, &rec.log_line(hostname, &owner, profile.as_deref()))
}

/// Turns kernel auditing on (once per process) for Landlock's denial records.
pub fn enable_kernel_audit() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| match armorlet_audit::ensure_audit_enabled() {
        Ok(true) => tracing::info!("kernel audit enabled (auditctl -e 1) for Landlock denial records"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "cannot enable kernel audit: Landlock denials are not logged"),
    });
}

/// Container id → pod container, from the runtime's records (re-read when an
/// id is not known yet: containers come and go).
struct Owners {
    runtime: Arc<Runtime>,
    known: std::sync::Mutex<HashMap<String, Owner>>,
}

impl Owners {
    fn new(runtime: Arc<Runtime>) -> Self {
        Owners {
            runtime,
            known: Default::default(),
        }
    }
}

impl Owners {
    /// The AppArmor profile the container's Landlock plan enforces.
    fn profile_of(&self, container_id: &str) -> Option<String> {
        let plan = self
            .runtime
            .config()
            .containers_dir
            .join(container_id)
            .join(armorlet_landlock::PLAN_FILE);
        armorlet_landlock::Plan::read(&plan).ok().map(|p| p.profile)
    }
}

impl armorlet_audit::Attribute for Owners {
    fn owner(&self, container_id: &str) -> Option<Owner> {
        let mut known = self.known.lock().ok()?;
        if !known.contains_key(container_id) {
            let records = self.runtime.list_containers().ok()?;
            *known = records
                .into_iter()
                .map(|r| {
                    let l = |k: &str| r.labels.get(k).cloned().unwrap_or_default();
                    let owner = Owner {
                        namespace: l(labels::NAMESPACE),
                        pod: l(labels::POD),
                        container: l(labels::CONTAINER),
                    };
                    (r.id, owner)
                })
                .collect();
        }
        known.get(container_id).cloned()
    }
}
