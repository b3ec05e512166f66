//! The `PodSecurity` admission plugin in the request path (kube-apiserver's
//! plugin/pkg/admission/security/podsecurity/admission.go around
//! staging/src/k8s.io/pod-security-admission/admission/admission.go): the decisions are
//! [`armorlet_confinement::pod_security`]'s; this module reads the namespaces and pods they
//! need from the store and turns their results into kube-apiserver's errors, `Warning`
//! headers and audit annotations.
//!
//! It runs, as kube-apiserver's validating admission does, after defaulting and validation, on
//! creates and updates (dry runs included) of pods, namespaces and the workload resources with
//! a pod template; never on subresources (`status`, `finalize`). On from `--emulated-version
//! 1.23` (the `PodSecurityAdmission` row); the configuration is kube-apiserver's default
//! (every mode `privileged:latest`, no exemptions).

use std::collections::BTreeMap;
use std::time::Instant;

use armorlet_confinement::pod_security::{self as psa, LevelVersion, NamespaceVerdict};
use armorlet_confinement::{ShapeError, Switch};
use armorlet_store::{ListOptions, StoreError};
use serde_json::Value;

use crate::error::{ApiError, Cause};
use crate::handlers::State;
use crate::registry::{self, ResourceDef};

type Result<T> = std::result::Result<T, ApiError>;

/// Audit annotations of one request, `(key, value)`.
pub type AuditAnnotations = Vec<(String, String)>;

/// What the plugin admits for a resource.
enum Subject {
    Pod,
    Namespace,
    Workload,
}

fn subject(state: &State, def: &ResourceDef, sub: Option<&str>) -> Option<Subject> {
    if !state.emulated_version.has(Switch::PodSecurityAdmission) || sub.is_some() {
        return None;
    }
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "pods") => Some(Subject::Pod),
        ("", "namespaces") => Some(Subject::Namespace),
        (g, r) if psa::template_path(g, r).is_some() => Some(Subject::Workload),
        _ => None,
    }
}

/// The labels of namespace `name`; `None` when it does not exist.
pub fn namespace_labels(state: &State, name: &str) -> Result<Option<BTreeMap<String, String>>> {
    match state
        .store
        .get(&registry::core("namespaces").gvr(), "", name)
    {
        Ok(ns) => Ok(Some(psa::labels_of(&ns))),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What an update needs from outside the store transaction it runs in: the namespace's
/// labels (read before), and the new enforce level whose existing pods are checked after.
#[derive(Debug, Default)]
pub struct UpdateContext {
    /// The namespace of the object, for pods and workloads (`None` inside: no namespace).
    pub namespace_labels: Option<Option<BTreeMap<String, String>>>,
    /// Set by a namespace update that tightens the enforce level.
    pub check_pods: Option<LevelVersion>,
}

impl UpdateContext {
    /// Reads what an update of `def` in `namespace` will need.
    pub fn prepare(
        state: &State,
        def: &ResourceDef,
        sub: Option<&str>,
        namespace: &str,
    ) -> Result<UpdateContext> {
        let mut ctx = UpdateContext::default();
        if matches!(
            subject(state, def, sub),
            Some(Subject::Pod | Subject::Workload)
        ) {
            ctx.namespace_labels = Some(namespace_labels(state, namespace)?);
        }
        Ok(ctx)
    }
}

/// Admission of a create (`old == None`) or an update of `obj` (already defaulted and
/// validated). Warnings and audit annotations are appended also when the request is refused.
#[allow(clippy::too_many_arguments)]
pub fn admit(
    state: &State,
    def: &ResourceDef,
    sub: Option<&str>,
    namespace: &str,
    obj: &Value,
    old: Option<&Value>,
    ctx: Option<&mut UpdateContext>,
    warnings: &mut Vec<String>,
    audit: &mut AuditAnnotations,
) -> Result<()> {
    let Some(subject) = subject(state, def, sub) else {
        return Ok(());
    };
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let version = state.emulated_version;
    let labels = |ctx: Option<&mut UpdateContext>| -> Result<Option<BTreeMap<String, String>>> {
        match ctx.and_then(|c| c.namespace_labels.clone()) {
            Some(l) => Ok(l),
            None => namespace_labels(state, namespace),
        }
    };
    match subject {
        Subject::Namespace => {
            let new = psa::labels_of(obj);
            let old = old.map(psa::labels_of);
            match psa::validate_namespace(&new, old.as_ref(), version) {
                NamespaceVerdict::Allowed => Ok(()),
                NamespaceVerdict::Invalid(errors) => Err(ApiError::invalid(
                    "Namespace",
                    name,
                    errors
                        .iter()
                        .map(|e| Cause {
                            reason: "FieldValueInvalid",
                            message: e.message(),
                            field: e.field(),
                        })
                        .collect(),
                )),
                NamespaceVerdict::CheckPods(enforce) => {
                    match ctx {
                        Some(c) => c.check_pods = Some(enforce),
                        None => warnings.extend(existing_pods(state, name, enforce)),
                    }
                    Ok(())
                }
            }
        }
        Subject::Pod => {
            let Some(labels) = labels(ctx)? else {
                // admission.go ValidatePod: the namespace lookup failed.
                let e = ApiError::internal(format!("failed to lookup namespace {namespace:?}"));
                audit.push((
                    psa::ERROR_ANNOTATION.into(),
                    format!("{}: namespaces {namespace:?} not found", e.message),
                ));
                return Err(e);
            };
            let eval = psa::admit_pod(&labels, obj, old, version).map_err(undecodable)?;
            warnings.extend(eval.warnings);
            audit.extend(eval.audit_annotations);
            match eval.forbidden {
                Some(why) => Err(ApiError::forbidden(&def.qualified(), name, &why)),
                None => Ok(()),
            }
        }
        Subject::Workload => {
            let Some(labels) = labels(ctx)? else {
                // admission.go ValidatePodController: allowed, the failure recorded.
                audit.push((
                    psa::ERROR_ANNOTATION.into(),
                    format!(
                        "failed to lookup namespace {namespace:?}: namespaces {namespace:?} not found"
                    ),
                ));
                return Ok(());
            };
            let eval = psa::admit_workload(&labels, &def.group, &def.plural, obj, version)
                .map_err(undecodable)?;
            warnings.extend(eval.warnings);
            audit.extend(eval.audit_annotations);
            Ok(())
        }
    }
}

/// A field the checks read has a JSON type kube-apiserver could not decode: 400, as the
/// decoder's refusal.
fn undecodable(e: ShapeError) -> ApiError {
    ApiError::bad_request(format!("the request body could not be decoded: {e}"))
}

/// The warnings about the existing pods of namespace `name` under its new `enforce` level
/// (`EvaluatePodsInNamespace`: at most 3000 pods, within 1 s).
pub fn existing_pods(state: &State, name: &str, enforce: LevelVersion) -> Vec<String> {
    let deadline = Instant::now() + psa::POD_CHECK_TIMEOUT;
    let pods = match state.store.list(
        &registry::core("pods").gvr(),
        Some(name),
        &ListOptions::default(),
    ) {
        Ok(list) => list.items,
        Err(e) => {
            tracing::warn!(namespace = %name, error = %e, "failed to list pods");
            return vec!["failed to list pods while checking new PodSecurity enforce level".into()];
        }
    };
    if Instant::now() >= deadline {
        return vec!["failed to list pods while checking new PodSecurity enforce level".into()];
    }
    psa::existing_pods_warnings(
        name,
        enforce,
        &pods,
        state.emulated_version,
        psa::MAX_PODS_TO_CHECK,
        &mut || Instant::now() >= deadline,
    )
}
