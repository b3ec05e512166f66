//! A Kubernetes-API-compatible HTTPS server over [`armorlet_store`], for the real `kubectl`.
//!
//! Start with [`Server::bind`] then [`Server::serve`]. The request path is:
//! TLS + HTTP/1.1 (this file; plain HTTP refused, request heads limited to
//! [`MAX_HEADER_BYTES`]) → [`handlers::handle`]: [`requestinfo`], authentication ([`auth`]),
//! [`audit`], [`inflight`], authorization ([`authz`]), then routing and the verbs (with
//! NodeRestriction admission) → the store.
//! Failures become Kubernetes `Status` objects in exactly one place, [`error`].
//! What kubectl sends and needs is recorded in `shared/docs/kubectl-wire.md`.
//!
//! Where to extend:
//! - a new kind: one row in [`registry::RESOURCES`]; create-time defaults in [`defaults`];
//!   `kubectl get` columns in [`table`]; a different storage version in [`convert`];
//!   protobuf bodies from kubectl's typed clients in [`protobuf`];
//! - a new error: a constructor in [`error`] (the only module that builds `Status` objects);
//! - validation and admission (issue 5, parts 3 and 4) belong between the defaulting in
//!   `handlers::create_object` / the update closures and the store call.

pub mod admission;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod body;
pub mod convert;
pub mod crd;
pub mod credentials;
pub mod daemonsets;
mod defaults;
pub mod discovery;
pub mod endpoints;
pub mod error;
pub mod fieldmanager;
pub mod fields;
pub mod gc;
pub mod handlers;
pub mod http;
pub mod inflight;
pub mod nodelifecycle;
pub mod nodeproxy;
pub mod openapi;
pub mod patch;
pub mod podsecurity;
pub mod profiles;
pub mod protobuf;
pub mod registry;
pub mod requestinfo;
pub mod scheduler;
pub mod table;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use armorlet_store::Store;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

pub use armorlet_confinement::EmulatedVersion;
pub use credentials::Credentials;
pub use error::ApiError;
pub use handlers::State;

/// Namespaces created at start (pkg/controlplane/controller/systemnamespaces).
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the store, certificates, token and kubeconfig live.
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Interval of BOOKMARK events on watches that allow them.
    pub bookmark_interval: Duration,
    /// Largest accepted request body (kube-apiserver: 3 MiB).
    pub max_body_bytes: usize,
    /// The Kubernetes release whose pod confinement semantics (AppArmor/seccomp
    /// validation, annotation/field sync, warnings) the create path emulates.
    pub emulated_version: armorlet_confinement::EmulatedVersion,
    /// The `AppArmor` feature gate (`--feature-gates=AppArmor=false`: AppArmor
    /// annotations are Forbidden by pod validation where the release allows it).
    pub apparmor_feature_gate: bool,
    /// How old a node's heartbeat may get before the node lifecycle controller marks it
    /// Unknown and unreachable (kube-controller-manager `--node-monitor-grace-period`).
    pub node_monitor_grace_period: Duration,
    /// Publish the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap in every
    /// namespace, as kube-controller-manager does. Off by default for now: tests elsewhere
    /// assert empty ConfigMap lists (see the lead's notes).
    pub publish_namespace_defaults: bool,
    /// Service ClusterIPs and NodePorts.
    pub service_ranges: ServiceRanges,
    /// The PodSecurityPolicy admission plugin (kube-apiserver
    /// `--enable-admission-plugins=PodSecurityPolicy`; see [`admission_plugins`]).
    pub pod_security_policy: bool,
    /// `--max-requests-inflight`: non-mutating requests served at once (0: no limit).
    pub max_requests_inflight: usize,
    /// `--max-mutating-requests-inflight`: mutating requests served at once (0: no limit).
    pub max_mutating_requests_inflight: usize,
    /// `--event-ttl`: Events (core and `events.k8s.io`, one storage) are deleted this long
    /// after their last write, in whole seconds as kube-apiserver gives etcd the lease
    /// (pkg/registry/core/rest/storage_core.go `uint64(c.EventTTL.Seconds())`); under a second:
    /// never, as a TTL of 0 attaches no lease (staging/src/k8s.io/apiserver/pkg/storage/etcd3/store.go `ttlOpts`).
    pub event_ttl: Duration,
}

/// kube-apiserver's `--event-ttl` default.
pub const DEFAULT_EVENT_TTL: Duration = Duration::from_secs(3600);

