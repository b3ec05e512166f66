//! Attach: live streams of a container's main process.
//!
//! The monitor owns the container's output; besides writing it to the CRI log it copies each
//! chunk, as it reads it, to every client connected to `attach.sock` in the container
//! directory (as CRI-O's conmon does with its attach socket). A frame is
//! `[stream: 1 stdout | 2 stderr][length: u32 big-endian][bytes]`; a client of a terminal
//! container sends `[width: u16 BE][height: u16 BE]` to resize it. When the container's output
//! ends the monitor closes every client. A client that cannot take output for
//! [`CLIENT_WRITE_TIMEOUT`] is dropped, so no client holds the container's output up.
//!
//! stdin goes through the `stdin` FIFO, as before: the attach side opens it for writing. A
//! container without a terminal reads a pipe the monitor feeds from the FIFO; with `stdinOnce`
//! the monitor reads the FIFO until its first writer goes away and then closes the pipe, so the
//! container gets EOF when the first attach session closes its stdin (containerd's
//! `ContainerIO.Attach`: `StdinOnce && !Tty` closes the container's stdin).

use crate::error::RuntimeError;
use crate::types::Attached;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The attach socket, relative to the container directory.
pub(crate) const SOCKET: &str = "attach.sock";

/// How long the monitor waits for a slow client before dropping it.
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Frame stream numbers.
const STDOUT: u8 = 1;
const STDERR: u8 = 2;

/// The monitor's attached clients.
#[derive(Default)]
pub(crate) struct Hub {
    clients: Mutex<Vec<UnixStream>>,
}

impl Hub {
    /// Copies a chunk of stream `stdout`/`stderr` to every client; drops those that fail.
    fn broadcast(&self, stream: u8, data: &[u8]) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.is_empty() {
            return;
        }
        let mut frame = Vec::with_capacity(data.len() + 5);
        frame.push(stream);
        frame.extend_from_slice(&(data.len() as u32).to_be_bytes());
        frame.extend_from_slice(data);
        clients.retain_mut(|c| c.write_all(&frame).is_ok());
    }

    /// Closes every client (the container's output ended).
    pub(crate) fn close_all(&self) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        for c in clients.drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Monitor side: binds `attach.sock` (the monitor's cwd is the container directory) and
/// accepts clients on a detached thread. With a terminal, each client's resize messages are
/// applied to the pty master once it exists (`pty`).
pub(crate) fn serve(hub: Arc<Hub>, pty: Arc<Mutex<Option<OwnedFd>>>) -> Result<(), RuntimeError> {
    let _ = std::fs::remove_file(SOCKET);
    let listener = UnixListener::bind(SOCKET).map_err(|e| RuntimeError::io(SOCKET, e))?;
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            if conn.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT)).is_err() {
                continue;
            }
            if let Ok(mut control) = conn.try_clone() {
                let pty = pty.clone();
                std::thread::spawn(move || {
                    let mut msg = [0u8; 4];
                    while control.read_exact(&mut msg).is_ok() {
                        let w = u16::from_be_bytes([msg[0], msg[1]]);
                        let h = u16::from_be_bytes([msg[2], msg[3]]);
                        if let Some(master) = &*pty.lock().unwrap_or_else(|e| e.into_inner()) {
                            let _ = crate::exec::resize_pty(master.as_fd(), w, h);
                        }
                    }
                });
            }
            hub.clients
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
    });
    Ok(())
}

/// A reader that copies what it reads to the attached clients.
pub(crate) struct Tee<R> {
    pub(crate) inner: R,
    pub(crate) hub: Arc<Hub>,
    pub(crate) stderr: bool,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            let stream = if self.stderr { STDERR } else { STDOUT };
            self.hub.broadcast(stream, &buf[..n]);
        }
        Ok(n)
    }
}

/// Monitor side, a container with stdin and no terminal: the read end of the pipe that is the
/// container's stdin; a detached thread feeds it from the FIFO. Without `stdin_once` the FIFO
/// is held open for writing too, so it never reaches EOF and sessions come and go; with it,
/// the pipe is closed when the FIFO's first writer has gone.
pub(crate) fn stdin_pipe(fifo: &Path, stdin_once: bool) -> Result<File, RuntimeError> {
    let (r, mut w) = crate::monitor::pipe()?;
    let fifo = fifo.to_path_buf();
    // Opened before the container starts, so a writer never finds the FIFO without a reader.
    let mut from = if stdin_once {
        // O_RDONLY|O_NONBLOCK opens at once; reads are made blocking below.
        let f = File::options()
            .read(true)
            .custom_flags_nonblock()
            .open(&fifo)
            .map_err(|e| RuntimeError::io(&fifo, e))?;
        set_blocking(&f).map_err(|e| RuntimeError::io(&fifo, e))?;
        f
    } else {
        File::options()
            .read(true)
            .write(true)
            .open(&fifo)
            .map_err(|e| RuntimeError::io(&fifo, e))?
    };
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // A FIFO reader polls neither readable nor hung up before its first writer came
            // (Linux compares the writer counter with the one at open), so this waits for it.
            if stdin_once && !wait_readable(&from) {
                break;
            }
            match from.read(&mut buf) {
                // The writer went away (RDWR without stdinOnce: never).
                Ok(0) => break,
                Ok(n) => {
                    if w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                    ) => {}
                Err(_) => break,
            }
        }
        // Dropping `w` closes the container's stdin.
    });
    Ok(r)
}

