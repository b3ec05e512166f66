//! The release that added each schema property of the built-in documents that the emulated
//! releases (1.22 to 1.32, `--emulated-version`) must not show, for `kubectl explain` under an
//! older release. The schemas come from k8s-openapi's API version 1.33, so every field 1.33
//! added is here with 33 (always dropped); older additions are listed where they matter to
//! armorlet's users (confinement fields first). A schema no longer referred to once its field is
//! dropped (e.g. `AppArmorProfile` before 1.30) leaves the document with it.
//!
//! Hand-written from the Kubernetes release notes and KEPs named per row.

/// (schema, property, first release (minor) that has it).
pub static SINCE: &[(&str, &str, u32)] = &[
    // KEP-24 (AppArmor GA), Kubernetes 1.30: the appArmorProfile fields replace the
    // container.apparmor.security.beta.kubernetes.io annotations.
    (
        "io.k8s.api.core.v1.PodSecurityContext",
        "appArmorProfile",
        30,
    ),
    ("io.k8s.api.core.v1.SecurityContext", "appArmorProfile", 30),
    // KEP-3619 (fine-grained SupplementalGroups control), 1.31 alpha.
    (
        "io.k8s.api.core.v1.PodSecurityContext",
        "supplementalGroupsPolicy",
        31,
    ),
    ("io.k8s.api.core.v1.NodeStatus", "features", 31),
    ("io.k8s.api.core.v1.ContainerStatus", "user", 31),
    // KEP-1710 (SELinux relabeling with mount options), 1.32 alpha: seLinuxChangePolicy.
    (
        "io.k8s.api.core.v1.PodSecurityContext",
        "seLinuxChangePolicy",
        32,
    ),
    // KEP-4639 (OCI image volumes), 1.31 alpha.
    ("io.k8s.api.core.v1.Volume", "image", 31),
    // KEP-3960 (the Sleep lifecycle action), 1.29 alpha.
    ("io.k8s.api.core.v1.LifecycleHandler", "sleep", 29),
    // KEP-753 (sidecar containers), 1.28 alpha: a restartPolicy per init container.
    ("io.k8s.api.core.v1.Container", "restartPolicy", 28),
    // KEP-2837 (pod-level resources), 1.32 alpha.
    ("io.k8s.api.core.v1.PodSpec", "resources", 32),
    // KEP-4444 (Service traffic distribution), 1.30 alpha.
    ("io.k8s.api.core.v1.ServiceSpec", "trafficDistribution", 30),
    // KEP-4355 (coordinated leader election), 1.31 alpha.
    (
        "io.k8s.api.coordination.v1.LeaseSpec",
        "preferredHolder",
        31,
    ),
    ("io.k8s.api.coordination.v1.LeaseSpec", "strategy", 31),
    // KEP-4817 (the resource health status of devices), 1.31 alpha.
    (
        "io.k8s.api.core.v1.ContainerStatus",
        "allocatedResourcesStatus",
        31,
    ),
    // KEP-3022 (minDomains in pod topology spread), 1.24 beta.
    (
        "io.k8s.api.core.v1.TopologySpreadConstraint",
        "minDomains",
        24,
    ),
    // KEP-127 (user namespaces), 1.25 alpha; the nodes' report of support, 1.31.
    ("io.k8s.api.core.v1.PodSpec", "hostUsers", 25),
    (
        "io.k8s.api.core.v1.NodeRuntimeHandlerFeatures",
        "userNamespaces",
        31,
    ),
    // KEP-3243 (matchLabelKeys in pod topology spread), 1.25 alpha.
    (
        "io.k8s.api.core.v1.TopologySpreadConstraint",
        "matchLabelKeys",
        25,
    ),
    // KEP-3094 (node inclusion policies in pod topology spread), 1.25 alpha.
    (
        "io.k8s.api.core.v1.TopologySpreadConstraint",
        "nodeAffinityPolicy",
        25,
    ),
    (
        "io.k8s.api.core.v1.TopologySpreadConstraint",
        "nodeTaintsPolicy",
        25,
    ),
    // KEP-3521 (pod scheduling readiness), 1.26 alpha.
    ("io.k8s.api.core.v1.PodSpec", "schedulingGates", 26),
    // KEP-3063 (dynamic resource allocation), 1.26 alpha; its claim statuses, 1.28; KEP-4381
    // (structured parameters) named the claims directly and added requests in 1.31.
    ("io.k8s.api.core.v1.PodSpec", "resourceClaims", 26),
    ("io.k8s.api.core.v1.ResourceRequirements", "claims", 26),
    ("io.k8s.api.core.v1.PodStatus", "resourceClaimStatuses", 28),
    (
        "io.k8s.api.core.v1.PodResourceClaim",
        "resourceClaimName",
        31,
    ),
    (
        "io.k8s.api.core.v1.PodResourceClaim",
        "resourceClaimTemplateName",
        31,
    ),
    ("io.k8s.api.core.v1.ResourceClaim", "request", 31),
    // KEP-1287 (in-place pod resize), 1.27 alpha.
    ("io.k8s.api.core.v1.Container", "resizePolicy", 27),
    ("io.k8s.api.core.v1.EphemeralContainer", "resizePolicy", 27),
    (
        "io.k8s.api.core.v1.ContainerStatus",
        "allocatedResources",
        27,
    ),
    ("io.k8s.api.core.v1.ContainerStatus", "resources", 27),
    ("io.k8s.api.core.v1.PodStatus", "resize", 27),
    // KEP-2876 (CRD validation expressions): messageExpression 1.27, fieldPath and reason
    // 1.28, optionalOldSelf (KEP-4008, ratcheting) 1.29.
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ValidationRule",
        "messageExpression",
        27,
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ValidationRule",
        "fieldPath",
        28,
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ValidationRule",
        "reason",
        28,
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ValidationRule",
        "optionalOldSelf",
        29,
    ),
    // KEP-4358 (CRD field selectors), 1.30 alpha.
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion",
        "selectableFields",
        30,
    ),
    // KEP-753 (sidecar containers), 1.28 alpha.
    ("io.k8s.api.core.v1.EphemeralContainer", "restartPolicy", 28),
    // KEP-2681 (pod host IPs), 1.28 alpha.
    ("io.k8s.api.core.v1.PodStatus", "hostIPs", 28),
    // KEP-1860 (load balancer IP mode), 1.29 alpha.
    ("io.k8s.api.core.v1.LoadBalancerIngress", "ipMode", 29),
    // KEP-3633 (matchLabelKeys in pod affinity), 1.29 alpha.
    ("io.k8s.api.core.v1.PodAffinityTerm", "matchLabelKeys", 29),
    (
        "io.k8s.api.core.v1.PodAffinityTerm",
        "mismatchLabelKeys",
        29,
    ),
    // KEP-3257 (ClusterTrustBundle projection), 1.29 alpha.
    (
        "io.k8s.api.core.v1.VolumeProjection",
        "clusterTrustBundle",
        29,
    ),
    // KEP-3751 (VolumeAttributesClass), 1.29 alpha.
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimSpec",
        "volumeAttributesClassName",
        29,
    ),
    // KEP-3857 (recursive read-only mounts), 1.30 alpha: the mount option, its status and
    // the nodes' runtime handlers that report support.
    ("io.k8s.api.core.v1.VolumeMount", "recursiveReadOnly", 30),
    ("io.k8s.api.core.v1.ContainerStatus", "volumeMounts", 30),
    ("io.k8s.api.core.v1.NodeStatus", "runtimeHandlers", 30),
    // Kubernetes 1.33, which no emulated release has:
    // KEP-4960 (container stop signals), alpha.
    ("io.k8s.api.core.v1.Lifecycle", "stopSignal", 33),
    ("io.k8s.api.core.v1.ContainerStatus", "stopSignal", 33),
    // KEP-5067 (pod generation), alpha: observedGeneration in the pod's status.
    ("io.k8s.api.core.v1.PodStatus", "observedGeneration", 33),
    ("io.k8s.api.core.v1.PodCondition", "observedGeneration", 33),
    // KEP-2400 (node swap): the swap capacity in the node's system info.
    ("io.k8s.api.core.v1.NodeSystemInfo", "swap", 33),
    // KEP-3973 (consider terminating pods in Deployments), alpha.
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "terminatingReplicas",
        33,
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "terminatingReplicas",
        33,
    ),
    // KEP-3015 (PreferSameZone/PreferSameNode traffic distribution), alpha: node hints.
    ("io.k8s.api.discovery.v1.EndpointHints", "forNodes", 33),
];

