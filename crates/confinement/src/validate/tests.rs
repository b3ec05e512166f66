use super::*;
use serde_json::json;

const AA_HELLO: &str = "container.apparmor.security.beta.kubernetes.io/hello";
const AA_WARN: &str = "metadata.annotations[container.apparmor.security.beta.kubernetes.io/hello]: deprecated since v1.30; use the \"appArmorProfile\" field instead";

fn opts(minor: u32) -> ValidateOptions {
    ValidateOptions::at(EmulatedVersion::new(minor).expect("in range"))
}

/// A pod named `name` with one container `hello`.
fn pod(name: &str, annotations: Value, pod_sc: Value, ctr_sc: Value) -> Value {
    let mut ctr = json!({"name": "hello", "image": "busybox:1.28"});
    if !ctr_sc.is_null() {
        ctr["securityContext"] = ctr_sc;
    }
    let mut p = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [ctr]}});
    if !annotations.is_null() {
        p["metadata"]["annotations"] = annotations;
    }
    if !pod_sc.is_null() {
        p["spec"]["securityContext"] = pod_sc;
    }
    p
}

/// What kubectl prints for the Invalid Status: `The ` + `Status.message`
/// (staging/src/k8s.io/kubectl/pkg/cmd/util/helpers.go).
fn invalid_text(o: &CreateOutcome) -> String {
    match &o.result {
        Err(e @ CreateError::Invalid { .. }) => format!("The {e}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn causes(o: &CreateOutcome) -> Vec<Cause> {
    match &o.result {
        Err(CreateError::Invalid { causes, .. }) => causes.clone(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Every rejection recorded from a real 1.32 apiserver
/// (`/work/shared/docs/k8s-v1.32-golden.md`), with the warnings kubectl
/// printed alongside.
#[test]
fn golden_1_32_rejections() {
    let lh = |p: &str| json!({"appArmorProfile": {"type": "Localhost", "localhostProfile": p}});
    let cases: Vec<(Value, &str, Vec<&str>)> = vec![
        (
            pod("inv-annot-nonsense", json!({AA_HELLO: "nonsense/value"}), Value::Null, Value::Null),
            "The Pod \"inv-annot-nonsense\" is invalid: metadata.annotations[container.apparmor.security.beta.kubernetes.io/hello]: Invalid value: \"nonsense/value\": invalid AppArmor profile name: \"nonsense/value\"",
            vec![AA_WARN],
        ),
        (
            pod(
                "inv-annot-nocontainer",
                json!({"container.apparmor.security.beta.kubernetes.io/nope": "localhost/k8s-apparmor-example-deny-write"}),
                Value::Null,
                Value::Null,
            ),
            "The Pod \"inv-annot-nocontainer\" is invalid: metadata.annotations[container.apparmor.security.beta.kubernetes.io/nope]: Invalid value: \"nope\": container not found",
            vec![],
        ),
        (
            pod("inv-aa-localhost-noprofile", Value::Null, json!({"appArmorProfile": {"type": "Localhost"}}), Value::Null),
            "The Pod \"inv-aa-localhost-noprofile\" is invalid: spec.securityContext.appArmorProfile.localhostProfile: Required value: must be set when AppArmor type is Localhost",
            vec![],
        ),
        (
            pod("inv-aa-padded", Value::Null, lh("  k8s-apparmor-example-deny-write  "), Value::Null),
            "The Pod \"inv-aa-padded\" is invalid: spec.securityContext.appArmorProfile.localhostProfile: Invalid value: \"  k8s-apparmor-example-deny-write  \": must not be padded with whitespace",
            vec![],
        ),
        (
            pod(
                "inv-aa-unconfined-with-profile",
                Value::Null,
                json!({"appArmorProfile": {"type": "Unconfined", "localhostProfile": "foo"}}),
                Value::Null,
            ),
            "The Pod \"inv-aa-unconfined-with-profile\" is invalid: spec.securityContext.appArmorProfile.localhostProfile: Invalid value: \"foo\": can only be set when AppArmor type is Localhost",
            vec![],
        ),
        (
            pod("inv-seccomp-localhost-noprofile", Value::Null, json!({"seccompProfile": {"type": "Localhost"}}), Value::Null),
            "The Pod \"inv-seccomp-localhost-noprofile\" is invalid: spec.securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost",
            vec![],
        ),
        (
            pod(
                "inv-seccomp-dotdot",
                Value::Null,
                json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "../../etc/passwd"}}),
                Value::Null,
            ),
            "The Pod \"inv-seccomp-dotdot\" is invalid: spec.securityContext.seccompProfile.localhostProfile: Invalid value: \"../../etc/passwd\": must not contain '..'",
            vec![],
        ),
        (
            pod("inv-aa-mismatch", json!({AA_HELLO: "localhost/profile-a"}), Value::Null, lh("profile-b")),
            "The Pod \"inv-aa-mismatch\" is invalid: spec.containers[0].securityContext.appArmorProfile.localhostProfile: Forbidden: apparmor profile in annotation and field must match",
            vec![],
        ),
        (
            pod(
                "inv-aa-mismatch-type",
                json!({AA_HELLO: "runtime/default"}),
                Value::Null,
                json!({"appArmorProfile": {"type": "Unconfined"}}),
            ),
            "The Pod \"inv-aa-mismatch-type\" is invalid: spec.containers[0].securityContext.appArmorProfile.type: Forbidden: apparmor type in annotation and field must match",
            vec![],
        ),
    ];
    for (mut p, want, want_warnings) in cases {
        let o = admit_create(&mut p, &opts(32));
        assert_eq!(invalid_text(&o), want);
        assert_eq!(o.warnings, want_warnings, "{want}");
    }
}

/// Golden: accepted pods and what the sync made of them.
#[test]
fn golden_1_32_accepted_and_synced() {
    // Annotation only -> container field, with the warning.
    let mut p = pod(
        "hello-apparmor",
        json!({AA_HELLO: "localhost/k8s-apparmor-example-deny-write"}),
        Value::Null,
        Value::Null,
    );
    let o = admit_create(&mut p, &opts(32));
    assert_eq!(o.result, Ok(()));
    assert_eq!(o.warnings, vec![AA_WARN]);
    assert_eq!(
        p["spec"]["containers"][0]["securityContext"]["appArmorProfile"],
        json!({"type": "Localhost", "localhostProfile": "k8s-apparmor-example-deny-write"})
    );

    // Pod field only -> annotation, no warning.
    let mut p = pod(
        "hello-apparmor-field",
        Value::Null,
        json!({"appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-apparmor-example-deny-write"}}),
        Value::Null,
    );
    let o = admit_create(&mut p, &opts(32));
    assert_eq!((o.result, o.warnings.len()), (Ok(()), 0));
    assert_eq!(
        p["metadata"]["annotations"][AA_HELLO],
        "localhost/k8s-apparmor-example-deny-write"
    );
    assert!(p["spec"]["containers"][0].get("securityContext").is_none());

    // RuntimeDefault -> runtime/default.
    let mut p = pod(
        "rd",
        Value::Null,
        json!({"appArmorProfile": {"type": "RuntimeDefault"}}),
        Value::Null,
    );
    assert_eq!(admit_create(&mut p, &opts(32)).result, Ok(()));
    assert_eq!(p["metadata"]["annotations"][AA_HELLO], "runtime/default");

    // Padded annotation: accepted, field NOT synthesised, still warned.
    let mut p = pod(
        "inv-annot-padded",
        json!({AA_HELLO: "localhost/  k8s-apparmor-example-deny-write  "}),
        Value::Null,
        Value::Null,
    );
    let o = admit_create(&mut p, &opts(32));
    assert_eq!(o.result, Ok(()));
    assert_eq!(o.warnings, vec![AA_WARN]);
    assert!(p["spec"]["containers"][0].get("securityContext").is_none());

    // AppArmor '..' is fine for the API; annotation synthesised.
    let mut p = pod(
        "inv-aa-dotdot",
        Value::Null,
        json!({"appArmorProfile": {"type": "Localhost", "localhostProfile": "../../etc/passwd"}}),
        Value::Null,
    );
    assert_eq!(admit_create(&mut p, &opts(32)).result, Ok(()));
    assert_eq!(
        p["metadata"]["annotations"][AA_HELLO],
        "localhost/../../etc/passwd"
    );
}

#[test]
fn annotation_equal_to_pod_profile_is_not_copied_nor_warned() {
    let mut p = pod(
        "same",
        json!({AA_HELLO: "runtime/default"}),
        json!({"appArmorProfile": {"type": "RuntimeDefault"}}),
        Value::Null,
    );
    let o = admit_create(&mut p, &opts(32));
    assert_eq!((o.result, o.warnings.len()), (Ok(()), 0));
    assert!(p["spec"]["containers"][0].get("securityContext").is_none());
}

/// Field-rule table: (security context JSON at pod level, expected causes as
/// `field: message`, expected reasons).
#[test]
fn field_rules_table() {
    let cases: Vec<(Value, Vec<&str>, Vec<Reason>)> = vec![
        (json!({"seccompProfile": {"type": "RuntimeDefault"}}), vec![], vec![]),
        (json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/a.json"}}), vec![], vec![]),
        (
            json!({"seccompProfile": {}}),
            vec!["spec.securityContext.seccompProfile.type: Required value: type is required when seccompProfile is set"],
            vec![Reason::FieldValueRequired],
        ),
        (
            json!({"seccompProfile": {"type": "Foo"}}),
            vec!["spec.securityContext.seccompProfile.type: Unsupported value: \"Foo\": supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\""],
            vec![Reason::FieldValueNotSupported],
        ),
        (
            json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "/etc/x"}}),
            vec!["spec.securityContext.seccompProfile.localhostProfile: Invalid value: \"/etc/x\": must be a relative path"],
            vec![Reason::FieldValueInvalid],
        ),
        (
            json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "/a/../b"}}),
            vec![
                "spec.securityContext.seccompProfile.localhostProfile: Invalid value: \"/a/../b\": must be a relative path",
                "spec.securityContext.seccompProfile.localhostProfile: Invalid value: \"/a/../b\": must not contain '..'",
            ],
            vec![Reason::FieldValueInvalid, Reason::FieldValueInvalid],
        ),
        // "a..b" is not a backstep.
        (json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "a..b/..c"}}), vec![], vec![]),
        (
            json!({"seccompProfile": {"type": "Unconfined", "localhostProfile": "x"}}),
            vec!["spec.securityContext.seccompProfile.localhostProfile: Invalid value: core.SeccompProfile{Type:\"Unconfined\", LocalhostProfile:(*string)(0xc000000000)}: can only be set when seccomp type is Localhost"],
            vec![Reason::FieldValueInvalid],
        ),
        (
            json!({"appArmorProfile": {}}),
            vec!["spec.securityContext.appArmorProfile.type: Required value: type is required when appArmorProfile is set"],
            vec![Reason::FieldValueRequired],
        ),
        (
            json!({"appArmorProfile": {"type": "localhost"}}),
            vec!["spec.securityContext.appArmorProfile.type: Unsupported value: \"localhost\": supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\""],
            vec![Reason::FieldValueNotSupported],
        ),
        (
            json!({"appArmorProfile": {"type": "Localhost", "localhostProfile": ""}}),
            vec!["spec.securityContext.appArmorProfile.localhostProfile: Required value: must be set when AppArmor type is Localhost"],
            vec![Reason::FieldValueRequired],
        ),
        (
            json!({"appArmorProfile": {"type": "RuntimeDefault", "localhostProfile": "x"}}),
            vec!["spec.securityContext.appArmorProfile.localhostProfile: Invalid value: \"x\": can only be set when AppArmor type is Localhost"],
            vec![Reason::FieldValueInvalid],
        ),
        (
            json!({"appArmorProfile": {"type": "Localhost", "localhostProfile": "a".repeat(4096)}}),
            vec!["spec.securityContext.appArmorProfile.localhostProfile: Too long: may not be more than 4095 bytes"],
            vec![Reason::FieldValueTooLong],
        ),
        (json!({"appArmorProfile": {"type": "Localhost", "localhostProfile": "a".repeat(4095)}}), vec![], vec![]),
    ];
    for (sc, want, reasons) in cases {
        let view = PodView::parse(&pod("p", Value::Null, sc.clone(), Value::Null)).expect("shape");
        let got = validate_create(&view, &opts(32));
        let texts: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(texts, want, "{sc}");
        assert_eq!(
            got.iter().map(|c| c.reason).collect::<Vec<_>>(),
            reasons,
            "{sc}"
        );
    }
}

