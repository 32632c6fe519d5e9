//! DuraVIP cores wired in memory (see `harness`): election, failover, moves, announce view,
//! both partition policies, junk input, determinism.

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use self::harness::*;
use super::*;
use crate::error::DecodeError;
use crate::ids::Role;
use crate::wire;

const ABC: &[&str] = &["a", "b", "c"];

#[test]
fn nothing_is_held_before_the_view_settles_then_each_address_has_one_agreed_owner() {
    let mut c = Cluster::new(ABC, open_bindings(8), DuraVipConfig::default());
    c.run_for(ms(1900));
    assert!(
        c.changes.is_empty(),
        "acquired before the view settled: {:?}",
        c.changes
    );
    c.run_for(ms(3000));
    c.assert_one_agreed_owner_each(ABC);
    for b in &c.bindings {
        let owner = c.holders(b.addr).remove(0);
        for n in ABC {
            assert_eq!(c.core(n).owner_of(b.addr), Some(owner.as_str()), "{n} on {}", b.addr);
        }
    }
    // Rendezvous hashing spreads the addresses: no node holds all of them.
    assert!(ABC.iter().all(|n| c.nodes[*n].held.len() < 8));
    // Once settled, nothing changes any more.
    let before = c.changes.len();
    c.run_for(Duration::from_secs(20));
    assert_eq!(c.changes.len(), before);
}

#[test]
fn when_an_owner_dies_only_its_addresses_move_and_survivors_agree_on_the_successor() {
    let mut c = Cluster::new(ABC, open_bindings(8), DuraVipConfig::default());
    c.run_for(Duration::from_secs(5));
    let victim = c.holders(ip(1)).remove(0);
    let survivors: Vec<&str> = ABC.iter().copied().filter(|n| *n != victim).collect();
    let kept: BTreeMap<String, BTreeSet<IpAddr>> = survivors
        .iter()
        .map(|n| (n.to_string(), c.nodes[*n].held.clone()))
        .collect();
    let orphaned = c.nodes[&victim].held.clone();
    c.crash(&victim);
    c.run_for(ms(1000));
    for s in &survivors {
        c.down(s, &victim);
    }
    // Each survivor elects the same successor for every orphaned address at once...
    for addr in &orphaned {
        let successor = c
            .core(survivors[0])
            .desired_owner(*addr)
            .expect("a survivor")
            .to_owned();
        assert_ne!(successor, victim);
        assert_eq!(c.core(survivors[1]).desired_owner(*addr), Some(successor.as_str()));
    }
    // ...and, its view having matured, takes over at once: nobody else claims them.
    let declared_at = c.now;
    c.run_for(ms(100));
    c.assert_one_agreed_owner_each(&survivors);
    for addr in &orphaned {
        let (when, _) = c.last_acquired(*addr).expect("reacquired");
        assert!(when <= declared_at + ms(20), "{addr} taken over at {when:?}, down declared at {declared_at:?}");
    }
    // The spread is even again: held counts differ by at most one.
    c.run_for(Duration::from_secs(5));
    c.assert_one_agreed_owner_each(&survivors);
    let counts: Vec<usize> = survivors.iter().map(|n| c.nodes[*n].held.len()).collect();
    assert!(counts.iter().max().zip(counts.iter().min()).is_some_and(|(a, b)| a - b <= 1), "{counts:?}");
    // Most of the survivors' own addresses stayed where they were.
    let stayed: usize = kept.iter().map(|(n, held)| held.intersection(&c.nodes[n].held).count()).sum();
    let had: usize = kept.values().map(BTreeSet::len).sum();
    assert!(stayed + 1 >= had, "{stayed} of {had} stayed");
}

