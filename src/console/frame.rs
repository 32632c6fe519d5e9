//! The wire protocol of the console socket: length-prefixed request and reply frames.
//!
//! A request is a 4-byte big-endian length followed by that many bytes of UTF-8 command line.
//! A reply is a 4-byte big-endian length `N` followed by `N` bytes: one status byte
//! (0 = ok, 1 = command failed, 2 = bad request, 3 = login required) and the UTF-8 body. The
//! same framing is used on unix sockets and on TCP (in TLS).
//!
//! # Login
//! A console that asks for authentication answers every command of a session that has not
//! logged in with status 3 and `Authorization required for console session`, and runs
//! nothing. The client then sends a *login frame*: a request whose body is
//! `NUL "login" NUL USER NUL PASSWORD` ([`login_request`]); a command line never starts with
//! NUL, so the two cannot be confused. The answer is ok (`logged in as USER`) or failed
//! (`login failed for user USER`, the same for an unknown user and a wrong password); after a
//! refusal the client may try again on the same connection, each failure from the same source
//! answered more slowly. A session authenticated by its client certificate needs no login.
//!
//! # Batches
//! A *batch request* carries many command lines in one frame: `NUL "batch" NUL` followed by
//! the lines, separated by `\n` ([`batch_request`]); a line never holds a `\n` of its own.
//! The server answers it with one frame of status 4 ([`Status::Batch`]) whose body is each
//! command's reply in order, each as `STATUS LEN \n BODY` (the status as a decimal digit, the
//! body's length in bytes, then the body; [`batch_reply`], [`split_batch_reply`]). A batch the
//! server refuses as a whole (over its bounds, a session that must log in) gets one ordinary
//! reply instead, and nothing of it ran. A server that predates batches answers a batch
//! request as a bad request (a request starting with NUL that is not a login frame).
//!
//! This module only moves bytes: it does not parse command lines (see `request.rs`) and does
//! not decide what a connection does after an error (see `listener.rs`). Readers never trust an
//! announced length: they refuse frames over the limit by discarding exactly the announced
//! bytes (so the stream stays in step and the session survives) and grow buffers only as bytes
//! actually arrive, so a peer announcing 4 GiB and sending nothing costs nothing.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request (command line) a server accepts, in bytes.
pub const MAX_REQUEST: usize = 64 * 1024;

/// Largest reply frame (status byte plus body) a client accepts, in bytes.
///
/// Cluster-wide `retrieve` answers can be large; this only guards against nonsense lengths.
pub const MAX_REPLY: usize = 256 * 1024 * 1024;

/// Outcome of a console command, carried in the first byte of a reply frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The command ran and succeeded (wire byte 0).
    Ok,
    /// The command ran, or was attempted, and failed (wire byte 1).
    Failed,
    /// The request could not be understood: oversize, not UTF-8, unparsable (wire byte 2).
    BadRequest,
    /// Nothing ran: the session must log in first (wire byte 3); see the module docs.
    LoginRequired,
    /// The replies to the commands of a batch request, in order (wire byte 4); see the
    /// module docs. Only ever the answer to a batch request.
    Batch,
}

impl Status {
    /// The byte that encodes this status on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::BadRequest => 2,
            Status::LoginRequired => 3,
            Status::Batch => 4,
        }
    }

    /// Decodes a status byte; `None` for a byte no version of the protocol defines.
    pub fn from_byte(byte: u8) -> Option<Status> {
        match byte {
            0 => Some(Status::Ok),
            1 => Some(Status::Failed),
            2 => Some(Status::BadRequest),
            3 => Some(Status::LoginRequired),
            4 => Some(Status::Batch),
            _ => None,
        }
    }
}

/// One reply to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Whether the command succeeded.
    pub status: Status,
    /// What the command printed (text, XML or JSON), or the error message.
    pub body: String,
}

impl Reply {
    /// A successful reply.
    pub fn ok(body: impl Into<String>) -> Reply {
        Reply { status: Status::Ok, body: body.into() }
    }

