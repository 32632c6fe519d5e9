//! The versioned envelope every eccluster message travels in: `[version, kind, body...]`,
//! and the size limits of datagrams and stream messages. Only the envelope: each core owns the
//! codec of its bodies (`membership` hands foca's packets through, `ops::OpMessage` and
//! `duravip::DuraVipMessage` encode and decode themselves) and emits encoded payloads.
//! Decoding junk is an error, never a panic. No I/O here.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::DecodeError;

/// The protocol version this build speaks.
pub const VERSION: u8 = 1;

/// Bytes of envelope header in front of every body.
pub const HEADER_LEN: usize = 2;

/// The largest datagram we produce or accept. QUIC datagrams on a path with the minimum MTU
/// carry a little under 1200 bytes, so we stay below that whatever the path.
pub const MAX_DATAGRAM: usize = 1100;

/// What the body of an envelope is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A SWIM packet produced by foca (datagram).
    Swim = 1,
    /// An ordered-operations message (stream).
    Ops = 2,
    /// A DuraVIP ownership message (datagram).
    Duravip = 3,
    /// A configuration-revision message (stream).
    Config = 4,
    /// A node's report of the DuraVIP addresses it holds, to the manager (stream).
    Holders = 5,
}

impl Kind {
    fn from_byte(b: u8) -> Result<Kind, DecodeError> {
        match b {
            1 => Ok(Kind::Swim),
            2 => Ok(Kind::Ops),
            3 => Ok(Kind::Duravip),
            4 => Ok(Kind::Config),
            5 => Ok(Kind::Holders),
            other => Err(DecodeError::Kind(other)),
        }
    }
}

/// The largest message we send or accept on a stream.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Wraps `body` in an envelope of the given kind.
pub fn encode(kind: Kind, body: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER_LEN + body.len());
    buf.put_u8(VERSION);
    buf.put_u8(kind as u8);
    buf.put_slice(body);
    buf.freeze()
}

/// Like [`encode`], but written at the end of `buf` and split off it, so that many datagrams
/// share one allocation (the caller makes sure `buf` has the room, or it grows).
pub fn encode_into(buf: &mut BytesMut, kind: Kind, body: &[u8]) -> Bytes {
    buf.reserve(HEADER_LEN + body.len());
    buf.put_u8(VERSION);
    buf.put_u8(kind as u8);
    buf.put_slice(body);
    buf.split().freeze()
}

/// Splits an envelope into its kind and body, checking version and size.
pub fn decode(datagram: &[u8]) -> Result<(Kind, &[u8]), DecodeError> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(DecodeError::Oversize { len: datagram.len(), limit: MAX_DATAGRAM });
    }
    split(datagram)
}

/// Splits a message read from a stream into its kind and body, checking version and size.
pub fn decode_message(message: &[u8]) -> Result<(Kind, &[u8]), DecodeError> {
    if message.len() > MAX_MESSAGE {
        return Err(DecodeError::Oversize { len: message.len(), limit: MAX_MESSAGE });
    }
    split(message)
}

fn split(bytes: &[u8]) -> Result<(Kind, &[u8]), DecodeError> {
    match bytes {
        [version, kind, body @ ..] => {
            if *version != VERSION {
                return Err(DecodeError::Version { found: *version, speaks: VERSION });
            }
            Ok((Kind::from_byte(*kind)?, body))
        }
        _ => Err(DecodeError::Truncated { len: bytes.len(), need: HEADER_LEN }),
    }
}

/// Encodes `body` with postcard in an envelope of `kind`, refused above `limit` bytes.
pub fn encode_body<T: serde::Serialize>(kind: Kind, body: &T, limit: usize) -> Result<Bytes, DecodeError> {
    let bytes = postcard::to_allocvec(body).map_err(|e| DecodeError::Body(e.to_string()))?;
    if bytes.len() + HEADER_LEN > limit {
        return Err(DecodeError::Oversize { len: bytes.len() + HEADER_LEN, limit });
    }
    Ok(encode(kind, &bytes))
}

/// Decodes the postcard body of an envelope that must be of `kind`: exactly one value, no
/// trailing bytes.
pub fn decode_body<T: serde::de::DeserializeOwned>(kind: Kind, found: Kind, body: &[u8]) -> Result<T, DecodeError> {
    if found != kind {
        return Err(DecodeError::Kind(found as u8));
    }
    let (value, rest) = postcard::take_from_bytes(body).map_err(|e| DecodeError::Body(e.to_string()))?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(DecodeError::Body(format!("{} trailing bytes after the message", rest.len())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips() {
        let bytes = encode(Kind::Swim, b"hello");
        assert_eq!(decode(&bytes), Ok((Kind::Swim, &b"hello"[..])));
    }

    #[test]
    fn datagrams_split_off_one_buffer_stay_intact() {
        let mut buf = BytesMut::with_capacity(64);
        let a = encode_into(&mut buf, Kind::Swim, b"first");
        let b = encode_into(&mut buf, Kind::Swim, b"second");
        assert_eq!(decode(&a), Ok((Kind::Swim, &b"first"[..])));
        assert_eq!(decode(&b), Ok((Kind::Swim, &b"second"[..])));
        assert_eq!(a, encode(Kind::Swim, b"first"));
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        assert_eq!(decode(&[]), Err(DecodeError::Truncated { len: 0, need: 2 }));
        assert_eq!(decode(&[1]), Err(DecodeError::Truncated { len: 1, need: 2 }));
        assert_eq!(decode(&[9, 1]), Err(DecodeError::Version { found: 9, speaks: VERSION }));
        assert_eq!(decode(&[1, 77]), Err(DecodeError::Kind(77)));
        let big = vec![1u8; MAX_DATAGRAM + 1];
        assert_eq!(decode(&big), Err(DecodeError::Oversize { len: MAX_DATAGRAM + 1, limit: MAX_DATAGRAM }));
        assert_eq!(
            DecodeError::Version { found: 9, speaks: 1 }.to_string(),
            "unsupported protocol version 9 (this build speaks 1)"
        );
    }
}