#[test]
fn a_returning_owner_gets_its_addresses_back_without_overlap() {
    let mut c = Cluster::new(ABC, open_bindings(8), DuraVipConfig::default());
    c.run_for(Duration::from_secs(5));
    let victim = c.holders(ip(1)).remove(0);
    let owned: BTreeSet<IpAddr> = c.nodes[&victim].held.clone();
    let survivors: Vec<&str> = ABC.iter().copied().filter(|n| *n != victim).collect();
    c.crash(&victim);
    c.run_for(ms(1000));
    for s in &survivors {
        c.down(s, &victim);
    }
    c.run_for(Duration::from_secs(5));
    assert!(c.holders(ip(1)).len() == 1 && c.holders(ip(1))[0] != victim);
    c.restart(&victim, &survivors);
    c.run_for(Duration::from_secs(6));
    c.assert_one_agreed_owner_each(ABC);
    assert_eq!(c.nodes[&victim].held, owned);
}

#[test]
fn the_preferred_node_holds_while_alive_and_falls_back_to_the_election() {
    let addr = ip(1);
    let by_score = *ABC.iter().max_by_key(|n| rendezvous_score(addr, n)).expect("three");
    let preferred = *ABC.iter().find(|n| **n != by_score).expect("another");
    let mut bindings = open_bindings(1);
    bindings[0].preference = Some(preferred.to_owned());
    let mut c = Cluster::new(ABC, bindings, DuraVipConfig::default());
    c.run_for(Duration::from_secs(5));
    assert_eq!(c.holders(addr), vec![preferred.to_owned()]);
    let others: Vec<&str> = ABC.iter().copied().filter(|n| *n != preferred).collect();
    c.crash(preferred);
    c.run_for(ms(500));
    for o in &others {
        c.down(o, preferred);
    }
    c.run_for(Duration::from_secs(5));
    assert_eq!(c.holders(addr), vec![by_score.to_owned()]);
    c.restart(preferred, &others);
    c.run_for(Duration::from_secs(5));
    assert_eq!(c.holders(addr), vec![preferred.to_owned()]);
}

/// Applies `cluster duravip move` on every node, in `order`, `gap` apart (as ordered
/// operations reach nodes at different times).
fn move_everywhere(c: &mut Cluster, order: &[&str], gap: Duration, term: Term, addr: IpAddr, host: &str) {
    for n in order {
        let now = c.at();
        let moved = c.core_mut(n).move_to(now, term, addr, host).expect("move accepted");
        assert!(moved.applied && moved.host == host, "{moved:?}");
        c.drain(n);
        c.run_for(gap);
    }
}

#[test]
fn move_hands_the_address_to_the_named_host_and_the_old_owner_releases_first() {
    for config in [DuraVipConfig::default(), majority()] {
        let mut c = Cluster::new(ABC, listed_bindings(4, ABC), config);
        c.run_for(Duration::from_secs(6));
        let old = c.holders(ip(2)).remove(0);
        let new = *ABC.iter().find(|n| **n != old).expect("another");
        // The new host applies the move first: it must wait for the old owner to let go.
        let mut order = vec![new];
        order.extend(ABC.iter().copied().filter(|n| *n != new));
        move_everywhere(&mut c, &order, ms(300), (1, 1), ip(2), new);
        c.run_for(Duration::from_secs(3));
        assert_eq!(c.holders(ip(2)), vec![new.to_owned()], "{:?}", c.config.policy);
        // Every address still has one holder, and the spread stays even around the move.
        c.assert_one_agreed_owner_each(ABC);
        let counts: Vec<usize> = ABC.iter().map(|n| c.nodes[*n].held.len()).collect();
        assert!(counts.iter().all(|&k| (1..=2).contains(&k)), "{counts:?}");
        for n in ABC {
            assert_eq!(c.core(n).override_of(ip(2)), Some((new, (1, 1))));
            assert_eq!(c.core(n).owner_of(ip(2)), Some(new));
        }
        // An older move arriving late changes nothing.
        let now = c.at();
        let moved = c.core_mut(new).move_to(now, (0, 9), ip(2), &old).expect("answered");
        assert!(!moved.applied, "{moved:?}");
        assert_eq!(moved.superseded_by.as_deref(), Some("1.1"));
        assert_eq!(c.core(new).override_of(ip(2)), Some((new, (1, 1))));
    }
}

