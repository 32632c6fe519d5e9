//! The DuraVIP wire messages and their packing into datagrams no larger than
//! [`MAX_DATAGRAM`]: a message with many addresses is split into several, each complete on its
//! own. Encoding and decoding of the envelope are in [`crate::wire`]. No I/O here.

use std::net::IpAddr;
use std::ops::Range;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::Term;
use crate::error::DecodeError;
use crate::wire::{self, Kind, HEADER_LEN, MAX_DATAGRAM};

/// Orders what one node run says: its incarnation, then a sequence number that grows with every
/// claim or release it sends. A record of a claim is replaced only by something newer, so a
/// late datagram never undoes a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// The sender's incarnation.
    pub incarnation: u64,
    /// The sender's sequence number within the incarnation.
    pub seq: u64,
}

/// Messages between the DuraVIP cores of two nodes, one per datagram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DuraVipMessage {
    /// The sender holds, or is acquiring, these addresses, each under the given term
    /// ([`super::NO_TERM`] unless a `duravip move` named the sender). Sent every beat to the
    /// addresses' other live candidates.
    Claim {
        /// Identifies this claim; acknowledgements echo it.
        stamp: Stamp,
        /// (address, term) pairs.
        claims: Vec<(IpAddr, Term)>,
    },
    /// Under the majority policy: the sender backs the claim `stamp` for these addresses.
    ClaimAck {
        /// The stamp of the claim acknowledged.
        stamp: Stamp,
        /// The addresses backed.
        addrs: Vec<IpAddr>,
    },
    /// The sender released, or stopped acquiring, these addresses: no need to wait for its
    /// claims to fall silent.
    Released {
        /// Newer than every claim the sender made for these addresses before releasing.
        stamp: Stamp,
        /// The addresses.
        addrs: Vec<IpAddr>,
    },
    /// The sender's full state: what it holds and every `duravip move` it knows (sent by
    /// `duravip announce view`, and to a member that comes up).
    State {
        /// The sender's latest stamp.
        stamp: Stamp,
        /// (address, term) for each address the sender holds.
        holdings: Vec<(IpAddr, Term)>,
        /// (address, host, term) for each move override the sender knows.
        overrides: Vec<(IpAddr, String, Term)>,
    },
}

impl DuraVipMessage {
    /// The message as one datagram; refused when it would exceed [`MAX_DATAGRAM`] (the
    /// sender splits its content first).
    pub fn encode(&self) -> Result<Bytes, DecodeError> {
        wire::encode_body(Kind::Duravip, self, MAX_DATAGRAM)
    }

    /// A DuraVIP datagram: the envelope (version, size, kind), then exactly one message.
    pub fn decode(datagram: &[u8]) -> Result<DuraVipMessage, DecodeError> {
        let (kind, body) = wire::decode(datagram)?;
        wire::decode_body(Kind::Duravip, kind, body)
    }

    /// The datagrams of a claim, split to fit.
    pub(super) fn claim_datagrams(stamp: Stamp, claims: Vec<(IpAddr, Term)>) -> Vec<Bytes> {
        split(claims, |claims| DuraVipMessage::Claim { stamp, claims })
    }

    /// The datagrams of an acknowledgement, split to fit.
    pub(super) fn ack_datagrams(stamp: Stamp, addrs: Vec<IpAddr>) -> Vec<Bytes> {
        split(addrs, |addrs| DuraVipMessage::ClaimAck { stamp, addrs })
    }

    /// The datagrams of a release notice, split to fit.
    pub(super) fn released_datagrams(stamp: Stamp, addrs: Vec<IpAddr>) -> Vec<Bytes> {
        split(addrs, |addrs| DuraVipMessage::Released { stamp, addrs })
    }

    /// The datagrams of a state announcement, split to fit; empty if there is nothing to say.
    pub(super) fn state_datagrams(
        stamp: Stamp,
        holdings: Vec<(IpAddr, Term)>,
        overrides: Vec<(IpAddr, String, Term)>,
    ) -> Vec<Bytes> {
        if holdings.is_empty() && overrides.is_empty() {
            return Vec::new();
        }
        let empty = DuraVipMessage::State {
            stamp,
            holdings: Vec::new(),
            overrides: Vec::new(),
        };
        let mut sizes: Vec<usize> = holdings.iter().map(encoded_len).collect();
        sizes.extend(overrides.iter().map(encoded_len));
        // Each list's length prefix may grow by a byte once it passes 127 entries.
        let budget = budget(&empty, 2);
        let split_at = holdings.len();
        let mut holdings = holdings.into_iter();
        let mut overrides = overrides.into_iter();
        chunks(&sizes, budget)
            .into_iter()
            .filter_map(|r| {
                let h = r.start.min(split_at)..r.end.min(split_at);
                let message = DuraVipMessage::State {
                    stamp,
                    holdings: holdings.by_ref().take(h.len()).collect(),
                    overrides: overrides.by_ref().take(r.len() - h.len()).collect(),
                };
                encode_or_warn(&message)
            })
            .collect()
    }
}

fn encoded_len<T: Serialize>(item: &T) -> usize {
    postcard::to_allocvec(item).map_or(usize::MAX, |v| v.len())
}

/// Bytes left for list entries in a datagram carrying `empty` (the message with its lists
/// empty), keeping `slack` bytes for the lists' length prefixes to grow.
fn budget(empty: &DuraVipMessage, slack: usize) -> usize {
    MAX_DATAGRAM.saturating_sub(HEADER_LEN + encoded_len(empty) + slack)
}

