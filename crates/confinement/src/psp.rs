//! PodSecurityPolicy (`policy/v1beta1`, served up to 1.24): validation of the policy objects
//! and the admission plugin (`--enable-admission-plugins=PodSecurityPolicy`), as kube-apiserver
//! 1.22 does them. The tutorials' part is the AppArmor annotations of a policy
//! (`apparmor.security.beta.kubernetes.io/defaultProfileName` and `allowedProfileNames`); the
//! other strategies are here because a policy is all of them at once.
//!
//! Upstream sources (v1.22): plugin/pkg/admission/security/podsecuritypolicy/admission.go
//! (policies sorted by name; the first that admits the pod without changing it wins, else the
//! first that admits it with changes; otherwise every policy's errors, flat), and
//! pkg/security/podsecuritypolicy/{provider.go, apparmor, seccomp, capabilities, user, group,
//! selinux}/ (defaults, then validation), pkg/apis/policy/validation/validation.go (the
//! policy object).
//!
//! Everyone who creates pods here is authorized to `use` every policy (armorlet's API server
//! has one administrator identity, no RBAC). Not implemented (a policy using them is refused at
//! creation, so no pod is ever admitted by a rule armorlet does not check): `allowedUnsafeSysctls`
//! / `forbiddenSysctls`, `runtimeClass`, `allowedFlexVolumes`, `allowedCSIDrivers`.

use serde_json::{json, Value};

use crate::validate::{go_quote, Cause, Reason};

/// PSP annotation: the AppArmor profile a container gets when it names none.
pub const APPARMOR_DEFAULT: &str = "apparmor.security.beta.kubernetes.io/defaultProfileName";
/// PSP annotation: the AppArmor profiles containers may use (comma-separated).
pub const APPARMOR_ALLOWED: &str = "apparmor.security.beta.kubernetes.io/allowedProfileNames";
/// PSP annotation: the pod's default seccomp profile.
pub const SECCOMP_DEFAULT: &str = "seccomp.security.alpha.kubernetes.io/defaultProfileName";
/// PSP annotation: the allowed seccomp profiles (`*`: any).
pub const SECCOMP_ALLOWED: &str = "seccomp.security.alpha.kubernetes.io/allowedProfileNames";
/// The pod annotation naming the policy that admitted it.
pub const VALIDATED_PSP_ANNOTATION: &str = "kubernetes.io/psp";

const APPARMOR_CONTAINER_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
const SECCOMP_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// The volume types a policy may list (policy/v1beta1 FSType), `*` for all.
const FS_TYPES: &[&str] = &[
    "azureFile",
    "flocker",
    "flexVolume",
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephFS",
    "downwardAPI",
    "fc",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "*",
];

/// Why a pod was not admitted: kube-apiserver's `PodSecurityPolicy: ...` text (the caller adds
/// `pods "<name>" is forbidden: `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