    /// A reply for a command that failed.
    pub fn failed(body: impl Into<String>) -> Reply {
        Reply { status: Status::Failed, body: body.into() }
    }

    /// A reply for a request that could not be understood.
    pub fn bad_request(body: impl Into<String>) -> Reply {
        Reply { status: Status::BadRequest, body: body.into() }
    }

    /// The answer to a command of a session that has not logged in yet.
    pub fn login_required() -> Reply {
        Reply { status: Status::LoginRequired, body: LOGIN_REQUIRED.to_owned() }
    }

    /// Whether the status is [`Status::Ok`].
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }
}

/// The body of a [`Status::LoginRequired`] reply, as Momentum's console words it.
pub const LOGIN_REQUIRED: &str = "Authorization required for console session";

/// What a login frame starts with; no command line does.
const LOGIN_TAG: &str = "\0login\0";

/// The request line of a login frame for `user` with `password`.
pub fn login_request(user: &str, password: &str) -> String {
    format!("{LOGIN_TAG}{user}\0{password}")
}

/// A request that is a login frame: `Some(Ok((user, password)))`, or `Some(Err(why))` for a
/// malformed one; `None` for a command line or a batch request.
pub fn parse_login(line: &str) -> Option<Result<(&str, &str), &'static str>> {
    if !line.starts_with('\0') || line.starts_with(BATCH_TAG) {
        return None;
    }
    let Some(rest) = line.strip_prefix(LOGIN_TAG) else {
        return Some(Err(
            "a request starting with NUL must be a login frame (NUL login NUL USER NUL PASSWORD) or a batch (NUL batch NUL LINES)",
        ));
    };
    Some(rest.split_once('\0').ok_or("a login frame needs NUL USER NUL PASSWORD"))
}

/// What a batch request starts with; no command line does.
const BATCH_TAG: &str = "\0batch\0";

/// A line that cannot travel in a batch request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("command {index} of the batch holds a line break; a batch carries one command per line")]
pub struct BatchLineError {
    /// 1-based position of the command in the batch.
    pub index: usize,
}

/// The request of a batch of command lines, sent as one frame.
pub fn batch_request<S: AsRef<str>>(lines: &[S]) -> Result<String, BatchLineError> {
    let mut out = String::from(BATCH_TAG);
    for (i, line) in lines.iter().enumerate() {
        let line = line.as_ref();
        if line.contains('\n') {
            return Err(BatchLineError { index: i + 1 });
        }
        if i > 0 {
            out.push('\n');
        }
        out.push_str(line);
    }
    Ok(out)
}

/// The command lines of a batch request, in order; `None` when the request is not a batch.
/// An empty batch has no lines.
pub fn parse_batch(request: &str) -> Option<Vec<&str>> {
    let lines = request.strip_prefix(BATCH_TAG)?;
    if lines.is_empty() {
        return Some(Vec::new());
    }
    Some(lines.split('\n').collect())
}

/// The bytes [`batch_reply`] adds in front of a reply body of `len` bytes.
pub fn batch_entry_overhead(len: usize) -> usize {
    // One status digit, a space, the decimal length, a line break.
    3 + len.checked_ilog10().map_or(1, |digits| digits as usize + 1)
}

/// The one reply to a batch request: `replies` in order, in a body of status [`Status::Batch`].
pub fn batch_reply(replies: &[Reply]) -> Reply {
    let size = replies.iter().map(|r| batch_entry_overhead(r.body.len()) + r.body.len()).sum();
    let mut body = String::with_capacity(size);
    for reply in replies {
        body.push_str(&format!("{} {}\n", reply.status.to_byte(), reply.body.len()));
        body.push_str(&reply.body);
    }
    Reply { status: Status::Batch, body }
}

