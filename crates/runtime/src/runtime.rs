//! [`Runtime`]: the entry point tying sandboxes, bundles, the OCI runtime
//! binary and the monitors together.

use crate::error::RuntimeError;
use crate::types::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The node's container runtime: one OCI runtime binary and its directories.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub(crate) cfg: RuntimeConfig,
    pub(crate) binary: PathBuf,
    pub(crate) version: String,
}

impl Runtime {
    /// Finds and checks the binary, reads its version, prepares the host
    /// (the v1 hugetlb hierarchy crun needs on hybrid cgroups) and creates
    /// the directories.
    pub fn new(cfg: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        crate::host::new_runtime(cfg)
    }

    /// The runtime's name and version, as the CRI reports it: `crun://1.8.1`.
    pub fn runtime_version(&self) -> &str {
        &self.version
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.cfg
    }

    /// The OCI runtime binary in use.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Whether the OCI runtime can apply AppArmor profiles: `linux.apparmor.enabled` of its
    /// `features` output (runtime-spec `features.md`: "whether AppArmor support is compiled
    /// in"). `None` when the runtime has no `features` command or its answer does not say
    /// (crun 1.8 has no `features`): "None means unknown, not false".
    pub fn apparmor_support(&self) -> Option<bool> {
        let out = std::process::Command::new(&self.binary)
            .arg("features")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        apparmor_support_of(&out.stdout)
    }

    /// Creates the pod's sandbox; returns the existing one if it exists.
    pub fn create_sandbox(&self, spec: &SandboxSpec) -> Result<Sandbox, RuntimeError> {
        crate::sandbox::create(&self.cfg.sandboxes_dir, spec)
    }

    /// Removes the pod's sandbox (unmounts the namespaces); idempotent.
    pub fn remove_sandbox(&self, pod_uid: &str) -> Result<(), RuntimeError> {
        crate::sandbox::remove(&self.cfg.sandboxes_dir, pod_uid)
    }

    /// The sandboxes on disk.
    pub fn list_sandboxes(&self) -> Result<Vec<Sandbox>, RuntimeError> {
        crate::sandbox::list(&self.cfg.sandboxes_dir)
    }

    /// Prepares the bundle and rootfs, spawns the monitor and returns when
    /// the OCI runtime's `create` finished.
    pub fn create_container(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        crate::monitor::create_container(self, spec)
    }

    /// Runs the OCI runtime's `start`; when it fails, the container is deleted from the runtime
    /// (its directory stays for status and logs).
    pub fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        crate::status::start_container(self, id)
    }

    /// The container's status, from `status.json` and the runtime's `state`.
    pub fn container_status(&self, id: &str) -> Result<ContainerStatus, RuntimeError> {
        crate::status::container_status(self, id)
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; idempotent. An error when the runtime fails
    /// to signal a container that may still run.
    pub fn stop_container(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        crate::status::stop_container(self, id, grace)
    }

    /// Runtime `delete --force`, unmounts the rootfs, removes the directory; idempotent. An
    /// error (and the directory kept) when the runtime fails to delete a container it holds.
    pub fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        crate::status::remove_container(self, id)
    }

    /// Cleans up after container `id`'s monitor died without recording its exit, as containerd
    /// does after a task's shim died: the container is deleted from the OCI runtime (its
    /// processes killed) and exit code 137 is recorded. Returns whether it recorded an exit;
    /// a recorded exit is never replaced, and a container that cannot be deleted is an error
    /// (it may still run).
    pub fn recover_lost_monitor(&self, id: &str) -> Result<bool, RuntimeError> {
        crate::status::recover_lost_monitor(self, id)
    }

    /// The containers on disk (for adoption after a restart).
    pub fn list_containers(&self) -> Result<Vec<ContainerRecord>, RuntimeError> {
        crate::status::list_containers(self)
    }

    /// Runs a command in a running container with its confinement.
    pub fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecProcess, RuntimeError> {
        crate::exec::exec(self, id, spec)
    }

    /// Attaches to container `id`'s main process: its output live from the monitor, and its
    /// stdin with `stdin` (when the container has one).
    pub fn attach(&self, id: &str, stdin: bool) -> Result<Attached, RuntimeError> {
        crate::attach::attach(&self.container_dir(id)?, stdin)
    }

    /// The directory of container `id` (after checking the id).
    pub(crate) fn container_dir(&self, id: &str) -> Result<PathBuf, RuntimeError> {
        crate::util::check_id(id)?;
        Ok(self.cfg.containers_dir.join(id))
    }

    /// Runs `<runtime> --root R ARGS` under the request timeout: its stdout, or why it failed.
    pub(crate) fn call(&self, args: &[&str]) -> Result<String, crate::invoke::CallError> {
        let what = args.first().copied().unwrap_or_default();
        crate::invoke::call(self.command().args(args), what, self.cfg.request_timeout)
    }

    /// The error of a failed [`Runtime::call`] of subcommand `command`.
    pub(crate) fn call_error(&self, command: &str, e: crate::invoke::CallError) -> RuntimeError {
        RuntimeError::call(command, self.cfg.request_timeout, e)
    }

    /// Whether the OCI runtime holds state for container `id` (crun keeps `<root>/<id>/status`,
    /// runc `<root>/<id>/state.json`): a container it cannot delete while this holds may still
    /// run, so its removal must not be reported done.
    pub(crate) fn runtime_knows(&self, id: &str) -> bool {
        self.cfg.state_root.join(id).exists()
    }

    /// A `Command` for the OCI runtime with `--root` set.
    pub(crate) fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.binary);
        cmd.arg("--root").arg(&self.cfg.state_root);
        cmd
    }
}

/// `linux.apparmor.enabled` of an OCI runtime's `features` JSON; `None` when the document
/// cannot be read or does not say.
pub fn apparmor_support_of(features: &[u8]) -> Option<bool> {
    let f: oci_spec::runtime::Features = serde_json::from_slice(features).ok()?;
    *f.linux().as_ref()?.apparmor().as_ref()?.enabled()
}

#[cfg(test)]
mod tests {
    use super::apparmor_support_of;

    #[test]
    fn apparmor_support_reads_the_features_document() {
        let doc = |linux: &str| {
            format!(r#"{{"ociVersionMin": "1.0.0", "ociVersionMax": "1.1.0", "linux": {linux}}}"#)
        };
        assert_eq!(
            apparmor_support_of(doc(r#"{"apparmor": {"enabled": true}}"#).as_bytes()),
            Some(true)
        );
        assert_eq!(
            apparmor_support_of(doc(r#"{"apparmor": {"enabled": false}}"#).as_bytes()),
            Some(false)
        );
        assert_eq!(
            apparmor_support_of(doc(r#"{"apparmor": {}}"#).as_bytes()),
            None
        );
        assert_eq!(apparmor_support_of(doc("{}").as_bytes()), None);
        assert_eq!(apparmor_support_of(b"not json"), None);
    }
}
