//! `armorlet apparmor explain`: the evaluator's verdict on one request, and
//! the rules that decided it.
//!
//! Exit status: 0 when the request is allowed, 1 when it is denied, 2 on an
//! error (unreadable or invalid policy, unknown profile, bad request).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use armorlet_apparmor::ast::{ExecKind, Profile, ProfileMode, Rule, Severity};
use armorlet_apparmor::eval::{
    find_profile, Decision, Evaluator, FileAccess, FileRequest, Log, NetworkRequest, PermOutcome,
    PtraceRequest, Reason, Request, SignalRequest, Verdict,
};

/// Explain how a profile decides one request. Exit status: 0 allowed,
/// 1 denied, 2 error.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("request")
        .required(true)
        .args(["path", "capability", "network", "signal", "ptrace", "userns"]),
))]
pub struct Args {
    /// The policy file.
    pub file: PathBuf,
    /// The profile to evaluate (`outer//hat` for hats and children); needed
    /// when the file defines more than one.
    #[arg(long)]
    pub profile: Option<String>,
    #[command(flatten)]
    pub includes: super::IncludeArgs,
    /// A file path (directories end with '/').
    #[arg(long, requires = "access")]
    pub path: Option<String>,
    /// File access letters, some of r w a l k m x (e.g. `rw`).
    #[arg(long, requires = "path")]
    pub access: Option<String>,
    /// The requesting task owns the file (for `owner` rules).
    #[arg(long, requires = "path")]
    pub owner: bool,
    /// For `l`: the target of the hard link.
    #[arg(long, requires = "path", value_name = "PATH")]
    pub link_target: Option<String>,
    /// A capability, e.g. `net_admin` or `CAP_SYS_ADMIN`.
    #[arg(long, value_name = "NAME")]
    pub capability: Option<String>,
    /// A socket: `DOMAIN [TYPE] [PROTOCOL] [PERM...]`, e.g. `inet stream`
    /// or `inet6 dgram udp send` (no permission means `create`).
    #[arg(long, value_name = "SPEC")]
    pub network: Option<String>,
    /// A signal (e.g. `hup`, `SIGKILL`), with --peer and --perm.
    #[arg(long, value_name = "SIGNAL", requires = "peer")]
    pub signal: Option<String>,
    /// A ptrace permission (`trace`, `read`, `tracedby`, `readby`), with --peer.
    #[arg(long, value_name = "PERM", requires = "peer")]
    pub ptrace: Option<String>,
    /// `userns create`.
    #[arg(long)]
    pub userns: bool,
    /// The peer label for --signal and --ptrace.
    #[arg(long, value_name = "LABEL")]
    pub peer: Option<String>,
    /// For --signal: `send` (default) or `receive`.
    #[arg(long, default_value = "send", value_parser = ["send", "receive", "r", "w"])]
    pub perm: String,
}

const NET_TYPES: &[&str] = &["stream", "dgram", "seqpacket", "rdm", "raw", "packet"];
const NET_PROTOCOLS: &[&str] = &["tcp", "udp", "icmp", "icmpv6"];

fn request(args: &Args) -> anyhow::Result<Request> {
    if let (Some(path), Some(access)) = (&args.path, &args.access) {
        return Ok(Request::File(FileRequest {
            path: path.clone(),
            access: FileAccess::parse(access)?,
            owner: args.owner,
            link_target: args.link_target.clone(),
        }));
    }
    if let Some(cap) = &args.capability {
        return Ok(Request::Capability(cap.clone()));
    }
    if let Some(spec) = &args.network {
        let mut words = spec.split_whitespace();
        let Some(domain) = words.next() else {
            bail!("--network needs at least an address family, e.g. 'inet stream'");
        };
        let mut req = NetworkRequest {
            domain: domain.to_owned(),
            ..NetworkRequest::default()
        };
        for w in words {
            if NET_TYPES.contains(&w) && req.sock_type.is_none() {
                req.sock_type = Some(w.to_owned());
            } else if NET_PROTOCOLS.contains(&w) && req.protocol.is_none() {
                req.protocol = Some(w.to_owned());
            } else {
                req.perms.push(w.to_owned());
            }
        }
        return Ok(Request::Network(req));
    }
    let peer = args.peer.clone().unwrap_or_default();
    if let Some(signal) = &args.signal {
        return Ok(Request::Signal(SignalRequest {
            perm: args.perm.clone(),
            signal: signal.clone(),
            peer,
        }));
    }
    if let Some(perm) = &args.ptrace {
        return Ok(Request::Ptrace(PtraceRequest {
            perm: perm.clone(),
            peer,
        }));
    }
    if args.userns {
        return Ok(Request::Userns);
    }
    bail!("no request given")
}

