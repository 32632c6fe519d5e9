//! Partitions through node cores, with real membership on both sides: under the available
//! policy every address stays held on both sides and one holder remains after the heal (the
//! conflict resolved by claims even before membership has merged); under the majority policy
//! only a side with a majority of candidates holds, there are never two holders, and an owner
//! whose membership does not notice the cut lets its lease lapse before anyone takes over.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::harness::*;
use super::{owner, settled, ABCD, FIVE};
use crate::duravip::HoldingState;
use crate::membership::MembershipConfig;

#[test]
fn available_partition_keeps_every_address_on_both_sides_and_one_of_the_two_after_the_heal() {
    let mut c = settled(ABCD, 8, 8);
    c.holder_check = HolderCheck::Off;
    let (left, right) = (["a", "b"], ["mgr", "c", "d"]);
    c.partition(&left, &right);
    c.run_for(secs(15));
    assert_eq!(c.up_view("a").len(), 2, "the left side sees only itself");
    let mut during: BTreeMap<IpAddr, Vec<String>> = BTreeMap::new();
    for i in 1..=8 {
        let h = c.holders(vip(i));
        let on = |side: &[&str]| h.iter().filter(|n| side.contains(&n.as_str())).count();
        assert_eq!((on(&left), on(&right)), (1, 1), "{} held by {h:?}", vip(i));
        during.insert(vip(i), h);
    }
    c.heal();
    let healed = c.now;
    c.run_for(secs(30));
    for (addr, both) in &during {
        let o = owner(&c, *addr);
        assert!(both.contains(&o), "{addr} went to a third node, {o}");
        let last = c.changes.iter().rev().find(|ch| ch.2 == *addr).expect("changed").0;
        assert!(last - healed <= secs(12), "{addr} settled {:?} after the heal", last - healed);
        // The holder that stayed announced the address again when the other gave way, so the
        // neighbours that followed the other side's announcements come back to it.
        let kept = c.changes.iter().filter(|ch| ch.2 == *addr && ch.0 >= healed).all(|ch| ch.1 != o || ch.3);
        if kept {
            assert!(
                c.announced.iter().any(|(t, n, a)| a == addr && *n == o && *t >= healed),
                "{addr}: {o} kept it after the heal without announcing it again"
            );
        }
    }
    c.holder_check = HolderCheck::WhileConnected;
    let settled = c.changes.len();
    c.run_for(secs(10));
    assert_eq!(c.changes.len(), settled, "ownership kept changing");
}

#[test]
fn available_conflict_resolves_by_claims_even_before_membership_merges() {
    // The right side's membership never notices the cut: it keeps the left in its view and
    // claims what it holds, while the left declares it down and takes its addresses over.
    // After the heal those claims reach the left long before the left's membership takes the
    // right back: the lower-ranked holder must still give way, and not take the address back.
    let (left, right) = (["a", "b"], ["mgr", "c", "d"]);
    let mut c = Setup::new(ABCD, 16).bindings(bindings(4)).membership(&right, unaware()).start();
    c.run_for(secs(10));
    c.holder_check = HolderCheck::Off;
    let cut = c.now;
    c.partition(&left, &right);
    c.run_for(secs(8));
    for l in left {
        for r in &right[1..] {
            assert!(c.saw_down(l, r, cut).is_some(), "{l} noticed {r}");
            assert_eq!(c.saw_down(r, l, cut), None, "{r} noticed {l}");
        }
    }
    let doubled: Vec<IpAddr> = (1..=4).map(vip).filter(|a| c.holders(*a).len() == 2).collect();
    assert!(!doubled.is_empty(), "the partition left no address held twice");
    c.heal();
    let healed = c.now;
    c.run_for(secs(3));
    for addr in &doubled {
        let winner = owner(&c, *addr);
        let after: Vec<_> = c.changes.iter().filter(|ch| ch.0 >= healed && ch.2 == *addr).collect();
        assert!(after.len() == 1 && !after[0].3 && after[0].1 != winner, "{addr}: {after:?}");
        let (released, loser) = (after[0].0, &after[0].1);
        assert!(released - healed <= secs(1) + ms(10), "{addr} released {:?} after the heal", released - healed);
        // The loser's membership had not taken the winner back when it gave way.
        assert!(c.saw_up(loser, &winner, healed).is_none_or(|at| at > released), "{loser} merged first");
    }
    c.run_for(secs(30));
    for i in 1..=4 {
        owner(&c, vip(i));
    }
    c.holder_check = HolderCheck::WhileConnected;
    let settled = c.changes.len();
    c.run_for(secs(10));
    assert_eq!(c.changes.len(), settled, "ownership kept flapping");
}

const MINORITY: &[&str] = &["a", "b"];
const MAJORITY: &[&str] = &["mgr", "c", "d", "e"];

/// A membership that takes ten minutes to declare anyone down: a member with it does not
/// notice a cut within a test.
fn unaware() -> MembershipConfig {
    MembershipConfig { suspect_to_down_after: secs(600), ..MembershipConfig::lan(8) }
}

/// A membership that declares an unreachable member down within about a second, before a
/// majority lease (3 s) can lapse.
fn quick() -> MembershipConfig {
    MembershipConfig {
        probe_period: ms(200),
        probe_rtt: ms(50),
        suspect_to_down_after: ms(300),
        ..MembershipConfig::lan(8)
    }
}