#[test]
fn move_refuses_unknown_addresses_hosts_and_non_candidates_by_name() {
    let mut bindings = open_bindings(2);
    bindings[1].candidates = vec!["a".into(), "b".into()];
    let mut c = Cluster::new(ABC, bindings, DuraVipConfig::default());
    c.run_for(Duration::from_secs(5));
    let now = c.at();
    let core = c.core_mut("a");
    let e = core.move_to(now, (1, 1), ip(9), "b").expect_err("unknown address");
    assert_eq!(e, DuraVipError::UnknownAddress(ip(9)));
    assert_eq!(e.to_string(), "10.1.1.9 is not a DuraVIP address of this node");
    let e = core.move_to(now, (1, 1), ip(1), "nosuch").expect_err("unknown host");
    assert_eq!(e.to_string(), "nosuch is not a live node of the cluster");
    let e = core.move_to(now, (1, 1), ip(2), "c").expect_err("not a candidate");
    assert_eq!(e.to_string(), "c is not a candidate for 10.1.1.2 (binding vip-2)");
    assert!(core.override_of(ip(1)).is_none() && core.override_of(ip(2)).is_none());
}

#[test]
fn announce_view_teaches_a_new_host_that_missed_its_move() {
    let mut c = Cluster::new(ABC, open_bindings(1), DuraVipConfig::default());
    c.run_for(Duration::from_secs(5));
    let old = c.holders(ip(1)).remove(0);
    let new = *ABC.iter().find(|n| **n != old).expect("another");
    let others: Vec<&str> = ABC.iter().copied().filter(|n| *n != new).collect();
    // The new host misses the move: the old owner keeps the address until the new host
    // claims it, so the address is never left without a holder.
    move_everywhere(&mut c, &others, ms(100), (2, 5), ip(1), new);
    c.run_for(Duration::from_secs(5));
    assert_eq!(c.holders(ip(1)), vec![old.clone()]);
    assert!(c.core(new).override_of(ip(1)).is_none());
    for n in ABC {
        let now = c.at();
        let announced = c.core_mut(n).announce_view(now, (2, 6));
        assert_eq!(announced.operation, "2.6");
        assert!(announced.from_operation());
        c.drain(n);
    }
    c.run_for(Duration::from_secs(3));
    assert_eq!(c.holders(ip(1)), vec![new.to_owned()]);
    assert_eq!(c.core(new).override_of(ip(1)), Some((new, (2, 5))));
}

#[test]
fn a_restarted_node_learns_the_moves_it_missed_from_its_peers() {
    let mut c = Cluster::new(ABC, open_bindings(2), DuraVipConfig::default());
    c.run_for(Duration::from_secs(5));
    move_everywhere(&mut c, ABC, ms(10), (1, 3), ip(1), "a");
    c.run_for(Duration::from_secs(2));
    c.crash("c");
    c.run_for(ms(500));
    c.down("a", "c");
    c.down("b", "c");
    c.run_for(Duration::from_secs(1));
    c.restart("c", &["a", "b"]);
    c.run_for(ms(100));
    assert_eq!(c.core("c").override_of(ip(1)), Some(("a", (1, 3))));
    c.run_for(Duration::from_secs(5));
    assert_eq!(c.holders(ip(1)), vec!["a".to_owned()]);
}

#[test]
fn a_move_is_dropped_when_its_host_goes_down() {
    let mut c = Cluster::new(ABC, open_bindings(1), DuraVipConfig::default());
    c.run_for(Duration::from_secs(5));
    let old = c.holders(ip(1)).remove(0);
    let host = *ABC.iter().find(|n| **n != old).expect("another");
    move_everywhere(&mut c, ABC, ms(10), (1, 1), ip(1), host);
    c.run_for(Duration::from_secs(3));
    assert_eq!(c.holders(ip(1)), vec![host.to_owned()]);
    let rest: Vec<&str> = ABC.iter().copied().filter(|n| *n != host).collect();
    c.crash(host);
    for r in &rest {
        c.down(r, host);
        assert!(c.core(r).override_of(ip(1)).is_none());
    }
    c.run_for(Duration::from_secs(6));
    assert_eq!(c.holders(ip(1)), vec![old.clone()]);
    // Coming back, the host does not get the address back by the old move.
    c.restart(host, &rest);
    c.run_for(Duration::from_secs(6));
    assert_eq!(c.holders(ip(1)), vec![old]);
}

