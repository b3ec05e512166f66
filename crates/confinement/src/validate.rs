//! kube-apiserver pod-create behaviour for seccomp and AppArmor, per emulated
//! version.
//!
//! Sources read (kubernetes/kubernetes, v1.32 unless a switch says otherwise):
//! - `pkg/apis/core/validation/validation.go`: `validateSeccompProfileField`,
//!   `ValidateSeccompProfileType`, `validateLocalDescendingPath`,
//!   `validatePathNoBacksteps`, `ValidateSeccompPodAnnotations`,
//!   `ValidateAppArmorPodAnnotations`, `ValidateAppArmorProfileFormat`,
//!   `ValidateAppArmorProfileField`, `validateSeccompAnnotationsAndFields`,
//!   `validateAppArmorAnnotationsAndFieldsMatchOnCreate`, `ValidatePodCreate`.
//! - `pkg/registry/core/pod/strategy.go`: `applySeccompVersionSkew`,
//!   `applyAppArmorVersionSkew` (create-time sync and the AppArmor warning).
//! - `pkg/api/pod/util.go`: annotation <-> field conversions.
//! - `pkg/api/pod/warnings.go`: seccomp annotation warnings.
//! - `staging/src/k8s.io/apimachinery/pkg/util/validation/field/errors.go`:
//!   how a cause message is rendered (`ErrorBody`).
//!
//! Order of operations on create, as `rest.BeforeCreate` does it:
//! [`prepare_for_create`] (sync; AppArmor warnings), then [`validate_create`];
//! only a valid pod gets the [`warnings_on_create`] warnings.

use std::fmt;

use serde_json::Value;

use crate::pod::{
    set_annotation, set_profile, ContainerKind, ContainerView, PodView, Profile, ProfileField,
    ShapeError, APPARMOR_CONTAINER_ANNOTATION_PREFIX, SECCOMP_CONTAINER_ANNOTATION_PREFIX,
    SECCOMP_POD_ANNOTATION,
};
use crate::version::{EmulatedVersion, Switch};

const LOCALHOST: &str = "Localhost";
const RUNTIME_DEFAULT: &str = "RuntimeDefault";
const UNCONFINED: &str = "Unconfined";
const SUPPORTED_TYPES: [&str; 3] = [LOCALHOST, RUNTIME_DEFAULT, UNCONFINED];

const ANN_UNCONFINED: &str = "unconfined";
const ANN_RUNTIME_DEFAULT: &str = "runtime/default";
const ANN_DOCKER_DEFAULT: &str = "docker/default";
const ANN_LOCALHOST_PREFIX: &str = "localhost/";

/// Upstream `maxLocalhostProfileLength` (PATH_MAX - 1) for AppArmor names.
const MAX_APPARMOR_LOCALHOST_LEN: usize = 4095;

/// The `reason` of a `Status` cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `field.Required`
    FieldValueRequired,
    /// `field.Invalid`
    FieldValueInvalid,
    /// `field.Forbidden`
    FieldValueForbidden,
    /// `field.NotSupported`
    FieldValueNotSupported,
    /// `field.TooLong`
    FieldValueTooLong,
}

impl Reason {
    /// The wire form, e.g. `FieldValueRequired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::FieldValueRequired => "FieldValueRequired",
            Reason::FieldValueInvalid => "FieldValueInvalid",
            Reason::FieldValueForbidden => "FieldValueForbidden",
            Reason::FieldValueNotSupported => "FieldValueNotSupported",
            Reason::FieldValueTooLong => "FieldValueTooLong",
        }
    }
}

/// One `Status.details.causes` entry. `message` is what upstream puts in the
/// cause (`field.Error.ErrorBody()`), e.g.
/// `Required value: must be set when seccomp type is Localhost`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Cause reason.
    pub reason: Reason,
    /// Field path, e.g. `spec.securityContext.seccompProfile.localhostProfile`.
    pub field: String,
    /// Error body.
    pub message: String,
}

