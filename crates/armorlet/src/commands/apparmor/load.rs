//! `armorlet apparmor load|unload`: put profiles onto the node(s), through
//! the Landlock registry (`D/nodes/<node>/apparmor/`) or the kernel
//! (`apparmor_parser -r`, after checking with our parser).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use armorlet_landlock::{host, kernel, Registry};

/// Where the profiles go.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// armorlet data directory (registries are `D/nodes/<node>/apparmor/`).
    #[arg(
        long,
        value_name = "D",
        env = "ARMORLET_DATA_DIR",
        default_value = "/var/lib/armorlet"
    )]
    pub data_dir: PathBuf,
    /// Only this node (default: every node directory present).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Backend: auto (kernel when the AppArmor LSM is enabled, else landlock), kernel or landlock.
    #[arg(long, value_name = "KIND", default_value = "auto")]
    pub backend: String,
    /// securityfs AppArmor directory (host detection).
    #[arg(long, value_name = "DIR", default_value = host::DEFAULT_APPARMOR_FS)]
    pub apparmor_fs: PathBuf,
    /// AppArmor module parameters directory (host detection).
    #[arg(long, value_name = "DIR", default_value = host::DEFAULT_MODULE_PARAMS)]
    pub module_params: PathBuf,
}

impl Target {
    /// Whether the kernel backend is selected.
    pub fn kernel(&self) -> anyhow::Result<bool> {
        match self.backend.as_str() {
            "kernel" => Ok(true),
            "landlock" => Ok(false),
            "auto" => Ok(host::lsm_enabled(&self.apparmor_fs, &self.module_params)),
            other => bail!("invalid --backend {other:?}: expected auto, kernel or landlock"),
        }
    }

    /// The registries addressed (every `D/nodes/*` without `--node`).
    pub fn registries(&self) -> anyhow::Result<Vec<(String, Registry)>> {
        let nodes_dir = self.data_dir.join("nodes");
        let names: Vec<String> = match &self.node {
            Some(n) => vec![n.clone()],
            None => node_names(&nodes_dir)?,
        };
        if names.is_empty() {
            bail!(
                "no node directories under {}; pass --node NAME",
                nodes_dir.display()
            );
        }
        names
            .into_iter()
            .map(|n| {
                let r = Registry::open(&nodes_dir.join(&n).join("apparmor"))?;
                Ok((n, r))
            })
            .collect()
    }
}

fn node_names(nodes_dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries = match std::fs::read_dir(nodes_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", nodes_dir.display())),
    };
    let mut names = Vec::new();
    for e in entries {
        let e = e?;
        if e.file_type()?.is_dir() {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Profile files; none or `-` reads the policy from standard input (as `apparmor_parser`
    /// does, so the tutorial's `apparmor_parser -q <<EOF` becomes `armorlet apparmor load -q
    /// <<EOF`).
    pub files: Vec<PathBuf>,
    /// Print nothing on success (errors still go to stderr), like `apparmor_parser -q`.
    #[arg(short, long)]
    pub quiet: bool,
    /// Landlock: tighten rules Landlock cannot enforce exactly instead of refusing the profile.
    #[arg(long)]
    pub approximate: bool,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, clap::Args)]
pub struct UnloadArgs {
    /// Profile names.
    #[arg(required = true)]
    pub names: Vec<String>,
    #[command(flatten)]
    pub target: Target,
}

pub fn run_load(args: LoadArgs) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    // Standard input stands for "-" or no file; it is read once for every node.
    let stdin_text = if args.files.is_empty() || args.files.iter().any(|f| f.as_os_str() == "-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the policy from standard input")?;
        Some(text)
    } else {
        None
    };
    let stdin_path = PathBuf::from("-");
    let files: Vec<&PathBuf> = if args.files.is_empty() {
        vec![&stdin_path]
    } else {
        args.files.iter().collect()
    };
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let say = |line: String| {
        if !args.quiet {
            println!("{line}");
        }
    };
    if args.target.kernel()? {
        for f in &files {
            match &stdin_text {
                Some(text) if f.as_os_str() == "-" => {
                    kernel::load_text(text, &cwd)?;
                    say("<stdin>: loaded into the kernel".into());
                }
                _ => {
                    kernel::load(f)?;
                    say(format!("{}: loaded into the kernel", f.display()));
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let registries = args.target.registries()?;
    let mut failed = false;
    for f in &files {
        for (node, r) in &registries {
            let result = match &stdin_text {
                Some(text) if f.as_os_str() == "-" => {
                    r.load_text(text, Path::new("<stdin>"), &cwd, args.approximate)
                }
                _ => r.load_file(f, args.approximate),
            };
            match result {
                Ok(loaded) => {
                    for l in loaded {
                        let how = if l.approximations.is_empty() {
                            "exactly".to_string()
                        } else {
                            format!("with {} tightening(s)", l.approximations.len())
                        };
                        say(format!("{node}: {}: loaded (Landlock, {how})", l.name));
                        for a in &l.approximations {
                            say(format!("  tightened: {a}"));
                        }
                    }
                }
                Err(e) => {
                    eprintln!("error: {node}: {e}");
                    failed = true;
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn run_unload(args: UnloadArgs) -> anyhow::Result<ExitCode> {
    if args.target.kernel()? {
        for n in &args.names {
            kernel::unload(&args.target.apparmor_fs, n)?;
            println!("{n}: removed from the kernel");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut failed = false;
    for (node, r) in args.target.registries()? {
        for n in &args.names {
            if r.unload(n)? {
                println!("{node}: {n}: unloaded");
            } else {
                eprintln!("error: {node}: profile {n:?} is not loaded");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
