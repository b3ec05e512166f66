//! The names the API server and the node agents share for recording and
//! distributing profiles (the Security Profiles Operator's resources): set by
//! one side, read by the other, so they are defined once here.

/// The pod annotation asking for seccomp recording: `*` (every container) or a
/// comma-separated list of container names. The containers then run under
/// their own profile with its allowed syscalls reported to the container's
/// monitor, which writes them to the node's recording file; `armorlet record
/// seccomp --pod` turns that into a profile.
pub const RECORD_SECCOMP_ANNOTATION: &str = "recording.armorlet.io/seccomp";

/// The same for AppArmor: one recording serves both (the monitor reads the
/// path arguments of the file syscalls it is notified of), so either
/// annotation selects the container; `armorlet record apparmor --pod` reads it.
pub const RECORD_APPARMOR_ANNOTATION: &str = "recording.armorlet.io/apparmor";

/// The pod annotation naming the ProfileRecording that records the pod: the API
/// server's admission sets it, and the pod's node turns the recording into
/// profiles when the pod ends.
pub const PROFILE_RECORDING_ANNOTATION: &str = "armorlet.io/profile-recording";

/// The namespace of the node statuses of cluster-scoped profiles
/// (AppArmorProfiles), where the Security Profiles Operator runs.
pub const SPO_NAMESPACE: &str = "security-profiles-operator";
