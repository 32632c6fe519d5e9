//! The crate's cluster tests: node cores wired in memory (see `harness`), so membership,
//! ordered operations and DuraVIP work together as the daemons and the simulator run them.
//! Membership and ordered operations have their own modules; here, DuraVIP — moves ordered by
//! the manager and checked before sequencing, moves typed at a node, failover, preference,
//! partitions under both policies — and determinism.

mod harness;
mod membership;
mod ops;

use std::net::IpAddr;

use self::harness::*;
use super::{Command, CommandError, Reply};
use crate::duravip::{DuraVipConfig, HoldingState, Policy, Why};

const ABC: &[&str] = &["a", "b", "c"];

fn settled(names: &[&str], count: u8, seed: u64) -> Cluster {
    let mut c = Cluster::new(names, bindings(count), DuraVipConfig::default(), seed);
    c.run_for(secs(10));
    for n in names.iter().chain(["mgr"].iter()) {
        assert_eq!(c.up_view(n).len(), names.len() + 1, "{n} sees everyone");
    }
    c
}

fn owner(c: &Cluster, addr: IpAddr) -> String {
    let h = c.holders(addr);
    assert_eq!(h.len(), 1, "{addr} held by {h:?}");
    h[0].clone()
}

fn refusal(c: &Cluster, request: u64) -> String {
    match c.reply(request) {
        Err(e) => e.to_string(),
        Ok(r) => panic!("expected a refusal, got {r:?}"),
    }
}

#[test]
fn every_address_gets_one_owner_and_the_spread_is_even() {
    let c = settled(ABC, 8, 2);
    let mut counts = Vec::new();
    for n in ABC {
        counts.push(c.members[*n].held.len());
    }
    for i in 1..=8 {
        let o = owner(&c, vip(i));
        for n in ABC {
            let table = c.core(n).duravip().expect("duravip").table(c.at());
            let row = table.vips.iter().find(|v| v.addr == vip(i)).expect("row");
            assert_eq!(row.owner.as_deref(), Some(o.as_str()), "{n} on {}", vip(i));
        }
    }
    counts.sort_unstable();
    assert_eq!(counts, vec![2, 3, 3]);
    assert!(c.core("mgr").duravip().is_none(), "the manager holds nothing");
}

#[test]
fn a_move_ordered_by_the_manager_switches_owner_within_a_few_milliseconds() {
    let mut c = settled(ABC, 4, 3);
    let old = owner(&c, vip(1));
    let new = ABC.iter().find(|n| **n != old).expect("another").to_string();
    let r = c.console("mgr", &format!("broadcast cluster duravip move 10.1.1.1 to {new}"));
    assert!(matches!(c.reply(r), Ok(Reply::Submitted { .. })), "{:?}", c.reply(r));
    let moved_at = c.now;
    c.run_for(ms(50));
    assert_eq!(owner(&c, vip(1)), new);
    let acquired = c.changes.iter().rev().find(|ch| ch.2 == vip(1) && ch.3).expect("acquired").0;
    assert!(acquired - moved_at <= ms(10), "took {:?}", acquired - moved_at);
    for n in ABC {
        let e = c.core(n).duravip().expect("duravip").explain(c.at(), vip(1)).expect("explained");
        assert_eq!(e.elected.as_deref(), Some(new.as_str()), "{n}");
        assert_eq!(e.why, Some(Why::Moved));
    }
}