const ABCD: &[&str] = &["a", "b", "c", "d"];

#[test]
fn available_partition_keeps_every_address_on_both_sides_and_one_keeps_it_after_heal() {
    let mut c = Cluster::new(ABCD, open_bindings(8), DuraVipConfig::default());
    c.run_for(Duration::from_secs(5));
    c.strict = false;
    let (left, right) = (&ABCD[..2], &ABCD[2..]);
    c.partition(left, right);
    c.run_for(ms(1500));
    for l in left {
        for r in right {
            c.down(l, r);
            c.down(r, l);
        }
    }
    c.run_for(Duration::from_secs(6));
    for b in &c.bindings {
        let h = c.holders(b.addr);
        let on = |side: &[&str]| h.iter().filter(|n| side.contains(&n.as_str())).count();
        assert_eq!((on(left), on(right)), (1, 1), "{} held by {h:?}", b.addr);
    }
    let during: BTreeMap<IpAddr, Vec<String>> = c.bindings.iter().map(|b| (b.addr, c.holders(b.addr))).collect();
    c.cut.clear();
    for l in left {
        for r in right {
            c.up(l, r);
            c.up(r, l);
        }
    }
    c.run_for(ms(100));
    c.strict = true;
    c.run_for(Duration::from_secs(5));
    c.assert_one_agreed_owner_each(ABCD);
    for (addr, both) in during {
        assert!(both.contains(&c.holders(addr)[0]), "{addr} went to a third node");
    }
}

#[test]
fn available_conflict_resolves_by_claims_even_before_membership_heals() {
    // After a heal the claims arrive before membership reports the other side up: the
    // lower-ranked holder must still give way, and not take the address back.
    let mut c = Cluster::new(ABCD, open_bindings(4), DuraVipConfig::default());
    c.run_for(Duration::from_secs(5));
    c.strict = false;
    c.partition(&ABCD[..2], &ABCD[2..]);
    c.run_for(ms(500));
    for l in &ABCD[..2] {
        for r in &ABCD[2..] {
            c.down(l, r);
        }
    }
    // The right side never notices: it keeps sending claims to the left side.
    c.run_for(Duration::from_secs(6));
    c.cut.clear();
    c.run_for(Duration::from_secs(3));
    for b in &c.bindings {
        assert_eq!(c.holders(b.addr).len(), 1, "{} held by {:?}", b.addr, c.holders(b.addr));
    }
    let settled = c.changes.len();
    c.run_for(Duration::from_secs(10));
    assert_eq!(c.changes.len(), settled, "ownership kept flapping");
}

const FIVE: &[&str] = &["n1", "n2", "n3", "n4", "n5"];

/// A 3-vs-2 partition under the majority policy; the minority holds `ip(1)`. `detect` says
/// whether each side's membership notices the cut.
fn majority_partition(minority_notices: bool, majority_notices: bool) -> Cluster {
    let mut c = Cluster::new(FIVE, listed_bindings(6, FIVE), majority());
    c.run_for(Duration::from_secs(6));
    c.assert_one_agreed_owner_each(FIVE);
    let owner = c.holders(ip(1)).remove(0);
    let buddy = FIVE.iter().copied().find(|n| *n != owner).expect("another");
    let minority = [owner.as_str(), buddy];
    let rest: Vec<&str> = FIVE.iter().copied().filter(|n| !minority.contains(n)).collect();
    let cut_at = c.now;
    c.partition(&minority, &rest);
    c.run_for(ms(800));
    for m in minority {
        for r in &rest {
            if minority_notices {
                c.down(m, r);
            }
            if majority_notices {
                c.down(r, m);
            }
        }
    }
    c.run_for(Duration::from_secs(12));
    for m in minority {
        assert!(
            c.nodes[m].held.is_empty(),
            "minority node {m} still holds {:?}",
            c.nodes[m].held
        );
    }
    for b in &c.bindings {
        let h = c.holders(b.addr);
        if majority_notices {
            assert!(
                h.len() == 1 && rest.contains(&h[0].as_str()),
                "{} held by {h:?}",
                b.addr
            );
        }
    }
    if majority_notices {
        let (when, _) = c.last_acquired(ip(1)).expect("taken over");
        let released = c
            .changes
            .iter()
            .find(|ch| ch.0 >= cut_at && ch.1 == owner && ch.2 == ip(1) && !ch.3);
        let (released_at, ..) = released.expect("the old owner released");
        assert!(
            *released_at < when,
            "taken over at {when:?} before the release at {released_at:?}"
        );
        assert!(
            when >= cut_at + c.config.claim_silence - c.config.beat,
            "taken over too early: {when:?}"
        );
    }
    c
}

