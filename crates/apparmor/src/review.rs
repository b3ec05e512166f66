//! Reviewing a recording rule by rule, like aa-logprof
//! (`armorlet record apparmor --interactive`).
//!
//! [`review`] proposes each rule [`Observed::profile`] would write
//! (capabilities, network, then each file rule of
//! [`Observed::file_rules`]) and reads one answer line per question:
//!
//! - a number selects an option line;
//! - `a` allows the selected option, `d` (or an empty line) adds it as a
//!   `deny` rule, `i` skips the rule;
//! - `g` globs the selected path one level further ([`glob_path`]), `e`
//!   globs it keeping its extension ([`glob_path_ext`]), `n` reads a new
//!   path from the next line (absolute, and matching every recorded path
//!   of the rule); each adds an option and selects it;
//! - `r` aborts (nothing is to be written), `f` finishes: the remaining
//!   rules are skipped, as they are at the end of the input.
//!
//! The answers make a [`Reviewed`], which renders as a profile.

use std::io::{self, BufRead, Write};

use crate::aare::Aare;
use crate::generate::{profile_text, render_path, FilePerms, Observed, Rules};

/// The rules a review kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reviewed {
    /// The allowed rules.
    pub allow: Rules,
    /// The rules answered with deny.
    pub deny: Rules,
    /// Files the workload created that allowed rules cover (a comment of the
    /// profile).
    pub created: Vec<String>,
}

impl Reviewed {
    /// The profile text: the tunables, the allowed rules, then the `deny`
    /// rules (like [`Observed::profile`]).
    pub fn profile(&self, name: &str) -> String {
        profile_text(name, &self.allow, &self.deny, &self.created)
    }
}

/// One proposed rule.
enum Item {
    Capability(String),
    Network(String, Option<String>),
    File {
        pattern: String,
        perms: FilePerms,
        /// The recorded paths the rule covers.
        sources: Vec<String>,
        created: Vec<String>,
    },
}

/// Splits a pattern into (its directory with the trailing `/`, its last
/// component, `/` when it names a directory). `None` for `/`.
fn split(p: &str) -> Option<(&str, &str, &str)> {
    let (body, slash) = match p.strip_suffix('/') {
        Some(b) if !b.is_empty() => (b, "/"),
        _ => (p, ""),
    };
    let i = body.rfind('/')?;
    let last = &body[i + 1..];
    (!last.is_empty()).then_some((&body[..=i], last, slash))
}

/// The directory above `base` (`/a/b/` → `/a/`), `None` at the root.
fn up(base: &str) -> Option<&str> {
    let b = base.strip_suffix('/')?;
    if b.is_empty() {
        return None;
    }
    b.rfind('/').map(|i| &b[..=i])
}

/// Whether an AARE component has an unescaped glob operator.
fn has_glob(component: &str) -> bool {
    let mut escaped = false;
    for c in component.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if "*?[{".contains(c) {
            return true;
        }
    }
    false
}

/// One glob step, as aa-logprof's Glob: the last component becomes `*`,
/// `*` becomes `**`, and `DIR/**` becomes its parent's `**`
/// (`/etc/passwd` → `/etc/*` → `/etc/**` → `/**`); directories keep their
/// trailing `/`. `None` when there is nothing left to glob.
pub fn glob_path(p: &str) -> Option<String> {
    let (base, last, slash) = split(p)?;
    Some(match last {
        "**" => format!("{}**{slash}", up(base)?),
        "*" => format!("{base}**{slash}"),
        l if has_glob(l) && l.contains("**") => format!("{base}**{slash}"),
        _ => format!("{base}*{slash}"),
    })
}

/// One glob step keeping the extension (Glob with Extension):
/// `/x/y.conf` → `/x/*.conf` → `/x/**.conf` → `/**.conf`. `None` for
/// directories and names without an extension.
pub fn glob_path_ext(p: &str) -> Option<String> {
    let (base, last, slash) = split(p)?;
    if !slash.is_empty() {
        return None;
    }
    let dot = last.rfind('.').filter(|i| *i > 0)?;
    let (stem, ext) = last.split_at(dot);
    if ext.len() < 2 || ext.contains(['*', '?']) {
        return None;
    }
    Some(match stem {
        "**" => format!("{}**{ext}", up(base)?),
        "*" => format!("{base}**{ext}"),
        s if has_glob(s) && s.contains("**") => format!("{base}**{ext}"),
        _ => format!("{base}*{ext}"),
    })
}