#[test]
fn container_paths_for_every_container_kind() {
    let bad =
        json!({"seccompProfile": {"type": "Localhost"}, "appArmorProfile": {"type": "Localhost"}});
    let p = json!({"metadata": {"name": "p"}, "spec": {
        "initContainers": [{"name": "i", "securityContext": bad}],
        "containers": [{"name": "a"}, {"name": "c", "securityContext": bad}],
        "ephemeralContainers": [{"name": "e", "securityContext": bad}]}});
    let view = PodView::parse(&p).expect("shape");
    let got: Vec<String> = validate_create(&view, &opts(32))
        .iter()
        .map(|c| c.field.clone())
        .collect();
    assert_eq!(
        got,
        [
            "spec.containers[1].securityContext.seccompProfile.localhostProfile",
            "spec.containers[1].securityContext.appArmorProfile.localhostProfile",
            "spec.initContainers[0].securityContext.seccompProfile.localhostProfile",
            "spec.initContainers[0].securityContext.appArmorProfile.localhostProfile",
            "spec.ephemeralContainers[0].securityContext.seccompProfile.localhostProfile",
            "spec.ephemeralContainers[0].securityContext.appArmorProfile.localhostProfile",
            "spec.ephemeralContainers",
        ]
    );
}

#[test]
fn seccomp_annotation_rules() {
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}), vec![]),
        (json!({"seccomp.security.alpha.kubernetes.io/pod": "docker/default"}), vec![]),
        (json!({"container.seccomp.security.alpha.kubernetes.io/hello": "unconfined"}), vec![]),
        (
            json!({"seccomp.security.alpha.kubernetes.io/pod": "default"}),
            vec!["metadata.annotations.seccomp.security.alpha.kubernetes.io/pod: Invalid value: \"default\": must be a valid seccomp profile"],
        ),
        (
            json!({"container.seccomp.security.alpha.kubernetes.io/hello": "localhost/../x"}),
            vec!["metadata.annotations.container.seccomp.security.alpha.kubernetes.io/hello: Invalid value: \"../x\": must not contain '..'"],
        ),
        (
            json!({"seccomp.security.alpha.kubernetes.io/pod": "localhost//abs"}),
            vec!["metadata.annotations.seccomp.security.alpha.kubernetes.io/pod: Invalid value: \"/abs\": must be a relative path"],
        ),
    ];
    for minor in [27, 32] {
        for (ann, want) in &cases {
            let mut p = pod("p", ann.clone(), Value::Null, Value::Null);
            let o = admit_create(&mut p, &opts(minor));
            if want.is_empty() {
                assert_eq!(o.result, Ok(()), "1.{minor} {ann}");
            } else {
                let got: Vec<String> = causes(&o).iter().map(ToString::to_string).collect();
                assert_eq!(&got, want, "1.{minor} {ann}");
            }
        }
    }
}