/// Checks a PodSecurityPolicy object as kube-apiserver's validation does; also refuses the
/// fields armorlet cannot enforce (see the module docs).
pub fn validate_policy(psp: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let spec = &psp["spec"];
    let rule = |path: &str, v: &Value, allowed: &[&str], required: bool, out: &mut Vec<Cause>| {
        let r = v["rule"].as_str();
        if r.is_none() && !required && v.is_null() {
            return;
        }
        let r = r.unwrap_or("");
        if !allowed.contains(&r) {
            let supported: Vec<String> = allowed.iter().map(|a| go_quote(a)).collect();
            out.push(cause(
                Reason::FieldValueNotSupported,
                &format!("{path}.rule"),
                format!(
                    "Unsupported value: {}: supported values: {}",
                    go_quote(r),
                    supported.join(", ")
                ),
            ));
        }
        for (i, range) in v["ranges"].as_array().into_iter().flatten().enumerate() {
            let (min, max) = (range["min"].as_i64(), range["max"].as_i64());
            if let (Some(min), Some(max)) = (min, max) {
                if min > max {
                    out.push(cause(
                        Reason::FieldValueInvalid,
                        &format!("{path}.ranges[{i}]"),
                        format!("Invalid value: {min}: min cannot be greater than max"),
                    ));
                }
            }
        }
    };
    rule(
        "spec.seLinux",
        &spec["seLinux"],
        &["MustRunAs", "RunAsAny"],
        true,
        &mut out,
    );
    rule(
        "spec.runAsUser",
        &spec["runAsUser"],
        &["MustRunAs", "MustRunAsNonRoot", "RunAsAny"],
        true,
        &mut out,
    );
    rule(
        "spec.runAsGroup",
        &spec["runAsGroup"],
        &["MayRunAs", "MustRunAs", "RunAsAny"],
        false,
        &mut out,
    );
    rule(
        "spec.supplementalGroups",
        &spec["supplementalGroups"],
        &["MayRunAs", "MustRunAs", "RunAsAny"],
        true,
        &mut out,
    );
    rule(
        "spec.fsGroup",
        &spec["fsGroup"],
        &["MayRunAs", "MustRunAs", "RunAsAny"],
        true,
        &mut out,
    );
    for (i, v) in spec["volumes"].as_array().into_iter().flatten().enumerate() {
        let v = v.as_str().unwrap_or("");
        if !FS_TYPES.contains(&v) {
            out.push(cause(
                Reason::FieldValueNotSupported,
                &format!("spec.volumes[{i}]"),
                format!("Unsupported value: {}", go_quote(v)),
            ));
        }
    }
    for unsupported in [
        "allowedUnsafeSysctls",
        "forbiddenSysctls",
        "runtimeClass",
        "allowedFlexVolumes",
        "allowedCSIDrivers",
    ] {
        if spec
            .get(unsupported)
            .is_some_and(|v| !v.is_null() && v != &json!([]))
        {
            out.push(cause(
                Reason::FieldValueForbidden,
                &format!("spec.{unsupported}"),
                "Forbidden: not enforced by armorlet's PodSecurityPolicy admission; a policy with it could admit pods it should not".into(),
            ));
        }
    }
    let ann = &psp["metadata"]["annotations"];
    let ann_path = |k: &str| format!("metadata.annotations[{k}]");
    if let Some(p) = ann[APPARMOR_DEFAULT].as_str().filter(|p| !p.is_empty()) {
        if let Err(e) = apparmor_format(p) {
            out.push(cause(
                Reason::FieldValueInvalid,
                &ann_path(APPARMOR_DEFAULT),
                format!("Invalid value: {}: {e}", go_quote(p)),
            ));
        }
    }
    if let Some(allowed) = ann[APPARMOR_ALLOWED].as_str().filter(|p| !p.is_empty()) {
        for p in allowed.split(',') {
            if let Err(e) = apparmor_format(p) {
                out.push(cause(
                    Reason::FieldValueInvalid,
                    &ann_path(APPARMOR_ALLOWED),
                    format!("Invalid value: {}: {e}", go_quote(allowed)),
                ));
            }
        }
    }
    if let Some(p) = ann[SECCOMP_DEFAULT].as_str().filter(|p| !p.is_empty()) {
        if let Err(e) = seccomp_format(p) {
            out.push(cause(
                Reason::FieldValueInvalid,
                &ann_path(SECCOMP_DEFAULT),
                format!("Invalid value: {}: {e}", go_quote(p)),
            ));
        }
    }
    if let Some(allowed) = ann[SECCOMP_ALLOWED].as_str().filter(|p| !p.is_empty()) {
        for p in allowed.split(',').filter(|p| *p != "*") {
            if let Err(e) = seccomp_format(p) {
                out.push(cause(
                    Reason::FieldValueInvalid,
                    &ann_path(SECCOMP_ALLOWED),
                    format!("Invalid value: {}: {e}", go_quote(p)),
                ));
            }
        }
    }
    out
}

/// pkg/security/apparmor ValidateProfileFormat.
fn apparmor_format(p: &str) -> Result<(), String> {
    if p.is_empty() || p == "runtime/default" || p == "unconfined" || p.starts_with("localhost/") {
        Ok(())
    } else {
        Err(format!("invalid AppArmor profile name: {}", go_quote(p)))
    }
}

/// pkg/apis/core/validation ValidateSeccompProfile.
fn seccomp_format(p: &str) -> Result<(), String> {
    if p == "runtime/default" || p == "docker/default" || p == "unconfined" {
        return Ok(());
    }
    match p.strip_prefix("localhost/") {
        Some(rest) if !rest.is_empty() && !rest.split('/').any(|s| s == "..") => Ok(()),
        Some(_) => Err("must be a valid seccomp profile".into()),
        None => Err("must be a valid seccomp profile".into()),
    }
}

fn cause(reason: Reason, field: &str, message: String) -> Cause {
    Cause {
        reason,
        field: field.to_owned(),
        message,
    }
}

/// Admits `pod` (after the ServiceAccount admission, before validation) against `policies`:
/// on success the pod carries the chosen policy's defaults and the `kubernetes.io/psp`
/// annotation, and the policy's name is returned.
pub fn admit(pod: &mut Value, policies: &[Value]) -> Result<String, Rejected> {
    let mut sorted: Vec<&Value> = policies.iter().collect();
    sorted.sort_by_key(|p| p["metadata"]["name"].as_str().unwrap_or("").to_owned());
    if sorted.is_empty() {
        return Err(Rejected(
            "PodSecurityPolicy: no providers available to validate pod request".into(),
        ));
    }
    let mut mutated_ok: Option<(Value, String)> = None;
    let mut errors: Vec<String> = Vec::new();
    for psp in sorted {
        let name = psp["metadata"]["name"].as_str().unwrap_or("").to_owned();
        let mut copy = pod.clone();
        mutate_pod(psp, &mut copy);
        let errs = validate_pod(psp, &copy);
        if !errs.is_empty() {
            errors.extend(errs);
            continue;
        }
        if &copy == pod {
            return finish(pod, copy, name);
        }
        if mutated_ok.is_none() {
            mutated_ok = Some((copy, name));
        }
    }
    match mutated_ok {
        Some((copy, name)) => finish(pod, copy, name),
        None => Err(Rejected(format!(
            "PodSecurityPolicy: unable to admit pod: [{}]",
            errors.join(" ")
        ))),
    }
}

fn finish(pod: &mut Value, admitted: Value, name: String) -> Result<String, Rejected> {
    *pod = admitted;
    if !pod["metadata"]["annotations"].is_object() {
        pod["metadata"]["annotations"] = json!({});
    }
    pod["metadata"]["annotations"][VALIDATED_PSP_ANNOTATION] = json!(name);
    Ok(name)
}