/// Sentences of the 1.33 descriptions that name 1.33 (schema, property or `""` for the
/// schema's own description, the text, the release that added it): dropped below it, so an
/// emulated 1.32 does not call Endpoints deprecated.
pub static SINCE_TEXT: &[(&str, &str, &str, u32)] = &[
    // KEP-4974 (deprecate v1.Endpoints), 1.33.
    (
        "io.k8s.api.core.v1.Endpoints",
        "",
        "\n\nEndpoints is a legacy API and does not contain information about all Service features. Use discoveryv1.EndpointSlice for complete information about Service endpoints.",
        33,
    ),
    (
        "io.k8s.api.core.v1.Endpoints",
        "",
        "\n\nDeprecated: This API is deprecated in v1.33+. Use discoveryv1.EndpointSlice.",
        33,
    ),
    (
        "io.k8s.api.core.v1.EndpointSubset",
        "",
        "\n\nDeprecated: This API is deprecated in v1.33+.",
        33,
    ),
    (
        "io.k8s.api.core.v1.EndpointAddress",
        "",
        " Deprecated: This API is deprecated in v1.33+.",
        33,
    ),
    (
        "io.k8s.api.core.v1.EndpointPort",
        "",
        " Deprecated: This API is deprecated in v1.33+.",
        33,
    ),
    // KEP-1287 (in-place pod resize) beta in 1.33 moved the resize status to conditions.
    (
        "io.k8s.api.core.v1.PodStatus",
        "resize",
        " Deprecated: Resize status is moved to two pod conditions PodResizePending and PodResizeInProgress. PodResizePending will track states where the spec has been resized, but the Kubelet has not yet allocated the resources. PodResizeInProgress will track in-progress resizes, and should be present whenever allocated resources != acknowledged resources.",
        33,
    ),
    // KEP-4639 (OCI image volumes): subPath mounts of image volumes from 1.33.
    ("io.k8s.api.core.v1.Volume", "image", " before 1.33", 33),
];
