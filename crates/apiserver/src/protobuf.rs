//! Decoding of the Kubernetes protobuf envelope for the kinds kubectl's typed clients create.
//!
//! kubectl's typed clients (`create namespace|configmap|secret|serviceaccount`, `run`, ...) send
//! `Content-Type: application/vnd.kubernetes.protobuf` and do not fall back to JSON on a 415.
//! The envelope is the magic `k8s\0` followed by a `runtime.Unknown` message
//! (staging/src/k8s.io/apimachinery/pkg/runtime/generated.proto) whose `raw` field holds the
//! object. Field numbers come from staging/src/k8s.io/api/core/v1/generated.proto and
//! staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto.
//!
//! Only the kinds listed in [`schema_for`] are decoded; an unknown kind or field is an error,
//! never silently dropped data.

use base64::Engine;
use serde_json::{json, Map, Value};

/// What a field holds.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    Bytes,
    Int,
    Bool,
    Msg(&'static [F]),
    RepStr,
    RepMsg(&'static [F]),
    /// An int32/int64 whose zero value JSON omits (`omitempty`).
    OptInt,
    /// `intstr.IntOrString`: a number or a string in JSON.
    IntOrString,
    MapStr,
    MapBytes,
    Time,
}

/// Field number, JSON name, kind.
#[derive(Debug, Clone, Copy)]
struct F(u64, &'static str, Kind);

const OWNER_REFERENCE: &[F] = &[
    F(1, "kind", Kind::Str),
    F(3, "name", Kind::Str),
    F(4, "uid", Kind::Str),
    F(5, "apiVersion", Kind::Str),
    F(6, "controller", Kind::Bool),
    F(7, "blockOwnerDeletion", Kind::Bool),
];

const OBJECT_META: &[F] = &[
    F(1, "name", Kind::Str),
    F(2, "generateName", Kind::Str),
    F(3, "namespace", Kind::Str),
    F(4, "selfLink", Kind::Str),
    F(5, "uid", Kind::Str),
    F(6, "resourceVersion", Kind::Str),
    F(7, "generation", Kind::Int),
    F(8, "creationTimestamp", Kind::Time),
    F(9, "deletionTimestamp", Kind::Time),
    F(10, "deletionGracePeriodSeconds", Kind::Int),
    F(11, "labels", Kind::MapStr),
    F(12, "annotations", Kind::MapStr),
    F(13, "ownerReferences", Kind::RepMsg(OWNER_REFERENCE)),
    F(14, "finalizers", Kind::RepStr),
];

const OBJECT_REFERENCE: &[F] = &[
    F(1, "kind", Kind::Str),
    F(2, "namespace", Kind::Str),
    F(3, "name", Kind::Str),
    F(4, "uid", Kind::Str),
    F(5, "apiVersion", Kind::Str),
    F(6, "resourceVersion", Kind::Str),
    F(7, "fieldPath", Kind::Str),
];

const NAMESPACE: &[F] = &[
    F(1, "metadata", Kind::Msg(OBJECT_META)),
    F(2, "spec", Kind::Msg(&[F(1, "finalizers", Kind::RepStr)])),
    F(3, "status", Kind::Msg(&[F(1, "phase", Kind::Str)])),
];

const CONFIG_MAP: &[F] = &[
    F(1, "metadata", Kind::Msg(OBJECT_META)),
    F(2, "data", Kind::MapStr),
    F(3, "binaryData", Kind::MapBytes),
    F(4, "immutable", Kind::Bool),
];

const SECRET: &[F] = &[
    F(1, "metadata", Kind::Msg(OBJECT_META)),
    F(2, "data", Kind::MapBytes),
    F(3, "type", Kind::Str),
    F(4, "stringData", Kind::MapStr),
    F(5, "immutable", Kind::Bool),
];

const SERVICE_ACCOUNT: &[F] = &[
    F(1, "metadata", Kind::Msg(OBJECT_META)),
    F(2, "secrets", Kind::RepMsg(OBJECT_REFERENCE)),
    F(
        3,
        "imagePullSecrets",
        Kind::RepMsg(&[F(1, "name", Kind::Str)]),
    ),
    F(4, "automountServiceAccountToken", Kind::Bool),
];

/// `ServicePort` (core/v1 generated.proto).
const SERVICE_PORT: &[F] = &[
    F(1, "name", Kind::Str),
    F(2, "protocol", Kind::Str),
    F(3, "port", Kind::Int),
    F(4, "targetPort", Kind::IntOrString),
    F(5, "nodePort", Kind::OptInt),
    F(6, "appProtocol", Kind::Str),
];

/// `ServiceSpec` (core/v1 generated.proto); `sessionAffinityConfig` (14) is not decoded.
const SERVICE_SPEC: &[F] = &[
    F(1, "ports", Kind::RepMsg(SERVICE_PORT)),
    F(2, "selector", Kind::MapStr),
    F(3, "clusterIP", Kind::Str),
    F(4, "type", Kind::Str),
    F(5, "externalIPs", Kind::RepStr),
    F(7, "sessionAffinity", Kind::Str),
    F(8, "loadBalancerIP", Kind::Str),
    F(9, "loadBalancerSourceRanges", Kind::RepStr),
    F(10, "externalName", Kind::Str),
    F(11, "externalTrafficPolicy", Kind::Str),
    F(12, "healthCheckNodePort", Kind::OptInt),
    F(13, "publishNotReadyAddresses", Kind::Bool),
    F(17, "ipFamilyPolicy", Kind::Str),
    F(18, "clusterIPs", Kind::RepStr),
    F(19, "ipFamilies", Kind::RepStr),
    F(20, "allocateLoadBalancerNodePorts", Kind::Bool),
    F(21, "loadBalancerClass", Kind::Str),
    F(22, "internalTrafficPolicy", Kind::Str),
    F(23, "trafficDistribution", Kind::Str),
];

const SERVICE: &[F] = &[
    F(1, "metadata", Kind::Msg(OBJECT_META)),
    F(2, "spec", Kind::Msg(SERVICE_SPEC)),
    // A new Service's status: an empty load balancer (conditions are not decoded).
    F(
        3,
        "status",
        Kind::Msg(&[F(
            1,
            "loadBalancer",
            Kind::Msg(&[F(
                1,
                "ingress",
                Kind::RepMsg(&[F(1, "ip", Kind::Str), F(2, "hostname", Kind::Str)]),
            )]),
        )]),
    ),
];

const UNKNOWN: &[F] = &[
    F(
        1,
        "typeMeta",
        Kind::Msg(&[F(1, "apiVersion", Kind::Str), F(2, "kind", Kind::Str)]),
    ),
    F(2, "raw", Kind::Bytes),
    F(3, "contentEncoding", Kind::Str),
    F(4, "contentType", Kind::Str),
];

fn schema_for(api_version: &str, kind: &str) -> Option<&'static [F]> {
    match (api_version, kind) {
        ("v1", "Namespace") => Some(NAMESPACE),
        ("v1", "ConfigMap") => Some(CONFIG_MAP),
        ("v1", "Secret") => Some(SECRET),
        ("v1", "ServiceAccount") => Some(SERVICE_ACCOUNT),
        ("v1", "Service") => Some(SERVICE),
        _ => None,
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.varint()? as usize;
        let end = self.pos.checked_add(len).ok_or("length overflow")?;
        let b = self.buf.get(self.pos..end).ok_or("truncated field")?;
        self.pos = end;
        Ok(b)
    }
}

fn text(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "string field is not UTF-8".to_string())
}

fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), String> {
    let mut r = Reader { buf: b, pos: 0 };
    let (mut k, mut v) = (String::new(), json!(""));
    while r.pos < b.len() {
        let key = r.varint()?;
        let data = r.bytes()?;
        match key >> 3 {
            1 => k = text(data)?,
            2 if bytes_value => v = json!(base64::engine::general_purpose::STANDARD.encode(data)),
            2 => v = json!(text(data)?),
            n => return Err(format!("unexpected map entry field {n}")),
        }
    }
    Ok((k, v))
}

fn time(b: &[u8]) -> Result<Value, String> {
    let mut r = Reader { buf: b, pos: 0 };
    let mut secs: i64 = 0;
    while r.pos < b.len() {
        let key = r.varint()?;
        let v = r.varint()? as i64;
        if key >> 3 == 1 {
            secs = v;
        }
    }
    // Go's zero time (year 1) is how an unset metav1.Time travels.
    if secs <= -62_135_596_800 {
        return Ok(Value::Null);
    }
    Ok(json!(armorlet_store::time::format_rfc3339(secs)))
}

fn message(b: &[u8], schema: &'static [F], path: &str) -> Result<Map<String, Value>, String> {
    let mut r = Reader { buf: b, pos: 0 };
    let mut out = Map::new();
    while r.pos < b.len() {
        let key = r.varint()?;
        let (num, wire) = (key >> 3, key & 7);
        let F(_, name, kind) = *schema
            .iter()
            .find(|f| f.0 == num)
            .ok_or_else(|| format!("field {num} of {path} is not supported yet"))?;
        let field_path = format!("{path}.{name}");
        let expect_len = !matches!(kind, Kind::Int | Kind::OptInt | Kind::Bool);
        if expect_len != (wire == 2) || (!expect_len && wire != 0) {
            return Err(format!("{field_path}: unexpected wire type {wire}"));
        }
        match kind {
            Kind::Int => {
                out.insert(name.into(), json!(r.varint()? as i64));
            }
            Kind::OptInt => {
                let n = r.varint()? as i64;
                if n != 0 {
                    out.insert(name.into(), json!(n));
                }
            }
            Kind::IntOrString => {
                // intstr.IntOrString: type (0 int, 1 string), intVal, strVal.
                let m = message(
                    r.bytes()?,
                    &[
                        F(1, "type", Kind::Int),
                        F(2, "intVal", Kind::Int),
                        F(3, "strVal", Kind::Str),
                    ],
                    &field_path,
                )?;
                let v = if m.get("type").and_then(Value::as_i64) == Some(1) {
                    m.get("strVal").cloned().unwrap_or_else(|| json!(""))
                } else {
                    m.get("intVal").cloned().unwrap_or_else(|| json!(0))
                };
                out.insert(name.into(), v);
            }
            Kind::Bool => {
                out.insert(name.into(), json!(r.varint()? != 0));
            }
            Kind::Str => {
                // Empty strings are Go zero values, which JSON omits (`omitempty`).
                let t = text(r.bytes()?)?;
                if !t.is_empty() {
                    out.insert(name.into(), json!(t));
                }
            }
            Kind::Bytes => {
                let b = r.bytes()?;
                out.insert(
                    name.into(),
                    json!(base64::engine::general_purpose::STANDARD.encode(b)),
                );
            }
            Kind::Time => {
                out.insert(name.into(), time(r.bytes()?)?);
            }
            Kind::Msg(s) => {
                out.insert(
                    name.into(),
                    Value::Object(message(r.bytes()?, s, &field_path)?),
                );
            }
            Kind::RepStr => {
                let v = json!(text(r.bytes()?)?);
                push(&mut out, name, v);
            }
            Kind::RepMsg(s) => {
                let v = Value::Object(message(r.bytes()?, s, &field_path)?);
                push(&mut out, name, v);
            }
            Kind::MapStr | Kind::MapBytes => {
                let (k, v) = map_entry(r.bytes()?, matches!(kind, Kind::MapBytes))?;
                let m = out.entry(name).or_insert_with(|| json!({}));
                if let Some(m) = m.as_object_mut() {
                    m.insert(k, v);
                }
            }
        }
    }
    Ok(out)
}

