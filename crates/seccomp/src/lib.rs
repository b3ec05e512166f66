//! Seccomp profiles in pure Rust: the OCI/Docker JSON model, syscall tables
//! generated from the kernel headers, validation, `includes`/`excludes`
//! resolution, a decision model matching crun + libseccomp, a BPF compiler and
//! interpreter, `explain`/`diff`, the `RuntimeDefault` profile and a loader.
//!
//! The pipeline:
//! ```text
//! JSON --Profile::from_json/validate--> Profile --resolve(ctx)--> ResolvedProfile
//!      --policy()--> Policy --compile()--> Vec<SockFilter> --load::install-->
//! ```
//! Everything but [`load`] and [`notify`] (the recorder's listener) is pure and
//! needs no privileges. [`record`] turns what a workload did into a profile.
//!
//! # Decisions
//! - **Runtime emulated: crun** (our default runtime), not runc: errno EPERM
//!   when a profile gives none, rules equal to the default action skipped,
//!   repeated comparisons on one argument split into ORed rules, unknown names
//!   skipped with a warning, bad-architecture action `SCMP_ACT_KILL_THREAD`
//!   (libseccomp's default, which crun keeps), `SECCOMP_FILTER_FLAG_SPEC_ALLOW`
//!   when the profile names no flags. runc's patch that returns ENOSYS for
//!   syscalls newer than the profile is not emulated.
//! - **Decisions follow libseccomp 2.5.4** (see [`policy`]): per-arch name
//!   resolution, x86 socketcall/ipc multiplexing, x32-bit handling, 64-bit
//!   comparisons on both halves (low half only on x86/x32), rule merging per
//!   syscall. Checked against Debian's libseccomp on the moby and
//!   containers/common defaults, the tutorial profiles and random profiles.
//! - **Known difference**: several argument rules on one syscall with different
//!   actions, or with NE/LT/LE comparisons, are decided by the first matching
//!   rule (a plain OR); libseccomp's result there depends on its internal rule
//!   tree. [`Policy::warnings`] flags such syscalls.
//! - **Program shape**: native architecture first, then a balanced binary
//!   search over intervals of syscall numbers (see `compile.rs`).
//! - **Limits**: profiles over [`MAX_PROFILE_BYTES`] (1 MiB) are refused before
//!   parsing; programs over 4096 instructions are an error.
//! - **Tables**: x86_64, x86 and x32 from the kernel UAPI headers plus the
//!   newer syscalls libseccomp knows; aarch64 and arm from libseccomp's tables
//!   (no headers for them here). Other architectures parse but are an error at
//!   compile time.

pub mod arch;
pub mod bpf;
mod check;
mod compile;
pub mod error;
pub mod explain;
pub mod load;
pub mod model;
pub mod notify;
pub mod oci;
pub mod policy;
pub mod record;
pub mod resolve;
pub mod runtime_default;
pub mod syscalls;

pub use arch::Arch;
pub use bpf::SockFilter;
pub use check::{check, MAX_ARGS, MAX_PROFILE_BYTES};
pub use error::{Error, Result, Warning};
pub use model::{Action, ArgCmp, Operator, Profile, SyscallRule};
pub use policy::{Compiled, Decision, Policy, Reason, SeccompData};
pub use resolve::{ResolveContext, ResolvedProfile};
pub use runtime_default::runtime_default;
