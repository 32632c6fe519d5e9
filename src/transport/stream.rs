//! Stream messages (operations, answers, configuration notices, holder reports) on one
//! long-lived unidirectional QUIC stream per connection and direction, instead of a stream
//! per message.
//!
//! # Framing
//! A stream starts with the byte [`FRAMED`], then carries messages one after the other, each
//! as a 4-byte big-endian length and that many bytes (one envelope, `wire.rs`). No envelope
//! starts with [`FRAMED`] (an envelope starts with its protocol version, from 1), so a stream
//! whose first byte is anything else is read as one message to its end — what a member of an
//! older build sends.
//!
//! # Bounds
//! The reader never trusts an announced length: a message over the limit
//! ([`eccluster_proto::wire::MAX_MESSAGE`]) ends the stream with an error (the sender opens
//! another), and a buffer grows only as bytes actually arrive, so a peer announcing 64 MiB and
//! sending nothing costs nothing. The sender's queue holds at most [`QUEUE`] messages: past
//! that a message is dropped with a warning, as one lost with its connection would be (the
//! cores retransmit what is unanswered).
//!
//! # Errors
//! A write that fails (the peer stopped the stream, the stream was reset) is tried once more
//! on a new stream; when the connection is gone the writer ends and what is queued is lost
//! with it, for the cores to send again on the next connection.

use std::io;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

/// The first byte of a framed stream.
pub const FRAMED: u8 = 0;

/// Messages waiting for a peer's stream, at most.
pub const QUEUE: usize = 1024;

/// Size of a frame's length prefix.
const HEADER: u64 = 4;

/// The largest part of an announced length allocated before the bytes arrive.
const PREALLOCATE: u64 = 64 * 1024;

/// Why a stream's messages could not be read. Every one ends the stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A frame announced more than the limit; expected only from a misbehaving peer.
    #[error("message of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Announced (or, for an unframed stream, received) length.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended in the middle of a message ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes of the frame (header included) that arrived.
        got: u64,
        /// Bytes the frame should have had.
        expected: u64,
    },
    /// Reading failed (the stream was reset, the connection lost).
    #[error("reading a stream: {0}")]
    Io(#[from] io::Error),
}

/// The messages of one incoming stream, in order.
pub struct MessageReader<R> {
    stream: R,
    limit: usize,
    /// Unknown until the first byte: framed, or one message to the end.
    framed: Option<bool>,
    finished: bool,
}

impl<R: AsyncRead + Unpin> MessageReader<R> {
    /// Reads `stream`, refusing messages over `limit` bytes.
    pub fn new(stream: R, limit: usize) -> MessageReader<R> {
        MessageReader { stream, limit, framed: None, finished: false }
    }

    /// The stream, e.g. to stop it after an error.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.stream
    }

    /// The next message; `Ok(None)` once the stream has ended cleanly between messages.
    pub async fn next(&mut self) -> Result<Option<Bytes>, StreamError> {
        if self.finished {
            return Ok(None);
        }
        if self.framed.is_none() {
            let mut first = [0u8; 1];
            if self.stream.read(&mut first).await? == 0 {
                self.finished = true;
                return Ok(None);
            }
            if first[0] != FRAMED {
                // One message, the whole stream.
                self.finished = true;
                let mut message = first.to_vec();
                let limit = self.limit as u64;
                (&mut self.stream).take(limit.saturating_sub(1)).read_to_end(&mut message).await?;
                let mut more = [0u8; 1];
                if message.len() as u64 >= limit && self.stream.read(&mut more).await? > 0 {
                    return Err(StreamError::TooLarge { len: limit + 1, limit: self.limit });
                }
                return Ok(Some(Bytes::from(message)));
            }
            self.framed = Some(true);
        }
        let mut header = [0u8; HEADER as usize];
        let mut filled = 0;
        while filled < header.len() {
            let n = self.stream.read(&mut header[filled..]).await?;
            if n == 0 {
                self.finished = true;
                if filled == 0 {
                    return Ok(None);
                }
                return Err(StreamError::Truncated { got: filled as u64, expected: HEADER });
            }
            filled += n;
        }
        let len = u64::from(u32::from_be_bytes(header));
        if len > self.limit as u64 {
            self.finished = true;
            return Err(StreamError::TooLarge { len, limit: self.limit });
        }
        let mut message = Vec::with_capacity(len.min(PREALLOCATE) as usize);
        let got = (&mut self.stream).take(len).read_to_end(&mut message).await? as u64;
        if got < len {
            self.finished = true;
            return Err(StreamError::Truncated { got: HEADER + got, expected: HEADER + len });
        }
        Ok(Some(Bytes::from(message)))
    }
}

/// The sending side of one connection's stream: the driver queues messages without waiting,
/// a task writes them in order.
#[derive(Debug)]
pub struct Outbox {
    queue: mpsc::Sender<Bytes>,
}

