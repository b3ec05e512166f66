//! Reader of CRI-format container logs (`<RFC3339Nano> <stdout|stderr> <F|P> <text>`), with the
//! kubelet's options (`pkg/kubelet/kuberuntime/logs/logs.go` `ReadLogs`): `tailLines` counts
//! records from the end of the file, `sinceTime` drops older records, `timestamps` prefixes each
//! line with its RFC3339Nano time (once per logical line: `P` partials are joined), `limitBytes`
//! caps the output, and `follow` keeps reading as the file grows until the container has stopped
//! and the file is drained.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How often a follow looks for new data (the kubelet uses fsnotify; polling keeps this simple
/// and costs one read per interval).
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// The options of one log read.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Only the last N records.
    pub tail_lines: Option<u64>,
    /// Only records at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Prefix lines with their time.
    pub timestamps: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
    /// Keep reading while the container runs.
    pub follow: bool,
}

/// One parsed log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// The time as written.
    pub time: &'a str,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// A `P` (partial) record: the line continues in the next record.
    pub partial: bool,
    /// The text, without the newline.
    pub text: &'a [u8],
}

/// Parses one line (without its `\n`); `None` for a malformed line.
pub fn parse_line(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or(b"");
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let partial = match tag {
        b"P" => true,
        b"F" => false,
        // Tags may carry more flags separated by ':' (CRI LogTag); the first is F or P.
        t => t.split(|b| *b == b':').next() == Some(b"P"),
    };
    Some(Record {
        time,
        stream,
        partial,
        text,
    })
}

/// Formats records for output, joining partials and adding timestamps at line starts.
#[derive(Debug)]
struct Formatter {
    timestamps: bool,
    since: Option<OffsetDateTime>,
    at_line_start: bool,
    remaining: Option<u64>,
}

