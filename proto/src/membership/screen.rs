//! Screening of received SWIM packets before foca sees them.
//!
//! A packet is read once, at the fixed offsets of [`super::codec`]: the sender must be the host
//! the peer's certificate names, a member the message names (an indirect probe's target or
//! origin) must be a host of the roster, and each membership update must be about a host of the
//! roster. An identity carries only an address key and an incarnation, so what a host is (its
//! name, subcluster and role) can only be read from the roster, never claimed; what is left to
//! forge is an address the roster does not list, and updates about one are cut out of the
//! packet (the rest of it is applied).

use foca::{Codec, Header, Message};

use super::codec::{self, FixedCodec, HEADER_WIDTH, MEMBER_WIDTH};
use super::Roster;
use crate::error::MembershipError;
use crate::ids::{MemberId, SwimId};

/// A membership update cut out of a received packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The peer that relayed the update (authenticated by its certificate).
    pub relay: String,
    /// The identity the update was about (its address key when the roster does not list it).
    pub member: MemberId,
    /// Why it was refused.
    pub reason: String,
}

/// A screened packet: its header, the packet without refused updates (`None` if nothing was
/// cut), and what was cut.
pub(super) struct Screened {
    pub(super) header: Header<SwimId>,
    pub(super) rewritten: Option<Vec<u8>>,
    pub(super) refused: Vec<(SwimId, String)>,
}

fn swim(error: codec::CodecError) -> MembershipError {
    MembershipError::Swim(error.to_string())
}

/// Screens `body`, a SWIM packet that `peer` sent.
pub(super) fn screen(roster: &Roster, peer: &str, body: &[u8]) -> Result<Screened, MembershipError> {
    let header = FixedCodec.decode_header(body).map_err(swim)?;
    match roster.host_of(&header.src) {
        // The common case costs one binary search by key and one name comparison.
        Some(host) if &*host.name == peer => {}
        _ if roster.number_of(peer).is_none() => {
            return Err(MembershipError::NotInRoster(format!("{peer} is not a host of the segment file")))
        }
        Some(host) => {
            return Err(MembershipError::Impostor { authenticated: peer.to_owned(), claimed: host.name.to_string() })
        }
        None => {
            return Err(MembershipError::Impostor {
                authenticated: peer.to_owned(),
                claimed: format!("the address key {}, which the segment file does not list", header.src.key),
            })
        }
    }
    let named = match &header.message {
        Message::PingReq { target, .. } | Message::IndirectAck { target, .. } => Some(target),
        Message::IndirectPing { origin, .. } | Message::ForwardedAck { origin, .. } => Some(origin),
        _ => None,
    };
    if let Some(named) = named {
        if roster.host_of(named).is_none() {
            return Err(MembershipError::NotInRoster(format!(
                "{peer} names {}, an address the segment file does not list",
                named.key
            )));
        }
    }
    let mut screened = Screened { header, rewritten: None, refused: Vec::new() };
    let rest = &body[HEADER_WIDTH..];
    if rest.len() < 2 || screened.header.message == Message::Broadcast {
        return Ok(screened);
    }
    let count = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
    let updates = &rest[2..];
    if updates.len() < count * MEMBER_WIDTH {
        return Err(MembershipError::Swim(format!(
            "truncated packet: {count} updates announced, {} bytes of them present",
            updates.len()
        )));
    }
    let mut refused_at = Vec::new();
    for i in 0..count {
        let at = i * MEMBER_WIDTH;
        let update = FixedCodec.decode_member(&updates[at..at + MEMBER_WIDTH]).map_err(swim)?;
        if roster.host_of(update.id()).is_none() {
            refused_at.push(i);
            screened.refused.push((*update.id(), format!("{} is not an address of the segment file", update.id().key)));
        }
    }
    if refused_at.is_empty() {
        return Ok(screened);
    }
    let mut rewritten = Vec::with_capacity(body.len());
    rewritten.extend_from_slice(&body[..HEADER_WIDTH]);
    let kept = u16::try_from(count - refused_at.len()).unwrap_or(u16::MAX);
    rewritten.extend_from_slice(&kept.to_be_bytes());
    for i in (0..count).filter(|i| !refused_at.contains(i)) {
        rewritten.extend_from_slice(&updates[i * MEMBER_WIDTH..(i + 1) * MEMBER_WIDTH]);
    }
    rewritten.extend_from_slice(&updates[count * MEMBER_WIDTH..]);
    screened.rewritten = Some(rewritten);
    Ok(screened)
}