/// `policy.spec.allowPrivilegeEscalation`, defaulted to true (v1beta1 defaults).
fn allows_escalation(psp: &Value) -> bool {
    psp["spec"]["allowPrivilegeEscalation"]
        .as_bool()
        .unwrap_or(true)
}

fn first_range_min(strategy: &Value) -> Option<i64> {
    strategy["ranges"].as_array()?.first()?["min"].as_i64()
}

/// The containers' JSON paths and values: init containers first, as VisitContainersWithPath.
fn containers(pod: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (list, key) in [
        ("initContainers", "initContainers"),
        ("containers", "containers"),
    ] {
        for (i, c) in pod["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            out.push((format!("spec.{key}[{i}]"), c.clone()));
        }
    }
    out
}

/// provider.go MutatePod: the policy's defaults for what the pod leaves unset.
fn mutate_pod(psp: &Value, pod: &mut Value) {
    let spec = &psp["spec"];
    let mut psc = pod["spec"]["securityContext"].clone();
    if !psc.is_object() {
        psc = json!({});
    }
    if psc["supplementalGroups"].is_null() && spec["supplementalGroups"]["rule"] == "MustRunAs" {
        if let Some(min) = first_range_min(&spec["supplementalGroups"]) {
            psc["supplementalGroups"] = json!([min]);
        }
    }
    if psc["fsGroup"].is_null() && spec["fsGroup"]["rule"] == "MustRunAs" {
        if let Some(min) = first_range_min(&spec["fsGroup"]) {
            psc["fsGroup"] = json!(min);
        }
    }
    if psc["seLinuxOptions"].is_null() && spec["seLinux"]["rule"] == "MustRunAs" {
        if let Some(o) = spec["seLinux"].get("seLinuxOptions") {
            psc["seLinuxOptions"] = o.clone();
        }
    }
    // Seccomp is generated at the pod level only (the annotation; the field follows from the
    // API server's annotation/field sync of the emulated release).
    let has_pod_seccomp = pod["metadata"]["annotations"][SECCOMP_POD]
        .as_str()
        .is_some()
        || !psc["seccompProfile"].is_null();
    if !has_pod_seccomp {
        if let Some(d) = psp["metadata"]["annotations"][SECCOMP_DEFAULT]
            .as_str()
            .filter(|d| !d.is_empty())
        {
            set_annotation(pod, SECCOMP_POD, d);
        }
    }
    if psc != json!({}) || !pod["spec"]["securityContext"].is_null() {
        pod["spec"]["securityContext"] = psc.clone();
    }
    for list in ["initContainers", "containers"] {
        let n = pod["spec"][list].as_array().map_or(0, Vec::len);
        for i in 0..n {
            let mut c = pod["spec"][list][i].take();
            mutate_container(psp, pod, &psc, &mut c);
            pod["spec"][list][i] = c;
        }
    }
}

fn set_annotation(pod: &mut Value, key: &str, value: &str) {
    if !pod["metadata"]["annotations"].is_object() {
        pod["metadata"]["annotations"] = json!({});
    }
    pod["metadata"]["annotations"][key] = json!(value);
}