#[test]
fn majority_partition_minority_releases_and_majority_takes_over_with_never_two_holders() {
    let mut c = majority_partition(true, true);
    // Heal: one holder per address again, still never two at once.
    c.cut.clear();
    for a in FIVE {
        for b in FIVE {
            if a != b {
                c.up(a, b);
            }
        }
    }
    c.run_for(Duration::from_secs(12));
    c.assert_one_agreed_owner_each(FIVE);
}

#[test]
fn majority_owner_that_never_notices_the_cut_lets_its_lease_lapse_before_the_takeover() {
    majority_partition(false, true);
}

#[test]
fn majority_minority_that_notices_alone_releases_at_once_and_nobody_takes_over_early() {
    // The majority side's membership has not noticed: it still elects the old owner, so the
    // address stays free rather than doubly held.
    let c = majority_partition(true, false);
    assert!(c.holders(ip(1)).is_empty());
}

#[test]
fn majority_needs_a_majority_of_candidates_in_view_to_hold_at_all() {
    let mut c = Cluster::new(&["n1", "n2"], listed_bindings(2, FIVE), majority());
    c.run_for(Duration::from_secs(10));
    assert!(c.changes.is_empty(), "{:?}", c.changes);
    let table = c.core("n1").table(c.at());
    assert!(table.vips.iter().all(|v| v.ownership == "unowned" && v.safety == "minority"), "{table:?}");
}

#[test]
fn junk_datagrams_are_errors_and_change_nothing() {
    let mut c = Cluster::new(ABC, open_bindings(3), DuraVipConfig::default());
    c.run_for(Duration::from_secs(5));
    let held: BTreeSet<IpAddr> = c.nodes["a"].held.clone();
    let now = c.at();
    let core = c.core_mut("a");
    let bad: Vec<Vec<u8>> = vec![
        vec![],
        vec![1],
        vec![9, 3, 0],
        vec![1, 77, 0],
        wire::encode(wire::Kind::Swim, b"hello").to_vec(),
        vec![1, 3],
        vec![1, 3, 0xff, 0xff, 0xff],
        vec![1; wire::MAX_DATAGRAM + 1],
    ];
    for b in &bad {
        assert!(core.handle_datagram(now, "b", b).is_err(), "{b:?} accepted");
    }
    assert!(matches!(
        core.handle_datagram(now, "b", &[1, 77]),
        Err(DuraVipError::Decode(DecodeError::Kind(77)))
    ));
    let valid = wire::encode_duravip(&DuraVipMessage::State {
        stamp: Stamp { incarnation: 1, seq: 1 },
        holdings: vec![(ip(1), (0, 0))],
        overrides: vec![(ip(2), "b".into(), (3, 3))],
    })
    .expect("encode");
    for n in 0..valid.len() {
        assert!(
            core.handle_datagram(now, "b", &valid[..n]).is_err(),
            "prefix of {n} bytes accepted"
        );
    }
    let mut trailing = valid.to_vec();
    trailing.push(0);
    assert!(core.handle_datagram(now, "b", &trailing).is_err());
    // Random bodies behind a good header: whatever they decode to, nothing panics.
    let mut rng = StdRng::seed_from_u64(0xC0FFEE);
    for _ in 0..20_000 {
        let len = rng.random_range(0..64usize);
        let mut d = vec![wire::VERSION, wire::Kind::Duravip as u8];
        d.extend((0..len).map(|_| rng.random_range(0..=255u8)));
        if let Err(e) = core.handle_datagram(now, "b", &d) {
            assert!(matches!(e, DuraVipError::Decode(_)));
        }
    }
    c.drain("a");
    assert_eq!(c.nodes["a"].held, held);
}