/// The replies carried by a [`Status::Batch`] reply, in order. A body that does not follow
/// the format is an error naming the entry and what is wrong; so is a reply of another status.
pub fn split_batch_reply(reply: &Reply) -> Result<Vec<Reply>, FrameError> {
    let bad = |entry: usize, what: String| FrameError::BadBatch { entry, what };
    if reply.status != Status::Batch {
        return Err(bad(0, format!("a reply of status {} is not a batch", reply.status.to_byte())));
    }
    let mut rest = reply.body.as_str();
    let mut replies = Vec::new();
    while !rest.is_empty() {
        let entry = replies.len() + 1;
        // The header is short: a digit, a space and at most 20 digits.
        let Some(end) = rest.bytes().take(24).position(|b| b == b'\n') else {
            return Err(bad(entry, "no `STATUS LEN` header line".to_owned()));
        };
        let header = &rest[..end];
        let Some((status, len)) = header.split_once(' ') else {
            return Err(bad(entry, format!("header {header:?} is not `STATUS LEN`")));
        };
        let status = match status.parse::<u8>().ok().and_then(Status::from_byte) {
            Some(Status::Batch) | None => return Err(bad(entry, format!("unknown status {status:?}"))),
            Some(status) => status,
        };
        let Ok(len) = len.parse::<usize>() else {
            return Err(bad(entry, format!("length {len:?} is not a number")));
        };
        let body_and_rest = &rest[end + 1..];
        let Some(body) = body_and_rest.get(..len) else {
            return Err(bad(entry, format!("body of {len} bytes runs past the end of the reply or splits a character")));
        };
        replies.push(Reply { status, body: body.to_owned() });
        rest = &body_and_rest[len..];
    }
    Ok(replies)
}

/// Why a frame could not be read.
///
/// [`FrameError::is_recoverable`] tells whether the stream is still in step afterwards (the
/// whole frame was consumed) so the session can go on.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The announced length is over the limit. The announced bytes were read and discarded,
    /// the stream is in step; expected only from misbehaving or mistaken peers.
    #[error("request of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Announced length of the frame.
        len: u64,
        /// The limit it broke.
        limit: usize,
    },
    /// A request frame was read whole but is not UTF-8; the stream is in step.
    #[error("request is not valid UTF-8 (invalid byte at offset {offset})")]
    InvalidUtf8 {
        /// Offset of the first byte that is not valid UTF-8.
        offset: usize,
    },
    /// The announced length of a reply is over the limit. The announced bytes were read and
    /// discarded, the stream is in step; expected only from a misbehaving server.
    #[error("reply of {len} bytes exceeds the limit of {limit} bytes")]
    ReplyTooLarge {
        /// Announced length of the frame.
        len: u64,
        /// The limit it broke.
        limit: usize,
    },
    /// A reply frame is empty, so it has no status byte; the stream is in step.
    #[error("reply frame has no status byte")]
    MissingStatus,
    /// A reply frame has a status byte this version does not know; the stream is in step.
    #[error("reply has unknown status byte {0}")]
    UnknownStatus(u8),
    /// A batch reply was read whole but its body does not hold replies as the format says;
    /// the stream is in step.
    #[error("batch reply entry {entry}: {what}")]
    BadBatch {
        /// 1-based entry where reading stopped (0: the reply as a whole).
        entry: usize,
        /// What is wrong.
        what: String,
    },
    /// The peer closed the connection in the middle of a frame; the session is over.
    #[error("connection closed in the middle of a frame ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes of the frame (header included) that arrived.
        got: u64,
        /// Bytes the frame should have had.
        expected: u64,
    },
    /// Reading failed; the session is over.
    #[error("reading a frame: {0}")]
    Io(#[from] io::Error),
}

impl FrameError {
    /// Whether the whole frame was consumed, so the next frame can be read normally.
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            FrameError::TooLarge { .. }
                | FrameError::ReplyTooLarge { .. }
                | FrameError::InvalidUtf8 { .. }
                | FrameError::MissingStatus
                | FrameError::UnknownStatus(_)
                | FrameError::BadBatch { .. }
        )
    }
}

/// Size of the length prefix.
const HEADER: u64 = 4;