impl Outbox {
    /// Starts the writer of `conn` to `peer`; it ends when the outbox is dropped (finishing
    /// the stream), when the connection is gone, or at `shutdown`.
    pub fn start(peer: String, conn: quinn::Connection, tracker: &TaskTracker, shutdown: CancellationToken) -> Outbox {
        let (queue, messages) = mpsc::channel(QUEUE);
        tracker.spawn(write_messages(peer, conn, messages, shutdown));
        Outbox { queue }
    }

    /// Queues `message` for `peer`; dropped, with a warning, when the queue is full.
    pub fn send(&self, peer: &str, message: Bytes) {
        match self.queue.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!(%peer, queued = QUEUE, "stream to the peer is not keeping up; message dropped (it is sent again)")
            }
            Err(mpsc::error::TrySendError::Closed(_)) => debug!(%peer, "connection gone; message not sent"),
        }
    }
}

/// The most bytes of queued messages joined into one write. A message larger than this goes
/// alone.
pub const COALESCE: usize = 256 * 1024;

/// Appends `message` to `out` as one frame; false (and `out` unchanged) when it cannot be
/// framed (over 4 GiB, far beyond [`eccluster_proto::wire::MAX_MESSAGE`]).
fn push_frame(out: &mut Vec<u8>, message: &[u8]) -> bool {
    let Ok(len) = u32::try_from(message.len()) else { return false };
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    true
}

/// The frames of `first` and of every message queued behind it, up to [`COALESCE`] bytes, in
/// order, as one buffer: one write to the stream instead of one per message (each write is a
/// segment of the stream's send buffer that quinn walks to find the bytes of a packet).
fn coalesce(peer: &str, first: &[u8], messages: &mut mpsc::Receiver<Bytes>) -> Bytes {
    let mut out = Vec::with_capacity(first.len() + HEADER as usize);
    let frame = |out: &mut Vec<u8>, message: &[u8]| {
        if !push_frame(out, message) {
            warn!(%peer, len = message.len(), "message too large for a frame; dropped");
        }
    };
    frame(&mut out, first);
    while out.len() < COALESCE {
        match messages.try_recv() {
            Ok(message) => frame(&mut out, &message),
            Err(_) => break,
        }
    }
    Bytes::from(out)
}

/// The writer task of one connection: one stream, reopened after an error. The messages
/// queued while a write is under way go out together in the next one.
async fn write_messages(peer: String, conn: quinn::Connection, mut messages: mpsc::Receiver<Bytes>, shutdown: CancellationToken) {
    let mut stream: Option<quinn::SendStream> = None;
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return,
            message = messages.recv() => match message {
                Some(message) => message,
                None => break,
            },
        };
        let frames = coalesce(&peer, &message, &mut messages);
        drop(message);
        if frames.is_empty() {
            continue;
        }
        let sent = tokio::select! {
            _ = shutdown.cancelled() => return,
            sent = send_frames(&conn, &mut stream, frames) => sent,
        };
        match sent {
            Ok(()) => {}
            Err(Lost::Connection(error)) => {
                debug!(%peer, %error, "connection gone; stream messages not sent");
                return;
            }
            Err(Lost::Message(error)) => debug!(%peer, %error, "messages not sent"),
        }
    }
    if let Some(mut stream) = stream {
        if let Err(error) = stream.finish() {
            debug!(%peer, %error, "stream already closed");
        }
    }
}

/// Why messages were not sent.
enum Lost {
    /// No stream can be opened: the connection is gone.
    Connection(quinn::ConnectionError),
    /// Writing failed twice, on the stream and on a new one.
    Message(io::Error),
}