/// provider.go mutateContainer.
fn mutate_container(psp: &Value, pod: &mut Value, psc: &Value, c: &mut Value) {
    let spec = &psp["spec"];
    let mut sc = c["securityContext"].clone();
    if !sc.is_object() {
        sc = json!({});
    }
    let eff = |k: &str, sc: &Value| {
        if sc[k].is_null() {
            psc[k].clone()
        } else {
            sc[k].clone()
        }
    };
    if eff("runAsUser", &sc).is_null() && spec["runAsUser"]["rule"] == "MustRunAs" {
        if let Some(min) = first_range_min(&spec["runAsUser"]) {
            sc["runAsUser"] = json!(min);
        }
    }
    if eff("runAsGroup", &sc).is_null() && spec["runAsGroup"]["rule"] == "MustRunAs" {
        if let Some(min) = first_range_min(&spec["runAsGroup"]) {
            sc["runAsGroup"] = json!(min);
        }
    }
    if eff("seLinuxOptions", &sc).is_null() && spec["seLinux"]["rule"] == "MustRunAs" {
        if let Some(o) = spec["seLinux"].get("seLinuxOptions") {
            sc["seLinuxOptions"] = o.clone();
        }
    }
    let name = c["name"].as_str().unwrap_or("").to_owned();
    let key = format!("{APPARMOR_CONTAINER_PREFIX}{name}");
    let has_profile = pod["metadata"]["annotations"][&key]
        .as_str()
        .is_some_and(|s| !s.is_empty());
    if !has_profile {
        if let Some(d) = psp["metadata"]["annotations"][APPARMOR_DEFAULT]
            .as_str()
            .filter(|d| !d.is_empty())
        {
            set_annotation(pod, &key, d);
        }
    }
    if eff("runAsNonRoot", &sc).is_null()
        && eff("runAsUser", &sc).is_null()
        && spec["runAsUser"]["rule"] == "MustRunAsNonRoot"
    {
        sc["runAsNonRoot"] = json!(true);
    }
    // capabilities/mustrunas.go Generate: default adds (unless dropped), required drops.
    let default_add = strings(&spec["defaultAddCapabilities"]);
    let required_drop = strings(&spec["requiredDropCapabilities"]);
    if !default_add.is_empty() || !required_drop.is_empty() {
        let mut add = strings(&sc["capabilities"]["add"]);
        let mut drop = strings(&sc["capabilities"]["drop"]);
        for cap in default_add {
            if !add.contains(&cap) && !drop.contains(&cap) {
                add.push(cap);
            }
        }
        for cap in required_drop {
            if !drop.contains(&cap) {
                drop.push(cap);
            }
        }
        let mut caps = json!({});
        if !add.is_empty() {
            caps["add"] = json!(add);
        }
        if !drop.is_empty() {
            caps["drop"] = json!(drop);
        }
        sc["capabilities"] = caps;
    }
    if spec["readOnlyRootFilesystem"] == true && sc["readOnlyRootFilesystem"].is_null() {
        sc["readOnlyRootFilesystem"] = json!(true);
    }
    if sc["allowPrivilegeEscalation"].is_null() {
        if let Some(d) = spec["defaultAllowPrivilegeEscalation"].as_bool() {
            sc["allowPrivilegeEscalation"] = json!(d);
        } else if !allows_escalation(psp) {
            sc["allowPrivilegeEscalation"] = json!(false);
        }
    }
    if sc != json!({}) || !c["securityContext"].is_null() {
        c["securityContext"] = sc;
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// Group/user ranges as Go prints `[]IDRange` with `%v`: `[{1 65535}]`.
fn ranges_text(strategy: &Value) -> String {
    let parts: Vec<String> = strategy["ranges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| format!("{{{} {}}}", r["min"], r["max"]))
        .collect();
    format!("[{}]", parts.join(" "))
}

fn in_ranges(strategy: &Value, id: i64) -> bool {
    strategy["ranges"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| {
            r["min"].as_i64().is_some_and(|m| id >= m) && r["max"].as_i64().is_some_and(|m| id <= m)
        })
}

/// group/mustrunas.go and mayrunas.go Validate (RunAsAny checks nothing).
fn validate_groups(strategy: &Value, path: &str, groups: &[i64], out: &mut Vec<String>) {
    match strategy["rule"].as_str() {
        Some("MustRunAs") if groups.is_empty() => out.push(format!(
            "{path}: Invalid value: []int64(nil): unable to validate empty groups against required ranges"
        )),
        Some("MustRunAs") | Some("MayRunAs") => {
            for g in groups {
                if !in_ranges(strategy, *g) {
                    out.push(format!(
                        "{path}: Invalid value: {g}: group {g} must be in the ranges: {}",
                        ranges_text(strategy)
                    ));
                }
            }
        }
        _ => {}
    }
}

/// provider.go ValidatePod (with validateContainer for each container).
fn validate_pod(psp: &Value, pod: &Value) -> Vec<String> {
    let spec = &psp["spec"];
    let mut out = Vec::new();
    let psc = &pod["spec"]["securityContext"];
    let pod_spec = &pod["spec"];
    let fs: Vec<i64> = psc["fsGroup"].as_i64().into_iter().collect();
    validate_groups(
        &spec["fsGroup"],
        "spec.securityContext.fsGroup",
        &fs,
        &mut out,
    );
    let sup: Vec<i64> = psc["supplementalGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .collect();
    validate_groups(
        &spec["supplementalGroups"],
        "spec.securityContext.supplementalGroups",
        &sup,
        &mut out,
    );
    let seccomp = SeccompRule::new(psp);
    seccomp.validate(
        &format!("pod.metadata.annotations[{SECCOMP_POD}]"),
        &pod_seccomp(pod),
        &mut out,
    );
    validate_selinux(
        spec,
        "spec.securityContext.seLinuxOptions",
        &psc["seLinuxOptions"],
        &mut out,
    );
    for (field, what) in [
        ("hostNetwork", "Host network"),
        ("hostPID", "Host PID"),
        ("hostIPC", "Host IPC"),
    ] {
        // The pod-level host namespaces live in spec (the internal API has them in the
        // security context, hence the path).
        if pod_spec[field] == true && spec[field] != true {
            out.push(format!(
                "spec.securityContext.{field}: Invalid value: true: {what} is not allowed to be used"
            ));
        }
    }
    validate_volumes(spec, pod, &mut out);
    for (path, c) in containers(pod) {
        validate_container(psp, &seccomp, pod, &path, &c, &mut out);
    }
    out
}

fn validate_selinux(spec: &Value, path: &str, opts: &Value, out: &mut Vec<String>) {
    if spec["seLinux"]["rule"] != "MustRunAs" {
        return;
    }
    let want = &spec["seLinux"]["seLinuxOptions"];
    if opts.is_null() {
        out.push(format!("{path}: Required value: "));
        return;
    }
    for k in ["level", "role", "type", "user"] {
        let (have, want) = (
            opts[k].as_str().unwrap_or(""),
            want[k].as_str().unwrap_or(""),
        );
        if have != want {
            out.push(format!(
                "{path}.{k}: Invalid value: {}: must be {want}",
                go_quote(have)
            ));
        }
    }
}

/// psputil.GetVolumeFSType: the policy name of a volume's source.
fn volume_type(v: &Value) -> Option<&'static str> {
    let m = v.as_object()?;
    FS_TYPES
        .iter()
        .copied()
        .find(|t| *t != "*" && m.contains_key(*t))
        .or_else(|| m.contains_key("cephfs").then_some("cephFS"))
}

fn validate_volumes(spec: &Value, pod: &Value, out: &mut Vec<String>) {
    let allowed = strings(&spec["volumes"]);
    let all = allowed.iter().any(|v| v == "*");
    for (i, v) in pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("spec.volumes[{i}]");
        let Some(t) = volume_type(v) else {
            out.push(format!(
                "{path}: Invalid value: \"\": unknown volume type for volume: {}",
                v["name"].as_str().unwrap_or("")
            ));
            continue;
        };
        if !all && !allowed.iter().any(|a| a == t) {
            out.push(format!(
                "{path}: Invalid value: {}: {t} volumes are not allowed to be used",
                go_quote(t)
            ));
            continue;
        }
        if t == "hostPath" {
            let p = v["hostPath"]["path"].as_str().unwrap_or("");
            let (allows, read_only) = allows_host_path(spec, p);
            if !allows {
                out.push(format!(
                    "{path}.hostPath.pathPrefix: Invalid value: {}: is not allowed to be used",
                    go_quote(p)
                ));
            } else if read_only {
                let name = v["name"].as_str().unwrap_or("");
                for (cpath, c) in containers(pod) {
                    for (j, m) in c["volumeMounts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        if m["name"] == name && m["readOnly"] != true {
                            out.push(format!(
                                "{cpath}.volumeMounts[{j}].readOnly: Invalid value: false: must be read-only"
                            ));
                        }
                    }
                }
            }
        }
    }
}

/// psputil.AllowsHostVolumePath: (allowed, must be read-only).
fn allows_host_path(spec: &Value, path: &str) -> (bool, bool) {
    let Some(list) = spec["allowedHostPaths"]
        .as_array()
        .filter(|l| !l.is_empty())
    else {
        return (true, false);
    };
    let mut read_only = true;
    let mut allowed = false;
    for a in list {
        let prefix = a["pathPrefix"].as_str().unwrap_or("");
        if has_path_prefix(path, prefix) {
            allowed = true;
            if a["readOnly"] != true {
                read_only = false;
            }
        }
    }
    (allowed, allowed && read_only)
}

/// Component-wise prefix match (psputil.hasPathPrefix): `/foo` allows `/foo` and `/foo/bar`,
/// not `/foobar`.
fn has_path_prefix(path: &str, prefix: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    if p.is_empty() {
        return true;
    }
    path == p
        || path
            .strip_prefix(p)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The pod's seccomp profile in annotation form (the annotation, else the field).
fn pod_seccomp(pod: &Value) -> String {
    if let Some(a) = pod["metadata"]["annotations"][SECCOMP_POD].as_str() {
        return a.to_owned();
    }
    field_as_annotation(&pod["spec"]["securityContext"]["seccompProfile"])
}

/// pkg/api/pod SeccompAnnotationForField.
fn field_as_annotation(f: &Value) -> String {
    match f["type"].as_str() {
        Some("RuntimeDefault") => "runtime/default".into(),
        Some("Unconfined") => "unconfined".into(),
        Some("Localhost") => format!("localhost/{}", f["localhostProfile"].as_str().unwrap_or("")),
        _ => String::new(),
    }
}

/// seccomp/strategy.go.
struct SeccompRule {
    allowed: Option<Vec<String>>,
    any: bool,
    text: String,
}

impl SeccompRule {
    fn new(psp: &Value) -> Self {
        let text = psp["metadata"]["annotations"][SECCOMP_ALLOWED]
            .as_str()
            .map(str::to_owned);
        let list: Option<Vec<String>> = text
            .as_ref()
            .map(|t| t.split(',').map(str::to_owned).collect());
        SeccompRule {
            any: list.as_ref().is_some_and(|l| l.iter().any(|p| p == "*")),
            allowed: list.map(|l| l.into_iter().filter(|p| p != "*").collect()),
            text: text.unwrap_or_default(),
        }
    }

    fn validate(&self, path: &str, profile: &str, out: &mut Vec<String>) {
        let allowed = self.allowed.as_deref().unwrap_or(&[]);
        if !self.any && allowed.is_empty() && !profile.is_empty() {
            out.push(format!("{path}: Forbidden: seccomp may not be set"));
            return;
        }
        let ok = (allowed.is_empty() && profile.is_empty())
            || self.any
            || allowed.iter().any(|a| a == profile);
        if !ok {
            out.push(format!(
                "{path}: Forbidden: {profile} is not an allowed seccomp profile. Valid values are {}",
                self.text
            ));
        }
    }
}

/// provider.go validateContainer.
fn validate_container(
    psp: &Value,
    seccomp: &SeccompRule,
    pod: &Value,
    path: &str,
    c: &Value,
    out: &mut Vec<String>,
) {
    let spec = &psp["spec"];
    let psc = &pod["spec"]["securityContext"];
    let sc = &c["securityContext"];
    let eff = |k: &str| {
        if sc[k].is_null() {
            &psc[k]
        } else {
            &sc[k]
        }
    };
    let sc_path = format!("{path}.securityContext");
    let name = c["name"].as_str().unwrap_or("");
    // user/*.go
    match spec["runAsUser"]["rule"].as_str() {
        Some("MustRunAsNonRoot") => {
            let (non_root, user) = (eff("runAsNonRoot"), eff("runAsUser"));
            if user.as_i64() == Some(0) {
                out.push(format!(
                    "{sc_path}.runAsUser: Invalid value: 0: running with the root UID is forbidden"
                ));
            } else if user.is_null() {
                if non_root.is_null() {
                    out.push(format!(
                        "{sc_path}.runAsNonRoot: Required value: must be true"
                    ));
                } else if non_root == false {
                    out.push(format!(
                        "{sc_path}.runAsNonRoot: Invalid value: false: must be true"
                    ));
                }
            }
        }
        Some("MustRunAs") => match eff("runAsUser").as_i64() {
            None => out.push(format!("{sc_path}.runAsUser: Required value: ")),
            Some(uid) if !in_ranges(&spec["runAsUser"], uid) => out.push(format!(
                "{sc_path}.runAsUser: Invalid value: {uid}: must be in the ranges: {}",
                ranges_text(&spec["runAsUser"])
            )),
            Some(_) => {}
        },
        _ => {}
    }
    let groups: Vec<i64> = eff("runAsGroup").as_i64().into_iter().collect();
    validate_groups(
        &spec["runAsGroup"],
        &format!("{sc_path}.runAsGroup"),
        &groups,
        out,
    );
    validate_selinux(
        spec,
        &format!("{sc_path}.seLinuxOptions"),
        eff("seLinuxOptions"),
        out,
    );
    // apparmor/strategy.go
    let key = format!("{APPARMOR_CONTAINER_PREFIX}{name}");
    if let Some(allowed_text) = psp["metadata"]["annotations"][APPARMOR_ALLOWED].as_str() {
        let allowed: Vec<&str> = allowed_text.split(',').collect();
        let field = format!("pod.metadata.annotations[{key}]");
        let profile = pod["metadata"]["annotations"][&key].as_str().unwrap_or("");
        if profile.is_empty() {
            if !allowed.is_empty() {
                out.push(format!("{field}: Forbidden: AppArmor profile must be set"));
            }
        } else if !allowed.contains(&profile) {
            out.push(format!(
                "{field}: Forbidden: {profile} is not an allowed profile. Allowed values: {}",
                go_quote(allowed_text)
            ));
        }
    }
    // seccomp, per container: its annotation, else its field, else the pod's.
    let ann = &pod["metadata"]["annotations"];
    let container_profile = ann[format!("{SECCOMP_CONTAINER_PREFIX}{name}")]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let f = field_as_annotation(&sc["seccompProfile"]);
            if f.is_empty() {
                pod_seccomp(pod)
            } else {
                f
            }
        });
    seccomp.validate(
        &format!("pod.metadata.annotations[{SECCOMP_CONTAINER_PREFIX}{name}]"),
        &container_profile,
        out,
    );
    if spec["privileged"] != true && sc["privileged"] == true {
        out.push(format!(
            "{sc_path}.privileged: Invalid value: true: Privileged containers are not allowed"
        ));
    }
    let proc_mount = sc["procMount"].as_str().unwrap_or("Default");
    let allowed_pm = strings(&spec["allowedProcMountTypes"]);
    let pm_ok = if allowed_pm.is_empty() {
        proc_mount == "Default"
    } else {
        allowed_pm.iter().any(|p| p == proc_mount)
    };
    if !pm_ok {
        out.push(format!(
            "{sc_path}.procMount: Invalid value: {}: ProcMountType is not allowed",
            go_quote(proc_mount)
        ));
    }
    validate_capabilities(
        spec,
        &format!("{sc_path}.capabilities"),
        &sc["capabilities"],
        out,
    );
    for p in c["ports"].as_array().into_iter().flatten() {
        let Some(hp) = p["hostPort"].as_i64().filter(|hp| *hp > 0) else {
            continue;
        };
        let ranges = spec["hostPorts"].as_array().cloned().unwrap_or_default();
        let ok = ranges.iter().any(|r| {
            r["min"].as_i64().is_some_and(|m| hp >= m) && r["max"].as_i64().is_some_and(|m| hp <= m)
        });
        if !ok {
            let text: Vec<String> = ranges
                .iter()
                .map(|r| {
                    if r["min"] == r["max"] {
                        format!("{}", r["min"])
                    } else {
                        format!("{}-{}", r["min"], r["max"])
                    }
                })
                .collect();
            out.push(format!(
                "{path}.hostPort: Invalid value: {hp}: Host port {hp} is not allowed to be used. Allowed ports: [{}]",
                text.join(",")
            ));
        }
    }
    if spec["readOnlyRootFilesystem"] == true {
        match sc["readOnlyRootFilesystem"].as_bool() {
            None => out.push(format!(
                "{sc_path}.readOnlyRootFilesystem: Invalid value: \"null\": ReadOnlyRootFilesystem may not be nil and must be set to true"
            )),
            Some(false) => out.push(format!(
                "{sc_path}.readOnlyRootFilesystem: Invalid value: false: ReadOnlyRootFilesystem must be set to true"
            )),
            Some(true) => {}
        }
    }
    if !allows_escalation(psp) && sc["allowPrivilegeEscalation"] != false {
        out.push(format!(
            "{sc_path}.allowPrivilegeEscalation: Invalid value: {}: Allowing privilege escalation for containers is not allowed",
            go_value(&sc["allowPrivilegeEscalation"])
        ));
    }
}

