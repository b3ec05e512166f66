//! Attributing a process to a container (via `/proc/<pid>/cgroup`) and the container to a pod
//! (via the agent's [`Attribute`] implementation).

use std::path::Path;

/// The pod container a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
}

/// Maps a container id (the last component of the process's cgroup path) to its pod container.
/// The node agent implements it; any `Fn(&str) -> Option<Owner>` does.
pub trait Attribute {
    /// The owner of the container `container_id`, if it is one of ours.
    fn owner(&self, container_id: &str) -> Option<Owner>;
}

impl<F: Fn(&str) -> Option<Owner>> Attribute for F {
    fn owner(&self, container_id: &str) -> Option<Owner> {
        self(container_id)
    }
}

/// The container id of a process: the last component of its cgroup path (the unified
/// `0::` line when it is not the root, else the first non-root v1 line), with a systemd
/// `<prefix>-<id>.scope` unwrapped. `None` when the process is gone or in the root cgroup.
pub fn container_id_of(pid: u32) -> Option<String> {
    container_id_in(
        &std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("cgroup")).ok()?,
    )
}

fn container_id_in(cgroup: &str) -> Option<String> {
    let paths: Vec<(&str, &str)> = cgroup
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((controllers, path))
        })
        .filter(|(_, p)| *p != "/" && !p.is_empty())
        .collect();
    let path = paths
        .iter()
        .find(|(c, _)| c.is_empty())
        .or_else(|| paths.first())?
        .1;
    let last = path.rsplit('/').find(|c| !c.is_empty())?;
    let id = match last.strip_suffix(".scope") {
        Some(scope) => scope.rsplit_once('-').map_or(scope, |(_, id)| id),
        None => last,
    };
    Some(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::container_id_in;

    #[test]
    fn last_component_of_the_cgroup_path() {
        let hybrid = "12:pids:/armorlet/pod1/abc123\n1:name=systemd:/armorlet/pod1/abc123\n0::/\n";
        assert_eq!(container_id_in(hybrid).as_deref(), Some("abc123"));
        let unified = "0::/kubepods/besteffort/pod9/cri-containerd-def456.scope\n";
        assert_eq!(container_id_in(unified).as_deref(), Some("def456"));
        assert_eq!(container_id_in("0::/\n5:cpu:/\n"), None);
    }
}
