//! Prints the translation of a profile file: `translate FILE [--approximate]`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reg = tempfile_dir();
    let r = armorlet_landlock::Registry::open(&reg).expect("registry");
    let approx = args.iter().any(|a| a == "--approximate");
    match r.load_file(std::path::Path::new(&args[1]), approx) {
        Ok(loaded) => {
            for l in loaded {
                println!("{}: {} tightenings", l.name, l.approximations.len());
                for a in &l.approximations {
                    println!("  {a}");
                }
                let t = r.translation(&l.name, approx).expect("translation");
                println!("{}", serde_json::to_string_pretty(&t.plan).expect("json"));
            }
        }
        Err(e) => println!("error: {e}"),
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("armorlet-translate-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}