/// Up to 1.26 the annotation is first copied into the field (unvalidated, as
/// upstream's `SeccompFieldForAnnotation` does), so the field is rejected too.
#[test]
fn seccomp_annotation_synced_before_validation_up_to_1_26() {
    let ann = json!({"container.seccomp.security.alpha.kubernetes.io/hello": "localhost/../x"});
    for minor in [22, 26] {
        let mut p = pod("p", ann.clone(), Value::Null, Value::Null);
        let got: Vec<String> = causes(&admit_create(&mut p, &opts(minor)))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "metadata.annotations.container.seccomp.security.alpha.kubernetes.io/hello: Invalid value: \"../x\": must not contain '..'",
                "spec.containers[0].securityContext.seccompProfile.localhostProfile: Invalid value: \"../x\": must not contain '..'",
            ],
            "1.{minor}"
        );
    }
    let mut p = pod(
        "p",
        json!({"seccomp.security.alpha.kubernetes.io/pod": "default"}),
        Value::Null,
        Value::Null,
    );
    assert_eq!(
        causes(&admit_create(&mut p, &opts(22))).len(),
        1,
        "an unconvertible annotation is not copied"
    );
}

#[test]
fn seccomp_annotation_field_mismatch() {
    let cases: Vec<(Value, Value, Value, &str)> = vec![
        (
            json!({"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}),
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            Value::Null,
            "spec.securityContext.seccompProfile.type: Forbidden: seccomp type in annotation and field must match",
        ),
        (
            json!({"seccomp.security.alpha.kubernetes.io/pod": "localhost/a.json"}),
            json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "b.json"}}),
            Value::Null,
            "spec.securityContext.seccompProfile.localhostProfile: Forbidden: seccomp profile in annotation and field must match",
        ),
        (
            json!({"container.seccomp.security.alpha.kubernetes.io/hello": "runtime/default"}),
            Value::Null,
            json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "b.json"}}),
            "spec.containers[0].securityContext.seccompProfile.type: Forbidden: seccomp type in annotation and field must match",
        ),
        (
            json!({"container.seccomp.security.alpha.kubernetes.io/hello": "docker/default"}),
            Value::Null,
            json!({"seccompProfile": {"type": "Unconfined"}}),
            "spec.containers[0].securityContext.seccompProfile.type: Forbidden: seccomp type in annotation and field must match",
        ),
    ];
    for minor in [22, 32] {
        for (ann, psc, csc, want) in &cases {
            let mut p = pod("p", ann.clone(), psc.clone(), csc.clone());
            let o = admit_create(&mut p, &opts(minor));
            let got: Vec<String> = causes(&o).iter().map(ToString::to_string).collect();
            assert_eq!(got, [*want], "1.{minor}");
        }
    }
    // docker/default matches RuntimeDefault.
    let mut p = pod(
        "p",
        json!({"container.seccomp.security.alpha.kubernetes.io/hello": "docker/default"}),
        Value::Null,
        json!({"seccompProfile": {"type": "RuntimeDefault"}}),
    );
    assert_eq!(admit_create(&mut p, &opts(32)).result, Ok(()));
}