/// Writes one request frame carrying `line` and flushes.
///
/// Does not enforce [`MAX_REQUEST`]: the server does, and says so in its reply.
pub async fn write_request<W: AsyncWrite + Unpin>(w: &mut W, line: &str) -> io::Result<()> {
    let len = frame_len(line.len())?;
    let mut frame = Vec::with_capacity(line.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(line.as_bytes());
    w.write_all(&frame).await?;
    w.flush().await
}

/// Reads one request frame.
///
/// `Ok(None)` when the peer closed the connection cleanly between frames. An oversize frame is
/// discarded and reported as [`FrameError::TooLarge`]; a frame that is not UTF-8 as
/// [`FrameError::InvalidUtf8`]; both leave the stream in step.
pub async fn read_request<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<String>, FrameError> {
    read_request_within(r, MAX_REQUEST).await
}

/// Reads one request frame of at most `limit` bytes, as [`read_request`] does with
/// [`MAX_REQUEST`] (a listener's `Max_Request_Size` chooses another limit).
///
/// The buffer grows only as bytes arrive and never past `limit`; an oversize frame is read
/// through a small buffer and thrown away.
pub async fn read_request_within<R: AsyncRead + Unpin>(r: &mut R, limit: usize) -> Result<Option<String>, FrameError> {
    let Some(bytes) = read_frame(r, limit).await? else {
        return Ok(None);
    };
    match String::from_utf8(bytes) {
        Ok(line) => Ok(Some(line)),
        Err(error) => Err(FrameError::InvalidUtf8 { offset: error.utf8_error().valid_up_to() }),
    }
}

/// Writes one reply frame and flushes.
///
/// Fails with `InvalidInput` when the frame would not fit the 4-byte length; callers that
/// want the peer to accept the frame keep it under [`MAX_REPLY`].
pub async fn write_reply<W: AsyncWrite + Unpin>(w: &mut W, reply: &Reply) -> io::Result<()> {
    let len = frame_len(reply.body.len().saturating_add(1))?;
    let mut header = [0u8; 5];
    header[..4].copy_from_slice(&len.to_be_bytes());
    header[4] = reply.status.to_byte();
    w.write_all(&header).await?;
    w.write_all(reply.body.as_bytes()).await?;
    w.flush().await
}

/// Reads one reply frame.
///
/// `Ok(None)` when the peer closed the connection cleanly between frames. A body that is not
/// UTF-8 is shown with replacement characters rather than refused: the operator is better
/// served by seeing it.
pub async fn read_reply<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Reply>, FrameError> {
    let bytes = match read_frame(r, MAX_REPLY).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(FrameError::TooLarge { len, limit }) => return Err(FrameError::ReplyTooLarge { len, limit }),
        Err(error) => return Err(error),
    };
    let Some((&status, body)) = bytes.split_first() else {
        return Err(FrameError::MissingStatus);
    };
    let status = Status::from_byte(status).ok_or(FrameError::UnknownStatus(status))?;
    Ok(Some(Reply { status, body: String::from_utf8_lossy(body).into_owned() }))
}

/// The length prefix for a payload of `len` bytes.
fn frame_len(len: usize) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("frame of {len} bytes does not fit a 4-byte length"))
    })
}

