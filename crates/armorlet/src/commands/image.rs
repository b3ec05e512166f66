//! `armorlet image load|pull|ls|rm`: the local image store (`D/images`, armorlet-images).
//!
//! Exit codes: 0 ok, 1 image not found (locally, or in the registry for `pull`), 2 usage,
//! I/O or registry errors (bad archives and refused downloads included).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use armorlet_images::{ImageError, ImageRecord, ImageStore};

/// Flags of `armorlet image`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// The node data directory; the store is `DATA_DIR/images`.
    #[arg(
        long,
        global = true,
        env = "ARMORLET_DATA_DIR",
        default_value = "/var/lib/armorlet"
    )]
    data_dir: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Load OCI image layouts (directory or tar) or docker-archive tars.
    Load {
        /// Archives to load.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Pull an image from an OCI registry (HTTPS unless the registry is insecure).
    Pull {
        /// Reference: `HOST[:PORT]/repo:tag` or `...@sha256:<digest>`.
        reference: String,
        /// A registry (`HOST:PORT`, as in the reference) spoken to in plain HTTP; repeatable.
        #[arg(long, value_name = "HOST:PORT")]
        insecure_registry: Vec<String>,
        /// A PEM file of a CA trusted for registries besides the system roots; repeatable.
        #[arg(long, value_name = "FILE")]
        registry_ca: Vec<PathBuf>,
        /// Registry credentials, as `crictl pull --creds`.
        #[arg(long, value_name = "USER:PASSWORD")]
        creds: Option<String>,
    },
    /// List images (like `crictl images`).
    #[command(alias = "list")]
    Ls,
    /// Remove an image reference, or an image by id.
    #[command(alias = "remove")]
    Rm {
        /// Reference (`busybox:1.28`) or image id (prefix of at least 12 hex digits).
        reference: String,
    },
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = args.data_dir.join("images");
    let store = ImageStore::open(&root)
        .with_context(|| format!("opening the image store {}", root.display()))?;
    match args.command {
        Command::Load { files } => load(&store, &files),
        Command::Pull {
            reference,
            insecure_registry,
            registry_ca,
            creds,
        } => pull(
            &store,
            &reference,
            &armorlet_images::RegistryOptions {
                insecure: insecure_registry,
                ca_files: registry_ca,
                // An explicit pull goes to the registry.
                local_mirrors: Vec::new(),
            },
            creds.as_deref(),
        ),
        Command::Ls => list(&store),
        Command::Rm { reference } => remove(&store, &args.data_dir, &reference),
    }
}