#[test]
fn seccomp_sync_and_warnings_across_versions() {
    let ann = json!({"seccomp.security.alpha.kubernetes.io/pod": "localhost/profiles/audit.json",
        "container.seccomp.security.alpha.kubernetes.io/hello": "docker/default"});
    // 1.26: annotation -> field, so no warning.
    let mut p = pod("p", ann.clone(), Value::Null, Value::Null);
    let o = admit_create(&mut p, &opts(26));
    assert_eq!((o.result, o.warnings.len()), (Ok(()), 0));
    assert_eq!(
        p["spec"]["securityContext"]["seccompProfile"],
        json!({"type": "Localhost", "localhostProfile": "profiles/audit.json"})
    );
    assert_eq!(
        p["spec"]["containers"][0]["securityContext"]["seccompProfile"],
        json!({"type": "RuntimeDefault"})
    );
    // 1.27: no effect, warnings.
    let mut p = pod("p", ann.clone(), Value::Null, Value::Null);
    let o = admit_create(&mut p, &opts(27));
    assert_eq!(o.result, Ok(()));
    assert!(p["spec"].get("securityContext").is_none());
    assert!(p["spec"]["containers"][0].get("securityContext").is_none());
    assert_eq!(
        o.warnings,
        [
            "metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: non-functional in v1.27+; use the \"seccompProfile\" field instead",
            "metadata.annotations[container.seccomp.security.alpha.kubernetes.io/hello]: non-functional in v1.27+; use the \"seccompProfile\" field instead",
        ]
    );
    // Annotations that cannot become a field still warn before 1.27, with the
    // text of the release.
    let empty = json!({"seccomp.security.alpha.kubernetes.io/pod": "localhost/"});
    for (minor, text) in [
        (24, "deprecated since v1.19, non-functional in a future release; use the \"seccompProfile\" field instead"),
        (25, "deprecated since v1.19, non-functional in v1.25+; use the \"seccompProfile\" field instead"),
        (26, "deprecated since v1.19, non-functional in v1.25+; use the \"seccompProfile\" field instead"),
        (27, "non-functional in v1.27+; use the \"seccompProfile\" field instead"),
    ] {
        let mut p = pod("p", empty.clone(), Value::Null, Value::Null);
        let o = admit_create(&mut p, &opts(minor));
        assert_eq!(o.result, Ok(()));
        assert_eq!(o.warnings, [format!("metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: {text}")], "1.{minor}");
    }
    // Field -> annotation up to 1.24 only.
    let sc = json!({"seccompProfile": {"type": "RuntimeDefault"}});
    let mut p = pod("p", Value::Null, sc.clone(), Value::Null);
    assert_eq!(admit_create(&mut p, &opts(24)).result, Ok(()));
    assert_eq!(
        p["metadata"]["annotations"]["seccomp.security.alpha.kubernetes.io/pod"],
        "runtime/default"
    );
    let mut p = pod("p", Value::Null, sc, Value::Null);
    assert_eq!(admit_create(&mut p, &opts(25)).result, Ok(()));
    assert!(p["metadata"].get("annotations").is_none());
    let csc = json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "x.json"}});
    let mut p = pod("p", Value::Null, Value::Null, csc);
    assert_eq!(admit_create(&mut p, &opts(22)).result, Ok(()));
    assert_eq!(
        p["metadata"]["annotations"]["container.seccomp.security.alpha.kubernetes.io/hello"],
        "localhost/x.json"
    );
}

