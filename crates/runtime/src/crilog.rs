//! CRI-format container logs: `<RFC3339Nano> <stdout|stderr> <F|P> <text>\n`.
//!
//! Lines longer than [`MAX_LINE`] bytes are split into partial (`P`) records,
//! and output that ends without a newline is written as a partial record, as
//! containerd's CRI plugin does (`internal/cri/io/logger.go`, `redirectLogs`,
//! with the default `max_container_log_line_size` of 16 KiB).
//!
//! A record that cannot be written (the log directory's filesystem is full) is
//! dropped and the output keeps being read, as `redirectLogs` does ("Continue on
//! write error to drain the container output"): a container is never blocked on
//! a full stdout pipe because its log cannot grow. A record is written whole or
//! not at all (a failed write is cut back to the previous record), so the log
//! stays parseable and logging resumes, with the next record, once there is
//! space again. The monitor's own log (`monitor.log`) says when records were
//! dropped and how many.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The longest line written as one record; longer lines become `P` records.
pub const MAX_LINE: usize = 16 * 1024;

/// Which output stream a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The process' standard output.
    Stdout,
    /// The process' standard error.
    Stderr,
}

impl Stream {
    /// The stream's name in the log record.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Appends CRI log records to one file; clones share the file, so the
/// stdout and stderr copiers of one container write whole records.
#[derive(Debug, Clone)]
pub struct Writer {
    file: Arc<Mutex<Sink>>,
}

/// The log file and the records dropped since the last one written.
#[derive(Debug)]
struct Sink {
    file: File,
    dropped: u64,
}

impl Writer {
    /// Opens (creating, appending) the log file at `path`, creating its directory.
    pub fn open(path: &Path) -> io::Result<Writer> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Writer::from_file(file))
    }

    /// Wraps an open file.
    pub fn from_file(file: File) -> Writer {
        Writer {
            file: Arc::new(Mutex::new(Sink { file, dropped: 0 })),
        }
    }

    /// Writes one record, timestamped now, whole or not at all: when the write
    /// fails (e.g. `ENOSPC`), what it wrote is cut off again.
    pub fn write_record(&self, stream: Stream, partial: bool, text: &[u8]) -> io::Result<()> {
        let mut record = Vec::with_capacity(text.len() + 48);
        record.extend_from_slice(timestamp(SystemTime::now()).as_bytes());
        record.push(b' ');
        record.extend_from_slice(stream.as_str().as_bytes());
        record.extend_from_slice(if partial { b" P " } else { b" F " });
        record.extend_from_slice(text);
        record.push(b'\n');
        let mut sink = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let before = sink.file.metadata()?.len();
        match sink.file.write_all(&record) {
            Ok(()) => {
                if sink.dropped > 0 {
                    crate::util::note!(
                        "monitor: the container log is writable again; {} record(s) were dropped",
                        sink.dropped
                    );
                    sink.dropped = 0;
                }
                Ok(())
            }
            Err(e) => {
                // O_APPEND: the partial record, if any, is at the end.
                let _ = sink.file.set_len(before);
                if sink.dropped == 0 {
                    crate::util::note!(
                        "monitor: cannot write the container log: {e}; dropping output until it can"
                    );
                }
                sink.dropped += 1;
                Err(e)
            }
        }
    }

    /// Records dropped since the last record written.
    pub fn dropped(&self) -> u64 {
        self.file.lock().unwrap_or_else(|e| e.into_inner()).dropped
    }

    /// Copies `reader` to the log until EOF, splitting it into records. Records
    /// that cannot be written are dropped (see the module documentation); only a
    /// failure to read ends the copy early.
    pub fn copy_from(&self, mut reader: impl Read, stream: Stream) -> io::Result<()> {
        let mut line: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A pty master reports EIO once the last slave fd is closed.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                Err(e) => return Err(e),
            };
            for chunk in buf[..n].split_inclusive(|b| *b == b'\n') {
                let (body, complete) = match chunk.strip_suffix(b"\n") {
                    Some(body) => (body, true),
                    None => (chunk, false),
                };
                line.extend_from_slice(body);
                while line.len() > MAX_LINE {
                    let _ = self.write_record(stream, true, &line[..MAX_LINE]);
                    line.drain(..MAX_LINE);
                }
                if complete {
                    let _ = self.write_record(stream, false, &line);
                    line.clear();
                }
            }
        }
        if !line.is_empty() {
            let _ = self.write_record(stream, true, &line);
        }
        Ok(())
    }
}

/// Formats `t` as RFC 3339 with nanoseconds in UTC (Go's `time.RFC3339Nano`).
pub fn timestamp(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &[u8]) -> Vec<(String, String, String)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let w = Writer::open(&path).unwrap();
        w.copy_from(input, Stream::Stdout).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        text.lines()
            .map(|l| {
                let mut it = l.splitn(4, ' ');
                let ts = it.next().unwrap();
                assert!(time::OffsetDateTime::parse(
                    ts,
                    &time::format_description::well_known::Rfc3339
                )
                .is_ok());
                (
                    it.next().unwrap().to_string(),
                    it.next().unwrap().to_string(),
                    it.next().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn full_and_partial_lines() {
        let r = records(b"hello\n\nworld");
        assert_eq!(
            r,
            vec![
                ("stdout".into(), "F".into(), "hello".into()),
                ("stdout".into(), "F".into(), "".into()),
                ("stdout".into(), "P".into(), "world".into()),
            ]
        );
    }

    /// A log that cannot be written (`/dev/full`: every write fails with ENOSPC) drops
    /// every record and still reads the output to its end, so the writer of the pipe
    /// is never blocked.
    #[test]
    fn unwritable_log_drops_records_and_drains_the_output() {
        let full = OpenOptions::new().append(true).open("/dev/full").unwrap();
        let w = Writer::from_file(full);
        let input = b"line\n".repeat(100_000);
        let mut reader = &input[..];
        w.copy_from(&mut reader, Stream::Stdout).unwrap();
        assert!(reader.is_empty(), "the whole output was read");
        assert_eq!(w.dropped(), 100_000);
        let err = w.write_record(Stream::Stderr, false, b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
    }

    #[test]
    fn long_lines_are_split() {
        let mut input = vec![b'a'; MAX_LINE * 2 + 5];
        input.push(b'\n');
        let r = records(&input);
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].1.as_str(), r[0].2.len()), ("P", MAX_LINE));
        assert_eq!((r[1].1.as_str(), r[1].2.len()), ("P", MAX_LINE));
        assert_eq!((r[2].1.as_str(), r[2].2.len()), ("F", 5));
        let exact = [vec![b'b'; MAX_LINE], vec![b'\n']].concat();
        let r = records(&exact);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].1, "F");
    }
}
