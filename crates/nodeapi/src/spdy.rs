//! The server side of SPDY/3.1 as the port-forward protocol `portforward.k8s.io` uses it
//! (draft-mbelshe-httpbis-spdy-00 and SPDY/3.1; the client is moby/spdystream under client-go's
//! `tools/portforward`). What the protocol needs and nothing more: SYN_STREAM answered with an
//! empty SYN_REPLY, DATA with FIN half-closes, RST_STREAM, PING echoed, GOAWAY; SETTINGS,
//! HEADERS and WINDOW_UPDATE are read and ignored (spdystream does no flow control).
//!
//! Header blocks are compressed with one zlib stream per direction, primed with the spec's
//! dictionary. The client's are inflated with that dictionary; ours (always empty) are written
//! as zlib stored blocks, which a reader decodes without the dictionary.

use std::collections::HashMap;

use flate2::{Decompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Control frame types.
pub mod kind {
    /// SYN_STREAM
    pub const SYN_STREAM: u16 = 1;
    /// SYN_REPLY
    pub const SYN_REPLY: u16 = 2;
    /// RST_STREAM
    pub const RST_STREAM: u16 = 3;
    /// SETTINGS
    pub const SETTINGS: u16 = 4;
    /// PING
    pub const PING: u16 = 6;
    /// GOAWAY
    pub const GOAWAY: u16 = 7;
}

/// DATA/SYN flag: the sender's last frame on the stream.
pub const FLAG_FIN: u8 = 0x01;

/// The largest frame accepted (the 24-bit length allows 16 MiB; spdystream writes far less).
const MAX_FRAME: usize = 1 << 24;

/// The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1): the
/// length-prefixed words, then the text tail.
pub fn dictionary() -> Vec<u8> {
    const WORDS: &[&str] = &[
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    ];
    const TAIL: &str = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505\
        203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized\
        403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable\
        Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT\
        chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,\
        text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
    let mut d = Vec::with_capacity(1500);
    for w in WORDS {
        d.extend_from_slice(&(w.len() as u32).to_be_bytes());
        d.extend_from_slice(w.as_bytes());
    }
    d.extend_from_slice(TAIL.as_bytes());
    d
}

/// A frame read from the peer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A control frame: type, flags, payload.
    Control(u16, u8, Vec<u8>),
    /// A data frame: stream, flags, payload.
    Data(u32, u8, Vec<u8>),
}

/// Failures of a SPDY session.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    /// The connection failed.
    #[error("spdy connection: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something that is not SPDY/3.
    #[error("spdy protocol error: {0}")]
    Protocol(String),
}

/// Reads one frame (`None` at a clean end of the connection).
pub async fn read_frame(r: &mut (impl AsyncRead + Unpin)) -> Result<Option<Frame>, SpdyError> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let flags = head[4];
    let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
    if len > MAX_FRAME {
        return Err(SpdyError::Protocol(format!("frame of {len} bytes")));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    if head[0] & 0x80 != 0 {
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != 3 {
            return Err(SpdyError::Protocol(format!("version {version}")));
        }
        Ok(Some(Frame::Control(
            u16::from_be_bytes([head[2], head[3]]),
            flags,
            payload,
        )))
    } else {
        let stream = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff;
        Ok(Some(Frame::Data(stream, flags, payload)))
    }
}

/// A control frame's bytes.
pub fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 8);
    f.extend_from_slice(&(0x8003u16).to_be_bytes());
    f.extend_from_slice(&kind.to_be_bytes());
    f.push(flags);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(payload);
    f
}

/// A data frame's bytes.
pub fn data(stream: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 8);
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.push(flags);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(payload);
    f
}

/// Inflates the peer's header blocks (one zlib stream over the connection).
pub struct HeaderReader {
    z: Decompress,
    dict: Vec<u8>,
}

impl Default for HeaderReader {
    fn default() -> Self {
        HeaderReader {
            z: Decompress::new(true),
            dict: dictionary(),
        }
    }
}

impl HeaderReader {
    /// Decodes one compressed header block: lowercase names and their values.
    pub fn read(&mut self, block: &[u8]) -> Result<Vec<(String, String)>, SpdyError> {
        let bad = |m: String| SpdyError::Protocol(format!("header block: {m}"));
        let mut out: Vec<u8> = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds > 10_000 {
                return Err(bad("no progress".into()));
            }
            if out.capacity() - out.len() < 1024 {
                out.reserve(4096);
            }
            let before_in = self.z.total_in();
            let r = self
                .z
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = (self.z.total_in() - before_in) as usize;
            input = &input[used..];
            match r {
                Ok(_) if input.is_empty() && out.capacity() > out.len() => break,
                Ok(_) => {
                    if out.len() > MAX_FRAME {
                        return Err(bad("too large".into()));
                    }
                }
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(&self.dict)
                        .map_err(|e| bad(e.to_string()))?;
                }
                Err(e) => return Err(bad(e.to_string())),
            }
        }
        parse_headers(&out).ok_or_else(|| bad("truncated".into()))
    }
}

fn parse_headers(b: &[u8]) -> Option<Vec<(String, String)>> {
    let mut at = 0usize;
    let mut u32_at = |b: &[u8]| -> Option<usize> {
        let v = u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        Some(v)
    };
    let n = u32_at(b)?;
    let mut out = Vec::new();
    let mut pos = 4usize;
    for _ in 0..n.min(1024) {
        let take = |pos: &mut usize| -> Option<String> {
            let len = u32::from_be_bytes(b.get(*pos..*pos + 4)?.try_into().ok()?) as usize;
            *pos += 4;
            let s = String::from_utf8_lossy(b.get(*pos..*pos + len)?).into_owned();
            *pos += len;
            Some(s)
        };
        let name = take(&mut pos)?;
        let value = take(&mut pos)?;
        for v in value.split('\0') {
            out.push((name.to_ascii_lowercase(), v.to_string()));
        }
    }
    Some(out)
}