/// Reads a length prefix and the payload it announces, refusing payloads over `limit` with
/// [`FrameError::TooLarge`].
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, limit: usize) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        let n = r.read(&mut header[filled..]).await?;
        if n == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated { got: filled as u64, expected: HEADER });
        }
        filled += n;
    }
    let len = u64::from(u32::from_be_bytes(header));
    let expected = HEADER + len;
    if len > limit as u64 {
        // Discard exactly the announced bytes, through a small buffer, to stay in step.
        let discarded = tokio::io::copy(&mut r.take(len), &mut tokio::io::sink()).await?;
        if discarded < len {
            return Err(FrameError::Truncated { got: HEADER + discarded, expected });
        }
        return Err(FrameError::TooLarge { len, limit });
    }
    // Grow as bytes arrive instead of trusting the announced length up front.
    let mut payload = Vec::with_capacity(len.min(64 * 1024) as usize);
    let got = r.take(len).read_to_end(&mut payload).await? as u64;
    if got < len {
        return Err(FrameError::Truncated { got: HEADER + got, expected });
    }
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, AsyncWriteExt};

    /// A raw frame: the 4-byte length of `payload`, then `payload`.
    fn raw(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    #[tokio::test]
    async fn request_round_trips_and_eof_between_frames_is_none() {
        let (mut a, mut b) = duplex(1024);
        write_request(&mut a, "show cluster membership").await.expect("write");
        write_request(&mut a, "").await.expect("write empty");
        write_request(&mut a, "config set Foo \"é ü\"").await.expect("write utf8");
        drop(a);
        assert_eq!(read_request(&mut b).await.expect("read").as_deref(), Some("show cluster membership"));
        assert_eq!(read_request(&mut b).await.expect("read").as_deref(), Some(""));
        assert_eq!(read_request(&mut b).await.expect("read").as_deref(), Some("config set Foo \"é ü\""));
        assert!(read_request(&mut b).await.expect("clean eof").is_none());
    }

    #[test]
    fn login_frames_round_trip_and_commands_are_not_logins() {
        let line = login_request("alice", "pass word\0with nul");
        assert_eq!(parse_login(&line), Some(Ok(("alice", "pass word\0with nul"))));
        assert_eq!(parse_login("show cluster membership"), None);
        assert!(matches!(parse_login("\0other"), Some(Err(_))));
        assert!(matches!(parse_login("\0login\0alice"), Some(Err(_))));
    }

    #[tokio::test]
    async fn reply_round_trips_every_status() {
        let (mut a, mut b) = duplex(1024);
        let replies =
            [Reply::ok("fine\n"), Reply::failed("no such node"), Reply::bad_request(""), Reply::ok(""), Reply::login_required()];
        for reply in &replies {
            write_reply(&mut a, reply).await.expect("write");
        }
        drop(a);
        for reply in &replies {
            assert_eq!(read_reply(&mut b).await.expect("read").as_ref(), Some(reply));
        }
        assert!(read_reply(&mut b).await.expect("clean eof").is_none());
    }

    #[tokio::test]
    async fn status_bytes_are_fixed() {
        let (mut a, mut b) = duplex(64);
        write_reply(&mut a, &Reply::bad_request("x")).await.expect("write");
        let mut buf = [0u8; 6];
        b.read_exact(&mut buf).await.expect("read");
        assert_eq!(buf, [0, 0, 0, 2, 2, b'x']);
        assert_eq!(Status::from_byte(0), Some(Status::Ok));
        assert_eq!(Status::from_byte(1), Some(Status::Failed));
        assert_eq!(Status::from_byte(3), Some(Status::LoginRequired));
        assert_eq!(Status::from_byte(4), Some(Status::Batch));
        assert_eq!(Status::from_byte(5), None);
    }

    #[tokio::test]
    async fn oversize_request_is_discarded_and_the_next_frame_reads() {
        let (mut a, mut b) = duplex(4096);
        let writer = tokio::spawn(async move {
            let big = "x".repeat(MAX_REQUEST + 1);
            write_request(&mut a, &big).await.expect("write big");
            write_request(&mut a, "echo after").await.expect("write small");
        });
        let error = read_request(&mut b).await.expect_err("oversize");
        assert!(error.is_recoverable());
        assert_eq!(error.to_string(), "request of 65537 bytes exceeds the limit of 65536 bytes");
        assert_eq!(read_request(&mut b).await.expect("read").as_deref(), Some("echo after"));
        writer.await.expect("writer");
    }

    #[tokio::test]
    async fn a_smaller_request_limit_refuses_at_its_own_bound() {
        let (mut a, mut b) = duplex(4096);
        write_request(&mut a, &"z".repeat(1025)).await.expect("write");
        write_request(&mut a, &"z".repeat(1024)).await.expect("write");
        let error = read_request_within(&mut b, 1024).await.expect_err("oversize");
        assert_eq!(error.to_string(), "request of 1025 bytes exceeds the limit of 1024 bytes");
        assert!(error.is_recoverable());
        let line = read_request_within(&mut b, 1024).await.expect("read").expect("frame");
        assert_eq!(line.len(), 1024);
    }

    #[tokio::test]
    async fn request_at_the_limit_is_accepted() {
        let (mut a, mut b) = duplex(4096);
        let writer = tokio::spawn(async move {
            write_request(&mut a, &"y".repeat(MAX_REQUEST)).await.expect("write");
        });
        let line = read_request(&mut b).await.expect("read").expect("frame");
        assert_eq!(line.len(), MAX_REQUEST);
        writer.await.expect("writer");
    }

    #[tokio::test]
    async fn invalid_utf8_request_is_recoverable() {
        let (mut a, mut b) = duplex(1024);
        a.write_all(&raw(b"echo \xff\xfe")).await.expect("write");
        write_request(&mut a, "echo ok").await.expect("write");
        let error = read_request(&mut b).await.expect_err("not utf8");
        assert!(matches!(error, FrameError::InvalidUtf8 { offset: 5 }), "{error:?}");
        assert!(error.is_recoverable());
        assert_eq!(read_request(&mut b).await.expect("read").as_deref(), Some("echo ok"));
    }

    #[tokio::test]
    async fn eof_inside_header_or_body_is_truncated() {
        let (mut a, mut b) = duplex(64);
        a.write_all(&[0, 0]).await.expect("write");
        drop(a);
        let error = read_request(&mut b).await.expect_err("truncated header");
        assert!(matches!(error, FrameError::Truncated { got: 2, expected: 4 }), "{error:?}");
        assert!(!error.is_recoverable());

        let (mut a, mut b) = duplex(64);
        a.write_all(&[0, 0, 0, 10, b'a', b'b']).await.expect("write");
        drop(a);
        let error = read_request(&mut b).await.expect_err("truncated body");
        assert!(matches!(error, FrameError::Truncated { got: 6, expected: 14 }), "{error:?}");
    }

    #[tokio::test]
    async fn huge_announced_lengths_cost_nothing_when_the_bytes_never_come() {
        // An oversize request announcing 4 GiB and sending 3 bytes.
        let (mut a, mut b) = duplex(64);
        a.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).await.expect("write");
        drop(a);
        let error = read_request(&mut b).await.expect_err("truncated");
        assert!(matches!(error, FrameError::Truncated { got: 7, expected: 0x1_0000_0003 }), "{error:?}");

        // A reply under the limit announcing 200 MiB and sending 1 byte.
        let (mut a, mut b) = duplex(64);
        a.write_all(&(200u32 * 1024 * 1024).to_be_bytes()).await.expect("write");
        a.write_all(&[0]).await.expect("write");
        drop(a);
        let error = read_reply(&mut b).await.expect_err("truncated");
        assert!(matches!(error, FrameError::Truncated { got: 5, .. }), "{error:?}");
    }

    #[tokio::test]
    async fn oversize_reply_is_discarded_and_the_next_reply_reads() {
        let (mut a, mut b) = duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            let len = MAX_REPLY as u32 + 1;
            a.write_all(&len.to_be_bytes()).await.expect("header");
            let chunk = vec![0u8; 1024 * 1024];
            for _ in 0..256 {
                a.write_all(&chunk).await.expect("body");
            }
            a.write_all(&[0]).await.expect("last byte");
            write_reply(&mut a, &Reply::ok("next")).await.expect("next");
        });
        let error = read_reply(&mut b).await.expect_err("oversize");
        assert_eq!(error.to_string(), "reply of 268435457 bytes exceeds the limit of 268435456 bytes");
        assert!(error.is_recoverable());
        assert_eq!(read_reply(&mut b).await.expect("read"), Some(Reply::ok("next")));
        writer.await.expect("writer");
    }

    #[tokio::test]
    async fn bad_reply_frames_are_errors_that_keep_the_stream_in_step() {
        let (mut a, mut b) = duplex(64);
        a.write_all(&raw(b"")).await.expect("write");
        a.write_all(&raw(b"\x07oops")).await.expect("write");
        a.write_all(&raw(b"\x00bytes \xff")).await.expect("write");
        drop(a);
        assert!(matches!(read_reply(&mut b).await, Err(FrameError::MissingStatus)));
        assert!(matches!(read_reply(&mut b).await, Err(FrameError::UnknownStatus(7))));
        let reply = read_reply(&mut b).await.expect("read").expect("frame");
        assert_eq!(reply, Reply::ok("bytes \u{fffd}"));
    }

    #[test]
    fn batch_requests_round_trip_and_are_neither_logins_nor_commands() {
        let lines = ["broadcast cluster nodename", "", "json retrieve \"a b\""];
        let request = batch_request(&lines).expect("no line breaks");
        assert_eq!(parse_batch(&request), Some(lines.to_vec()));
        assert_eq!(parse_login(&request), None, "a batch is not a malformed login");
        assert_eq!(parse_batch(&batch_request::<&str>(&[]).expect("empty")), Some(Vec::new()));
        assert_eq!(parse_batch("broadcast cluster nodename"), None);
        assert_eq!(parse_batch(&login_request("alice", "pw")), None);
        assert_eq!(batch_request(&["echo a", "echo b\nshutdown"]), Err(BatchLineError { index: 2 }));
        assert!(matches!(parse_login("\0other"), Some(Err(why)) if why.contains("batch")));
    }

    #[test]
    fn batch_replies_round_trip_every_status_and_any_body() {
        let replies = vec![
            Reply::ok("fine\n"),
            Reply::failed("no such node"),
            Reply::bad_request(""),
            Reply::login_required(),
            Reply::ok("two\nlines with 9 9\n and é ü"),
            Reply::ok("0 12\nlooks like a header"),
        ];
        let batch = batch_reply(&replies);
        assert_eq!(batch.status, Status::Batch);
        assert_eq!(split_batch_reply(&batch).expect("split"), replies);
        for reply in &replies {
            assert_eq!(batch_entry_overhead(reply.body.len()), format!("{} {}\n", 0, reply.body.len()).len());
        }
        assert_eq!(split_batch_reply(&batch_reply(&[])).expect("empty"), Vec::<Reply>::new());
    }

    #[tokio::test]
    async fn a_batch_reply_travels_in_one_frame() {
        let (mut a, mut b) = duplex(1024);
        let replies = [Reply::ok("é"), Reply::failed("x")];
        write_reply(&mut a, &batch_reply(&replies)).await.expect("write");
        let read = read_reply(&mut b).await.expect("read").expect("frame");
        assert_eq!(split_batch_reply(&read).expect("split"), replies);
    }

    #[test]
    fn malformed_batch_replies_are_errors_naming_the_entry() {
        let batch = |body: &str| Reply { status: Status::Batch, body: body.to_owned() };
        let cases = [
            (batch("0 2\nok1 3"), "batch reply entry 2: no `STATUS LEN` header line"),
            (batch("0 2\nok9 1\nx"), "batch reply entry 2: unknown status \"9\""),
            (batch("4 0\n"), "batch reply entry 1: unknown status \"4\""),
            (batch("0 x\n"), "batch reply entry 1: length \"x\" is not a number"),
            (batch("0\n"), "batch reply entry 1: header \"0\" is not `STATUS LEN`"),
            (batch("0 5\nabc"), "batch reply entry 1: body of 5 bytes runs past the end of the reply or splits a character"),
            (batch("0 1\né"), "batch reply entry 1: body of 1 bytes runs past the end of the reply or splits a character"),
            (batch(&format!("0 {}\n", u128::MAX)), "batch reply entry 1: no `STATUS LEN` header line"),
            (Reply::ok("0 0\n"), "batch reply entry 0: a reply of status 0 is not a batch"),
        ];
        for (reply, expected) in cases {
            let error = split_batch_reply(&reply).expect_err(&reply.body);
            assert!(error.is_recoverable());
            assert_eq!(error.to_string(), expected, "{:?}", reply.body);
        }
    }
}