/// capabilities/mustrunas.go Validate.
fn validate_capabilities(spec: &Value, path: &str, caps: &Value, out: &mut Vec<String>) {
    let allowed = strings(&spec["allowedCapabilities"]);
    let default_add = strings(&spec["defaultAddCapabilities"]);
    let any = allowed.iter().any(|c| c == "*");
    for cap in strings(&caps["add"]) {
        if !any && !allowed.contains(&cap) && !default_add.contains(&cap) {
            out.push(format!(
                "{path}.add: Invalid value: {}: capability may not be added",
                go_quote(&cap)
            ));
        }
    }
    let drop = strings(&caps["drop"]);
    for cap in strings(&spec["requiredDropCapabilities"]) {
        let dropped = drop
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&cap) || d == "ALL");
        if !dropped {
            out.push(format!(
                "{path}.drop: Invalid value: {}: {cap} is required to be dropped but was not found",
                go_value(&caps["drop"])
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn psp(name: &str, annotations: Value, spec: Value) -> Value {
        let mut s = json!({
            "seLinux": {"rule": "RunAsAny"}, "runAsUser": {"rule": "RunAsAny"},
            "supplementalGroups": {"rule": "RunAsAny"}, "fsGroup": {"rule": "RunAsAny"},
            "volumes": ["*"],
        });
        for (k, v) in spec.as_object().unwrap() {
            s[k] = v.clone();
        }
        json!({"metadata": {"name": name, "annotations": annotations}, "spec": s})
    }

    fn pod(annotations: Value) -> Value {
        json!({"metadata": {"name": "hello-apparmor", "annotations": annotations},
               "spec": {"containers": [{"name": "hello", "image": "busybox"}]}})
    }

    #[test]
    fn default_profile_is_applied_and_named_policy_recorded() {
        let p = psp(
            "apparmor",
            json!({APPARMOR_DEFAULT: "runtime/default",
                   APPARMOR_ALLOWED: "runtime/default,localhost/k8s-apparmor-example-deny-write"}),
            json!({}),
        );
        let mut pd = pod(json!({}));
        assert_eq!(
            admit(&mut pd, std::slice::from_ref(&p)).unwrap(),
            "apparmor"
        );
        let ann = &pd["metadata"]["annotations"];
        assert_eq!(
            ann[format!("{APPARMOR_CONTAINER_PREFIX}hello")],
            "runtime/default"
        );
        assert_eq!(ann[VALIDATED_PSP_ANNOTATION], "apparmor");
        // An allowed profile is kept.
        let mut pd = pod(json!({
            "container.apparmor.security.beta.kubernetes.io/hello": "localhost/k8s-apparmor-example-deny-write"}));
        admit(&mut pd, &[p]).unwrap();
        assert_eq!(
            pd["metadata"]["annotations"]["container.apparmor.security.beta.kubernetes.io/hello"],
            "localhost/k8s-apparmor-example-deny-write"
        );
    }

    #[test]
    fn a_profile_outside_the_allowed_list_is_forbidden() {
        let p = psp(
            "apparmor",
            json!({APPARMOR_ALLOWED: "runtime/default"}),
            json!({}),
        );
        let mut pd = pod(json!({
            "container.apparmor.security.beta.kubernetes.io/hello": "localhost/k8s-apparmor-example-allow-write"}));
        let before = pd.clone();
        let err = admit(&mut pd, std::slice::from_ref(&p)).unwrap_err();
        assert_eq!(
            err.0,
            "PodSecurityPolicy: unable to admit pod: [pod.metadata.annotations[container.apparmor.security.beta.kubernetes.io/hello]: Forbidden: localhost/k8s-apparmor-example-allow-write is not an allowed profile. Allowed values: \"runtime/default\"]"
        );
        assert_eq!(pd, before, "a rejected pod is left unchanged");
        // No profile and no default: must be set.
        let err = admit(&mut pod(json!({})), &[p]).unwrap_err();
        assert!(
            err.0.contains("Forbidden: AppArmor profile must be set"),
            "{}",
            err.0
        );
    }

    #[test]
    fn unchanged_admission_wins_over_a_mutating_one_and_names_sort() {
        let mutating = psp(
            "a-default",
            json!({APPARMOR_DEFAULT: "runtime/default"}),
            json!({}),
        );
        let plain = psp("z-plain", json!({}), json!({}));
        let mut pd = pod(json!({}));
        assert_eq!(
            admit(&mut pd, &[mutating.clone(), plain]).unwrap(),
            "z-plain"
        );
        let mut pd = pod(json!({}));
        assert_eq!(admit(&mut pd, &[mutating]).unwrap(), "a-default");
        assert_eq!(
            admit(&mut pod(json!({})), &[]).unwrap_err().0,
            "PodSecurityPolicy: no providers available to validate pod request"
        );
    }

    #[test]
    fn privileged_escalation_volumes_and_seccomp() {
        let p = psp(
            "restricted",
            json!({SECCOMP_DEFAULT: "runtime/default", SECCOMP_ALLOWED: "runtime/default"}),
            json!({"allowPrivilegeEscalation": false, "volumes": ["configMap", "projected"],
                   "requiredDropCapabilities": ["ALL"]}),
        );
        let mut pd = json!({"metadata": {"name": "x"}, "spec": {
            "containers": [{"name": "c", "securityContext": {"privileged": true, "allowPrivilegeEscalation": true}}],
            "volumes": [{"name": "s", "secret": {"secretName": "s"}}]}});
        let err = admit(&mut pd, std::slice::from_ref(&p)).unwrap_err().0;
        assert!(err.contains("spec.volumes[0]: Invalid value: \"secret\": secret volumes are not allowed to be used"), "{err}");
        assert!(err.contains("spec.containers[0].securityContext.privileged: Invalid value: true: Privileged containers are not allowed"), "{err}");
        assert!(err.contains("spec.containers[0].securityContext.allowPrivilegeEscalation: Invalid value: true: Allowing privilege escalation for containers is not allowed"), "{err}");
        // A plain pod gets the defaults: seccomp annotation, no escalation, all caps dropped.
        let mut pd = json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "c"}]}});
        admit(&mut pd, std::slice::from_ref(&p)).unwrap();
        assert_eq!(
            pd["metadata"]["annotations"][SECCOMP_POD],
            "runtime/default"
        );
        let sc = &pd["spec"]["containers"][0]["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        // A seccomp profile outside the list.
        let mut pd = json!({"metadata": {"name": "x", "annotations": {SECCOMP_POD: "unconfined"}},
                            "spec": {"containers": [{"name": "c"}]}});
        let err = admit(&mut pd, &[p]).unwrap_err().0;
        assert!(err.contains("pod.metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: Forbidden: unconfined is not an allowed seccomp profile. Valid values are runtime/default"), "{err}");
    }

    #[test]
    fn run_as_non_root_and_host_paths() {
        let p = psp(
            "nonroot",
            json!({}),
            json!({"runAsUser": {"rule": "MustRunAsNonRoot"},
                   "allowedHostPaths": [{"pathPrefix": "/var/lib/kubelet", "readOnly": true}]}),
        );
        let mut pd = json!({"metadata": {"name": "x"}, "spec": {
            "containers": [{"name": "c", "securityContext": {"runAsUser": 0},
                            "volumeMounts": [{"name": "h", "mountPath": "/h"}]}],
            "volumes": [{"name": "h", "hostPath": {"path": "/var/lib/kubelet/seccomp"}},
                        {"name": "e", "hostPath": {"path": "/etc"}}]}});
        let err = admit(&mut pd, std::slice::from_ref(&p)).unwrap_err().0;
        assert!(err.contains("spec.containers[0].securityContext.runAsUser: Invalid value: 0: running with the root UID is forbidden"), "{err}");
        assert!(err.contains("spec.volumes[1].hostPath.pathPrefix: Invalid value: \"/etc\": is not allowed to be used"), "{err}");
        assert!(err.contains("spec.containers[0].volumeMounts[0].readOnly: Invalid value: false: must be read-only"), "{err}");
        // Unset user: the policy marks the container runAsNonRoot.
        let mut pd = json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "c"}]}});
        admit(&mut pd, &[p]).unwrap();
        assert_eq!(
            pd["spec"]["containers"][0]["securityContext"]["runAsNonRoot"],
            true
        );
    }

    #[test]
    fn policy_objects_are_validated() {
        let bad = json!({"metadata": {"name": "p", "annotations": {
                APPARMOR_DEFAULT: "deny-write", SECCOMP_ALLOWED: "localhost/../x,*"}},
            "spec": {"runAsUser": {"rule": "Sometimes"}, "fsGroup": {"rule": "RunAsAny"},
                     "supplementalGroups": {"rule": "RunAsAny"}, "volumes": ["bogus"],
                     "allowedUnsafeSysctls": ["kernel.*"]}});
        let causes: Vec<String> = validate_policy(&bad)
            .iter()
            .map(|c| c.to_string())
            .collect();
        let all = causes.join("\n");
        assert!(all.contains("spec.seLinux.rule: Unsupported value: \"\": supported values: \"MustRunAs\", \"RunAsAny\""), "{all}");
        assert!(
            all.contains("spec.runAsUser.rule: Unsupported value: \"Sometimes\""),
            "{all}"
        );
        assert!(
            all.contains("spec.volumes[0]: Unsupported value: \"bogus\""),
            "{all}"
        );
        assert!(
            all.contains("spec.allowedUnsafeSysctls: Forbidden: not enforced"),
            "{all}"
        );
        assert!(all.contains("metadata.annotations[apparmor.security.beta.kubernetes.io/defaultProfileName]: Invalid value: \"deny-write\": invalid AppArmor profile name: \"deny-write\""), "{all}");
        assert!(all.contains("seccomp.security.alpha.kubernetes.io/allowedProfileNames]: Invalid value: \"localhost/../x\""), "{all}");
        assert!(validate_policy(&psp(
            "ok",
            json!({APPARMOR_ALLOWED: "runtime/default"}),
            json!({})
        ))
        .is_empty());
        assert!(has_path_prefix("/foo/bar", "/foo") && !has_path_prefix("/foobar", "/foo"));
    }
}
