//! The kubelet's image manager pieces that are not the worker's state machine
//! (pkg/kubelet/images/image_manager.go, 1.32): the pull policy decision, the pull
//! credentials from a pod's `imagePullSecrets` (pkg/kubelet/kubelet_pods.go
//! `getPullSecretsForPod`, pkg/credentialprovider/secrets `MakeDockerKeyring`), the error text
//! a failed pull shows, and Go's duration format for the `Pulled` event.

use std::time::Duration;

use armorlet_images::{Credential, ImageError};
use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use kube::Api;
use serde_json::Value;

/// The effective pull policy: the container's, else the API server's default
/// (pkg/apis/core/v1/defaults.go `SetDefaults_Container`: `Always` for `:latest` or no tag,
/// else `IfNotPresent`), for pods that reached the node without defaulting.
pub fn pull_policy(c: &Container) -> String {
    if let Some(p) = c.image_pull_policy.clone().filter(|p| !p.is_empty()) {
        return p;
    }
    let image = c.image.as_deref().unwrap_or_default();
    let name = image.split('@').next().unwrap_or_default();
    let last = name.rsplit('/').next().unwrap_or_default();
    match last.split_once(':') {
        _ if image.contains('@') => "IfNotPresent".into(),
        Some((_, "latest")) | None => "Always".into(),
        Some(_) => "IfNotPresent".into(),
    }
}

/// `shouldPullImage` of image_manager.go.
pub fn should_pull(policy: &str, present: bool) -> bool {
    match policy {
        "Never" => false,
        "Always" => true,
        _ => !present,
    }
}

/// The credentials of the pod's `imagePullSecrets` that apply to `image`, and the names of the
/// secrets that could not be read (the kubelet's `FailedToRetrieveImagePullSecret` event).
pub async fn pull_credentials(
    client: &kube::Client,
    pod: &Pod,
    image: &str,
) -> (Vec<Credential>, Vec<String>) {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut configs = Vec::new();
    let mut missing = Vec::new();
    let names = pod
        .spec
        .as_ref()
        .and_then(|s| s.image_pull_secrets.clone())
        .unwrap_or_default();
    for r in names {
        let name = r.name;
        if name.is_empty() {
            continue;
        }
        match api.get(&name).await {
            Ok(secret) => {
                let data = secret.data.unwrap_or_default();
                let doc = match secret.type_.as_deref() {
                    Some("kubernetes.io/dockerconfigjson") => data.get(".dockerconfigjson"),
                    Some("kubernetes.io/dockercfg") => data.get(".dockercfg"),
                    _ => None,
                };
                if let Some(v) = doc.and_then(|b| serde_json::from_slice::<Value>(&b.0).ok()) {
                    configs.push(v);
                }
            }
            Err(_) => missing.push(name),
        }
    }
    let creds = armorlet_images::credentials_for(&configs, image).unwrap_or_default();
    (creds, missing)
}

/// The message of a failed pull as the kubelet shows it: the CRI error, which the kubelet
/// receives as a gRPC status (`rpc error: code = NotFound desc = failed to pull and unpack
/// image ...`, containerd's text; evalCRIPullErr passes it through for ErrImagePull).
pub fn pull_error(e: &ImageError) -> String {
    let code = match e {
        ImageError::Pull {
            not_found: true, ..
        } => "NotFound",
        _ => "Unknown",
    };
    format!("rpc error: code = {code} desc = {e}")
}

/// Go's `time.Duration.String` of `d` truncated to milliseconds (`1.234s`, `567ms`, `1m2.5s`,
/// `0s`), as the `Pulled` event prints it.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let h = ms / 3_600_000;
    let m = ms / 60_000 % 60;
    let s = ms / 1000 % 60;
    let frac = ms % 1000;
    let mut secs = if frac == 0 {
        format!("{s}s")
    } else {
        let f = format!("{frac:03}");
        format!("{s}.{}s", f.trim_end_matches('0'))
    };
    if h > 0 {
        secs = format!("{h}h{m}m{secs}");
    } else if m > 0 {
        secs = format!("{m}m{secs}");
    }
    secs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(image: &str, policy: Option<&str>) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            image_pull_policy: policy.map(str::to_string),
            ..Container::default()
        }
    }

    #[test]
    fn default_policy_follows_the_tag() {
        assert_eq!(pull_policy(&container("busybox", None)), "Always");
        assert_eq!(pull_policy(&container("busybox:latest", None)), "Always");
        assert_eq!(
            pull_policy(&container("localhost:5000/busybox", None)),
            "Always"
        );
        assert_eq!(
            pull_policy(&container("localhost:5000/busybox:1.28", None)),
            "IfNotPresent"
        );
        let d = format!("busybox@sha256:{}", "a".repeat(64));
        assert_eq!(pull_policy(&container(&d, None)), "IfNotPresent");
        assert_eq!(pull_policy(&container("busybox", Some("Never"))), "Never");
    }

    #[test]
    fn should_pull_per_policy() {
        assert!(should_pull("Always", true));
        assert!(should_pull("IfNotPresent", false));
        assert!(!should_pull("IfNotPresent", true));
        assert!(!should_pull("Never", false));
    }

    #[test]
    fn durations_as_go_prints_them() {
        assert_eq!(go_duration(Duration::from_micros(1500)), "1ms");
        assert_eq!(go_duration(Duration::from_micros(300)), "0s");
        assert_eq!(go_duration(Duration::from_millis(313)), "313ms");
        assert_eq!(go_duration(Duration::from_millis(1661)), "1.661s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
        assert_eq!(go_duration(Duration::from_millis(62_500)), "1m2.5s");
        assert_eq!(go_duration(Duration::from_secs(3723)), "1h2m3s");
    }

    #[test]
    fn pull_errors_carry_the_grpc_code() {
        let e = ImageError::Pull {
            reference: "localhost:5000/nope:1".into(),
            reason: "failed to resolve reference \"localhost:5000/nope:1\": localhost:5000/nope:1: not found".into(),
            not_found: true,
        };
        assert_eq!(
            pull_error(&e),
            "rpc error: code = NotFound desc = failed to pull and unpack image \"localhost:5000/nope:1\": failed to resolve reference \"localhost:5000/nope:1\": localhost:5000/nope:1: not found"
        );
    }
}