/// How often expired Events are looked for, and how many one pass deletes at most: etcd's lessor
/// revokes expired leases every 500 ms, at most `leaseRevokeRate / 2` (500) at a time
/// (go.etcd.io/etcd/server/v3/lease/lessor.go `runLoop`, `revokeExpiredLeases`).
pub const EXPIRY_INTERVAL: Duration = Duration::from_millis(500);
/// See [`EXPIRY_INTERVAL`].
pub const EXPIRY_BATCH: usize = 500;

/// The largest request head (request line and headers) accepted: Go's net/http default
/// `MaxHeaderBytes` (1 MiB, `http.DefaultMaxHeaderBytes`, which kube-apiserver keeps), plus
/// the 4096 bytes of slack net/http allows on top of it. A larger head gets
/// `431 Request Header Fields Too Large` and the connection is closed.
pub const MAX_HEADER_BYTES: usize = (1 << 20) + 4096;

/// A keep-alive connection with no request for this long is closed, as kube-apiserver's
/// `http.Server{IdleTimeout: 90 * time.Second}`
/// (staging/src/k8s.io/apiserver/pkg/server/secure_serving.go `Serve`); without it every
/// connection a client's pool ever opened stayed open for good (the node agent's pool grows with
/// its concurrent requests: 35 connections, 70 descriptors in the process, after a churn of 450
/// pods). hyper has one timer for an idle connection and a slow request head, so the head of a
/// request also gets 90 s (kube-apiserver's `ReadHeaderTimeout` is 32 s).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The admission plugins `--enable-admission-plugins` may name at release `version`: the
/// ones armorlet's server always runs (accepted, nothing changes) and PodSecurityPolicy
/// (served up to 1.24). Returns whether PodSecurityPolicy is enabled; an unknown name is
/// kube-apiserver's error.
pub fn admission_plugins(
    list: &str,
    version: armorlet_confinement::EmulatedVersion,
) -> Result<bool, String> {
    const ALWAYS_ON: &[&str] = &[
        "NamespaceLifecycle",
        "ServiceAccount",
        "DefaultTolerationSeconds",
        "Priority",
        "NodeRestriction",
    ];
    let mut psp = false;
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "PodSecurityPolicy"
            && version.has(armorlet_confinement::Switch::PodSecurityPolicy)
        {
            psp = true;
        } else if !ALWAYS_ON.contains(&name) {
            // k8s.io/apiserver/pkg/admission/plugins.go NewFromPlugins.
            return Err(format!(
                "enable-admission-plugins plugin \"{name}\" is unknown"
            ));
        }
    }
    Ok(psp)
}

/// Where Service ClusterIPs and NodePorts come from: kube-apiserver's
/// `--service-cluster-ip-range` (kubeadm's `10.96.0.0/12` by default) and
/// `--service-node-port-range` (`30000-32767`). Separate ranges let several
/// `armorlet up` share one machine's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRanges {
    /// The service CIDR (IPv4).
    pub cidr: ipnet_v4::Cidr,
    /// The NodePort range.
    pub node_ports: std::ops::RangeInclusive<i64>,
}

impl Default for ServiceRanges {
    fn default() -> Self {
        ServiceRanges {
            cidr: ipnet_v4::Cidr {
                addr: std::net::Ipv4Addr::new(10, 96, 0, 0),
                prefix: 12,
            },
            node_ports: 30000..=32767,
        }
    }
}

impl ServiceRanges {
    /// The first address of the range (as a number) and its size.
    pub fn cluster_ips(&self) -> (u32, u32) {
        let size = 1u64 << (32 - u32::from(self.cidr.prefix));
        (
            u32::from(self.cidr.addr) & !((size - 1) as u32),
            size.min(u64::from(u32::MAX)) as u32,
        )
    }

    /// Parses `--service-node-port-range` (`30000-32767`), as kube-apiserver does.
    pub fn parse_node_ports(s: &str) -> Result<std::ops::RangeInclusive<i64>, String> {
        let bad = || format!("invalid port range {s:?}: want FIRST-LAST, e.g. 30000-32767");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let (a, b): (u16, u16) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if a == 0 || a > b {
            return Err(bad());
        }
        Ok(i64::from(a)..=i64::from(b))
    }
}

/// An IPv4 CIDR (`--service-cluster-ip-range`).
pub mod ipnet_v4 {
    use std::net::Ipv4Addr;

