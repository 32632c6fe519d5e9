//! The versioned envelope every eccluster datagram travels in: `[version, kind, body...]`.
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
    /// An ordered-operations message, [`crate::ops::OpMessage`] (stream).
    Ops = 2,
    /// A DuraVIP ownership message, [`crate::duravip::DuraVipMessage`] (datagram).
    Duravip = 3,
}

impl Kind {
    fn from_byte(b: u8) -> Result<Kind, DecodeError> {
        match b {
            1 => Ok(Kind::Swim),
            2 => Ok(Kind::Ops),
            3 => Ok(Kind::Duravip),
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

/// Splits an envelope into its kind and body, checking version and size.
pub fn decode(datagram: &[u8]) -> Result<(Kind, &[u8]), DecodeError> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(DecodeError::Oversize { len: datagram.len(), limit: MAX_DATAGRAM });
    }
    match datagram {
        [version, kind, body @ ..] => {
            if *version != VERSION {
                return Err(DecodeError::Version(*version));
            }
            Ok((Kind::from_byte(*kind)?, body))
        }
        _ => Err(DecodeError::Truncated { len: datagram.len(), need: HEADER_LEN }),
    }
}

/// Encodes an operations message for a stream.
pub fn encode_ops(message: &crate::ops::OpMessage) -> Result<Bytes, DecodeError> {
    let body = postcard::to_allocvec(message).map_err(|e| DecodeError::Body(e.to_string()))?;
    if body.len() + HEADER_LEN > MAX_MESSAGE {
        return Err(DecodeError::Oversize { len: body.len() + HEADER_LEN, limit: MAX_MESSAGE });
    }
    Ok(encode(Kind::Ops, &body))
}

/// Decodes an operations message read from a stream.
pub fn decode_ops(message: &[u8]) -> Result<crate::ops::OpMessage, DecodeError> {
    if message.len() > MAX_MESSAGE {
        return Err(DecodeError::Oversize { len: message.len(), limit: MAX_MESSAGE });
    }
    match message {
        [version, kind, body @ ..] => {
            if *version != VERSION {
                return Err(DecodeError::Version(*version));
            }
            match Kind::from_byte(*kind)? {
                Kind::Ops => postcard::from_bytes(body).map_err(|e| DecodeError::Body(e.to_string())),
                other => Err(DecodeError::Kind(other as u8)),
            }
        }
        _ => Err(DecodeError::Truncated { len: message.len(), need: HEADER_LEN }),
    }
}

/// Encodes a DuraVIP message as one datagram. A message whose datagram would exceed
/// [`MAX_DATAGRAM`] is refused: the sender splits its content first.
pub fn encode_duravip(message: &crate::duravip::DuraVipMessage) -> Result<Bytes, DecodeError> {
    let body = postcard::to_allocvec(message).map_err(|e| DecodeError::Body(e.to_string()))?;
    if body.len() + HEADER_LEN > MAX_DATAGRAM {
        return Err(DecodeError::Oversize { len: body.len() + HEADER_LEN, limit: MAX_DATAGRAM });
    }
    Ok(encode(Kind::Duravip, &body))
}

/// Decodes a DuraVIP datagram: checks the envelope (version, size, kind), then the body, which
/// must be exactly one message with no trailing bytes.
pub fn decode_duravip(datagram: &[u8]) -> Result<crate::duravip::DuraVipMessage, DecodeError> {
    match decode(datagram)? {
        (Kind::Duravip, body) => {
            let (message, rest) = postcard::take_from_bytes(body).map_err(|e| DecodeError::Body(e.to_string()))?;
            if rest.is_empty() {
                Ok(message)
            } else {
                Err(DecodeError::Body(format!("{} trailing bytes after the message", rest.len())))
            }
        }
        (other, _) => Err(DecodeError::Kind(other as u8)),
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
    fn ops_messages_round_trip_and_junk_is_refused() {
        use crate::ops::{Op, OpId, OpMessage};
        let m = OpMessage::Apply {
            incarnation: 3,
            ops: vec![Op { id: OpId { epoch: 2, seq: 9 }, node_seq: 1, command: "version".into() }],
        };
        let bytes = encode_ops(&m).expect("encode");
        assert_eq!(decode_ops(&bytes), Ok(m));
        assert!(matches!(decode_ops(&[1, 2, 0xff, 0xff]), Err(DecodeError::Body(_))));
        assert_eq!(decode_ops(&[1, 1, 0]), Err(DecodeError::Kind(1)));
        // Every truncation of a valid message is an error, never a panic.
        for n in 0..bytes.len() {
            assert!(decode_ops(&bytes[..n]).is_err(), "prefix of {n} bytes decoded");
        }
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        assert_eq!(decode(&[]), Err(DecodeError::Truncated { len: 0, need: 2 }));
        assert_eq!(decode(&[1]), Err(DecodeError::Truncated { len: 1, need: 2 }));
        assert_eq!(decode(&[9, 1]), Err(DecodeError::Version(9)));
        assert_eq!(decode(&[1, 77]), Err(DecodeError::Kind(77)));
        let big = vec![1u8; MAX_DATAGRAM + 1];
        assert_eq!(decode(&big), Err(DecodeError::Oversize { len: MAX_DATAGRAM + 1, limit: MAX_DATAGRAM }));
        assert_eq!(
            DecodeError::Version(9).to_string(),
            "unsupported protocol version 9 (this build speaks 1)"
        );
    }
}