#[test]
fn bad_moves_are_refused_before_sequencing_and_nothing_moves() {
    let mut c = settled(ABC, 2, 4);
    let before: Vec<String> = [vip(1), vip(2)].iter().map(|a| owner(&c, *a)).collect();
    let cases = [
        ("broadcast cluster duravip move 10.1.1.9 to a", "duravip move refused: 10.1.1.9 is not a DuraVIP address of the cluster (addresses: 10.1.1.1, 10.1.1.2)"),
        ("broadcast cluster duravip move 10.1.1.1 to nosuch", "duravip move refused: nosuch is not a live node of the cluster"),
        ("broadcast cluster duravip move 10.1.1.1 to a.example.com", "duravip move refused: a.example.com is not a live node of the cluster (node names are short names: did you mean a?)"),
        ("broadcast cluster duravip move 10.1.1.1 to mgr", "duravip move refused: mgr is not a live node of the cluster (it is a manager; managers hold no addresses)"),
        ("broadcast cluster duravip move banana to a", "duravip move refused: 'banana' is not an IP address"),
        ("unicast a cluster duravip move 10.1.1.1 to a", "duravip move refused: a move must reach every node so the old and the new owner switch in the same step: use 'broadcast cluster duravip move 10.1.1.1 to a'"),
    ];
    for (line, why) in cases {
        let r = c.console("mgr", line);
        assert_eq!(refusal(&c, r), why, "{line}");
    }
    c.crash("c");
    c.run_for(secs(5));
    let r = c.console("mgr", "broadcast cluster duravip move 10.1.1.1 to c");
    assert_eq!(refusal(&c, r), "duravip move refused: c is not a live node of the cluster (it is down)");
    assert!(["a", "b"].iter().all(|n| c.members[*n].applied.is_empty()), "nothing was sequenced");
    let after: Vec<String> = [vip(1), vip(2)].iter().map(|a| owner(&c, *a)).collect();
    assert!(before.iter().zip(&after).all(|(b, a)| b == a || b == "c"), "{before:?} -> {after:?}");
}

#[test]
fn a_move_typed_at_a_node_is_ordered_by_the_manager_for_every_node() {
    let mut c = settled(ABC, 3, 5);
    let old = owner(&c, vip(2));
    let new = ABC.iter().find(|n| **n != old).expect("another").to_string();
    let at = ABC.iter().find(|n| **n != new).expect("a third").to_string();
    let r = c.console(&at, &format!("cluster duravip move 10.1.1.2 to {new}"));
    assert!(!c.replies.contains_key(&r), "answered only once the manager has");
    c.run_for(ms(50));
    let Ok(Reply::Submitted { targets, .. }) = c.reply(r) else { panic!("{:?}", c.reply(r)) };
    assert_eq!(targets, ABC);
    assert_eq!(owner(&c, vip(2)), new);
    assert!(ABC.iter().all(|n| c.members[*n].applied.len() == 1), "every node applied the move");
    let r = c.console(&at, "cluster duravip move 10.1.1.9 to a");
    c.run_for(ms(50));
    assert!(matches!(c.reply(r), Err(CommandError::Forwarded(why)) if why.contains("10.1.1.9 is not a DuraVIP address")));
}

#[test]
fn a_dead_owners_addresses_are_taken_over_once_it_is_declared_down() {
    let mut c = settled(&["a", "b", "c", "d"], 8, 6);
    let victim = owner(&c, vip(1));
    let orphaned = c.members[&victim].held.clone();
    c.crash(&victim);
    let crashed = c.now;
    c.run_for(secs(6));
    let survivors: Vec<&str> = ["a", "b", "c", "d"].into_iter().filter(|n| *n != victim).collect();
    for addr in &orphaned {
        let o = owner(&c, *addr);
        assert!(survivors.contains(&o.as_str()));
        let taken = c.changes.iter().rev().find(|ch| ch.2 == *addr && ch.3).expect("taken over").0;
        // Detection (probe, indirect probe, suspicion) is the whole delay: ~1.5-3 s.
        assert!(taken - crashed <= secs(4), "{addr} taken over after {:?}", taken - crashed);
    }
    let counts: Vec<usize> = survivors.iter().map(|n| c.members[*n].held.len()).collect();
    assert!(counts.iter().max().expect("max") - counts.iter().min().expect("min") <= 1, "{counts:?}");
}