fn describe(req: &Request, args: &Args) -> String {
    match req {
        Request::File(f) => format!(
            "file {} {}{}",
            f.path,
            f.access,
            if f.owner { " (owner)" } else { "" }
        ),
        Request::Capability(c) => format!("capability {c}"),
        Request::Network(_) => format!("network {}", args.network.as_deref().unwrap_or("")),
        Request::Signal(s) => format!("signal {} {} peer={}", s.perm, s.signal, s.peer),
        Request::Ptrace(p) => format!("ptrace {} peer={}", p.perm, p.peer),
        Request::Userns => "userns create".to_owned(),
        other => format!("{other:?}"),
    }
}

fn mode_name(p: &Profile) -> &'static str {
    match p.mode() {
        ProfileMode::Enforce => "enforce",
        ProfileMode::Complain => "complain",
        ProfileMode::Kill => "kill",
        ProfileMode::Unconfined => "unconfined",
        ProfileMode::DefaultAllow => "default_allow",
        ProfileMode::Prompt => "prompt",
    }
}

/// Source lines, read once per file, to show each deciding rule's text.
#[derive(Default)]
struct Sources(HashMap<String, Option<Vec<String>>>);

impl Sources {
    fn line(&mut self, rule: &Rule) -> Option<String> {
        let file = rule.span.file.to_string();
        let lines = self.0.entry(file.clone()).or_insert_with(|| {
            std::fs::read_to_string(&file)
                .ok()
                .map(|s| s.lines().map(str::to_owned).collect())
        });
        let idx = usize::try_from(rule.span.line).ok()?.checked_sub(1)?;
        lines.as_ref()?.get(idx).map(|l| l.trim().to_owned())
    }
}

fn print_decision(d: &Decision, sources: &mut Sources) {
    let verdict = match d.verdict {
        Verdict::Allow => "allow",
        Verdict::Deny => "deny",
    };
    let reason = match d.reason {
        Reason::Allowed => "granted by the rules",
        Reason::ExplicitDeny => "explicit deny rule",
        Reason::NotGranted => "no rule grants it",
        Reason::Complain => "no rule grants it; allowed by complain mode",
        Reason::DefaultAllow => "no rule grants it; allowed by default_allow",
        Reason::Unconfined => "the profile is unconfined",
    };
    let log = match d.log {
        Log::None => "not logged",
        Log::Audit => "logged (AUDIT)",
        Log::Allowed => "logged (ALLOWED)",
        Log::Denied => "logged (DENIED)",
    };
    println!("verdict: {verdict} ({reason}; {log})");
    if d.kill {
        println!("the task is killed (kill mode)");
    }
    if let Some(e) = &d.exec {
        let kind = match e.mode.kind {
            ExecKind::Plain => "x",
            ExecKind::Inherit => "ix",
            ExecKind::Profile => "px",
            ExecKind::Child => "cx",
            ExecKind::Unconfined => "ux",
        };
        let mut s = kind.to_owned();
        if e.mode.scrub {
            s = s.to_ascii_uppercase().replace('X', "x");
        }
        if let Some(f) = e.mode.fallback {
            s.insert(1, if f == ExecKind::Inherit { 'i' } else { 'u' });
        }
        print!("exec: {s}");
        if let Some(t) = e.target {
            print!(" -> {}", t.raw);
        }
        if e.conflict {
            print!(" (conflicting x modes among the deciding rules)");
        }
        println!();
    }
    for p in &d.perms {
        let outcome = match p.outcome {
            PermOutcome::Allowed => "allowed by",
            PermOutcome::ExplicitDeny => "denied by",
            PermOutcome::NotGranted => "not granted by any rule",
        };
        println!("  {}: {outcome}", p.perm);
        for r in &p.rules {
            match sources.line(r) {
                Some(text) => println!("    {}  {text}", r.span),
                None => println!("    {}", r.span),
            }
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let req = request(&args)?;
    let opts = args.includes.parse_options();
    let (policy, diags) = armorlet_apparmor::load_file(&args.file, &opts)?;
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}");
        }
        bail!(
            "{}: the policy is invalid ({} errors)",
            args.file.display(),
            errors.len()
        );
    }
    let profile = find_profile(&policy, args.profile.as_deref())
        .with_context(|| format!("{}", args.file.display()))?;
    let ev = Evaluator::new(profile)?;
    let d = ev.evaluate(&req);
    println!("profile: {} ({})", profile.name, mode_name(profile));
    println!("request: {}", describe(&req, &args));
    print_decision(&d, &mut Sources::default());
    Ok(if d.is_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