/// Writes `frames` (whole frames) on `stream`, opening one first when there is none, and once
/// more on a new stream when the write fails. A write cut by a failure may have delivered its
/// first messages on the old stream, which then arrive twice: the cores take a repeated
/// message as they take a retransmitted one.
async fn send_frames(conn: &quinn::Connection, stream: &mut Option<quinn::SendStream>, frames: Bytes) -> Result<(), Lost> {
    let mut attempts = 0;
    loop {
        let open = match stream {
            Some(open) => open,
            None => {
                let mut opened = conn.open_uni().await.map_err(Lost::Connection)?;
                if let Err(error) = opened.write_all(&[FRAMED]).await {
                    return Err(Lost::Message(error.into()));
                }
                stream.insert(opened)
            }
        };
        match open.write_chunk(frames.clone()).await {
            Ok(()) => return Ok(()),
            Err(error) => {
                *stream = None;
                attempts += 1;
                if attempts >= 2 {
                    return Err(Lost::Message(error.into()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, AsyncWriteExt as _};

    async fn framed(messages: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![FRAMED];
        for m in messages {
            assert!(push_frame(&mut out, m));
        }
        out
    }

    async fn read_all(bytes: Vec<u8>, limit: usize) -> (Vec<Bytes>, Option<StreamError>) {
        let mut reader = MessageReader::new(bytes.as_slice(), limit);
        let mut got = Vec::new();
        loop {
            match reader.next().await {
                Ok(Some(m)) => got.push(m),
                Ok(None) => return (got, None),
                Err(e) => return (got, Some(e)),
            }
        }
    }

    #[tokio::test]
    async fn framed_messages_keep_their_boundaries_in_order() {
        let bytes = framed(&[b"\x01\x02first", b"", b"\x01\x02third message"]).await;
        let (got, error) = read_all(bytes, 1024).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(got, vec![Bytes::from_static(b"\x01\x02first"), Bytes::new(), Bytes::from_static(b"\x01\x02third message")]);
    }

    #[tokio::test]
    async fn queued_messages_go_out_in_one_write_in_order_and_read_back_apart() {
        let (queue, mut messages) = mpsc::channel(16);
        for m in [&b"\x01second"[..], b"", b"\x01fourth"] {
            queue.try_send(Bytes::copy_from_slice(m)).expect("room");
        }
        let mut bytes = vec![FRAMED];
        bytes.extend_from_slice(&coalesce("peer", b"\x01first", &mut messages));
        assert!(messages.try_recv().is_err(), "every queued message was taken");
        let (got, error) = read_all(bytes, 1024).await;
        assert!(error.is_none(), "{error:?}");
        let want: Vec<Bytes> = [&b"\x01first"[..], b"\x01second", b"", b"\x01fourth"].into_iter().map(Bytes::copy_from_slice).collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_write_stops_taking_queued_messages_past_its_size() {
        let (queue, mut messages) = mpsc::channel(16);
        let big = vec![1u8; COALESCE / 2];
        for _ in 0..3 {
            queue.try_send(Bytes::from(big.clone())).expect("room");
        }
        let first = coalesce("peer", &big, &mut messages);
        // The first message and the next fill the write past its size; the other two wait.
        assert_eq!(first.len(), 2 * (big.len() + HEADER as usize));
        assert_eq!(messages.len(), 2);
    }

    #[tokio::test]
    async fn an_unframed_stream_is_one_message() {
        let (got, error) = read_all(b"\x01\x02one message of an older build".to_vec(), 1024).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(got, vec![Bytes::from_static(b"\x01\x02one message of an older build")]);
        let (got, error) = read_all(Vec::new(), 1024).await;
        assert!(got.is_empty() && error.is_none());
        // An unframed stream over the limit.
        let (got, error) = read_all(vec![1u8; 11], 10).await;
        assert!(got.is_empty());
        assert!(matches!(error, Some(StreamError::TooLarge { limit: 10, .. })), "{error:?}");
        let (got, _) = read_all(vec![1u8; 10], 10).await;
        assert_eq!(got.len(), 1);
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_ends_the_stream() {
        let bytes = framed(&[b"ok", &[7u8; 11], b"never read"]).await;
        let (got, error) = read_all(bytes, 10).await;
        assert_eq!(got, vec![Bytes::from_static(b"ok")]);
        assert!(matches!(error, Some(StreamError::TooLarge { len: 11, limit: 10 })), "{error:?}");
    }

    #[tokio::test]
    async fn a_cut_frame_is_an_error_and_a_clean_end_is_not() {
        let mut bytes = framed(&[b"whole", b"cut short"]).await;
        bytes.truncate(bytes.len() - 3);
        let (got, error) = read_all(bytes, 1024).await;
        assert_eq!(got, vec![Bytes::from_static(b"whole")]);
        assert!(matches!(error, Some(StreamError::Truncated { got: 10, expected: 13 })), "{error:?}");
        let (_, error) = read_all(vec![FRAMED, 0, 0], 1024).await;
        assert!(matches!(error, Some(StreamError::Truncated { got: 2, expected: 4 })), "{error:?}");
    }

    #[tokio::test]
    async fn a_huge_announced_length_cut_short_is_an_error() {
        // 60 MiB announced, 3 bytes sent, then the stream ends.
        let (mut a, b) = duplex(64);
        let mut reader = MessageReader::new(b, 64 * 1024 * 1024);
        let mut frame = vec![FRAMED];
        frame.extend_from_slice(&(60u32 << 20).to_be_bytes());
        frame.extend_from_slice(b"abc");
        a.write_all(&frame).await.expect("write");
        drop(a);
        let error = reader.next().await.expect_err("cut");
        assert!(matches!(error, StreamError::Truncated { got: 7, .. }), "{error:?}");
        assert!(reader.next().await.expect("ended").is_none());
    }
}