/// Writes our header blocks: a zlib stream of stored blocks, each header block ended as a sync
/// flush ends it (the first frame carries the zlib header, without a preset dictionary).
#[derive(Default)]
pub struct HeaderWriter {
    started: bool,
}

impl HeaderWriter {
    /// The compressed form of `headers`.
    pub fn write(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (k, v) in headers {
            raw.extend_from_slice(&(k.len() as u32).to_be_bytes());
            raw.extend_from_slice(k.as_bytes());
            raw.extend_from_slice(&(v.len() as u32).to_be_bytes());
            raw.extend_from_slice(v.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 16);
        if !self.started {
            // CMF 0x78 (deflate, 32 KiB window), FLG 0x01: no dictionary, check bits.
            out.extend_from_slice(&[0x78, 0x01]);
            self.started = true;
        }
        for chunk in raw.chunks(0xffff) {
            // A non-final stored block: BFINAL=0, BTYPE=00, then LEN and NLEN.
            out.push(0x00);
            let len = chunk.len() as u16;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        // An empty stored block ends each header block, as a sync flush does: Go's inflater
        // hands out a stored block's bytes only once it has read the next block's header, and
        // it must find that header inside this frame.
        out.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]);
        out
    }
}

/// Where frames to the peer go (a writer task owns the connection's write half).
pub type Outbox = mpsc::Sender<Vec<u8>>;

/// Runs the writer task: writes frames until every sender is gone or writing fails.
pub fn spawn_writer(mut w: impl AsyncWrite + Unpin + Send + 'static) -> Outbox {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if w.write_all(&frame).await.is_err() {
                break;
            }
            if rx.is_empty() && w.flush().await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    });
    tx
}

/// The stream id of a SYN_STREAM/SYN_REPLY/RST_STREAM payload.
pub fn stream_id(payload: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(payload.get(0..4)?.try_into().ok()?) & 0x7fff_ffff)
}

/// A SYN_STREAM's headers.
pub fn syn_stream_headers(
    reader: &mut HeaderReader,
    payload: &[u8],
) -> Result<(u32, HashMap<String, String>), SpdyError> {
    let id = stream_id(payload).ok_or_else(|| SpdyError::Protocol("short SYN_STREAM".into()))?;
    let block = payload
        .get(10..)
        .ok_or_else(|| SpdyError::Protocol("short SYN_STREAM".into()))?;
    let headers = reader.read(block)?.into_iter().collect();
    Ok((id, headers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    /// The peer's side: a zlib stream primed with the dictionary, sync-flushed per block, as
    /// Go's `zlib.NewWriterLevelDict` under spdystream's framer writes it.
    fn compress_blocks(blocks: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(&dictionary()).unwrap();
        blocks
            .iter()
            .map(|b| {
                let mut out = Vec::with_capacity(b.len() + 64);
                z.compress_vec(b, &mut out, FlushCompress::Sync).unwrap();
                out
            })
            .collect()
    }

    fn raw(headers: &[(&str, &str)]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (k, v) in headers {
            raw.extend_from_slice(&(k.len() as u32).to_be_bytes());
            raw.extend_from_slice(k.as_bytes());
            raw.extend_from_slice(&(v.len() as u32).to_be_bytes());
            raw.extend_from_slice(v.as_bytes());
        }
        raw
    }

    #[test]
    fn dictionary_has_the_spec_length() {
        // 1423 bytes in the SPDY/3 draft.
        assert_eq!(dictionary().len(), 1423);
    }

    #[test]
    fn header_blocks_share_one_stream() {
        let a = raw(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]);
        let b = raw(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]);
        let blocks = compress_blocks(&[a, b]);
        let mut r = HeaderReader::default();
        let h = r.read(&blocks[0]).unwrap();
        assert_eq!(h[0], ("streamtype".into(), "error".into()));
        let h = r.read(&blocks[1]).unwrap();
        assert_eq!(h[0], ("streamtype".into(), "data".into()));
        assert_eq!(h[2], ("requestid".into(), "0".into()));
    }

    #[test]
    fn written_blocks_inflate() {
        let mut w = HeaderWriter::default();
        let mut z = Decompress::new(true);
        for _ in 0..2 {
            let block = w.write(&[("k", "v")]);
            let mut out = Vec::with_capacity(256);
            z.decompress_vec(&block, &mut out, FlushDecompress::Sync)
                .unwrap();
            assert_eq!(out, raw(&[("k", "v")]));
        }
    }

    #[test]
    fn frames_round_trip() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut bytes = control(kind::PING, 0, &7u32.to_be_bytes());
            bytes.extend(data(5, FLAG_FIN, b"hi"));
            let mut r = &bytes[..];
            assert_eq!(
                read_frame(&mut r).await.unwrap(),
                Some(Frame::Control(kind::PING, 0, 7u32.to_be_bytes().to_vec()))
            );
            assert_eq!(
                read_frame(&mut r).await.unwrap(),
                Some(Frame::Data(5, FLAG_FIN, b"hi".to_vec()))
            );
            assert_eq!(read_frame(&mut r).await.unwrap(), None);
        });
    }
}
