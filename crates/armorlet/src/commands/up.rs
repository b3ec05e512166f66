//! `armorlet up`: runs the control plane (for now the API server and its store) until SIGINT or
//! SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Flags of `armorlet up`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the store, certificates, admin token and kubeconfig.
    #[arg(long, default_value = "/var/lib/armorlet")]
    pub data_dir: PathBuf,
    /// Address the API server listens on (HTTPS).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Kubernetes release (1.X) whose pod AppArmor/seccomp semantics the API server emulates
    /// on create.
    #[arg(long, default_value = "1.32", value_name = "1.X")]
    pub emulated_version: armorlet_apiserver::EmulatedVersion,
}

/// Starts the server and blocks until a termination signal.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(tracing::Level::INFO)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let mut config = armorlet_apiserver::Config::new(&args.data_dir, args.listen);
        config.emulated_version = args.emulated_version;
        let server = armorlet_apiserver::Server::bind(config)
            .await
            .with_context(|| format!("starting the API server on {}", args.listen))?;
        println!("export KUBECONFIG={}", server.kubeconfig_path().display());
        server
            .serve(shutdown_signal())
            .await
            .context("serving the API")?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("termination signal received");
}