/// Consecutive ranges of items whose sizes sum to at most `budget`; an item larger than the
/// budget gets a range of its own (and will fail to encode).
fn chunks(sizes: &[usize], budget: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut used = 0usize;
    for (i, &size) in sizes.iter().enumerate() {
        if i > start && used.saturating_add(size) > budget {
            out.push(start..i);
            start = i;
            used = 0;
        }
        used = used.saturating_add(size);
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

fn split<T: Serialize>(items: Vec<T>, build: impl Fn(Vec<T>) -> DuraVipMessage) -> Vec<Bytes> {
    if items.is_empty() {
        return Vec::new();
    }
    let sizes: Vec<usize> = items.iter().map(encoded_len).collect();
    let budget = budget(&build(Vec::new()), 1);
    let mut items = items.into_iter();
    chunks(&sizes, budget)
        .into_iter()
        .filter_map(|r| encode_or_warn(&build(items.by_ref().take(r.len()).collect())))
        .collect()
}

fn encode_or_warn(message: &DuraVipMessage) -> Option<Bytes> {
    match message.encode() {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            // Only an entry larger than a datagram gets here (a host name of ~1 KB).
            warn!(%error, "dropping a DuraVIP message that cannot fit in a datagram");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            incarnation: u64::MAX,
            seq: u64::MAX,
        }
    }

    #[test]
    fn every_message_round_trips() {
        let a: IpAddr = "10.1.1.1".parse().expect("addr");
        let b: IpAddr = "2001:db8::1".parse().expect("addr");
        let messages = [
            DuraVipMessage::Claim {
                stamp: stamp(),
                claims: vec![(a, (0, 0)), (b, (3, 9))],
            },
            DuraVipMessage::ClaimAck {
                stamp: stamp(),
                addrs: vec![a, b],
            },
            DuraVipMessage::Released {
                stamp: stamp(),
                addrs: vec![b],
            },
            DuraVipMessage::State {
                stamp: stamp(),
                holdings: vec![(a, (1, 2))],
                overrides: vec![(b, "east2".into(), (1, 2))],
            },
        ];
        for m in messages {
            let bytes = m.encode().expect("encode");
            assert_eq!(DuraVipMessage::decode(&bytes), Ok(m));
        }
    }

    #[test]
    fn large_messages_are_split_into_datagrams_that_fit_and_lose_nothing() {
        let addrs: Vec<IpAddr> = (0..3000u32)
            .map(|i| {
                IpAddr::from([
                    0x20,
                    1,
                    0xd,
                    0xb8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    (i >> 8) as u8,
                    i as u8,
                ])
            })
            .collect();
        let claims: Vec<(IpAddr, Term)> = addrs.iter().map(|&a| (a, (u64::MAX, u64::MAX))).collect();
        let overrides: Vec<(IpAddr, String, Term)> = addrs
            .iter()
            .map(|&a| (a, "a-rather-long-node-name-of-some-data-centre".to_owned(), (7, 7)))
            .collect();

        let datagrams = DuraVipMessage::claim_datagrams(stamp(), claims.clone());
        assert!(datagrams.len() > 1);
        let mut back = Vec::new();
        for d in &datagrams {
            assert!(d.len() <= MAX_DATAGRAM, "{} bytes", d.len());
            match DuraVipMessage::decode(d).expect("decode") {
                DuraVipMessage::Claim { claims, .. } => back.extend(claims),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(back, claims);

        let datagrams = DuraVipMessage::state_datagrams(stamp(), claims.clone(), overrides.clone());
        let (mut h, mut o) = (Vec::new(), Vec::new());
        for d in &datagrams {
            assert!(d.len() <= MAX_DATAGRAM, "{} bytes", d.len());
            match DuraVipMessage::decode(d).expect("decode") {
                DuraVipMessage::State {
                    holdings, overrides, ..
                } => {
                    h.extend(holdings);
                    o.extend(overrides);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((h, o), (claims, overrides));
        assert!(DuraVipMessage::state_datagrams(stamp(), Vec::new(), Vec::new()).is_empty());
        assert!(DuraVipMessage::released_datagrams(stamp(), Vec::new()).is_empty());
    }

    #[test]
    fn an_entry_too_large_for_any_datagram_is_dropped_not_sent() {
        let a: IpAddr = "10.1.1.1".parse().expect("addr");
        let huge = "x".repeat(MAX_DATAGRAM);
        let d = DuraVipMessage::state_datagrams(
            stamp(),
            vec![(a, (0, 0))],
            vec![(a, huge, (1, 1)), (a, "ok".into(), (1, 2))],
        );
        // The holding and the small override still travel; the huge override does not.
        let mut overrides = 0;
        for bytes in &d {
            if let DuraVipMessage::State { overrides: o, .. } = DuraVipMessage::decode(bytes).expect("decode") {
                overrides += o.len();
                assert!(o.iter().all(|(_, host, _)| host == "ok"));
            }
        }
        assert_eq!(overrides, 1);
        let oversize = DuraVipMessage::Released {
            stamp: stamp(),
            addrs: vec![a; 400],
        };
        assert!(matches!(
            oversize.encode(),
            Err(DecodeError::Oversize { .. })
        ));
    }

    #[test]
    fn trailing_bytes_and_other_kinds_are_refused() {
        let m = DuraVipMessage::Released {
            stamp: stamp(),
            addrs: vec![],
        };
        let mut bytes = m.encode().expect("encode").to_vec();
        bytes.push(0);
        assert!(matches!(DuraVipMessage::decode(&bytes), Err(DecodeError::Body(_))));
        let swim = wire::encode(wire::Kind::Swim, b"x");
        assert_eq!(DuraVipMessage::decode(&swim), Err(DecodeError::Kind(1)));
    }
}