/// How one question ended.
enum Outcome {
    /// The selected option.
    Allow(String),
    Deny(String),
    Ignore,
    Finish,
    Abort,
}

const FILE_MENU: &str =
    "(A)llow / [(D)eny] / (I)gnore / (G)lob / Glob with (E)xtension / (N)ew / Abo(r)t / (F)inish";
const MENU: &str = "(A)llow / [(D)eny] / (I)gnore / Abo(r)t / (F)inish";

struct Session<'a> {
    name: &'a str,
    input: &'a mut dyn BufRead,
    out: &'a mut dyn Write,
    shown: bool,
}

impl Session<'_> {
    /// One line of input without its line end; `None` at the end.
    fn line(&mut self) -> io::Result<Option<String>> {
        let mut s = String::new();
        if self.input.read_line(&mut s)? == 0 {
            return Ok(None);
        }
        Ok(Some(s.trim_end_matches(['\n', '\r']).to_owned()))
    }

    fn show(&mut self, item: &Item, options: &[String], selected: usize) -> io::Result<()> {
        let out = &mut *self.out;
        if self.shown {
            writeln!(out)?;
        }
        self.shown = true;
        writeln!(out, "Profile:  {}", self.name)?;
        match item {
            Item::Capability(c) => writeln!(out, "Capability: {c}")?,
            Item::Network(f, t) => {
                writeln!(out, "Network Family: {f}")?;
                writeln!(out, "Socket Type: {}", t.as_deref().unwrap_or("any"))?;
            }
            Item::File {
                pattern,
                perms,
                sources,
                ..
            } => {
                writeln!(out, "Path:     {pattern}")?;
                if sources.len() != 1 || crate::generate::escape(&sources[0]) != *pattern {
                    let mut shown: Vec<&str> = sources.iter().take(3).map(String::as_str).collect();
                    let more = format!("... ({} in all)", sources.len());
                    if sources.len() > 3 {
                        shown.push(&more);
                    }
                    writeln!(out, "Recorded: {}", shown.join(" "))?;
                }
                writeln!(out, "New Mode: {}", perms.mode())?;
            }
        }
        writeln!(out)?;
        for (i, o) in options.iter().enumerate() {
            let line = format!("{} - {}", i + 1, rule_line(item, o));
            if i == selected {
                writeln!(out, " [{line}]")?;
            } else {
                writeln!(out, "  {line}")?;
            }
        }
        self.menu(item)
    }

    fn menu(&mut self, item: &Item) -> io::Result<()> {
        let menu = match item {
            Item::File { .. } => FILE_MENU,
            _ => MENU,
        };
        writeln!(self.out, "{menu}")?;
        self.out.flush()
    }

    /// Asks about one rule until it is decided.
    fn ask(&mut self, item: &Item) -> io::Result<Outcome> {
        let mut options = initial_options(item);
        let mut selected = 0;
        self.show(item, &options, selected)?;
        let is_file = matches!(item, Item::File { .. });
        loop {
            let Some(answer) = self.line()? else {
                return Ok(Outcome::Finish);
            };
            let answer = answer.trim().to_ascii_lowercase();
            if let Ok(n) = answer.parse::<usize>() {
                if n >= 1 && n <= options.len() {
                    selected = n - 1;
                    self.show(item, &options, selected)?;
                } else {
                    writeln!(self.out, "No option {n}.")?;
                    self.menu(item)?;
                }
                continue;
            }
            let glob: fn(&str) -> Option<String> = match answer.as_str() {
                "a" => return Ok(Outcome::Allow(options.swap_remove(selected))),
                "d" | "" => return Ok(Outcome::Deny(options.swap_remove(selected))),
                "i" => return Ok(Outcome::Ignore),
                "r" => return Ok(Outcome::Abort),
                "f" => return Ok(Outcome::Finish),
                "g" if is_file => glob_path,
                "e" if is_file => glob_path_ext,
                "n" if is_file => {
                    write!(self.out, "Enter new path: ")?;
                    self.out.flush()?;
                    let Some(path) = self.line()? else {
                        writeln!(self.out)?;
                        return Ok(Outcome::Finish);
                    };
                    let path = path.trim().to_owned();
                    match self.check_new(item, &path) {
                        Ok(()) => {
                            selected = add_option(&mut options, path);
                            self.show(item, &options, selected)?;
                        }
                        Err(why) => {
                            writeln!(self.out, "{why}")?;
                            self.menu(item)?;
                        }
                    }
                    continue;
                }
                other => {
                    writeln!(self.out, "Unknown answer '{other}'.")?;
                    self.menu(item)?;
                    continue;
                }
            };
            match glob(&options[selected]) {
                Some(g) => {
                    selected = add_option(&mut options, g);
                    self.show(item, &options, selected)?;
                }
                None => {
                    let what = if answer == "e" {
                        "keeping an extension"
                    } else {
                        "any further"
                    };
                    writeln!(self.out, "Cannot glob {} {what}.", options[selected])?;
                    self.menu(item)?;
                }
            }
        }
    }

    /// A new path must be absolute, a valid pattern, and match every
    /// recorded path of the rule.
    fn check_new(&self, item: &Item, path: &str) -> Result<(), String> {
        let Item::File { sources, .. } = item else {
            return Ok(());
        };
        if !path.starts_with('/') {
            return Err(format!("The new path must be absolute: '{path}'."));
        }
        let aare = Aare::new(path).map_err(|e| format!("Invalid path '{path}': {e}."))?;
        match sources.iter().find(|s| !aare.is_match(s)) {
            Some(s) => Err(format!("{path} does not match the recorded path {s}.")),
            None => Ok(()),
        }
    }
}

