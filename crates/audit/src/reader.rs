//! Reading seccomp records from the kernel: the audit netlink socket's read-only multicast
//! group `AUDIT_NLGRP_READLOG` (needs `CAP_AUDIT_READ`, no auditd registration), or
//! `/dev/kmsg` (records the kernel prints when no auditd is registered).
//!
//! Hand-written over `libc` rather than a netlink crate: one socket, one bind, one recv
//! loop, and the payload is plain text.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::landlock::{LandlockRecord, AUDIT_LANDLOCK_ACCESS, AUDIT_LANDLOCK_DOMAIN};
use crate::record::{SeccompRecord, AUDIT_SECCOMP};

/// A record the node keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `type=1326`.
    Seccomp(SeccompRecord),
    /// `type=1423` or `type=1424`.
    Landlock(LandlockRecord),
}
use crate::AuditError;

/// `NETLINK_AUDIT`.
const NETLINK_AUDIT: libc::c_int = 9;
/// `AUDIT_NLGRP_READLOG` (group 1: bit 0 of `nl_groups`).
const AUDIT_NLGRP_READLOG: u32 = 1;
/// Netlink header size.
const NLMSG_HDRLEN: usize = 16;
/// Larger than `MAX_AUDIT_MESSAGE_LENGTH` (8970) and a kmsg record (8 KiB).
const BUF: usize = 16 * 1024;

/// Where records come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The audit netlink multicast group.
    Netlink,
    /// `/dev/kmsg`.
    Kmsg,
}

enum Inner {
    Netlink(OwnedFd),
    Kmsg(File),
}

/// A blocking reader of seccomp audit records.
pub struct AuditReader {
    inner: Inner,
    buf: Vec<u8>,
}

impl AuditReader {
    /// Subscribes to the audit netlink read-only group; falls back to `/dev/kmsg`
    /// (positioned at its end: only new records).
    pub fn open() -> Result<AuditReader, AuditError> {
        let inner = match open_netlink() {
            Ok(fd) => Inner::Netlink(fd),
            Err(netlink) => {
                Inner::Kmsg(open_kmsg().map_err(|kmsg| AuditError::NoSource { netlink, kmsg })?)
            }
        };
        Ok(AuditReader {
            inner,
            buf: vec![0; BUF],
        })
    }

    /// Opens `/dev/kmsg` only.
    pub fn open_kmsg() -> Result<AuditReader, AuditError> {
        let file = open_kmsg().map_err(AuditError::Read)?;
        Ok(AuditReader {
            inner: Inner::Kmsg(file),
            buf: vec![0; BUF],
        })
    }

    /// The source in use.
    pub fn source(&self) -> Source {
        match self.inner {
            Inner::Netlink(_) => Source::Netlink,
            Inner::Kmsg(_) => Source::Kmsg,
        }
    }

    /// Blocks until the next seccomp record; other audit and kernel messages are skipped.
    pub fn next_record(&mut self) -> Result<SeccompRecord, AuditError> {
        loop {
            if let Some(Record::Seccomp(rec)) = self.read_one()? {
                return Ok(rec);
            }
        }
    }

    /// Like [`next_record`](Self::next_record) but gives up after `timeout` (`Ok(None)`),
    /// so a caller can check for shutdown between records.
    pub fn next_record_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<SeccompRecord>, AuditError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_any_timeout(left)? {
                None => return Ok(None),
                Some(Record::Seccomp(rec)) => return Ok(Some(rec)),
                Some(Record::Landlock(_)) => {}
            }
        }
    }

    /// The next seccomp or Landlock record, or `Ok(None)` after `timeout`.
    pub fn next_any_timeout(&mut self, timeout: Duration) -> Result<Option<Record>, AuditError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if !self.readable(left)? {
                return Ok(None);
            }
            if let Some(rec) = self.read_one()? {
                return Ok(Some(rec));
            }
        }
    }

    /// One message: a record we keep, or `None` for anything else.
    fn read_one(&mut self) -> Result<Option<Record>, AuditError> {
        match &mut self.inner {
            Inner::Netlink(fd) => netlink_record(fd, &mut self.buf),
            Inner::Kmsg(file) => kmsg_record(file, &mut self.buf),
        }
    }

    /// Waits up to `timeout` for the source to become readable.
    fn readable(&self, timeout: Duration) -> Result<bool, AuditError> {
        let fd = match &self.inner {
            Inner::Netlink(fd) => fd.as_raw_fd(),
            Inner::Kmsg(file) => file.as_raw_fd(),
        };
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `pfd` is one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        match rc {
            0 => Ok(false),
            n if n > 0 => Ok(true),
            _ => {
                let err = io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EINTR) {
                    Ok(false)
                } else {
                    Err(AuditError::Read(err))
                }
            }
        }
    }
}

fn open_netlink() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call with constant arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_AUDIT,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = 1 << (AUDIT_NLGRP_READLOG - 1);
    // SAFETY: `addr` is a valid sockaddr_nl of the given size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

fn open_kmsg() -> io::Result<File> {
    let mut file = File::open("/dev/kmsg")?;
    file.seek(SeekFrom::End(0))?;
    Ok(file)
}

