//! Seccomp profiles in pure Rust.
//!
//! See `ARCHITECTURE.md` at the repository root for what this crate owns.