#[test]
fn the_preferred_node_gets_its_address_back_once_after_a_restart() {
    let mut b = bindings(3);
    b[0].preference = Some("b".into());
    let mut c = Cluster::new(ABC, b, DuraVipConfig::default(), 7);
    c.run_for(secs(10));
    assert_eq!(owner(&c, vip(1)), "b");
    c.crash("b");
    c.run_for(secs(6));
    let interim = owner(&c, vip(1));
    assert_ne!(interim, "b");
    let restarted = c.now;
    c.start("b");
    c.run_for(secs(15));
    assert_eq!(owner(&c, vip(1)), "b");
    let after: Vec<_> = c.changes.iter().filter(|ch| ch.0 >= restarted && ch.2 == vip(1)).collect();
    assert_eq!(after.len(), 2, "one release and one acquisition, no flapping: {after:?}");
    let table = c.core("a").duravip().expect("duravip").table(c.at());
    assert_eq!(table.vips[0].preference.as_deref(), Some("b"));
}

#[test]
fn available_partition_keeps_every_address_on_both_sides_and_one_owner_after_heal() {
    let mut c = settled(&["a", "b", "c", "d"], 4, 8);
    c.holder_check = HolderCheck::Off;
    c.partition(&["a", "b"], &["mgr", "c", "d"]);
    c.run_for(secs(15));
    for i in 1..=4 {
        let h = c.holders(vip(i));
        assert!(h.iter().any(|n| n == "a" || n == "b"), "{} on the a/b side: {h:?}", vip(i));
        assert!(h.iter().any(|n| n == "c" || n == "d"), "{} on the c/d side: {h:?}", vip(i));
    }
    c.heal();
    let healed = c.now;
    c.run_for(secs(30));
    for i in 1..=4 {
        owner(&c, vip(i));
        let last = c.changes.iter().rev().find(|ch| ch.2 == vip(i)).expect("changed").0;
        assert!(last - healed <= secs(12), "{} settled {:?} after the heal", vip(i), last - healed);
    }
}

#[test]
fn majority_minority_releases_and_there_are_never_two_holders() {
    let names = ["a", "b", "c", "d", "e"];
    let config = DuraVipConfig { policy: Policy::Majority, ..DuraVipConfig::default() };
    let mut c = Cluster::new(&names, bindings(5), config, 9);
    c.run_for(secs(20));
    for i in 1..=5 {
        owner(&c, vip(i));
    }
    c.holder_check = HolderCheck::Off;
    c.partition(&["a", "b"], &["mgr", "c", "d", "e"]);
    for _ in 0..300 {
        c.run_for(ms(100));
        for i in 1..=5 {
            assert!(c.holders(vip(i)).len() <= 1, "at {:?} {} held by {:?}", c.now, vip(i), c.holders(vip(i)));
        }
    }
    for i in 1..=5 {
        let o = owner(&c, vip(i));
        assert!(["c", "d", "e"].contains(&o.as_str()), "{} held by {o} on the minority side", vip(i));
    }
    for n in ["a", "b"] {
        let table = c.core(n).duravip().expect("duravip").table(c.at());
        assert!(table.vips.iter().all(|v| v.holding != HoldingState::Held && v.safety == "minority"));
    }
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed| {
        let mut c = settled(ABC, 3, seed);
        c.crash("a");
        c.run_for(secs(5));
        c.console("mgr", "broadcast cluster duravip announce view");
        c.run_for(secs(1));
        c.log
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
}

#[test]
fn duravip_commands_at_a_node_without_bindings_say_so() {
    let mut c = settled(ABC, 0, 13);
    let r = c.command("a", Command::DuravipShow { tables: false });
    assert_eq!(c.reply(r), &Err(CommandError::DuravipOff));
    assert_eq!(
        Command::parse(crate::ids::Role::Node, &["cluster".into(), "duravip".into(), "mvoe".into()]),
        Some(Err(CommandError::Usage("cluster duravip show [tables] | move IP to HOST | announce view | explain IP")))
    );
}