impl fmt::Display for Cause {
    /// `field: message`, as in the `Status` message and kubectl's output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl Cause {
    fn required(field: String, detail: &str) -> Self {
        Self {
            reason: Reason::FieldValueRequired,
            field,
            message: format!("Required value: {detail}"),
        }
    }

    fn invalid(field: String, value: &str, detail: &str) -> Self {
        Self::invalid_raw(field, &go_quote(value), detail)
    }

    fn invalid_raw(field: String, rendered_value: &str, detail: &str) -> Self {
        Self {
            reason: Reason::FieldValueInvalid,
            field,
            message: format!("Invalid value: {rendered_value}: {detail}"),
        }
    }

    fn forbidden(field: String, detail: &str) -> Self {
        Self {
            reason: Reason::FieldValueForbidden,
            field,
            message: format!("Forbidden: {detail}"),
        }
    }

    fn not_supported(field: String, value: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
        Self {
            reason: Reason::FieldValueNotSupported,
            field,
            message: format!(
                "Unsupported value: {}: supported values: {}",
                go_quote(value),
                list.join(", ")
            ),
        }
    }

    fn too_long(field: String, max: usize) -> Self {
        Self {
            reason: Reason::FieldValueTooLong,
            field,
            message: format!("Too long: may not be more than {max} bytes"),
        }
    }
}

/// Go's `%q` for a string: double-quoted with Go escapes.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Inputs besides the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidateOptions {
    /// The emulated Kubernetes release.
    pub version: EmulatedVersion,
    /// The `AppArmor` feature gate (`--feature-gates=AppArmor=false` turns
    /// every AppArmor annotation into a Forbidden cause).
    pub apparmor_feature_gate: bool,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        Self {
            version: EmulatedVersion::DEFAULT,
            apparmor_feature_gate: true,
        }
    }
}

impl ValidateOptions {
    /// Defaults at the given version.
    pub fn at(version: EmulatedVersion) -> Self {
        Self {
            version,
            ..Self::default()
        }
    }
}

/// Why a create is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The JSON is not a pod (upstream: a decoding error, 400 BadRequest).
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// `appArmorProfile` fields sent to a release that does not know them
    /// (before 1.30); the paths name the unknown fields.
    #[error("strict decoding error: {}", unknown_fields_text(.paths))]
    UnknownFields {
        /// e.g. `spec.securityContext.appArmorProfile`.
        paths: Vec<String>,
    },
    /// Validation failed (upstream: 422 Invalid with these causes).
    #[error("{}", invalid_message(.name, .causes))]
    Invalid {
        /// `metadata.name`
        name: String,
        /// The causes, in upstream order.
        causes: Vec<Cause>,
    },
}

