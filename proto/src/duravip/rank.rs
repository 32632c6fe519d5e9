//! The election's fixed arithmetic: the rendezvous score of (address, node) and the rank of a
//! claim. Both are part of the protocol: every node of a cluster must compute the same values,
//! so they depend on nothing but their arguments. No I/O here.

use std::cmp::Ordering;
use std::net::IpAddr;

use super::Term;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bits.
struct Fnv(u64);

impl Fnv {
    fn eat(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }
}

/// The 64-bit finaliser of MurmurHash3: spreads FNV's weak low-bit mixing over every bit, so
/// that addresses differing in one octet rank nodes independently.
fn finalise(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// The rendezvous (highest-random-weight) score of node `name` for `addr`: among the live
/// candidates with no override or preference, the one with the highest score owns the address.
///
/// Defined as the MurmurHash3 64-bit finaliser of FNV-1a 64 over: a family byte (4 or 6), the
/// address octets, a 0xff separator (never part of UTF-8), the name's UTF-8 bytes.
pub fn rendezvous_score(addr: IpAddr, name: &str) -> u64 {
    let mut h = Fnv(FNV_OFFSET);
    match addr {
        IpAddr::V4(a) => {
            h.eat(&[4]);
            h.eat(&a.octets());
        }
        IpAddr::V6(a) => {
            h.eat(&[6]);
            h.eat(&a.octets());
        }
    }
    h.eat(&[0xff]);
    h.eat(name.as_bytes());
    finalise(h.0)
}

/// How strongly a node's claim on an address stands. Higher wins: the override term, then
/// being the preferred node, then the rendezvous score, then (only on a score collision) the
/// greater name. The same order as the election, so a node the view elects outranks the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rank<'a> {
    pub(super) term: Term,
    pub(super) preferred: bool,
    pub(super) score: u64,
    pub(super) name: &'a str,
}

impl<'a> Rank<'a> {
    pub(super) fn of(addr: IpAddr, name: &'a str, term: Term, preference: Option<&str>) -> Rank<'a> {
        Rank {
            term,
            preferred: preference == Some(name),
            score: rendezvous_score(addr, name),
            name,
        }
    }
}

impl Ord for Rank<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.term, self.preferred, self.score, self.name).cmp(&(other.term, other.preferred, other.score, other.name))
    }
}

impl PartialOrd for Rank<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_a_fixed_function_of_address_and_name() {
        let a: IpAddr = "10.1.1.1".parse().expect("addr");
        let b: IpAddr = "10.1.1.2".parse().expect("addr");
        // Pinned: a change here changes every cluster's election, and mixed versions would
        // disagree about owners.
        assert_eq!(rendezvous_score(a, "east1"), rendezvous_score(a, "east1"));
        assert_eq!(rendezvous_score(a, "east1"), 0x7053_701a_c239_aa9e);
        assert_ne!(rendezvous_score(a, "east1"), rendezvous_score(b, "east1"));
        assert_ne!(rendezvous_score(a, "east1"), rendezvous_score(a, "east2"));
        let v6: IpAddr = "::ffff:10.1.1.1".parse().expect("addr");
        assert_ne!(rendezvous_score(a, "east1"), rendezvous_score(v6, "east1"));
    }

    #[test]
    fn scores_spread_addresses_over_nodes() {
        let names = ["n1", "n2", "n3", "n4"];
        let mut wins = [0usize; 4];
        for i in 0..400u32 {
            let addr = IpAddr::from([10, 0, (i >> 8) as u8, i as u8]);
            let best = (0..4)
                .max_by_key(|&k| rendezvous_score(addr, names[k]))
                .expect("four names");
            wins[best] += 1;
        }
        assert!(wins.iter().all(|&w| (60..=140).contains(&w)), "unbalanced: {wins:?}");
    }

    #[test]
    fn rank_orders_term_then_preference_then_score() {
        let addr: IpAddr = "10.1.1.1".parse().expect("addr");
        let plain = Rank::of(addr, "a", (0, 0), None);
        let preferred = Rank::of(addr, "b", (0, 0), Some("b"));
        let moved = Rank::of(addr, "c", (1, 1), Some("b"));
        assert!(preferred > plain);
        assert!(moved > preferred);
        let x = Rank::of(addr, "x", (0, 0), None);
        let y = Rank::of(addr, "y", (0, 0), None);
        assert_eq!(x > y, rendezvous_score(addr, "x") > rendezvous_score(addr, "y"));
    }
}
