//! RFC 3339 timestamps as the API shows them (`metav1.Time`: seconds precision, UTC).

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-23T18:34:43Z` for `t`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let dt = ::time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(::time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// The current time, RFC 3339.
pub fn now() -> String {
    rfc3339(SystemTime::now())
}

/// `MicroTime` (`2026-11-23T18:34:43.123456Z`) for Lease renewals.
pub fn micro_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let base = rfc3339(SystemTime::now());
    format!("{}.{:06}Z", base.trim_end_matches('Z'), d.subsec_micros())
}