#[test]
fn apparmor_fields_only_from_1_30() {
    let sc = json!({"appArmorProfile": {"type": "RuntimeDefault"}});
    let mut p = pod("p", Value::Null, sc.clone(), sc.clone());
    let o = admit_create(&mut p, &opts(29));
    assert_eq!(
        o.result,
        Err(CreateError::UnknownFields {
            paths: vec![
                "spec.securityContext.appArmorProfile".into(),
                "spec.containers[0].securityContext.appArmorProfile".into()
            ]
        })
    );
    assert_eq!(
        o.result.expect_err("rejected").to_string(),
        "strict decoding error: unknown field \"spec.securityContext.appArmorProfile\", unknown field \"spec.containers[0].securityContext.appArmorProfile\""
    );
    let mut p = pod("p", Value::Null, sc, Value::Null);
    assert_eq!(admit_create(&mut p, &opts(30)).result, Ok(()));
    assert_eq!(p["metadata"]["annotations"][AA_HELLO], "runtime/default");
}

#[test]
fn apparmor_annotations_before_1_30_no_sync_no_warning() {
    let ann = json!({AA_HELLO: "localhost/k8s-apparmor-example-deny-write"});
    let mut p = pod("p", ann.clone(), Value::Null, Value::Null);
    let o = admit_create(&mut p, &opts(29));
    assert_eq!((o.result, o.warnings.len()), (Ok(()), 0));
    assert!(p["spec"]["containers"][0].get("securityContext").is_none());
    let mut p = pod("p", ann, Value::Null, Value::Null);
    let o = admit_create(&mut p, &opts(30));
    assert_eq!(o.warnings, [AA_WARN]);
    // Format and container checks apply at every version.
    let mut p = pod(
        "p",
        json!({AA_HELLO: "nonsense/value"}),
        Value::Null,
        Value::Null,
    );
    let o = admit_create(&mut p, &opts(22));
    assert!(o.warnings.is_empty());
    assert_eq!(
        invalid_text(&o),
        "The Pod \"p\" is invalid: metadata.annotations[container.apparmor.security.beta.kubernetes.io/hello]: Invalid value: \"nonsense/value\": invalid AppArmor profile name: \"nonsense/value\""
    );
}