/// A scripted run touching failover, a move, a partition and a heal; returns its log.
fn scripted_run() -> Vec<String> {
    let mut c = Cluster::new(FIVE, listed_bindings(6, FIVE), majority());
    c.run_for(Duration::from_secs(6));
    let victim = c.holders(ip(3)).remove(0);
    c.crash(&victim);
    c.run_for(ms(700));
    for n in c.names() {
        if n != victim {
            c.down(&n, &victim);
        }
    }
    c.run_for(Duration::from_secs(8));
    let others: Vec<String> = c.names().into_iter().filter(|n| *n != victim).collect();
    let refs: Vec<&str> = others.iter().map(String::as_str).collect();
    c.restart(&victim, &refs);
    move_everywhere(&mut c, &refs, ms(50), (1, 1), ip(4), refs[0]);
    c.partition(&refs[..2], &refs[2..]);
    c.run_for(Duration::from_secs(9));
    c.cut.clear();
    c.run_for(Duration::from_secs(5));
    c.log
}

#[test]
fn identical_runs_produce_identical_outputs() {
    let first = scripted_run();
    let second = scripted_run();
    assert!(
        first.len() > 100,
        "the run did too little to compare: {} lines",
        first.len()
    );
    assert_eq!(first, second);
}

#[test]
fn bad_configurations_are_refused_naming_what_is_wrong() {
    let me = member("a", 1);
    let mut dup = open_bindings(2);
    dup[1].addr = ip(1);
    let e = DuraVip::new(me.clone(), dup, DuraVipConfig::default()).expect_err("duplicate address");
    assert_eq!(e.to_string(), "bindings vip-1 and vip-2 both declare address 10.1.1.1");
    let mut dup = open_bindings(2);
    dup[1].name = "vip-1".into();
    let e = DuraVip::new(me.clone(), dup, DuraVipConfig::default()).expect_err("duplicate name");
    assert_eq!(e.to_string(), "binding vip-1 is declared twice");
    let mut pref = listed_bindings(1, &["a", "b"]);
    pref[0].preference = Some("z".into());
    let e = DuraVip::new(me.clone(), pref, DuraVipConfig::default()).expect_err("preference not a candidate");
    assert_eq!(
        e.to_string(),
        "binding vip-1: preferred node \"z\" is not one of its candidates"
    );
    let short = DuraVipConfig {
        claim_silence: Duration::from_secs(4),
        ..DuraVipConfig::default()
    };
    let e = DuraVip::new(me.clone(), open_bindings(1), short).expect_err("claim_silence too short");
    assert_eq!(
        e.to_string(),
        "duravip.claim_silence (4s) must be at least lease + beat plus a margin for clock drift (4.2s)"
    );
    let e = DuraVipConfig {
        lease: ms(1000),
        ..DuraVipConfig::default()
    }
    .validate()
    .expect_err("lease");
    assert!(e.to_string().starts_with("duravip.lease"), "{e}");
}

