//! Docker-style image reference normalization (`busybox` → `docker.io/library/busybox:latest`).

use crate::ImageError;

/// Normalizes a reference the way Docker and the CRI do: the default registry `docker.io`,
/// the `library/` namespace for single-component names on it, and the tag `latest` when
/// neither a tag nor a digest is given. A digest reference keeps its digest
/// (`busybox@sha256:…` → `docker.io/library/busybox@sha256:…`).
pub fn normalize_reference(reference: &str) -> Result<String, ImageError> {
    let bad = |reason: &str| ImageError::InvalidReference {
        reference: reference.to_string(),
        reason: reason.to_string(),
    };
    if reference.is_empty() {
        return Err(bad("empty reference"));
    }
    let (name_tag, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest {
        check_digest(d).map_err(|r| bad(&r))?;
    }
    let (name, tag) = split_tag(name_tag);
    if let Some(t) = tag {
        check_tag(t).map_err(|r| bad(&r))?;
    }
    let name = qualify_name(name).map_err(|r| bad(&r))?;
    Ok(match (tag, digest) {
        (_, Some(d)) => format!("{name}@{d}"),
        (Some(t), None) => format!("{name}:{t}"),
        (None, None) => format!("{name}:latest"),
    })
}

/// Splits `name[:tag]`; a colon before the last slash belongs to a registry port.
fn split_tag(name_tag: &str) -> (&str, Option<&str>) {
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    }
}

/// Adds the default registry and `library/` namespace; checks the path components.
fn qualify_name(name: &str) -> Result<String, String> {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io".to_string()
    } else {
        domain
    };
    let path = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    for component in path.split('/') {
        let ok = !component.is_empty()
            && component
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            && component
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if !ok {
            return Err(format!(
                "repository name component {component:?} must be lowercase alphanumerics separated by '.', '_' or '-'"
            ));
        }
    }
    Ok(format!("{domain}/{path}"))
}

fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !tag.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(format!("invalid tag {tag:?}"))
    }
}

/// Checks a `sha256:<64 hex>` digest.
pub(crate) fn check_digest(digest: &str) -> Result<(), String> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if is_hex64(hex) => Ok(()),
        _ => Err(format!(
            "invalid digest {digest:?} (expected sha256:<64 hex digits>)"
        )),
    }
}

/// True for exactly 64 lowercase hex digits.
pub(crate) fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The repository of a normalized reference: `docker.io/library/busybox` of
/// `docker.io/library/busybox:1.28` or `…@sha256:…` (a port in the host is not a tag).
pub fn repository(name: &str) -> &str {
    if let Some((repo, _)) = name.split_once('@') {
        return repo;
    }
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    name[slash..]
        .rfind(':')
        .map_or(name, |i| &name[..slash + i])
}

#[cfg(test)]
mod tests {
    use super::normalize_reference as n;
    use super::repository;

    #[test]
    fn docker_style_normalization() {
        assert_eq!(n("busybox").unwrap(), "docker.io/library/busybox:latest");
        assert_eq!(n("busybox:1.28").unwrap(), "docker.io/library/busybox:1.28");
        assert_eq!(
            n("hashicorp/http-echo:0.2.3").unwrap(),
            "docker.io/hashicorp/http-echo:0.2.3"
        );
        assert_eq!(
            n("docker.io/library/busybox:1.28").unwrap(),
            "docker.io/library/busybox:1.28"
        );
        assert_eq!(
            n("localhost:5000/app").unwrap(),
            "localhost:5000/app:latest"
        );
        assert_eq!(
            n("registry.k8s.io/pause:3.10").unwrap(),
            "registry.k8s.io/pause:3.10"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            n(&format!("busybox@{d}")).unwrap(),
            format!("docker.io/library/busybox@{d}")
        );
    }

    #[test]
    fn bad_references_are_refused() {
        for r in [
            "",
            "Busybox",
            "busybox:",
            "busybox@sha256:12",
            "a//b",
            "busybox:-x",
        ] {
            assert!(n(r).is_err(), "{r:?} accepted");
        }
    }

    #[test]
    fn repositories_of_names() {
        assert_eq!(
            repository("localhost:5000/busybox:1.28"),
            "localhost:5000/busybox"
        );
        assert_eq!(
            repository("localhost:5000/busybox@sha256:ab"),
            "localhost:5000/busybox"
        );
        assert_eq!(
            repository("localhost:5000/busybox"),
            "localhost:5000/busybox"
        );
    }
}