fn load(store: &ImageStore, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    for file in files {
        let records = store
            .load_archive(file)
            .with_context(|| format!("loading {}", file.display()))?;
        // One archive entry per reference: an image with two names comes back twice.
        let mut shown = Vec::new();
        for rec in records {
            let lines = match rec.names.is_empty() {
                true => vec![format!("Loaded image ID: {}", rec.id)],
                false => rec
                    .names
                    .iter()
                    .map(|n| format!("Loaded image: {n}"))
                    .collect(),
            };
            for line in lines
                .into_iter()
                .filter(|l| !shown.contains(l))
                .collect::<Vec<_>>()
            {
                writeln!(stdout, "{line}")?;
                shown.push(line);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn pull(
    store: &ImageStore,
    reference: &str,
    options: &armorlet_images::RegistryOptions,
    creds: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let credentials = match creds {
        None => Vec::new(),
        Some(c) => {
            let (username, password) = c
                .split_once(':')
                .context("--creds: expected USER:PASSWORD")?;
            vec![armorlet_images::Credential::Basic {
                username: username.into(),
                password: password.into(),
            }]
        }
    };
    let normalized = armorlet_images::normalize_reference(reference)?;
    println!("Pulling {normalized}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = rt.block_on(armorlet_images::pull(
        store,
        reference,
        options,
        &credentials,
    ));
    match result {
        Ok(p) => {
            // docker pull's closing lines, with the stored image's id and size.
            println!("Digest: {}", p.digest);
            println!("Image ID: {}", p.record.id);
            println!(
                "Size: {} bytes ({})",
                p.record.size,
                human_size(p.record.size)
            );
            println!("Status: Downloaded image for {}", p.reference);
            Ok(ExitCode::SUCCESS)
        }
        Err(
            e @ ImageError::Pull {
                not_found: true, ..
            },
        ) => {
            eprintln!("armorlet: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("armorlet: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

fn list(store: &ImageStore) -> anyhow::Result<ExitCode> {
    let mut rows = vec![[
        "IMAGE".to_string(),
        "TAG".into(),
        "IMAGE ID".into(),
        "SIZE".into(),
    ]];
    for rec in store.list()? {
        rows.extend(rows_of(&rec));
    }
    print!("{}", table(&rows));
    Ok(ExitCode::SUCCESS)
}

/// One row per name (`<none>` for an untagged image), as `crictl images` prints.
fn rows_of(rec: &ImageRecord) -> Vec<[String; 4]> {
    let id = rec
        .id
        .trim_start_matches("sha256:")
        .chars()
        .take(13)
        .collect::<String>();
    let size = human_size(rec.size);
    let mut rows: Vec<[String; 4]> = rec
        .names
        .iter()
        .map(|name| {
            let (repo, tag) = split_name(name);
            [repo.to_string(), tag.to_string(), id.clone(), size.clone()]
        })
        .collect();
    if rows.is_empty() {
        rows.push(["<none>".into(), "<none>".into(), id, size]);
    }
    rows
}

/// `docker.io/library/busybox:1.28` → (`docker.io/library/busybox`, `1.28`).
fn split_name(name: &str) -> (&str, &str) {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], &name[slash + i + 1..]),
        None => (name, "<none>"),
    }
}

/// Left-aligned columns, as crictl's tabwriter (minimum width 20, padding 3).
fn table(rows: &[[String; 4]]) -> String {
    let widths: Vec<usize> = (0..4)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(20)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == 3 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Decimal size with 4 significant digits, like go-units `HumanSize` (crictl's SIZE column).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    let int_digits = if v < 1.0 {
        1
    } else {
        v.log10().floor() as usize + 1
    };
    let mut s = format!("{v:.prec$}", prec = 4usize.saturating_sub(int_digits));
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[unit])
}

fn remove(store: &ImageStore, data_dir: &Path, reference: &str) -> anyhow::Result<ExitCode> {
    let Some(rec) = store.resolve(reference)? else {
        eprintln!("armorlet: image {reference:?} not found");
        return Ok(ExitCode::from(1));
    };
    let drops_image = !armorlet_images::normalize_reference(reference)
        .is_ok_and(|n| rec.names.contains(&n) && rec.names.len() > 1);
    if drops_image {
        if let Some(user) = container_using(data_dir, &rec)? {
            // As docker's "conflict: unable to remove repository reference": the unpacked
            // root is the container's lower layer, removing it would break the container.
            eprintln!(
                "armorlet: image {reference:?} is in use by container {user}: delete the pod first"
            );
            return Ok(ExitCode::from(1));
        }
    }
    match store.remove(reference) {
        Ok(()) => {}
        Err(ImageError::NotFound(_)) => {
            eprintln!("armorlet: image {reference:?} not found");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    }
    let shown = armorlet_images::normalize_reference(reference)
        .ok()
        .filter(|n| rec.names.contains(n))
        .unwrap_or(rec.id);
    println!("Deleted: {shown}");
    Ok(ExitCode::SUCCESS)
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// A container of any node whose root filesystem is this image's unpacked root, as
/// `<id> (pod <namespace>/<name>)`.
fn container_using(data_dir: &Path, rec: &ImageRecord) -> anyhow::Result<Option<String>> {
    let hex = rec.id.strip_prefix("sha256:").unwrap_or(&rec.id);
    let root = data_dir.join("images").join("roots").join(hex);
    let nodes = data_dir.join("nodes");
    let Ok(node_dirs) = std::fs::read_dir(&nodes) else {
        return Ok(None);
    };
    for node in node_dirs.flatten() {
        let Ok(containers) = std::fs::read_dir(node.path().join("containers")) else {
            continue;
        };
        for c in containers.flatten() {
            let Ok(text) = std::fs::read(c.path().join("spec.json")) else {
                continue;
            };
            let spec: armorlet_runtime::ContainerSpec = serde_json::from_slice(&text)
                .with_context(|| format!("reading {}", c.path().join("spec.json").display()))?;
            if same_path(&spec.image_root, &root) {
                let label = |k: &str| spec.labels.get(k).cloned().unwrap_or_default();
                return Ok(Some(format!(
                    "{} (pod {}/{})",
                    spec.id,
                    label("io.kubernetes.pod.namespace"),
                    label("io.kubernetes.pod.name")
                )));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(1_146_880), "1.147MB");
        assert_eq!(human_size(1_150_000), "1.15MB");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(2_900_000), "2.9MB");
        assert_eq!(human_size(0), "0B");
    }

    #[test]
    fn names_split_at_the_tag() {
        assert_eq!(
            split_name("localhost:5000/app:v1"),
            ("localhost:5000/app", "v1")
        );
        assert_eq!(
            split_name("docker.io/library/busybox:1.28"),
            ("docker.io/library/busybox", "1.28")
        );
    }
}
