//! Screening a SWIM packet against the roster before foca reads it. A member with a valid
//! certificate can still say anything in its packets, so every identity a packet carries must
//! be a host of the segment file at its address, with its role and subcluster:
//!
//! - the sender (the caller also checks it against the certificate);
//! - the member a probe request names (`PingReq` / `IndirectAck` target, `IndirectPing` /
//!   `ForwardedAck` origin): we would send to it, so a packet naming a stranger is refused whole;
//! - every membership update piggybacked on the packet (gossip, the feed that answers a join,
//!   updates riding on probes and acks): a bad one is cut out and the honest ones of the same
//!   packet go on to foca.
//!
//! Works on foca's packet layout, which `foca::Foca::handle_data` reads as: the header, then —
//! unless the message is a custom broadcast or nothing follows — a big-endian `u16` count and
//! that many members, then custom broadcasts (we have none). Cutting members out rewrites the
//! count and copies the kept members byte for byte, so nothing is re-encoded. The node-harness
//! tests `forged_gossip_*` fail if foca ever reads its packets differently. No I/O here.

use bytes::Buf;
use foca::{Codec, Header, Member, Message, PostcardCodec};

use super::Roster;
use crate::error::MembershipError;
use crate::ids::MemberId;

/// A member identity cut out of a packet, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The peer whose packet carried it (authenticated by its certificate).
    pub relay: String,
    /// The identity as the packet gave it.
    pub member: MemberId,
    /// What the segment file says instead.
    pub reason: String,
}

/// A packet that passed: its header, and a rewritten body when updates had to be cut out.
pub(super) struct Screened {
    pub(super) header: Header<MemberId>,
    /// `Some` when the body foca must read differs from the one received.
    pub(super) rewritten: Option<Vec<u8>>,
    /// The updates cut out, in packet order.
    pub(super) refused: Vec<(MemberId, String)>,
}

/// Screens the SWIM `body` (the envelope removed). An error when the packet cannot be read, or
/// when the member its message names is not a roster host; then nothing of it may be used.
pub(super) fn screen(roster: &Roster, body: &[u8]) -> Result<Screened, MembershipError> {
    let swim = |error: postcard::Error| MembershipError::Swim(error.to_string());
    let mut cursor = body;
    let header: Header<MemberId> = PostcardCodec.decode_header(&mut cursor).map_err(swim)?;
    let header_len = body.len() - cursor.len();
    let named = match &header.message {
        Message::PingReq { target, .. } | Message::IndirectAck { target, .. } => Some(target),
        Message::IndirectPing { origin, .. } | Message::ForwardedAck { origin, .. } => Some(origin),
        _ => None,
    };
    if let Some(named) = named {
        roster.check(named)?;
    }
    let mut screened = Screened { header, rewritten: None, refused: Vec::new() };
    if cursor.len() < 2 || screened.header.message == Message::Broadcast {
        return Ok(screened);
    }
    let count = cursor.get_u16();
    let mut kept: Vec<&[u8]> = Vec::new();
    for _ in 0..count {
        let before = cursor;
        let member: Member<MemberId> = PostcardCodec.decode_member(&mut cursor).map_err(swim)?;
        let bytes = &before[..before.len() - cursor.len()];
        match roster.check(member.id()) {
            Ok(()) => kept.push(bytes),
            Err(error) => screened.refused.push((member.id().clone(), error.to_string())),
        }
    }
    if screened.refused.is_empty() {
        return Ok(screened);
    }
    let rest = cursor;
    let mut rewritten = Vec::with_capacity(body.len());
    rewritten.extend_from_slice(&body[..header_len]);
    let kept_count = u16::try_from(kept.len()).unwrap_or(u16::MAX);
    rewritten.extend_from_slice(&kept_count.to_be_bytes());
    for bytes in kept {
        rewritten.extend_from_slice(bytes);
    }
    rewritten.extend_from_slice(rest);
    screened.rewritten = Some(rewritten);
    Ok(screened)
}