    /// `addr/prefix`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Cidr {
        /// The network address.
        pub addr: Ipv4Addr,
        /// Prefix length, 8..=30 (a service range needs room for two addresses).
        pub prefix: u8,
    }

    impl std::str::FromStr for Cidr {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, String> {
            let bad = |why: &str| format!("invalid CIDR {s:?}: {why}");
            let (a, p) = s
                .split_once('/')
                .ok_or_else(|| bad("want ADDRESS/PREFIX"))?;
            let addr: Ipv4Addr = a.parse().map_err(|_| bad("not an IPv4 address"))?;
            let prefix: u8 = p.parse().map_err(|_| bad("bad prefix length"))?;
            if !(8..=30).contains(&prefix) {
                return Err(bad("the prefix length must be between 8 and 30"));
            }
            Ok(Cidr { addr, prefix })
        }
    }
}

impl Config {
    /// Defaults for everything but the data directory and address.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen,
            bookmark_interval: Duration::from_secs(60),
            max_body_bytes: 3 * 1024 * 1024,
            emulated_version: armorlet_confinement::EmulatedVersion::DEFAULT,
            apparmor_feature_gate: true,
            node_monitor_grace_period: nodelifecycle::DEFAULT_GRACE,
            publish_namespace_defaults: false,
            service_ranges: ServiceRanges::default(),
            pod_security_policy: false,
            max_requests_inflight: inflight::DEFAULT_MAX_REQUESTS_INFLIGHT,
            max_mutating_requests_inflight: inflight::DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT,
            event_ttl: DEFAULT_EVENT_TTL,
        }
    }
}

/// Failures starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store could not be opened.
    #[error("opening the store: {0}")]
    Store(#[from] armorlet_store::StoreError),
    /// Certificates, token or kubeconfig could not be prepared.
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialsError),
    /// Binding or accepting failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Creating the system namespaces failed.
    #[error("creating system namespaces: {0}")]
    Bootstrap(ApiError),
    /// The audit log could not be opened.
    #[error("{path}: {source}")]
    Audit {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A bound server, ready to [`serve`](Server::serve).
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<State>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    local_addr: SocketAddr,
    kubeconfig: PathBuf,
    ca_path: PathBuf,
    node_grace: Duration,
    publish_defaults: bool,
    data_dir: PathBuf,
}