#[test]
fn managers_never_hold_addresses_and_are_not_in_the_view() {
    let mut mgr = member("mgr", 1);
    mgr.role = Role::Manager;
    #[allow(clippy::disallowed_methods)]
    let t0 = Instant::now();
    let mut core = DuraVip::new(mgr.clone(), open_bindings(2), DuraVipConfig::default()).expect("config");
    core.start(t0);
    core.handle_member_up(t0, &member("a", 1));
    core.handle_timer(t0 + Duration::from_secs(3), DuraVipTimer::Settle(core.generation()));
    core.handle_timer(t0 + Duration::from_secs(3), DuraVipTimer::Beat);
    while let Some(o) = core.poll_output() {
        assert!(!matches!(o, DuraVipOutput::Acquire(_)), "a manager acquired");
    }
    assert_eq!(core.desired_owner(ip(1)), Some("a"));
    assert_eq!(core.view().collect::<Vec<_>>(), vec!["a"]);

    let mut node = DuraVip::new(member("a", 1), open_bindings(1), DuraVipConfig::default()).expect("config");
    node.start(t0);
    node.handle_member_up(t0, &mgr);
    assert_eq!(node.view().collect::<Vec<_>>(), vec!["a"]);
    let e = node
        .move_to(t0, (1, 1), ip(1), "mgr")
        .expect_err("a manager cannot hold");
    assert_eq!(e, DuraVipError::NotALiveMember("mgr".into()));
}

#[test]
fn the_table_shows_each_binding_with_its_owner_view_and_candidates() {
    let mut c = Cluster::new(ABC, open_bindings(2), DuraVipConfig::default());
    c.run_for(Duration::from_secs(7));
    let owner = c.holders(ip(1)).remove(0);
    let table = c.core(&owner).table(c.at());
    assert_eq!(table.node, owner);
    assert_eq!(table.view, ABC);
    assert_eq!(table.view_stable_secs, 7);
    assert!(table.settled);
    let row = &table.vips[0];
    assert_eq!((row.addr, row.binding.as_str()), (ip(1), "vip-1"));
    assert_eq!((row.ownership, row.safety), ("owned", "safe"));
    assert_eq!(row.owner.as_deref(), Some(owner.as_str()));
    assert_eq!(row.elected.as_deref(), Some(owner.as_str()));
    assert_eq!(row.holding, HoldingState::Held);
    assert_eq!(row.candidates, ABC);
    let other = ABC.iter().find(|n| **n != owner).expect("another");
    let theirs = c.core(other).table(c.at());
    assert_eq!(theirs.vips[0].owner.as_deref(), Some(owner.as_str()));
    assert_ne!(theirs.vips[0].holding, HoldingState::Held);
}

#[test]
fn majority_backers_back_one_claimant_at_a_time() {
    // The holder and one node lose the link between them, and that node's membership declares
    // the holder down, so it elects itself and claims. Every other node still hears the
    // holder's claims, so none backs the newcomer: the address never has two holders.
    let mut c = Cluster::new(FIVE, listed_bindings(1, FIVE), majority());
    c.run_for(Duration::from_secs(6));
    let holder = c.holders(ip(1)).remove(0);
    let rival = *FIVE
        .iter()
        .filter(|n| **n != holder)
        .max_by_key(|n| rendezvous_score(ip(1), n))
        .expect("four");
    c.partition(&[holder.as_str()], &[rival]);
    c.down(rival, &holder);
    c.down(&holder, rival);
    c.run_for(Duration::from_secs(20));
    assert_eq!(c.core(rival).desired_owner(ip(1)), Some(rival));
    assert_eq!(c.holders(ip(1)), vec![holder]);
}

fn outputs(core: &mut DuraVip) -> Vec<DuraVipOutput> {
    std::iter::from_fn(|| core.poll_output()).collect()
}