/// One netlink datagram: a record we keep, or `None` for anything else.
fn netlink_record(fd: &OwnedFd, buf: &mut [u8]) -> Result<Option<Record>, AuditError> {
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        let err = io::Error::last_os_error();
        // ENOBUFS: the kernel dropped messages for us; keep reading.
        return match err.raw_os_error() {
            Some(libc::EINTR) | Some(libc::ENOBUFS) => Ok(None),
            _ => Err(AuditError::Read(err)),
        };
    }
    let n = n as usize;
    if n < NLMSG_HDRLEN {
        return Ok(None);
    }
    let msg_type = u16::from_ne_bytes([buf[4], buf[5]]);
    if ![AUDIT_SECCOMP, AUDIT_LANDLOCK_ACCESS, AUDIT_LANDLOCK_DOMAIN].contains(&msg_type) {
        return Ok(None);
    }
    let payload = &buf[NLMSG_HDRLEN..n];
    let end = payload
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(payload.len());
    let text = String::from_utf8_lossy(&payload[..end]);
    parse_record(msg_type, &text, Some(monotonic_us()))
}

/// Parses a record of a kept type.
fn parse_record(kind: u16, text: &str, time_us: Option<u64>) -> Result<Option<Record>, AuditError> {
    Ok(Some(if kind == AUDIT_SECCOMP {
        let mut rec = SeccompRecord::parse(text)?;
        rec.kernel_time_us = time_us;
        Record::Seccomp(rec)
    } else {
        let mut rec = LandlockRecord::parse(kind, text)?;
        rec.kernel_time_us = time_us;
        Record::Landlock(rec)
    }))
}

/// One kmsg record (`PRI,SEQ,USEC,FLAGS;audit: type=1326 audit(...): ...`).
fn kmsg_record(file: &mut File, buf: &mut [u8]) -> Result<Option<Record>, AuditError> {
    let n = match file.read(buf) {
        Ok(n) => n,
        // EPIPE: records were overwritten before we read them; continue with the next.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPIPE) | Some(libc::EINTR)) => {
            return Ok(None)
        }
        Err(e) => return Err(AuditError::Read(e)),
    };
    let line = String::from_utf8_lossy(&buf[..n]);
    let Some((prefix, message)) = line.split_once(';') else {
        return Ok(None);
    };
    let message = message.lines().next().unwrap_or_default();
    let Some((kind, text)) = message
        .strip_prefix("audit: type=")
        .and_then(|m| m.split_once(' '))
        .and_then(|(k, t)| Some((k.parse::<u16>().ok()?, t)))
    else {
        return Ok(None);
    };
    if ![AUDIT_SECCOMP, AUDIT_LANDLOCK_ACCESS, AUDIT_LANDLOCK_DOMAIN].contains(&kind) {
        return Ok(None);
    }
    parse_record(
        kind,
        text,
        prefix.split(',').nth(2).and_then(|t| t.parse().ok()),
    )
}

/// `CLOCK_MONOTONIC` in microseconds: close to the printk timestamp of a record.
fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// `AUDIT_GET` / `AUDIT_SET` and `AUDIT_STATUS_ENABLED`.
const AUDIT_GET: u16 = 1000;
const AUDIT_SET: u16 = 1001;
const AUDIT_STATUS_ENABLED: u32 = 1;

/// Turns the kernel audit subsystem on when it is off (as `auditctl -e 1`
/// does); returns whether it changed anything. Landlock only reports denials
/// while audit is enabled (seccomp's records do not need it). Without auditd
/// the kernel then also prints audit records to its log, rate-limited.
pub fn ensure_audit_enabled() -> Result<bool, AuditError> {
    // SAFETY: plain socket(2) call with constant arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            NETLINK_AUDIT,
        )
    };
    if fd < 0 {
        return Err(AuditError::Read(io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    send_audit(&fd, AUDIT_GET, &[], 1)?;
    let mut buf = vec![0u8; BUF];
    let enabled = loop {
        let n = recv_timeout(&fd, &mut buf)?;
        if n >= NLMSG_HDRLEN + 8 && u16::from_ne_bytes([buf[4], buf[5]]) == AUDIT_GET {
            break u32::from_ne_bytes([buf[20], buf[21], buf[22], buf[23]]);
        }
    };
    if enabled != 0 {
        return Ok(false);
    }
    // struct audit_status: mask, enabled, then six more u32 left at 0.
    let mut status = [0u8; 32];
    status[..4].copy_from_slice(&AUDIT_STATUS_ENABLED.to_ne_bytes());
    status[4..8].copy_from_slice(&1u32.to_ne_bytes());
    send_audit(&fd, AUDIT_SET, &status, 2)?;
    // The ack (NLMSG_ERROR with error 0, or a negative errno).
    loop {
        let n = recv_timeout(&fd, &mut buf)?;
        if n >= NLMSG_HDRLEN + 4 && u16::from_ne_bytes([buf[4], buf[5]]) == libc::NLMSG_ERROR as u16
        {
            let err = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
            if err != 0 {
                return Err(AuditError::Read(io::Error::from_raw_os_error(-err)));
            }
            return Ok(true);
        }
    }
}

fn send_audit(fd: &OwnedFd, kind: u16, payload: &[u8], seq: u32) -> Result<(), AuditError> {
    let len = (NLMSG_HDRLEN + payload.len()) as u32;
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    let mut msg = Vec::with_capacity(len as usize);
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(payload);
    // SAFETY: `msg` is valid for reads of its length; the kernel is the peer (address 0).
    let n = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if n < 0 {
        return Err(AuditError::Read(io::Error::last_os_error()));
    }
    Ok(())
}

/// One reply datagram, waiting at most a second.
fn recv_timeout(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, AuditError> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut pfd, 1, 1000) } <= 0 {
        return Err(AuditError::Read(io::Error::new(
            io::ErrorKind::TimedOut,
            "no reply from the kernel audit socket",
        )));
    }
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(AuditError::Read(io::Error::last_os_error()));
    }
    Ok(n as usize)
}