fn push(out: &mut Map<String, Value>, name: &str, v: Value) {
    let a = out.entry(name).or_insert_with(|| json!([]));
    if let Some(a) = a.as_array_mut() {
        a.push(v);
    }
}

/// Decodes a protobuf request body into the equivalent JSON object.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let inner = body
        .strip_prefix(b"k8s\0")
        .ok_or("missing the k8s protobuf envelope")?;
    let unknown = message(inner, UNKNOWN, "Unknown")?;
    let api_version = unknown
        .get("typeMeta")
        .and_then(|t| t.get("apiVersion"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = unknown
        .get("typeMeta")
        .and_then(|t| t.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let schema = schema_for(&api_version, &kind).ok_or_else(|| {
        format!("protobuf bodies of {api_version} {kind} are not supported yet; send JSON")
    })?;
    let raw = unknown
        .get("raw")
        .and_then(Value::as_str)
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b))
        .transpose()
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let mut obj = message(&raw, schema, &kind)?;
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u64, data: &[u8]) -> Vec<u8> {
        let mut v = vec![(num << 3 | 2) as u8, data.len() as u8];
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn decodes_a_configmap_in_its_envelope() {
        let meta = [
            field(1, b"cfg"),
            field(2, b""),
            field(11, &[field(1, b"app"), field(2, b"web")].concat()),
        ]
        .concat();
        let raw = [
            field(1, &meta),
            field(2, &[field(1, b"a"), field(2, b"1")].concat()),
            vec![4 << 3, 1],
        ]
        .concat();
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "immutable": true,
                   "metadata": {"name": "cfg", "labels": {"app": "web"}}, "data": {"a": "1"}})
        );
    }

    /// A varint field (values below 128).
    fn small(num: u64, v: u8) -> Vec<u8> {
        vec![(num << 3) as u8, v]
    }

    #[test]
    fn decodes_a_service_as_kubectl_create_service_sends_it() {
        // Port 80 is two varint bytes (0x50 < 128: one byte).
        let port_a = [
            field(1, b"80-80"),
            field(2, b"TCP"),
            small(3, 80),
            field(4, &[small(1, 0), small(2, 80), field(3, b"")].concat()),
            small(5, 0),
        ]
        .concat();
        let port_b = [
            field(1, b"web"),
            field(2, b"TCP"),
            small(3, 81),
            field(4, &[small(1, 1), small(2, 0), field(3, b"http")].concat()),
        ]
        .concat();
        let spec = [
            field(1, &port_a),
            field(1, &port_b),
            field(2, &[field(1, b"app"), field(2, b"x")].concat()),
            field(4, b"NodePort"),
        ]
        .concat();
        let raw = [
            field(1, &field(1, b"x")),
            field(2, &spec),
            field(3, &field(1, b"")),
        ]
        .concat();
        let type_meta = [field(1, b"v1"), field(2, b"Service")].concat();
        let body = [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
                   "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [
                       {"name": "80-80", "protocol": "TCP", "port": 80, "targetPort": 80},
                       {"name": "web", "protocol": "TCP", "port": 81, "targetPort": "http"}]},
                   "status": {"loadBalancer": {}}})
        );
    }

    #[test]
    fn unknown_kinds_and_fields_are_errors() {
        let type_meta = [field(1, b"v1"), field(2, b"Pod")].concat();
        let body = [b"k8s\0".to_vec(), field(1, &type_meta)].concat();
        assert!(decode(&body)
            .unwrap_err()
            .contains("v1 Pod are not supported"));
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let raw = field(9, b"x");
        let body = [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        assert_eq!(
            decode(&body).unwrap_err(),
            "field 9 of ConfigMap is not supported yet"
        );
        assert!(decode(b"{}").is_err());
        assert!(decode(b"k8s\0\x0a\xff").is_err());
    }
}