impl Formatter {
    /// Formats one raw line into `out`; false once the byte limit is reached.
    fn push(&mut self, line: &[u8], out: &mut Vec<u8>) -> bool {
        let Some(rec) = parse_line(line) else {
            return true;
        };
        if let Some(since) = self.since {
            match OffsetDateTime::parse(rec.time, &Rfc3339) {
                Ok(t) if t < since => return true,
                _ => {}
            }
        }
        let start = out.len();
        if self.timestamps && self.at_line_start {
            out.extend_from_slice(rec.time.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(rec.text);
        if !rec.partial {
            out.push(b'\n');
        }
        self.at_line_start = !rec.partial;
        if let Some(rem) = self.remaining.as_mut() {
            let written = (out.len() - start) as u64;
            if written >= *rem {
                out.truncate(start + *rem as usize);
                *rem = 0;
                return false;
            }
            *rem -= written;
        }
        true
    }
}

/// Byte offset where the last `n` records of `data` start.
fn tail_start(data: &[u8], n: u64) -> usize {
    if n == 0 {
        return data.len();
    }
    // Skip a trailing newline: it ends the last record rather than starting one.
    let end = if data.last() == Some(&b'\n') {
        data.len() - 1
    } else {
        data.len()
    };
    let mut seen = 0;
    for (i, b) in data[..end].iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

/// Reads the log at `path` with `opts`, giving output chunks to `sink` (which returns false
/// when the reader went away). `running` tells whether the container still writes the file.
pub fn read_log(
    path: &Path,
    opts: &LogOptions,
    running: &dyn Fn() -> bool,
    sink: &mut dyn FnMut(Vec<u8>) -> bool,
) -> io::Result<()> {
    let mut file = File::open(path)?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    let start = opts.tail_lines.map_or(0, |n| tail_start(&data, n));
    let mut fmt = Formatter {
        timestamps: opts.timestamps,
        since: opts.since,
        at_line_start: true,
        remaining: opts.limit_bytes,
    };
    let mut pending: Vec<u8> = data[start..].to_vec();
    let mut pos = data.len() as u64;
    loop {
        let (more, consumed) = format_complete_lines(&mut fmt, &pending, sink);
        pending.drain(..consumed);
        if !more || !opts.follow {
            return Ok(());
        }
        // Decide whether the container stopped *before* reading, so a final read drains it.
        let was_running = running();
        let n = read_from(&mut file, &mut pos, &mut pending)?;
        if n == 0 && !was_running {
            return Ok(());
        }
        if n == 0 {
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

/// Formats every complete line of `pending`; returns (keep going, bytes consumed).
fn format_complete_lines(
    fmt: &mut Formatter,
    pending: &[u8],
    sink: &mut dyn FnMut(Vec<u8>) -> bool,
) -> (bool, usize) {
    let mut out = Vec::new();
    let mut consumed = 0;
    let mut more = true;
    while let Some(nl) = pending[consumed..].iter().position(|b| *b == b'\n') {
        let line = &pending[consumed..consumed + nl];
        consumed += nl + 1;
        if !fmt.push(line, &mut out) {
            more = false;
            break;
        }
    }
    if !out.is_empty() && !sink(out) {
        more = false;
    }
    (more, consumed)
}

/// Appends what the file has beyond `pos`.
fn read_from(file: &mut File, pos: &mut u64, buf: &mut Vec<u8>) -> io::Result<usize> {
    file.seek(SeekFrom::Start(*pos))?;
    let n = file.read_to_end(buf)?;
    *pos += n as u64;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2024-01-01T00:00:01.5Z stdout F one\n\
                       2024-01-01T00:00:02Z stderr P tw\n\
                       2024-01-01T00:00:02.1Z stderr F o\n\
                       2024-01-01T00:00:03Z stdout F three\n";

    fn read(opts: LogOptions) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        std::fs::write(&p, LOG).unwrap();
        let mut out = Vec::new();
        read_log(&p, &opts, &|| false, &mut |c| {
            out.extend(c);
            true
        })
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_joins_partials() {
        assert_eq!(read(LogOptions::default()), "one\ntwo\nthree\n");
    }

    #[test]
    fn timestamps_once_per_line() {
        let opts = LogOptions {
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            read(opts),
            "2024-01-01T00:00:01.5Z one\n2024-01-01T00:00:02Z two\n2024-01-01T00:00:03Z three\n"
        );
    }

    #[test]
    fn tail_since_and_limit() {
        assert_eq!(
            read(LogOptions {
                tail_lines: Some(1),
                ..Default::default()
            }),
            "three\n"
        );
        assert_eq!(
            read(LogOptions {
                tail_lines: Some(0),
                ..Default::default()
            }),
            ""
        );
        assert_eq!(
            read(LogOptions {
                tail_lines: Some(9),
                ..Default::default()
            }),
            "one\ntwo\nthree\n"
        );
        let since = OffsetDateTime::parse("2024-01-01T00:00:02.05Z", &Rfc3339).unwrap();
        assert_eq!(
            read(LogOptions {
                since: Some(since),
                ..Default::default()
            }),
            "o\nthree\n"
        );
        assert_eq!(
            read(LogOptions {
                limit_bytes: Some(6),
                ..Default::default()
            }),
            "one\ntw"
        );
    }

    #[test]
    fn follow_reads_growth_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        std::fs::write(&p, "2024-01-01T00:00:01Z stdout F a\n").unwrap();
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (p2, r2) = (p.clone(), running.clone());
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let mut f = std::fs::OpenOptions::new().append(true).open(&p2).unwrap();
            std::io::Write::write_all(&mut f, b"2024-01-01T00:00:02Z stdout F b\n").unwrap();
            r2.store(false, std::sync::atomic::Ordering::SeqCst);
        });
        let mut out = Vec::new();
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        read_log(
            &p,
            &opts,
            &|| running.load(std::sync::atomic::Ordering::SeqCst),
            &mut |c| {
                out.extend(c);
                true
            },
        )
        .unwrap();
        writer.join().unwrap();
        assert_eq!(out, b"a\nb\n");
    }

    #[test]
    fn malformed_lines_are_skipped() {
        assert!(parse_line(b"garbage").is_none());
        assert!(parse_line(b"2024-01-01T00:00:01Z weird F x").is_none());
        assert_eq!(parse_line(b"t stdout F ").unwrap().text, b"");
    }
}
