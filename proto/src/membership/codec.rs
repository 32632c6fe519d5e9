//! The SWIM packet codec: every field at a fixed width, so a header is always
//! [`HEADER_WIDTH`] bytes and a member update always [`MEMBER_WIDTH`].
//!
//! Two things follow. Screening a packet reads the sender, the member a probe names and each
//! update's address key at known offsets, without decoding it first (see `screen.rs`). And
//! foca's update queue stops filling a packet only when the packet is exactly full
//! (`Broadcasts::fill` walks its whole backlog otherwise): with every update the same width and
//! the packet sized to the header plus a whole number of updates ([`packet_size`]), a packet is
//! always exactly full when the backlog has more than fits, and filling it costs the updates
//! taken, not the backlog.
//!
//! Layout, big-endian:
//!
//! | field | bytes |
//! |---|---|
//! | header: source key, source incarnation | 8 + 8 |
//! | header: the source's SWIM incarnation | 2 |
//! | header: destination key, destination incarnation | 8 + 8 |
//! | header: message tag, probe number, the member it names (or zeros) | 1 + 1 + 16 |
//! | update: key, incarnation, SWIM incarnation, state | 8 + 8 + 2 + 1 |

use bytes::{Buf, BufMut};
use foca::{Header, Member, Message, State};

use crate::ids::{AddrKey, SwimId};

/// Bytes of an encoded identity.
pub const ID_WIDTH: usize = 16;
/// Bytes of an encoded header.
pub const HEADER_WIDTH: usize = ID_WIDTH + 2 + ID_WIDTH + 2 + ID_WIDTH;
/// Bytes of an encoded member update.
pub const MEMBER_WIDTH: usize = ID_WIDTH + 2 + 1;
/// Where the message tag sits in a header.
pub const TAG_OFFSET: usize = ID_WIDTH + 2 + ID_WIDTH;

/// The largest packet of at most `limit` bytes that holds a header, the update count and a
/// whole number of updates.
pub const fn packet_size(limit: usize) -> usize {
    let room = limit.saturating_sub(HEADER_WIDTH + 2);
    HEADER_WIDTH + 2 + room / MEMBER_WIDTH * MEMBER_WIDTH
}

/// What is wrong with a SWIM packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Fewer bytes than the field needs.
    #[error("truncated {what}: {have} bytes of {need}")]
    Truncated {
        /// Header or update.
        what: &'static str,
        /// Bytes left.
        have: usize,
        /// Bytes needed.
        need: usize,
    },
    /// An unknown message tag.
    #[error("unknown message tag {0}")]
    Tag(u8),
    /// An unknown member state.
    #[error("unknown member state {0}")]
    State(u8),
    /// The buffer cannot take the item.
    #[error("no room for {0}")]
    Full(&'static str),
}

/// foca's codec for [`SwimId`]: fixed widths, no allocation.
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedCodec;

fn put_id(buf: &mut impl BufMut, id: &SwimId) {
    buf.put_u64(id.key.0);
    buf.put_u64(id.incarnation);
}

fn get_id(buf: &mut impl Buf) -> SwimId {
    SwimId { key: AddrKey(buf.get_u64()), incarnation: buf.get_u64() }
}

const NOBODY: SwimId = SwimId { key: AddrKey(0), incarnation: 0 };

fn tag_of(message: &Message<SwimId>) -> (u8, u8, SwimId) {
    match message {
        Message::Ping(n) => (1, *n, NOBODY),
        Message::Ack(n) => (2, *n, NOBODY),
        Message::PingReq { target, probe_number } => (3, *probe_number, *target),
        Message::IndirectPing { origin, probe_number } => (4, *probe_number, *origin),
        Message::IndirectAck { target, probe_number } => (5, *probe_number, *target),
        Message::ForwardedAck { origin, probe_number } => (6, *probe_number, *origin),
        Message::Announce => (7, 0, NOBODY),
        Message::Feed => (8, 0, NOBODY),
        Message::Gossip => (9, 0, NOBODY),
        Message::Broadcast => (10, 0, NOBODY),
        Message::TurnUndead => (11, 0, NOBODY),
    }
}

fn message_of(tag: u8, probe_number: u8, named: SwimId) -> Result<Message<SwimId>, CodecError> {
    Ok(match tag {
        1 => Message::Ping(probe_number),
        2 => Message::Ack(probe_number),
        3 => Message::PingReq { target: named, probe_number },
        4 => Message::IndirectPing { origin: named, probe_number },
        5 => Message::IndirectAck { target: named, probe_number },
        6 => Message::ForwardedAck { origin: named, probe_number },
        7 => Message::Announce,
        8 => Message::Feed,
        9 => Message::Gossip,
        10 => Message::Broadcast,
        11 => Message::TurnUndead,
        other => return Err(CodecError::Tag(other)),
    })
}

/// True if a message with this tag names a member (whose key is then at
/// [`TAG_OFFSET`]` + 2`).
pub fn tag_names_member(tag: u8) -> bool {
    (3..=6).contains(&tag)
}

fn state_byte(state: State) -> u8 {
    match state {
        State::Alive => 0,
        State::Suspect => 1,
        State::Down => 2,
    }
}

impl foca::Codec<SwimId> for FixedCodec {
    type Error = CodecError;