impl Server {
    /// Opens the store, prepares credentials, binds the socket, writes the kubeconfig and creates
    /// the system namespaces.
    pub async fn bind(config: Config) -> Result<Self, ServerError> {
        let event_ttl = Duration::from_secs(config.event_ttl.as_secs());
        let store = Store::open_with(
            &config.data_dir,
            armorlet_store::Options {
                ttl: if event_ttl.is_zero() {
                    Vec::new()
                } else {
                    vec![(registry::core("events").gvr(), event_ttl)]
                },
                unsynced: vec![registry::core("events").gvr()],
                ..Default::default()
            },
        )?;
        let creds = Credentials::load_or_create(&config.data_dir, config.listen)?;
        let acceptor = TlsAcceptor::from(creds.server_config()?);
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Listen {
                addr: config.listen,
                source,
            })?;
        let kubeconfig = creds.write_kubeconfig(&config.data_dir, local_addr)?;
        let audit =
            audit::AuditLog::open(&config.data_dir).map_err(|source| ServerError::Audit {
                path: audit::log_path(&config.data_dir),
                source,
            })?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let state = Arc::new(State {
            store,
            authenticator: auth::Authenticator::new(
                creds.admin_token.clone(),
                credentials::node_tokens_dir(&config.data_dir),
            ),
            audit,
            inflight: inflight::MaxInFlight::new(
                config.max_requests_inflight,
                config.max_mutating_requests_inflight,
            ),
            max_body_bytes: config.max_body_bytes,
            bookmark_interval: config.bookmark_interval,
            shutdown: shutdown_rx,
            allocation: std::sync::Mutex::new(()),
            emulated_version: config.emulated_version,
            registry: registry::Registry::new(config.emulated_version),
            apparmor_feature_gate: config.apparmor_feature_gate,
            service_ranges: config.service_ranges.clone(),
            kubelet_client: credentials::kubelet_client_config(&config.data_dir)?,
            ca_pem: creds.ca_pem.clone(),
            pod_security_policy: config.pod_security_policy,
            schedule_soon: tokio::sync::Notify::new(),
            blocking_slots: tokio::sync::Semaphore::new(handlers::BLOCKING_REQUESTS),
        });
        for ns in SYSTEM_NAMESPACES {
            handlers::ensure_namespace(&state, ns).map_err(ServerError::Bootstrap)?;
        }
        crd::install_bundled(&state.store, &state.registry).map_err(ServerError::Bootstrap)?;
        Ok(Self {
            listener,
            acceptor,
            state,
            shutdown_tx,
            local_addr,
            kubeconfig,
            ca_path: config.data_dir.join("pki").join("ca.crt"),
            node_grace: config.node_monitor_grace_period,
            publish_defaults: config.publish_namespace_defaults,
            data_dir: config.data_dir,
        })
    }

    /// Issues node `node`'s credential (see [`credentials::issue_node_kubeconfig`]): its token,
    /// accepted from now on, and its kubeconfig for this server; returns the kubeconfig's path.
    pub fn issue_node_credential(&self, node: &str) -> Result<PathBuf, ServerError> {
        let path = credentials::issue_node_kubeconfig(&self.data_dir, node)?;
        self.state.authenticator.reload_if_changed();
        Ok(path)
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The kubeconfig written for this server.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The cluster CA certificate (PEM): node APIs verify the API server's client certificate
    /// with it (it is also the kubeconfig's `certificate-authority-data`).
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The store, for in-process callers.
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Serves until `shutdown` completes, then stops accepting, ends watches and waits (at most
    /// 5 s) for open connections to finish.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let Server {
            listener,
            acceptor,
            state,
            shutdown_tx,
            local_addr,
            node_grace,
            publish_defaults,
            ..
        } = self;
        tokio::pin!(shutdown);
        let mut conns = JoinSet::new();
        let sweeper_state = state.clone();
        let mut sweeper_stop = state.shutdown.clone();
        conns.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = handlers::sweep_terminating_namespaces(&sweeper_state) {
                            tracing::warn!(error = %e, "namespace sweep failed");
                        }
                    }
                    _ = sweeper_stop.changed() => break,
                }
            }
        });
        // Expired Events, as etcd's lessor revokes their leases (see `EXPIRY_INTERVAL`).
        let expiry_state = state.clone();
        let mut expiry_stop = state.shutdown.clone();
        conns.spawn(async move {
            let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let st = expiry_state.clone();
                        match tokio::task::spawn_blocking(move || st.store.expire(EXPIRY_BATCH)).await {
                            Ok(Ok(0)) => {}
                            Ok(Ok(n)) => tracing::debug!(deleted = n, "expired events deleted"),
                            Ok(Err(e)) => tracing::warn!(error = %e, "deleting expired events failed"),
                            Err(e) => tracing::warn!(error = %e, "event expiry panicked"),
                        }
                    }
                    _ = expiry_stop.changed() => break,
                }
            }
        });
        let sched_state = state.clone();
        let mut sched_stop = state.shutdown.clone();
        conns.spawn(async move {
            let mut tick = tokio::time::interval(scheduler::INTERVAL);
            // The store's resourceVersion after the last pass that wrote nothing: the
            // controllers below are functions of the stored objects only, so while nothing
            // was written since, a pass would find nothing to do. Skipping it keeps an idle
            // server from parsing every pod several times a second (110 pods: most of its
            // idle CPU). The node lifecycle check depends on time too and always runs.
            let mut settled: Option<u64> = None;
            let memory: Arc<std::sync::Mutex<ControllerMemory>> = Arc::default();
            // The error of the failing passes, and when it was last logged.
            let mut failing: Option<(String, std::time::Instant)> = None;
            loop {
                tokio::select! {
                    // Every INTERVAL, and at once when a pod is created (the real scheduler
                    // watches pods; a tick alone added half an interval to every pod start).
                    _ = async {
                        tokio::select! {
                            _ = tick.tick() => {}
                            _ = sched_state.schedule_soon.notified() => {}
                        }
                    } => {
                        let st = sched_state.clone();
                        let last = settled.take();
                        let memory = memory.clone();
                        let pass = move || -> std::result::Result<Option<u64>, error::ApiError> {
                            if publish_defaults {
                                admission::ensure_namespace_defaults(&st)?;
                            }
                            let mut memory = memory.lock().unwrap_or_else(|p| p.into_inner());
                            let memory = &mut *memory;
                            nodelifecycle::check_once(&st, node_grace, &mut memory.node_health)?;
                            let before = st.store.current_resource_version()?;
                            if last == Some(before) {
                                return Ok(last);
                            }
                            let pods_gvr = armorlet_store::Gvr::new("", "v1", "pods");
                            let informer = match &mut memory.pods {
                                Some(i) => {
                                    i.sync()?;
                                    i
                                }
                                none => none.insert(st.store.informer(std::slice::from_ref(&pods_gvr))?),
                            };
                            let pods = informer.list(&pods_gvr);
                            daemonsets::sync_once(&st, &pods)?;
                            profiles::sync_once(&st, &pods)?;
                            scheduler::schedule_once(&st, &pods)?;
                            endpoints::sync_once(&st, &pods)?;
                            gc::sync_once(&st, &mut memory.gc)?;
                            // Settled only when this pass wrote nothing: a write may be work
                            // for a controller that ran before it.
                            let after = st.store.current_resource_version()?;
                            Ok((after == before).then_some(after))
                        };
                        match tokio::task::spawn_blocking(pass).await {
                            // A failing store (its disk full) fails every pass: the same
                            // error is logged once a minute, not twice a second.
                            Ok(Err(e)) => {
                                let repeat = failing.as_ref().is_some_and(|(m, at): &(String, std::time::Instant)| {
                                    *m == e.message && at.elapsed() < Duration::from_secs(60)
                                });
                                if !repeat {
                                    tracing::warn!(error = %e.message, "scheduling pass failed");
                                    failing = Some((e.message, std::time::Instant::now()));
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "scheduling pass panicked"),
                            Ok(Ok(rv)) => {
                                if failing.take().is_some() {
                                    tracing::info!("scheduling pass works again");
                                }
                                settled = rv;
                            }
                        }
                    }
                    _ = sched_stop.changed() => break,
                }
            }
        });
        tracing::info!(addr = %local_addr, "API server listening");
        loop {
            while conns.try_join_next().is_some() {}
            let (tcp, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Transient (EMFILE, ECONNABORTED): log and keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let acceptor = acceptor.clone();
            let state = state.clone();
            let mut stop = state.shutdown.clone();
            conns.spawn(async move {
                // kube-apiserver (Go's net/http) answers a plain-HTTP request on its TLS port
                // with this 400 and closes; nothing of the API is served without TLS.
                if looks_like_plain_http(&tcp).await {
                    use tokio::io::AsyncWriteExt;
                    let mut tcp = tcp;
                    let _ = tcp
                        .write_all(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
                        .await;
                    let _ = tcp.shutdown().await;
                    return;
                }
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let svc = service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handlers::handle(state, req, peer).await) }
                });
                let conn = http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(IDLE_TIMEOUT)
                    .max_header_size(MAX_HEADER_BYTES)
                    .max_buf_size(2 * MAX_HEADER_BYTES)
                    .serve_connection(TokioIo::new(tls), svc)
                    .with_upgrades();
                tokio::pin!(conn);
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    }
                    _ = stop.changed() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            });
        }
        tracing::info!("shutting down");
        let _ = shutdown_tx.send(true);
        drop(listener);
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        conns.abort_all();
        let audit = state.audit.clone();
        let _ = tokio::task::spawn_blocking(move || audit.close()).await;
        Ok(())
    }
}