#[test]
fn apparmor_feature_gate_off_forbids_annotations() {
    let mut o = opts(22);
    o.apparmor_feature_gate = false;
    let mut p = pod(
        "p",
        json!({AA_HELLO: "runtime/default"}),
        Value::Null,
        Value::Null,
    );
    let out = admit_create(&mut p, &o);
    assert_eq!(
        causes(&out),
        [Cause {
            reason: Reason::FieldValueForbidden,
            field: "metadata.annotations[container.apparmor.security.beta.kubernetes.io/hello]"
                .into(),
            message: "Forbidden: AppArmor is disabled by feature-gate".into(),
        }]
    );
}

#[test]
fn several_causes_are_bracketed_and_windows_skips_apparmor_sync() {
    let mut p = pod(
        "multi",
        json!({"container.apparmor.security.beta.kubernetes.io/x": "bad"}),
        json!({"seccompProfile": {"type": "Localhost"}}),
        Value::Null,
    );
    let o = admit_create(&mut p, &opts(32));
    assert_eq!(
        invalid_text(&o),
        "The Pod \"multi\" is invalid: [metadata.annotations[container.apparmor.security.beta.kubernetes.io/x]: Invalid value: \"x\": container not found, metadata.annotations[container.apparmor.security.beta.kubernetes.io/x]: Invalid value: \"bad\": invalid AppArmor profile name: \"bad\", spec.securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost]"
    );
    let mut p = pod(
        "w",
        Value::Null,
        json!({"appArmorProfile": {"type": "RuntimeDefault"}}),
        Value::Null,
    );
    p["spec"]["os"] = json!({"name": "windows"});
    assert_eq!(admit_create(&mut p, &opts(32)).result, Ok(()));
    assert!(p["metadata"].get("annotations").is_none());
}