/// A 3-vs-2 partition under the majority policy; the minority's `a` holds `vip(1)` (it is
/// preferred). Each side's membership has the tuning given, `None` for the LAN preset; a
/// side with [`unaware`] does not declare the other down.
fn majority_partition(
    minority_side: Option<MembershipConfig>,
    majority_side: Option<MembershipConfig>,
    seed: u64,
) -> Cluster {
    let minority_notices = minority_side != Some(unaware());
    let majority_notices = majority_side != Some(unaware());
    let mut b = listed(6, FIVE);
    b[0].preference = Some("a".into());
    let mut setup = Setup::new(FIVE, seed).bindings(b).duravip(majority());
    if let Some(config) = minority_side {
        setup = setup.membership(MINORITY, config);
    }
    if let Some(config) = majority_side {
        setup = setup.membership(MAJORITY, config);
    }
    let mut c = setup.start();
    c.holder_check = HolderCheck::Always;
    c.run_for(secs(10));
    for i in 1..=6 {
        owner(&c, vip(i));
    }
    assert_eq!(owner(&c, vip(1)), "a");
    let cut = c.now;
    c.partition(MINORITY, MAJORITY);
    c.run_for(secs(13));
    for m in MINORITY {
        for r in &MAJORITY[1..] {
            assert_eq!(c.saw_down(m, r, cut).is_some(), minority_notices, "{m} noticed {r}");
            assert_eq!(c.saw_down(r, m, cut).is_some(), majority_notices, "{r} noticed {m}");
        }
        assert!(c.members[*m].held.is_empty(), "minority node {m} still holds {:?}", c.members[*m].held);
        let table = c.vip_core(m).table(c.at());
        assert!(table.vips.iter().all(|v| v.holding != HoldingState::Held), "{table:?}");
    }
    if majority_notices {
        for i in 1..=6 {
            let o = owner(&c, vip(i));
            assert!(MAJORITY.contains(&o.as_str()), "{} held by {o}", vip(i));
        }
        let (taken, _) = c.last_acquired(vip(1)).expect("taken over");
        let released = c.changes.iter().find(|ch| ch.0 >= cut && ch.1 == "a" && ch.2 == vip(1) && !ch.3);
        let (released, ..) = released.expect("the old owner released");
        assert!(*released < taken, "taken over at {taken:?} before the release at {released:?}");
        let config = majority();
        assert!(taken >= cut + config.claim_silence - config.beat, "taken over too early: {taken:?}");
    }
    c
}

#[test]
fn majority_partition_minority_releases_and_majority_takes_over_with_never_two_holders() {
    let mut c = majority_partition(None, None, 9);
    for m in MINORITY {
        let table = c.vip_core(m).table(c.at());
        assert!(table.vips.iter().all(|v| v.safety == "minority"), "{table:?}");
    }
    // Heal: one holder per address again, still never two at once.
    c.heal();
    c.run_for(secs(30));
    for i in 1..=6 {
        let o = owner(&c, vip(i));
        for n in FIVE {
            assert_eq!(c.vip_core(n).desired_owner(vip(i)), Some(o.as_str()), "{n} on {}", vip(i));
        }
    }
}

#[test]
fn majority_owner_that_never_notices_the_cut_lets_its_lease_lapse_before_the_takeover() {
    let c = majority_partition(Some(unaware()), None, 10);
    let table = c.vip_core("a").table(c.at());
    assert!(table.vips.iter().all(|v| v.safety != "minority"), "a still has a majority in view: {table:?}");
}

#[test]
fn majority_minority_that_notices_alone_releases_at_once_and_nobody_takes_over_early() {
    // The majority side's membership has not noticed: it still elects the old owner, so the
    // address stays free rather than doubly held.
    let c = majority_partition(Some(quick()), Some(unaware()), 11);
    assert!(c.holders(vip(1)).is_empty(), "{:?}", c.holders(vip(1)));
    let released = c.changes.iter().find(|ch| ch.1 == "a" && ch.2 == vip(1) && !ch.3).expect("released").0;
    // a's view keeps a majority of the five candidates (a, b and one more) until the last of
    // c, d, e is down; its lease would have lasted until at least 12 s.
    let mut downs: Vec<_> = MAJORITY[1..].iter().filter_map(|r| c.saw_down("a", r, secs(10))).collect();
    downs.sort_unstable();
    assert_eq!(Some(released), downs.get(2).copied(), "a released the moment its view lost the majority");
    assert!(released < secs(12), "released at {released:?}");
}

#[test]
fn majority_needs_a_majority_of_candidates_in_view_to_hold_at_all() {
    let mut c = Setup::new(FIVE, 17).bindings(listed(2, FIVE)).duravip(majority()).stopped(&["c", "d", "e"]).start();
    c.holder_check = HolderCheck::Always;
    c.run_for(secs(10));
    assert!(c.changes.is_empty(), "{:?}", c.changes);
    let table = c.vip_core("a").table(c.at());
    assert!(table.vips.iter().all(|v| v.ownership == "unowned" && v.safety == "minority"), "{table:?}");
    // A third candidate makes a majority: now the addresses are held.
    c.start("c");
    c.run_for(secs(12));
    for i in 1..=2 {
        owner(&c, vip(i));
    }
}