/// Whether a new connection starts with an HTTP request instead of a TLS handshake
/// (crypto/tls `RecordHeaderError` + net/http `tlsRecordHeaderLooksLikeHTTP`: the first five
/// bytes are `GET /`, `HEAD `, `POST `, `PUT /` or `OPTIO`). Waits at most 10 s for them.
/// What the in-process controllers remember between passes.
#[derive(Default)]
struct ControllerMemory {
    /// The node lifecycle controller's heartbeats (monotonic).
    node_health: nodelifecycle::NodeHealth,
    /// Every stored pod, parsed once and kept current from the store's feed, for the
    /// controllers that read pods (made by the first pass that runs them).
    pods: Option<armorlet_store::Informer>,
    /// The garbage collector's view of the objects with owners.
    gc: gc::Tracked,
}

async fn looks_like_plain_http(tcp: &tokio::net::TcpStream) -> bool {
    let mut head = [0u8; 5];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = match tokio::time::timeout_at(deadline, tcp.peek(&mut head)).await {
            Ok(Ok(n)) => n,
            _ => return false,
        };
        // 0x16: a TLS handshake record.
        if n == 0 || head[0] == 0x16 {
            return false;
        }
        if n == head.len() {
            return matches!(&head, b"GET /" | b"HEAD " | b"POST " | b"PUT /" | b"OPTIO");
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