fn unknown_fields_text(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| format!("unknown field {}", go_quote(p)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Pod "<name>" is invalid: <causes>` exactly as the apiserver's
/// `Status.message` (one cause bare, several as `[a, b]`, duplicates once).
/// kubectl prints it with `The ` in front (staging/src/k8s.io/kubectl/pkg/cmd/util/helpers.go).
pub fn invalid_message(name: &str, causes: &[Cause]) -> String {
    let mut seen = Vec::<String>::new();
    for c in causes {
        let s = c.to_string();
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    let body = match seen.len() {
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    };
    format!("Pod {} is invalid: {body}", go_quote(name))
}

/// The result of a pod create: warnings (`Warning:` headers, sent even when
/// the create fails) and the verdict. On success the pod JSON has been
/// synchronised in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOutcome {
    /// Warning texts, in the order the apiserver sends them.
    pub warnings: Vec<String>,
    /// `Ok` when the pod may be stored.
    pub result: Result<(), CreateError>,
}

/// Runs the whole create path: unknown-field check, [`prepare_for_create`],
/// [`validate_create`], and (when valid) [`warnings_on_create`].
pub fn admit_create(pod: &mut Value, opts: &ValidateOptions) -> CreateOutcome {
    let mut warnings = Vec::new();
    let result = admit_inner(pod, opts, &mut warnings);
    CreateOutcome { warnings, result }
}

fn admit_inner(
    pod: &mut Value,
    opts: &ValidateOptions,
    warnings: &mut Vec<String>,
) -> Result<(), CreateError> {
    let view = PodView::parse(pod)?;
    if !opts.version.has(Switch::AppArmorFields) {
        let paths = apparmor_field_paths(&view);
        if !paths.is_empty() {
            return Err(CreateError::UnknownFields { paths });
        }
    }
    warnings.extend(prepare_for_create(pod, opts)?);
    let view = PodView::parse(pod)?;
    let causes = validate_create(&view, opts);
    if !causes.is_empty() {
        return Err(CreateError::Invalid {
            name: view.name.clone(),
            causes,
        });
    }
    warnings.extend(warnings_on_create(&view, opts));
    Ok(())
}

fn apparmor_field_paths(view: &PodView) -> Vec<String> {
    let mut paths = Vec::new();
    if view.pod_apparmor().is_some() {
        paths.push("spec.securityContext.appArmorProfile".to_string());
    }
    for c in &view.containers {
        if c.apparmor().is_some() {
            paths.push(format!("{}.securityContext.appArmorProfile", c.path()));
        }
    }
    paths
}

// ---------------------------------------------------------------------------
// Annotation <-> field conversions (pkg/api/pod/util.go, strategy.go)

fn seccomp_annotation_for_field(p: &Profile) -> Option<String> {
    match p.type_.as_str() {
        UNCONFINED => Some(ANN_UNCONFINED.into()),
        RUNTIME_DEFAULT => Some(ANN_RUNTIME_DEFAULT.into()),
        LOCALHOST => p
            .localhost_profile
            .as_ref()
            .map(|n| format!("{ANN_LOCALHOST_PREFIX}{n}")),
        _ => None,
    }
}

fn seccomp_field_for_annotation(a: &str) -> Option<Profile> {
    match a {
        ANN_UNCONFINED => Some(Profile::of_type(UNCONFINED)),
        ANN_RUNTIME_DEFAULT | ANN_DOCKER_DEFAULT => Some(Profile::of_type(RUNTIME_DEFAULT)),
        _ => match a.strip_prefix(ANN_LOCALHOST_PREFIX) {
            Some(name) if !name.is_empty() => Some(Profile::localhost(name)),
            _ => None,
        },
    }
}

fn apparmor_annotation_for_field(p: &Profile) -> Option<String> {
    match p.type_.as_str() {
        UNCONFINED => Some(ANN_UNCONFINED.into()),
        RUNTIME_DEFAULT => Some(ANN_RUNTIME_DEFAULT.into()),
        LOCALHOST => p
            .localhost_profile
            .as_ref()
            .map(|n| format!("{ANN_LOCALHOST_PREFIX}{n}")),
        _ => None,
    }
}

fn apparmor_field_for_annotation(a: &str) -> Option<Profile> {
    match a {
        ANN_UNCONFINED => Some(Profile::of_type(UNCONFINED)),
        ANN_RUNTIME_DEFAULT => Some(Profile::of_type(RUNTIME_DEFAULT)),
        _ => match a.strip_prefix(ANN_LOCALHOST_PREFIX) {
            Some(name) if !name.is_empty() => Some(Profile::localhost(name)),
            _ => None,
        },
    }
}

fn container_ref(c: &ContainerView) -> Option<(ContainerKind, usize)> {
    Some((c.kind, c.index))
}

/// The create-time synchronisation of annotations and fields, per version
/// (upstream `PrepareForCreate`). Mutates `pod`; returns the AppArmor
/// deprecation warnings that upstream emits during the sync.
pub fn prepare_for_create(
    pod: &mut Value,
    opts: &ValidateOptions,
) -> Result<Vec<String>, ShapeError> {
    let view = PodView::parse(pod)?;
    let v = opts.version;
    let mut annotations = view.annotations.clone();
    let mut warnings = Vec::new();

    // Seccomp (applySeccompVersionSkew).
    let a2f = v.has(Switch::SeccompAnnotationToFieldSync);
    let f2a = v.has(Switch::SeccompFieldToAnnotationSync);
    if a2f || f2a {
        let ann = annotations.get(SECCOMP_POD_ANNOTATION).cloned();
        match (view.pod_seccomp(), ann) {
            (Some(field), None) if f2a => {
                if let Some(new) = seccomp_annotation_for_field(field) {
                    set_annotation(pod, SECCOMP_POD_ANNOTATION, &new)?;
                    annotations.insert(SECCOMP_POD_ANNOTATION.into(), new);
                }
            }
            (None, Some(ann)) if a2f => {
                if let Some(new) = seccomp_field_for_annotation(&ann) {
                    set_profile(pod, None, ProfileField::Seccomp, &new)?;
                }
            }
            _ => {}
        }
        for c in &view.containers {
            let key = format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", c.name);
            let ann = annotations.get(&key).cloned();
            match (c.seccomp(), ann) {
                (Some(field), None) if f2a => {
                    if let Some(new) = seccomp_annotation_for_field(field) {
                        set_annotation(pod, &key, &new)?;
                        annotations.insert(key, new);
                    }
                }
                (None, Some(ann)) if a2f => {
                    if let Some(new) = seccomp_field_for_annotation(&ann) {
                        set_profile(pod, container_ref(c), ProfileField::Seccomp, &new)?;
                    }
                }
                _ => {}
            }
        }
    }

    // AppArmor (applyAppArmorVersionSkew), 1.30+.
    if v.has(Switch::AppArmorFields) && !view.windows {
        let pod_profile = view.pod_apparmor();
        for c in &view.containers {
            let key = format!("{APPARMOR_CONTAINER_ANNOTATION_PREFIX}{}", c.name);
            let container_profile = c.apparmor().cloned();
            match annotations.get(&key).cloned() {
                None => {
                    let new = container_profile
                        .as_ref()
                        .or(pod_profile)
                        .and_then(apparmor_annotation_for_field);
                    if let Some(new) = new {
                        set_annotation(pod, &key, &new)?;
                        annotations.insert(key, new);
                    }
                }
                Some(ann) if container_profile.is_none() => {
                    let new_field = apparmor_field_for_annotation(&ann)
                        .filter(|f| apparmor_field_errors(f, "").is_empty());
                    let mut warn = new_field.is_none();
                    if let Some(f) = new_field {
                        if Some(&f) != pod_profile {
                            set_profile(pod, container_ref(c), ProfileField::AppArmor, &f)?;
                            warn = true;
                        }
                    }
                    if warn && v.has(Switch::AppArmorAnnotationDeprecationWarning) {
                        warnings.push(format!(
                            "metadata.annotations[{key}]: deprecated since v1.30; use the \"appArmorProfile\" field instead"
                        ));
                    }
                }
                Some(_) => {}
            }
        }
    }
    Ok(warnings)
}

// ---------------------------------------------------------------------------
// Validation

/// `validateLocalDescendingPath`: not absolute, no `..` segment.
fn local_descending_path_errors(target: &str, field: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    if target.starts_with('/') {
        out.push(Cause::invalid(
            field.into(),
            target,
            "must be a relative path",
        ));
    }
    if target.split('/').any(|seg| seg == "..") {
        out.push(Cause::invalid(
            field.into(),
            target,
            "must not contain '..'",
        ));
    }
    out
}

/// Go's `%#v` of a `*core.SeccompProfile` with a non-nil localhostProfile, as
/// upstream renders the bad value of "can only be set when seccomp type is
/// Localhost". Upstream prints the pointer's address, which differs per
/// request; armorlet prints a fixed placeholder address.
fn go_seccomp_profile_repr(p: &Profile) -> String {
    format!(
        "core.SeccompProfile{{Type:{}, LocalhostProfile:(*string)(0xc000000000)}}",
        go_quote(&p.type_)
    )
}

/// `validateSeccompProfileField` at `path` (e.g.
/// `spec.securityContext.seccompProfile`).
pub fn seccomp_field_errors(p: &Profile, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let type_path = format!("{path}.type");
    match p.type_.as_str() {
        LOCALHOST | RUNTIME_DEFAULT | UNCONFINED => {}
        "" => out.push(Cause::required(
            type_path,
            "type is required when seccompProfile is set",
        )),
        other => out.push(Cause::not_supported(type_path, other, &SUPPORTED_TYPES)),
    }
    let lp_path = format!("{path}.localhostProfile");
    if p.type_ == LOCALHOST {
        match &p.localhost_profile {
            None => out.push(Cause::required(
                lp_path,
                "must be set when seccomp type is Localhost",
            )),
            Some(lp) => out.extend(local_descending_path_errors(lp, &lp_path)),
        }
    } else if p.localhost_profile.is_some() {
        out.push(Cause::invalid_raw(
            lp_path,
            &go_seccomp_profile_repr(p),
            "can only be set when seccomp type is Localhost",
        ));
    }
    out
}

/// `ValidateAppArmorProfileField` at `path` (e.g.
/// `spec.securityContext.appArmorProfile`); `path == ""` gives bare child
/// names, as upstream's `&field.Path{}`.
pub fn apparmor_field_errors(p: &Profile, path: &str) -> Vec<Cause> {
    let child = |c: &str| {
        if path.is_empty() {
            c.to_string()
        } else {
            format!("{path}.{c}")
        }
    };
    let mut out = Vec::new();
    match p.type_.as_str() {
        LOCALHOST => match &p.localhost_profile {
            None => out.push(Cause::required(
                child("localhostProfile"),
                "must be set when AppArmor type is Localhost",
            )),
            Some(lp) => {
                let trimmed = lp.trim();
                if trimmed != lp {
                    out.push(Cause::invalid(
                        child("localhostProfile"),
                        lp,
                        "must not be padded with whitespace",
                    ));
                } else if trimmed.is_empty() {
                    out.push(Cause::required(
                        child("localhostProfile"),
                        "must be set when AppArmor type is Localhost",
                    ));
                }
                if lp.len() > MAX_APPARMOR_LOCALHOST_LEN {
                    out.push(Cause::too_long(
                        child("localhostProfile"),
                        MAX_APPARMOR_LOCALHOST_LEN,
                    ));
                }
            }
        },
        RUNTIME_DEFAULT | UNCONFINED => {
            if let Some(lp) = &p.localhost_profile {
                out.push(Cause::invalid(
                    child("localhostProfile"),
                    lp,
                    "can only be set when AppArmor type is Localhost",
                ));
            }
        }
        "" => out.push(Cause::required(
            child("type"),
            "type is required when appArmorProfile is set",
        )),
        other => out.push(Cause::not_supported(child("type"), other, &SUPPORTED_TYPES)),
    }
    out
}

/// `ValidateSeccompProfile` for an annotation value.
fn seccomp_annotation_value_errors(value: &str, field: &str) -> Vec<Cause> {
    if matches!(
        value,
        ANN_RUNTIME_DEFAULT | ANN_DOCKER_DEFAULT | ANN_UNCONFINED
    ) {
        return Vec::new();
    }
    if let Some(rest) = value.strip_prefix(ANN_LOCALHOST_PREFIX) {
        return local_descending_path_errors(rest, field);
    }
    vec![Cause::invalid(
        field.into(),
        value,
        "must be a valid seccomp profile",
    )]
}

/// `ValidateAppArmorProfileFormat`: the message of the error, if any.
pub fn apparmor_annotation_format_error(value: &str) -> Option<String> {
    if value.is_empty()
        || value == ANN_RUNTIME_DEFAULT
        || value == ANN_UNCONFINED
        || value.starts_with(ANN_LOCALHOST_PREFIX)
    {
        None
    } else {
        Some(format!(
            "invalid AppArmor profile name: {}",
            go_quote(value)
        ))
    }
}

fn seccomp_match_error(annotation: &str, field: &Profile, path: &str) -> Option<Cause> {
    let type_err = || {
        Cause::forbidden(
            format!("{path}.type"),
            "seccomp type in annotation and field must match",
        )
    };
    match field.type_.as_str() {
        UNCONFINED if annotation != ANN_UNCONFINED => Some(type_err()),
        RUNTIME_DEFAULT
            if annotation != ANN_RUNTIME_DEFAULT && annotation != ANN_DOCKER_DEFAULT =>
        {
            Some(type_err())
        }
        LOCALHOST => match annotation.strip_prefix(ANN_LOCALHOST_PREFIX) {
            None => Some(type_err()),
            Some(name) if field.localhost_profile.as_deref() != Some(name) => {
                Some(Cause::forbidden(
                    format!("{path}.localhostProfile"),
                    "seccomp profile in annotation and field must match",
                ))
            }
            Some(_) => None,
        },
        _ => None,
    }
}

fn apparmor_match_error(annotation: &str, field: &Profile, path: &str) -> Option<Cause> {
    let type_err = || {
        Cause::forbidden(
            format!("{path}.type"),
            "apparmor type in annotation and field must match",
        )
    };
    match field.type_.as_str() {
        UNCONFINED if annotation != ANN_UNCONFINED => Some(type_err()),
        RUNTIME_DEFAULT if annotation != ANN_RUNTIME_DEFAULT => Some(type_err()),
        LOCALHOST => match annotation.strip_prefix(ANN_LOCALHOST_PREFIX) {
            None => Some(type_err()),
            Some(name) if field.localhost_profile.as_deref() != Some(name) => {
                Some(Cause::forbidden(
                    format!("{path}.localhostProfile"),
                    "apparmor profile in annotation and field must match",
                ))
            }
            Some(_) => None,
        },
        _ => None,
    }
}

/// Pod create validation of every seccomp/AppArmor rule, on the already
/// synchronised pod, in upstream order. Empty means valid (as far as
/// confinement goes).
pub fn validate_create(view: &PodView, opts: &ValidateOptions) -> Vec<Cause> {
    let v = opts.version;
    let fields_on = v.has(Switch::AppArmorFields);
    let mut out = Vec::new();

    // ValidatePodSpecificAnnotations -> ValidateSeccompPodAnnotations.
    // Upstream uses fldPath.Child(key) here (a dot, not brackets).
    if let Some(p) = view.annotations.get(SECCOMP_POD_ANNOTATION) {
        out.extend(seccomp_annotation_value_errors(
            p,
            &format!("metadata.annotations.{SECCOMP_POD_ANNOTATION}"),
        ));
    }
    for (k, p) in &view.annotations {
        if k.starts_with(SECCOMP_CONTAINER_ANNOTATION_PREFIX) {
            out.extend(seccomp_annotation_value_errors(
                p,
                &format!("metadata.annotations.{k}"),
            ));
        }
    }
    // -> ValidateAppArmorPodAnnotations (fldPath.Key(k): brackets).
    for (k, p) in &view.annotations {
        let Some(container) = k.strip_prefix(APPARMOR_CONTAINER_ANNOTATION_PREFIX) else {
            continue;
        };
        let field = format!("metadata.annotations[{k}]");
        if !opts.apparmor_feature_gate {
            out.push(Cause::forbidden(
                field,
                "AppArmor is disabled by feature-gate",
            ));
            continue;
        }
        if !view.has_container(container) {
            out.push(Cause::invalid(
                field.clone(),
                container,
                "container not found",
            ));
        }
        if let Some(msg) = apparmor_annotation_format_error(p) {
            out.push(Cause::invalid(field, p, &msg));
        }
    }

    // ValidatePodSpec: containers, initContainers, ephemeralContainers, then
    // the pod security context.
    for kind in [
        ContainerKind::Regular,
        ContainerKind::Init,
        ContainerKind::Ephemeral,
    ] {
        for c in view.containers.iter().filter(|c| c.kind == kind) {
            let sc_path = format!("{}.securityContext", c.path());
            if let Some(p) = c.seccomp() {
                out.extend(seccomp_field_errors(
                    p,
                    &format!("{sc_path}.seccompProfile"),
                ));
            }
            if let (true, Some(p)) = (fields_on, c.apparmor()) {
                out.extend(apparmor_field_errors(
                    p,
                    &format!("{sc_path}.appArmorProfile"),
                ));
            }
        }
    }
    if let Some(p) = view.pod_seccomp() {
        out.extend(seccomp_field_errors(
            p,
            "spec.securityContext.seccompProfile",
        ));
    }
    if let (true, Some(p)) = (fields_on, view.pod_apparmor()) {
        out.extend(apparmor_field_errors(
            p,
            "spec.securityContext.appArmorProfile",
        ));
    }

    // ValidatePodCreate: ephemeral containers, then the two match checks.
    if view
        .containers
        .iter()
        .any(|c| c.kind == ContainerKind::Ephemeral)
    {
        out.push(Cause::forbidden(
            "spec.ephemeralContainers".into(),
            "cannot be set on create",
        ));
    }
    // validateSeccompAnnotationsAndFields.
    if let (Some(field), Some(ann)) = (
        view.pod_seccomp(),
        view.annotations.get(SECCOMP_POD_ANNOTATION),
    ) {
        out.extend(seccomp_match_error(
            ann,
            field,
            "spec.securityContext.seccompProfile",
        ));
    }
    for c in &view.containers {
        let key = format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", c.name);
        if let (Some(field), Some(ann)) = (c.seccomp(), view.annotations.get(&key)) {
            out.extend(seccomp_match_error(
                ann,
                field,
                &format!("{}.securityContext.seccompProfile", c.path()),
            ));
        }
    }

    // validateAppArmorAnnotationsAndFieldsMatchOnCreate.
    if fields_on && !view.windows {
        for c in &view.containers {
            let Some(profile) = c.apparmor().or(view.pod_apparmor()) else {
                continue;
            };
            let key = format!("{APPARMOR_CONTAINER_ANNOTATION_PREFIX}{}", c.name);
            if let Some(ann) = view.annotations.get(&key) {
                out.extend(apparmor_match_error(
                    ann,
                    profile,
                    &format!("{}.securityContext.appArmorProfile", c.path()),
                ));
            }
        }
    }
    out
}

fn seccomp_warning_text(v: EmulatedVersion) -> &'static str {
    if v.has(Switch::SeccompWarningNonFunctional127) {
        "non-functional in v1.27+; use the \"seccompProfile\" field instead"
    } else if v.has(Switch::SeccompWarningNonFunctional125) {
        "deprecated since v1.19, non-functional in v1.25+; use the \"seccompProfile\" field instead"
    } else {
        "deprecated since v1.19, non-functional in a future release; use the \"seccompProfile\" field instead"
    }
}

/// `WarningsOnCreate` for confinement: a seccomp annotation without the
/// matching field (pod level, then each container in visit order).
pub fn warnings_on_create(view: &PodView, opts: &ValidateOptions) -> Vec<String> {
    let text = seccomp_warning_text(opts.version);
    let mut out = Vec::new();
    if view.pod_seccomp().is_none() && view.annotations.contains_key(SECCOMP_POD_ANNOTATION) {
        out.push(format!(
            "metadata.annotations[{SECCOMP_POD_ANNOTATION}]: {text}"
        ));
    }
    for c in &view.containers {
        let key = format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", c.name);
        if c.seccomp().is_none() && view.annotations.contains_key(&key) {
            out.push(format!("metadata.annotations[{key}]: {text}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
