//! The election as one table: who a view elects for every address at once, so that addresses
//! spread evenly over the live candidates. Part of the protocol — every node computes the same
//! table from the same view — so it depends on nothing but its arguments. No I/O here.
//!
//! # The rule
//!
//! 1. An address whose `duravip move` host is a live candidate goes to that host; else one
//!    whose preferred node is a live candidate goes to it ("pinned").
//! 2. The other addresses are spread: with `A` addresses that have a live candidate and `n`
//!    live nodes that are candidates for any of them, every node gets a quota of `A / n`, and
//!    `A % n` of them one more. Pairs (address, node) are taken in descending order of their
//!    [`rendezvous_score`] (ties: address, then name, ascending), and a pair is assigned when
//!    the address is still free and the node below its quota — so each address goes to the
//!    candidate that ranks it highest among those with room.
//! 3. An address left over (its candidates are all full, which happens only when candidate
//!    lists differ) goes to its least-loaded candidate, ties to the higher score.
//!
//! When every address may go to every node and nothing is pinned, the held counts of any
//! two live nodes differ by at most one.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::rank::rendezvous_score;

/// Why the table gives an address to its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Why {
    /// A `duravip move` names the owner.
    Moved,
    /// The binding's `Duravip_Preference` names the owner.
    Preferred,
    /// Spread by quota and rendezvous score.
    Spread,
    /// Every candidate with room was full; the least-loaded candidate took it.
    Overflow,
}

/// One address to place: pinned to a node, or free among its eligible (live candidate) nodes.
#[derive(Debug, Clone)]
pub(super) struct Slot<'a> {
    pub(super) addr: IpAddr,
    pub(super) pinned: Option<(&'a str, Why)>,
    pub(super) eligible: Vec<&'a str>,
}

/// The table: address → (owner, why), and how many addresses each node was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Table {
    pub(super) owners: BTreeMap<IpAddr, (String, Why)>,
    pub(super) loads: BTreeMap<String, usize>,
    /// (quota, nodes allowed one more) of the spread.
    pub(super) quota: (usize, usize),
}

/// Computes the table for `slots` (see the module documentation).
pub(super) fn assign(slots: &[Slot<'_>]) -> Table {
    let mut loads: BTreeMap<&str, usize> = BTreeMap::new();
    for slot in slots {
        for n in &slot.eligible {
            loads.entry(n).or_insert(0);
        }
    }
    let mut owners: BTreeMap<IpAddr, (&str, Why)> = BTreeMap::new();
    for slot in slots {
        if let Some((node, why)) = slot.pinned {
            owners.insert(slot.addr, (node, why));
            *loads.entry(node).or_insert(0) += 1;
        }
    }
    let placeable = slots.iter().filter(|s| s.pinned.is_some() || !s.eligible.is_empty()).count();
    let n = loads.len().max(1);
    let (quota, extra) = (placeable / n, placeable % n);
    let mut extras = extra.saturating_sub(loads.values().filter(|&&l| l > quota).count());

    let mut pairs: Vec<(Reverse<u64>, IpAddr, &str)> = slots
        .iter()
        .filter(|s| s.pinned.is_none())
        .flat_map(|s| s.eligible.iter().map(move |n| (Reverse(rendezvous_score(s.addr, n)), s.addr, *n)))
        .collect();
    pairs.sort_unstable();
    for (_, addr, node) in pairs {
        if owners.contains_key(&addr) {
            continue;
        }
        let load = loads.entry(node).or_insert(0);
        if *load < quota || (*load == quota && extras > 0) {
            if *load == quota {
                extras -= 1;
            }
            *load += 1;
            owners.insert(addr, (node, Why::Spread));
        }
    }
    for slot in slots.iter().filter(|s| s.pinned.is_none()) {
        if owners.contains_key(&slot.addr) {
            continue;
        }
        let best = slot
            .eligible
            .iter()
            .min_by_key(|n| (loads.get(**n).copied().unwrap_or(0), Reverse(rendezvous_score(slot.addr, n)), **n));
        if let Some(node) = best {
            *loads.entry(node).or_insert(0) += 1;
            owners.insert(slot.addr, (node, Why::Overflow));
        }
    }
    Table {
        owners: owners.into_iter().map(|(a, (n, w))| (a, (n.to_owned(), w))).collect(),
        loads: loads.into_iter().map(|(n, l)| (n.to_owned(), l)).collect(),
        quota: (quota, extra),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::from([10, 2, (i >> 8) as u8, i as u8])
    }

    fn open(count: u32, nodes: &[&'static str]) -> Vec<Slot<'static>> {
        (0..count).map(|i| Slot { addr: ip(i), pinned: None, eligible: nodes.to_vec() }).collect()
    }

    fn spread(t: &Table) -> (usize, usize) {
        let min = t.loads.values().copied().min().unwrap_or(0);
        let max = t.loads.values().copied().max().unwrap_or(0);
        (min, max)
    }

    #[test]
    fn counts_differ_by_at_most_one_for_any_size() {
        let names = ["a", "b", "c", "d", "e", "f", "g"];
        for nodes in 1..=names.len() {
            for count in 0..40 {
                let t = assign(&open(count, &names[..nodes]));
                assert_eq!(t.owners.len(), count as usize);
                let (min, max) = spread(&t);
                assert!(max - min <= 1, "{count} addresses over {nodes} nodes: {:?}", t.loads);
                assert!(t.owners.values().all(|(_, w)| *w == Why::Spread));
            }
        }
    }

    #[test]
    fn pinned_addresses_come_first_and_count_towards_the_load() {
        let mut slots = open(6, &["a", "b", "c"]);
        slots[0].pinned = Some(("a", Why::Preferred));
        slots[1].pinned = Some(("a", Why::Moved));
        let t = assign(&slots);
        assert_eq!(t.owners[&ip(0)], ("a".to_owned(), Why::Preferred));
        assert_eq!(t.owners[&ip(1)], ("a".to_owned(), Why::Moved));
        assert_eq!(t.loads.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    }

    #[test]
    fn the_table_is_a_function_of_the_view_alone() {
        let a = assign(&open(25, &["x", "y", "z"]));
        let mut reversed = open(25, &["z", "y", "x"]);
        reversed.reverse();
        assert_eq!(a, assign(&reversed));
    }

    #[test]
    fn a_node_leaving_moves_its_addresses_and_few_others() {
        let before = assign(&open(30, &["a", "b", "c"]));
        let after = assign(&open(30, &["a", "b"]));
        let orphaned = before.owners.values().filter(|(n, _)| n == "c").count();
        let moved = before.owners.iter().filter(|(addr, (n, _))| after.owners[*addr].0 != *n).count();
        assert!(moved >= orphaned);
        // Survivors keep most of what they had: at most a quarter of their addresses move.
        assert!(moved - orphaned <= 5, "{} survivors' addresses moved", moved - orphaned);
    }

    #[test]
    fn differing_candidate_lists_still_place_every_address() {
        let mut slots = open(5, &["a"]);
        slots.extend((5..8).map(|i| Slot { addr: ip(i), pinned: None, eligible: vec!["a", "b"] }));
        slots.push(Slot { addr: ip(9), pinned: None, eligible: vec![] });
        let t = assign(&slots);
        assert_eq!(t.owners.len(), 8);
        assert!(!t.owners.contains_key(&ip(9)));
        assert!((0..5).all(|i| t.owners[&ip(i)].0 == "a"), "{:?}", t.owners);
        assert!(t.loads["b"] >= 1, "b takes some of the shared addresses: {:?}", t.loads);
    }
}