#[test]
fn malformed_pods_are_errors() {
    for mut p in [
        json!(null),
        json!({"spec": {"containers": "x"}}),
        json!({"metadata": {"annotations": {"a": []}}}),
    ] {
        let o = admit_create(&mut p, &opts(32));
        assert!(matches!(o.result, Err(CreateError::Shape(_))), "{p}");
    }
}

#[test]
fn go_quote_escapes_like_go() {
    assert_eq!(go_quote("a\"b\\c\n\t\u{1}é"), "\"a\\\"b\\\\c\\n\\t\\x01é\"");
    assert_eq!(invalid_message("n", &[]), "Pod \"n\" is invalid: []");
}

#[test]
fn seccomp_warnings_only_for_valid_pods_and_init_containers_sync_apparmor() {
    // Invalid pod: the seccomp warning (WarningsOnCreate) is not sent.
    let mut p = pod(
        "p",
        json!({"seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}),
        json!({"appArmorProfile": {"type": "Localhost"}}),
        Value::Null,
    );
    let o = admit_create(&mut p, &opts(32));
    assert!(o.result.is_err());
    assert!(o.warnings.is_empty());
    // Init containers take part in the AppArmor sync.
    let mut p = json!({"metadata": {"name": "p", "annotations": {
            "container.apparmor.security.beta.kubernetes.io/init": "unconfined"}},
        "spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "hello"}]}});
    let o = admit_create(&mut p, &opts(31));
    assert_eq!(o.result, Ok(()));
    assert_eq!(
        o.warnings,
        ["metadata.annotations[container.apparmor.security.beta.kubernetes.io/init]: deprecated since v1.30; use the \"appArmorProfile\" field instead"]
    );
    assert_eq!(
        p["spec"]["initContainers"][0]["securityContext"]["appArmorProfile"],
        json!({"type": "Unconfined"})
    );
    assert!(p["spec"]["containers"][0].get("securityContext").is_none());
}

#[test]
fn pod_create_order_ephemeral_before_match_checks() {
    let p = json!({"metadata": {"name": "p", "annotations": {
            "container.seccomp.security.alpha.kubernetes.io/c": "unconfined"}},
        "spec": {"containers": [{"name": "c", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}],
            "ephemeralContainers": [{"name": "e"}]}});
    let view = PodView::parse(&p).expect("shape");
    let got: Vec<String> = validate_create(&view, &opts(32))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        got,
        [
            "spec.ephemeralContainers: Forbidden: cannot be set on create",
            "spec.containers[0].securityContext.seccompProfile.type: Forbidden: seccomp type in annotation and field must match",
        ]
    );
}