    fn encode_header(&mut self, header: &Header<SwimId>, mut buf: impl BufMut) -> Result<(), CodecError> {
        if buf.remaining_mut() < HEADER_WIDTH {
            return Err(CodecError::Full("a header"));
        }
        put_id(&mut buf, &header.src);
        buf.put_u16(header.src_incarnation);
        put_id(&mut buf, &header.dst);
        let (tag, probe_number, named) = tag_of(&header.message);
        buf.put_u8(tag);
        buf.put_u8(probe_number);
        put_id(&mut buf, &named);
        Ok(())
    }

    fn decode_header(&mut self, mut buf: impl Buf) -> Result<Header<SwimId>, CodecError> {
        if buf.remaining() < HEADER_WIDTH {
            return Err(CodecError::Truncated { what: "header", have: buf.remaining(), need: HEADER_WIDTH });
        }
        let src = get_id(&mut buf);
        let src_incarnation = buf.get_u16();
        let dst = get_id(&mut buf);
        let tag = buf.get_u8();
        let probe_number = buf.get_u8();
        let named = get_id(&mut buf);
        Ok(Header { src, src_incarnation, dst, message: message_of(tag, probe_number, named)? })
    }

    fn encode_member(&mut self, member: &Member<SwimId>, mut buf: impl BufMut) -> Result<(), CodecError> {
        if buf.remaining_mut() < MEMBER_WIDTH {
            return Err(CodecError::Full("an update"));
        }
        put_id(&mut buf, member.id());
        buf.put_u16(member.incarnation());
        buf.put_u8(state_byte(member.state()));
        Ok(())
    }

    fn decode_member(&mut self, mut buf: impl Buf) -> Result<Member<SwimId>, CodecError> {
        if buf.remaining() < MEMBER_WIDTH {
            return Err(CodecError::Truncated { what: "update", have: buf.remaining(), need: MEMBER_WIDTH });
        }
        let id = get_id(&mut buf);
        let incarnation = buf.get_u16();
        let state = match buf.get_u8() {
            0 => State::Alive,
            1 => State::Suspect,
            2 => State::Down,
            other => return Err(CodecError::State(other)),
        };
        Ok(Member::new(id, incarnation, state))
    }
}

/// The address key at `offset` of `body` (the caller checked the length).
pub fn key_at(body: &[u8], offset: usize) -> Option<AddrKey> {
    let bytes: [u8; 8] = body.get(offset..offset + 8)?.try_into().ok()?;
    Some(AddrKey(u64::from_be_bytes(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Codec;

    fn id(key: u64, incarnation: u64) -> SwimId {
        SwimId { key: AddrKey(key), incarnation }
    }

    #[test]
    fn every_message_round_trips_at_the_fixed_width() {
        let messages = [
            Message::Ping(7),
            Message::Ack(8),
            Message::PingReq { target: id(3, 4), probe_number: 9 },
            Message::IndirectPing { origin: id(5, 6), probe_number: 10 },
            Message::IndirectAck { target: id(7, 8), probe_number: 11 },
            Message::ForwardedAck { origin: id(9, 10), probe_number: 12 },
            Message::Announce,
            Message::Feed,
            Message::Gossip,
            Message::Broadcast,
            Message::TurnUndead,
        ];
        for message in messages {
            let header = Header { src: id(1, 2), src_incarnation: 513, dst: id(u64::MAX, 1 << 40), message };
            let mut buf = Vec::new();
            FixedCodec.encode_header(&header, &mut buf).expect("encode");
            assert_eq!(buf.len(), HEADER_WIDTH);
            assert_eq!(FixedCodec.decode_header(&buf[..]).expect("decode"), header);
            let (tag, _, _) = tag_of(&header.message);
            assert_eq!(buf[TAG_OFFSET], tag);
            if tag_names_member(tag) {
                let (_, _, named) = tag_of(&header.message);
                assert_eq!(key_at(&buf, TAG_OFFSET + 2), Some(named.key));
            }
        }
        for state in [State::Alive, State::Suspect, State::Down] {
            let member = Member::new(id(42, 43), 44, state);
            let mut buf = Vec::new();
            FixedCodec.encode_member(&member, &mut buf).expect("encode");
            assert_eq!(buf.len(), MEMBER_WIDTH);
            assert_eq!(FixedCodec.decode_member(&buf[..]).expect("decode"), member);
        }
    }

    #[test]
    fn short_or_unknown_input_is_an_error() {
        let header = Header { src: id(1, 2), src_incarnation: 0, dst: id(3, 4), message: Message::Ping(1) };
        let mut buf = Vec::new();
        FixedCodec.encode_header(&header, &mut buf).expect("encode");
        for cut in 0..HEADER_WIDTH {
            assert!(matches!(FixedCodec.decode_header(&buf[..cut]), Err(CodecError::Truncated { .. })));
        }
        buf[TAG_OFFSET] = 99;
        assert_eq!(FixedCodec.decode_header(&buf[..]), Err(CodecError::Tag(99)));
        let mut member = [0u8; MEMBER_WIDTH];
        member[MEMBER_WIDTH - 1] = 3;
        assert_eq!(FixedCodec.decode_member(&member[..]), Err(CodecError::State(3)));
        assert!(matches!(FixedCodec.decode_member(&member[..5]), Err(CodecError::Truncated { .. })));
        let mut small = bytes::BytesMut::new().limit(HEADER_WIDTH - 1);
        assert_eq!(FixedCodec.encode_header(&header, &mut small), Err(CodecError::Full("a header")));
    }

    #[test]
    fn packets_hold_a_whole_number_of_updates() {
        let size = packet_size(1098);
        assert_eq!((size - HEADER_WIDTH - 2) % MEMBER_WIDTH, 0);
        assert!(size <= 1098 && size + MEMBER_WIDTH > 1098);
    }
}