/// The stamps of the claims among `outputs` sent to `to`.
fn claim_stamps(outputs: &[DuraVipOutput], to: &str) -> Vec<Stamp> {
    outputs
        .iter()
        .filter_map(|o| match o {
            DuraVipOutput::Send { to: t, payload } if t == to => match wire::decode_duravip(payload) {
                Ok(DuraVipMessage::Claim { stamp, .. }) => Some(stamp),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn majority_acknowledgements_of_claims_made_before_giving_up_do_not_count() {
    let addr = ip(1);
    let mut names = ["a", "b", "c"];
    names.sort_by_key(|n| rendezvous_score(addr, n));
    let [backer, me, rival] = names;
    #[allow(clippy::disallowed_methods)]
    let t0 = Instant::now();
    let mut core = DuraVip::new(member(me, 1), listed_bindings(1, &names), majority()).expect("config");
    core.start(t0);
    // The rival is not in this node's view: it elects itself, with 2 of 3 candidates in view.
    core.handle_member_up(t0, &member(backer, 1));
    // Past the start-up amnesia (a fresh run acquires nothing for claim_silence).
    let t = t0 + majority().claim_silence;
    core.handle_timer(t, DuraVipTimer::Settle(core.generation()));
    let first = claim_stamps(&outputs(&mut core), backer);
    assert_eq!(first.len(), 1, "acquiring starts with a claim");
    // The rival's claim outranks ours: give up; its release notice lets us try again.
    let send = |m: DuraVipMessage| wire::encode_duravip(&m).expect("encode");
    let rival_stamp = Stamp { incarnation: 1, seq: 1 };
    let claim = send(DuraVipMessage::Claim {
        stamp: rival_stamp,
        claims: vec![(addr, NO_TERM)],
    });
    core.handle_datagram(t, rival, &claim).expect("claim");
    outputs(&mut core);
    let released = send(DuraVipMessage::Released {
        stamp: Stamp { incarnation: 1, seq: 2 },
        addrs: vec![addr],
    });
    core.handle_datagram(t, rival, &released).expect("released");
    let second = claim_stamps(&outputs(&mut core), backer);
    assert!(second.len() == 1 && second[0] > first[0], "{second:?}");
    // A late acknowledgement of the first attempt's claim backs nothing...
    let ack = |stamp| {
        send(DuraVipMessage::ClaimAck {
            stamp,
            addrs: vec![addr],
        })
    };
    core.handle_datagram(t, backer, &ack(first[0])).expect("old ack");
    assert!(!outputs(&mut core).contains(&DuraVipOutput::Acquire(addr)));
    assert_eq!(core.held().count(), 0);
    // ...one of the current attempt's does.
    core.handle_datagram(t, backer, &ack(second[0])).expect("ack");
    assert!(outputs(&mut core).contains(&DuraVipOutput::Acquire(addr)));
    assert_eq!(core.held().collect::<Vec<_>>(), vec![addr]);
}

#[test]
fn majority_a_fresh_run_backs_nobody_then_stays_with_the_claimant_it_backs() {
    let addr = ip(1);
    let names = ["a", "b", "c"];
    #[allow(clippy::disallowed_methods)]
    let t0 = Instant::now();
    let mut core = DuraVip::new(member("b", 1), listed_bindings(1, &names), majority()).expect("config");
    core.start(t0);
    core.handle_member_up(t0, &member("a", 1));
    core.handle_member_up(t0, &member("c", 1));
    outputs(&mut core);
    let send = |m: DuraVipMessage| wire::encode_duravip(&m).expect("encode");
    let claim = |seq| send(DuraVipMessage::Claim { stamp: Stamp { incarnation: 1, seq }, claims: vec![(addr, NO_TERM)] });
    let acks_to = |out: &[DuraVipOutput], to: &str| {
        out.iter()
            .filter(|o| matches!(o, DuraVipOutput::Send { to: t, payload } if t == to
                && matches!(wire::decode_duravip(payload), Ok(DuraVipMessage::ClaimAck { .. }))))
            .count()
    };
    // A new run has forgotten whom its previous run backed: no acknowledgement yet.
    core.handle_datagram(t0 + Duration::from_secs(1), "a", &claim(1)).expect("claim");
    assert_eq!(acks_to(&outputs(&mut core), "a"), 0, "backs nobody during the amnesia");
    // Afterwards it backs a...
    let t = t0 + majority().claim_silence;
    core.handle_datagram(t, "a", &claim(2)).expect("claim");
    assert_eq!(acks_to(&outputs(&mut core), "a"), 1);
    // ...refuses a rival while a's claim is recent, and keeps backing a all the same.
    core.handle_datagram(t + ms(100), "c", &claim(1)).expect("rival claim");
    assert_eq!(acks_to(&outputs(&mut core), "c"), 0, "one backing at a time");
    core.handle_datagram(t + ms(1000), "a", &claim(3)).expect("claim");
    assert_eq!(acks_to(&outputs(&mut core), "a"), 1, "the holder is not starved by the rival");
}