/// Blocks until `f` is readable or hung up; false when polling fails.
fn wait_readable(f: &File) -> bool {
    loop {
        let mut fds = [rustix::event::PollFd::new(f, rustix::event::PollFlags::IN)];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) => return true,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
}

trait NonblockOpen {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonblockOpen for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}

fn set_blocking(f: &File) -> std::io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(f)?;
    rustix::fs::fcntl_setfl(f, flags - rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

/// Client side: connects to container `dir`'s monitor and opens its stdin when asked.
pub(crate) fn attach(dir: &Path, stdin: bool) -> Result<Attached, RuntimeError> {
    let spec = crate::status::read_spec(dir)?;
    // Socket paths are limited to 108 bytes: connect through the directory's descriptor.
    let dirfd = File::open(dir).map_err(|e| RuntimeError::io(dir, e))?;
    let via = format!("/proc/self/fd/{}/{SOCKET}", dirfd.as_raw_fd());
    let conn = UnixStream::connect(&via).map_err(|e| {
        RuntimeError::io(
            dir.join(SOCKET),
            std::io::Error::new(
                e.kind(),
                format!("the container's monitor does not serve attach: {e}"),
            ),
        )
    })?;
    drop(dirfd);
    let stdin = if stdin && spec.process.stdin {
        open_stdin(&dir.join("stdin"))?
    } else {
        None
    };
    let tty = spec.process.tty;
    let (out_r, mut out_w) = crate::monitor::pipe()?;
    let (err_r, err_w) = if tty {
        (None, None)
    } else {
        let (r, w) = crate::monitor::pipe()?;
        (Some(r), Some(w))
    };
    let keep = conn.try_clone().map_err(|e| RuntimeError::io(SOCKET, e))?;
    let mut reader = conn;
    let demux = std::thread::spawn(move || {
        let mut err_w = err_w;
        let mut head = [0u8; 5];
        let mut buf = Vec::new();
        while reader.read_exact(&mut head).is_ok() {
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            buf.resize(len, 0);
            if reader.read_exact(&mut buf).is_err() {
                break;
            }
            let ok = match (head[0], err_w.as_mut()) {
                (STDERR, Some(w)) => w.write_all(&buf).is_ok(),
                _ => out_w.write_all(&buf).is_ok(),
            };
            if !ok {
                break;
            }
        }
        let _ = reader.shutdown(std::net::Shutdown::Both);
    });
    Ok(Attached {
        stdin,
        stdout: out_r,
        stderr: err_r,
        tty,
        stdin_once: spec.process.stdin_once && !tty,
        conn: keep,
        demux: Some(demux),
    })
}

/// Opens the stdin FIFO for writing without blocking: `None` when nobody reads it any more
/// (a `stdinOnce` stdin already closed).
fn open_stdin(fifo: &Path) -> Result<Option<File>, RuntimeError> {
    match File::options()
        .write(true)
        .custom_flags_nonblock()
        .open(fifo)
    {
        Ok(f) => {
            set_blocking(&f).map_err(|e| RuntimeError::io(fifo, e))?;
            Ok(Some(f))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
        Err(e) => Err(RuntimeError::io(fifo, e)),
    }
}

impl Attached {
    /// A handle that resizes the terminal and ends the session from another thread.
    pub fn handle(&self) -> Option<AttachHandle> {
        self.conn.try_clone().ok().map(|conn| AttachHandle {
            conn,
            tty: self.tty,
        })
    }

    /// Takes the handle that waits for the end of the container's output (or of the session).
    pub fn take_done(&mut self) -> Option<std::thread::JoinHandle<()>> {
        self.demux.take()
    }
}

/// Controls an attach session from another thread.
#[derive(Debug)]
pub struct AttachHandle {
    conn: UnixStream,
    tty: bool,
}

impl AttachHandle {
    /// Sets the container's terminal size (nothing without a terminal).
    pub fn resize(&self, width: u16, height: u16) {
        if !self.tty {
            return;
        }
        let mut msg = [0u8; 4];
        msg[..2].copy_from_slice(&width.to_be_bytes());
        msg[2..].copy_from_slice(&height.to_be_bytes());
        let _ = (&self.conn).write_all(&msg);
    }

    /// Ends the session: the monitor drops this client and the output streams end.
    pub fn detach(&self) {
        let _ = self.conn.shutdown(std::net::Shutdown::Both);
    }
}