/// The option's rule as the profile would write it.
fn rule_line(item: &Item, option: &str) -> String {
    match item {
        Item::File { perms, .. } => format!("{} {},", render_path(option), perms.mode()),
        _ => option.to_owned(),
    }
}

fn initial_options(item: &Item) -> Vec<String> {
    match item {
        Item::Capability(c) => vec![format!("capability {c},")],
        Item::Network(f, Some(t)) => vec![format!("network {f} {t},")],
        Item::Network(f, None) => vec![format!("network {f},")],
        Item::File { pattern, .. } => {
            let mut v = vec![pattern.clone()];
            for _ in 0..2 {
                match v.last().and_then(|p| glob_path(p)) {
                    Some(g) if !v.contains(&g) => v.push(g),
                    _ => break,
                }
            }
            v
        }
    }
}

/// Selects `option`, adding it when it is new.
fn add_option(options: &mut Vec<String>, option: String) -> usize {
    match options.iter().position(|o| *o == option) {
        Some(i) => i,
        None => {
            options.push(option);
            options.len() - 1
        }
    }
}

/// Asks about every rule of `observed` for the profile `name` on `out`,
/// reading the answers from `input` (see the module documentation).
/// `Ok(None)` when the review was aborted.
pub fn review(
    observed: &Observed,
    name: &str,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> io::Result<Option<Reviewed>> {
    let mut items: Vec<Item> = observed
        .capabilities
        .iter()
        .map(|c| Item::Capability(c.clone()))
        .collect();
    items.extend(
        observed
            .network
            .iter()
            .map(|(f, t)| Item::Network(f.clone(), t.clone())),
    );
    for (pattern, (perms, sources)) in observed.file_rule_sources() {
        let created = sources
            .iter()
            .filter(|s| observed.files.get(*s).is_some_and(|p| p.create))
            .cloned()
            .collect();
        items.push(Item::File {
            pattern,
            perms,
            sources,
            created,
        });
    }
    let mut s = Session {
        name,
        input,
        out,
        shown: false,
    };
    let mut reviewed = Reviewed::default();
    for item in &items {
        let (chosen, deny) = match s.ask(item)? {
            Outcome::Allow(o) => (o, false),
            Outcome::Deny(o) => (o, true),
            Outcome::Ignore => continue,
            Outcome::Finish => break,
            Outcome::Abort => return Ok(None),
        };
        let rules = if deny {
            &mut reviewed.deny
        } else {
            &mut reviewed.allow
        };
        let line = match item {
            Item::Capability(c) => {
                rules.capabilities.insert(c.clone());
                chosen
            }
            Item::Network(f, t) => {
                rules.network.insert((f.clone(), t.clone()));
                chosen
            }
            Item::File { perms, created, .. } => {
                let mode = if deny {
                    perms.deny_mode()
                } else {
                    perms.mode()
                };
                let line = format!("{} {mode},", render_path(&chosen));
                rules.add_file(chosen, *perms);
                if !deny {
                    reviewed.created.extend(created.iter().cloned());
                }
                line
            }
        };
        writeln!(
            s.out,
            "Adding {}{line} to the profile.",
            if deny { "deny " } else { "" }
        )?;
    }
    reviewed.created.sort();
    Ok(Some(reviewed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed() -> Observed {
        let mut o = Observed::default();
        o.capabilities.insert("chown".into());
        o.network.insert(("inet".into(), Some("stream".into())));
        let r = FilePerms {
            read: true,
            ..FilePerms::default()
        };
        o.files.insert("/etc/passwd".into(), r);
        o.files.insert(
            "/tmp/x".into(),
            FilePerms {
                write: true,
                create: true,
                ..FilePerms::default()
            },
        );
        o
    }

    fn run(o: &Observed, answers: &str) -> (Option<Reviewed>, String) {
        let mut input = answers.as_bytes();
        let mut out = Vec::new();
        let r = review(o, "app", &mut input, &mut out).unwrap();
        (r, String::from_utf8(out).unwrap())
    }

    const TUNABLES: &str = "@{PROC}=/proc/\n@{pid}={[1-9],[1-9][0-9]}";

    fn parses(text: &str) {
        let text = text.replace("#include <tunables/global>", TUNABLES);
        let (_, diags) = crate::parse_str(&text, "t", &crate::ParseOptions::default());
        assert!(
            diags.iter().all(|d| d.severity != crate::Severity::Error),
            "{diags:?}\n{text}"
        );
    }

    #[test]
    fn glob_steps() {
        let steps = |f: fn(&str) -> Option<String>, p: &str| {
            let mut out = vec![p.to_owned()];
            while let Some(g) = f(out.last().unwrap()) {
                out.push(g);
            }
            out
        };
        assert_eq!(
            steps(glob_path, "/etc/ssl/certs.pem"),
            [
                "/etc/ssl/certs.pem",
                "/etc/ssl/*",
                "/etc/ssl/**",
                "/etc/**",
                "/**"
            ]
        );
        assert_eq!(
            steps(glob_path, "/var/cache/app/"),
            [
                "/var/cache/app/",
                "/var/cache/*/",
                "/var/cache/**/",
                "/var/**/",
                "/**/"
            ]
        );
        assert_eq!(
            steps(glob_path, "@{PROC}/@{pid}/status"),
            [
                "@{PROC}/@{pid}/status",
                "@{PROC}/@{pid}/*",
                "@{PROC}/@{pid}/**",
                "@{PROC}/**"
            ]
        );
        assert_eq!(glob_path("/x/a**b"), Some("/x/**".into()));
        assert_eq!(glob_path("/x/a\\*\\*b"), Some("/x/*".into()));
        assert_eq!(glob_path("/"), None);
        assert_eq!(
            steps(glob_path_ext, "/etc/app/main.conf"),
            [
                "/etc/app/main.conf",
                "/etc/app/*.conf",
                "/etc/app/**.conf",
                "/etc/**.conf",
                "/**.conf"
            ]
        );
        assert_eq!(glob_path_ext("/etc/passwd"), None);
        assert_eq!(glob_path_ext("/home/u/.bashrc"), None);
        assert_eq!(glob_path_ext("/etc/app/"), None);
    }

    #[test]
    fn a_whole_review_with_its_transcript() {
        // chown: allow; network: deny (empty line); /etc/passwd: glob to
        // /etc/* and allow; /tmp/** (the created /tmp/x): ignore.
        let (r, out) = run(&observed(), "a\n\ng\na\ni\n");
        let r = r.unwrap();
        assert_eq!(
            out,
            concat!(
                "Profile:  app\n",
                "Capability: chown\n",
                "\n",
                " [1 - capability chown,]\n",
                "(A)llow / [(D)eny] / (I)gnore / Abo(r)t / (F)inish\n",
                "Adding capability chown, to the profile.\n",
                "\n",
                "Profile:  app\n",
                "Network Family: inet\n",
                "Socket Type: stream\n",
                "\n",
                " [1 - network inet stream,]\n",
                "(A)llow / [(D)eny] / (I)gnore / Abo(r)t / (F)inish\n",
                "Adding deny network inet stream, to the profile.\n",
                "\n",
                "Profile:  app\n",
                "Path:     /etc/passwd\n",
                "New Mode: r\n",
                "\n",
                " [1 - /etc/passwd r,]\n",
                "  2 - /etc/* r,\n",
                "  3 - /etc/** r,\n",
                "(A)llow / [(D)eny] / (I)gnore / (G)lob / Glob with (E)xtension / (N)ew / Abo(r)t / (F)inish\n",
                "\n",
                "Profile:  app\n",
                "Path:     /etc/passwd\n",
                "New Mode: r\n",
                "\n",
                "  1 - /etc/passwd r,\n",
                " [2 - /etc/* r,]\n",
                "  3 - /etc/** r,\n",
                "(A)llow / [(D)eny] / (I)gnore / (G)lob / Glob with (E)xtension / (N)ew / Abo(r)t / (F)inish\n",
                "Adding /etc/* r, to the profile.\n",
                "\n",
                "Profile:  app\n",
                "Path:     /tmp/**\n",
                "Recorded: /tmp/x\n",
                "New Mode: w\n",
                "\n",
                " [1 - /tmp/** w,]\n",
                "  2 - /** w,\n",
                "(A)llow / [(D)eny] / (I)gnore / (G)lob / Glob with (E)xtension / (N)ew / Abo(r)t / (F)inish\n",
            )
        );
        let text = r.profile("app");
        assert_eq!(
            text.lines().skip(3).collect::<Vec<_>>(),
            [
                "profile app flags=(attach_disconnected,mediate_deleted) {",
                "  capability chown,",
                "",
                "  /etc/* r,",
                "",
                "  deny network inet stream,",
                "}"
            ],
            "{text}"
        );
        parses(&text);
    }

    #[test]
    fn deny_rules_of_every_kind_parse() {
        let mut o = observed();
        o.files.insert(
            "/bin/tool".into(),
            FilePerms {
                read: true,
                exec: true,
                ..FilePerms::default()
            },
        );
        let (r, _) = run(&o, "d\nd\nd\nd\na\n");
        let r = r.unwrap();
        let text = r.profile("app");
        assert_eq!(
            text.lines().skip(3).collect::<Vec<_>>(),
            [
                "profile app flags=(attach_disconnected,mediate_deleted) {",
                "  # created by the workload: /tmp/x",
                "  /tmp/** w,",
                "",
                "  deny capability chown,",
                "  deny network inet stream,",
                "",
                "  deny /bin/tool rx,",
                "  deny /etc/passwd r,",
                "}"
            ],
            "{text}"
        );
        parses(&text);
    }

    #[test]
    fn new_paths_must_be_absolute_and_cover_the_recording() {
        let mut o = Observed::default();
        o.files.insert(
            "/etc/app/main.conf".into(),
            FilePerms {
                read: true,
                ..FilePerms::default()
            },
        );
        let (r, out) = run(
            &o,
            "n\netc/app/*\nn\n/etc/other/*\nn\n/etc/app/{main\nn\n/etc/{app,x}/*.conf\na\n",
        );
        let r = r.unwrap();
        let menu = "(A)llow / [(D)eny] / (I)gnore / (G)lob / Glob with (E)xtension / (N)ew / Abo(r)t / (F)inish\n";
        let first = concat!(
            "Profile:  app\n",
            "Path:     /etc/app/main.conf\n",
            "New Mode: r\n",
            "\n",
            " [1 - /etc/app/main.conf r,]\n",
            "  2 - /etc/app/* r,\n",
            "  3 - /etc/app/** r,\n",
        );
        let expected = format!(
            "{first}{menu}\
Enter new path: The new path must be absolute: 'etc/app/*'.\n{menu}\
Enter new path: /etc/other/* does not match the recorded path /etc/app/main.conf.\n{menu}\
Enter new path: Invalid path '/etc/app/{{main': {}.\n{menu}\
Enter new path: \n\
Profile:  app\n\
Path:     /etc/app/main.conf\n\
New Mode: r\n\
\n  1 - /etc/app/main.conf r,\n  2 - /etc/app/* r,\n  3 - /etc/app/** r,\n [4 - /etc/{{app,x}}/*.conf r,]\n{menu}\
Adding /etc/{{app,x}}/*.conf r, to the profile.\n",
            Aare::new("/etc/app/{main").unwrap_err()
        );
        assert_eq!(out, expected);
        assert_eq!(
            r.allow.files.keys().collect::<Vec<_>>(),
            ["/etc/{app,x}/*.conf"]
        );
        parses(&r.profile("app"));
    }

    #[test]
    fn selecting_extension_globs_and_unknown_answers() {
        let mut o = Observed::default();
        o.files.insert(
            "/etc/app/main.conf".into(),
            FilePerms {
                read: true,
                ..FilePerms::default()
            },
        );
        o.files.insert(
            "/etc/passwd".into(),
            FilePerms {
                read: true,
                ..FilePerms::default()
            },
        );
        // 3 selects /etc/app/**, e globs /etc/app/main.conf after 1
        // reselects it; x and 9 are refused; e on /etc/passwd cannot glob.
        let (r, out) = run(&o, "x\n9\n3\n1\ne\na\ne\nG\nA\n");
        let r = r.unwrap();
        assert!(out.contains("Unknown answer 'x'.\n(A)llow"), "{out}");
        assert!(out.contains("No option 9.\n(A)llow"), "{out}");
        assert!(out.contains(" [4 - /etc/app/*.conf r,]\n"), "{out}");
        assert!(
            out.contains("Cannot glob /etc/passwd keeping an extension.\n(A)llow"),
            "{out}"
        );
        assert_eq!(
            r.allow.files.keys().collect::<Vec<_>>(),
            ["/etc/*", "/etc/app/*.conf"]
        );
    }

    #[test]
    fn abort_finish_and_the_end_of_input() {
        let o = observed();
        // Abort: nothing.
        assert_eq!(run(&o, "a\nr\n").0, None);
        // Finish: the rest are skipped.
        let (r, _) = run(&o, "a\nf\na\n");
        let r = r.unwrap();
        assert_eq!(r.allow.capabilities.len(), 1);
        assert!(r.allow.network.is_empty() && r.allow.files.is_empty() && r.deny.is_empty());
        // The end of the input finishes too.
        let (r2, out) = run(&o, "a\n");
        assert_eq!(r2.unwrap(), r);
        assert!(out.ends_with("Network Family: inet\nSocket Type: stream\n\n [1 - network inet stream,]\n(A)llow / [(D)eny] / (I)gnore / Abo(r)t / (F)inish\n"), "{out}");
        // Glob answers are for paths only.
        let (_, out) = run(&o, "g\ni\n");
        assert!(out.contains("Unknown answer 'g'."), "{out}");
        // Nothing answered: an empty profile that still parses.
        let (r, _) = run(&o, "");
        parses(&r.unwrap().profile("app"));
    }
}
