//! `cluster duravip move` and `announce view` through node cores: moves checked and ordered by
//! the manager, applied by the nodes at different times, typed at a node, superseded by a
//! newer move learnt from a peer, missed by a node and taught by an announcement or by peers
//! after a restart, dropped when their host dies; a move typed at a node that the manager
//! cannot hear, or with no manager up.

use super::harness::*;
use super::{owner, refusal, settled, ABC};
use crate::duravip::{term_text, DuraVipConfig, Policy, Why};
use crate::node::{CommandError, Reply};
use crate::ops::OpId;

fn term(id: OpId) -> (u64, u64) {
    (id.epoch, id.seq)
}

/// The answer the cores of `node` gave to operation `id`.
fn answer(c: &Cluster, node: &str, id: OpId) -> Reply {
    match c.members[node].answers.iter().find(|(op, _)| *op == id) {
        Some((_, Ok(reply))) => reply.clone(),
        other => panic!("{node} answered {id} with {other:?}"),
    }
}

#[test]
fn a_move_ordered_by_the_manager_switches_owner_within_a_few_milliseconds() {
    let mut c = settled(ABC, 4, 3);
    let old = owner(&c, vip(1));
    let new = ABC.iter().find(|n| **n != old).expect("another").to_string();
    let r = c.console("mgr", &format!("broadcast cluster duravip move 10.1.1.1 to {new}"));
    let (id, _) = c.submitted(r);
    let moved_at = c.now;
    c.run_for(ms(50));
    assert_eq!(owner(&c, vip(1)), new);
    let acquired = c.changes.iter().rev().find(|ch| ch.2 == vip(1) && ch.3).expect("acquired").0;
    assert!(acquired - moved_at <= ms(10), "took {:?}", acquired - moved_at);
    for n in ABC {
        let e = c.vip_core(n).explain(c.at(), vip(1)).expect("explained");
        assert_eq!(e.elected.as_deref(), Some(new.as_str()), "{n}");
        assert_eq!(e.why, Some(Why::Moved));
        let Reply::Moved(moved) = answer(&c, n, id) else { panic!("{n} did not move") };
        assert!(moved.applied && moved.host == new && moved.operation == term_text(term(id)), "{moved:?}");
    }
}

#[test]
fn a_move_applied_first_by_its_new_host_waits_for_the_old_owner_to_let_go() {
    for (config, seed) in [(DuraVipConfig::default(), 20), (majority(), 21)] {
        let policy = config.policy;
        let mut c = Cluster::new(ABC, listed(4, ABC), config, seed);
        if policy == Policy::Majority {
            c.holder_check = HolderCheck::Always;
        }
        c.run_for(secs(10));
        let old = owner(&c, vip(2));
        let new = *ABC.iter().find(|n| **n != old).expect("another");
        // Ordered operations reach nodes at different times: the new host applies the move
        // first, the others 300 and 600 ms later.
        let rest: Vec<&str> = ABC.iter().copied().filter(|n| *n != new).collect();
        for (i, n) in rest.iter().enumerate() {
            c.delay("mgr", n, ms(300 * (i as u64 + 1)));
        }
        let r = c.console("mgr", &format!("broadcast cluster duravip move 10.1.1.2 to {new}"));
        let (id, _) = c.submitted(r);
        let moved = c.now;
        c.run_for(secs(3));
        c.heal();
        assert_eq!(c.holders(vip(2)), vec![new.to_owned()], "{policy:?}");
        let changes: Vec<_> = c.changes.iter().filter(|ch| ch.0 >= moved && ch.2 == vip(2)).collect();
        assert!(changes.len() == 2 && changes[0].1 == old && !changes[0].3 && changes[1].1 == new, "{changes:?}");
        // Every address still has one holder, and the spread stays even around the move.
        for i in 1..=4 {
            owner(&c, vip(i));
        }
        let counts: Vec<usize> = ABC.iter().map(|n| c.members[*n].held.len()).collect();
        assert!(counts.iter().all(|&k| (1..=2).contains(&k)), "{policy:?}: {counts:?}");
        for n in ABC {
            assert_eq!(c.vip_core(n).override_of(vip(2)), Some((new, term(id))), "{policy:?}: {n}");
            assert_eq!(c.vip_core(n).owner_of(vip(2)), Some(new), "{policy:?}: {n}");
        }
    }
}

#[test]
fn a_move_older_than_one_learnt_from_a_peer_changes_nothing() {
    let mut c = settled(ABC, 2, 22);
    let old = owner(&c, vip(1));
    let others: Vec<&str> = ABC.iter().copied().filter(|n| *n != old).collect();
    // The manager's stream to the old owner is slow: before its applier reaches the first of
    // two moves, it has learnt the second from the claims of that move's host.
    c.delay("mgr", &old, secs(1));
    let r = c.console("mgr", &format!("broadcast cluster duravip move 10.1.1.1 to {}", others[0]));
    let (first, _) = c.submitted(r);
    let r = c.console("mgr", &format!("broadcast cluster duravip move 10.1.1.1 to {}", others[1]));
    let (second, _) = c.submitted(r);
    c.run_for(secs(3));
    c.heal();
    assert_eq!(owner(&c, vip(1)), others[1]);
    let Reply::Moved(late) = answer(&c, &old, first) else { panic!("not a move") };
    assert!(!late.applied, "{late:?}");
    assert_eq!(late.superseded_by, Some(term_text(term(second))));
    for n in ABC {
        assert_eq!(c.vip_core(n).override_of(vip(1)), Some((others[1], term(second))), "{n}");
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
    let (_, targets) = c.submitted(r);
    assert_eq!(targets, ABC);
    assert_eq!(owner(&c, vip(2)), new);
    assert!(ABC.iter().all(|n| c.members[*n].applied.len() == 1), "every node applied the move");
    let r = c.console(&at, "cluster duravip move 10.1.1.9 to a");
    c.run_for(ms(50));
    assert!(matches!(c.reply(r), Err(CommandError::Forwarded(why)) if why.contains("10.1.1.9 is not a DuraVIP address")));
}

#[test]
fn announce_view_teaches_a_new_host_that_missed_its_move() {
    let mut c = settled(ABC, 1, 23);
    let old = owner(&c, vip(1));
    let new = *ABC.iter().find(|n| **n != old).expect("another");
    // Nothing from the manager reaches the new host (the rest of its links work): it misses
    // the move. The old owner keeps the address until the new host claims it, so the address
    // is never left without a holder.
    c.cut_one_way(&["mgr"], &[new]);
    let r = c.console("mgr", &format!("broadcast cluster duravip move 10.1.1.1 to {new}"));
    let (moved, _) = c.submitted(r);
    let since = c.now;
    c.run_for(secs(5));
    assert_eq!(c.holders(vip(1)), vec![old.clone()]);
    assert!(c.changes.iter().all(|ch| ch.0 < since), "the address changed hands: {:?}", c.changes);
    assert!(c.vip_core(new).override_of(vip(1)).is_none());
    let r = c.console("mgr", "broadcast cluster duravip announce view");
    let (announce, _) = c.submitted(r);
    c.run_for(secs(3));
    assert_eq!(c.holders(vip(1)), vec![new.to_owned()]);
    assert_eq!(c.vip_core(new).override_of(vip(1)), Some((new, term(moved))));
    for n in ABC.iter().filter(|n| **n != new) {
        let Reply::Announced(a) = answer(&c, n, announce) else { panic!("{n} did not announce") };
        assert!(a.from_operation() && a.operation == term_text(term(announce)), "{a:?}");
    }
}

#[test]
fn a_restarted_node_learns_the_moves_it_missed_from_its_peers() {
    let mut c = settled(ABC, 2, 24);
    let r = c.console("mgr", "broadcast cluster duravip move 10.1.1.1 to a");
    let (moved, _) = c.submitted(r);
    c.run_for(secs(2));
    assert_eq!(owner(&c, vip(1)), "a");
    c.crash("c");
    c.run_for(secs(5));
    // The peers send their state as soon as they see the new run up, well before the next
    // claim (a beat later) could teach it.
    c.start("c");
    c.run_for(ms(100));
    assert_eq!(c.vip_core("c").override_of(vip(1)), Some(("a", term(moved))));
    assert!(c.members["c"].applied.is_empty(), "learnt from its peers, not from the manager");
    c.run_for(secs(7));
    assert_eq!(c.holders(vip(1)), vec!["a".to_owned()]);
}

#[test]
fn a_move_is_dropped_when_its_host_goes_down() {
    let mut c = settled(ABC, 1, 25);
    let old = owner(&c, vip(1));
    let host = *ABC.iter().find(|n| **n != old).expect("another");
    c.console("mgr", &format!("broadcast cluster duravip move 10.1.1.1 to {host}"));
    c.run_for(secs(3));
    assert_eq!(c.holders(vip(1)), vec![host.to_owned()]);
    let rest: Vec<&str> = ABC.iter().copied().filter(|n| *n != host).collect();
    c.crash(host);
    let crashed = c.now;
    c.run_for(secs(6));
    for r in &rest {
        assert!(c.saw_down(r, host, crashed).is_some(), "{r} saw {host} down");
        assert!(c.vip_core(r).override_of(vip(1)).is_none(), "{r} kept the move");
    }
    assert_eq!(c.holders(vip(1)), vec![old.clone()]);
    // Coming back, the host does not get the address back by the old move.
    c.start(host);
    c.run_for(secs(8));
    assert_eq!(c.holders(vip(1)), vec![old]);
    assert!(c.vip_core(host).override_of(vip(1)).is_none());
}

#[test]
fn a_move_typed_at_a_node_the_manager_cannot_hear_times_out_and_without_a_manager_is_refused() {
    let mut c = settled(ABC, 2, 31);
    // Nothing a sends reaches the manager (membership routes around it); the manager reaches a.
    c.cut_one_way(&["a"], &["mgr"]);
    let r = c.console("a", "cluster duravip move 10.1.1.1 to b");
    c.run_for(secs(29));
    assert!(!c.replies.contains_key(&r), "answered early: {:?}", c.reply(r));
    c.run_for(secs(2));
    assert_eq!(c.reply(r), &Err(CommandError::ForwardTimeout("mgr".into())));
    assert!(ABC.iter().all(|n| c.members[*n].applied.is_empty()), "nothing was sequenced");
    c.heal();
    c.crash("mgr");
    c.run_for(secs(5));
    let r = c.console("a", "cluster duravip move 10.1.1.1 to b");
    assert_eq!(c.reply(r), &Err(CommandError::NoManager("cluster duravip move 10.1.1.1 to b".into())));
}

#[test]
fn a_node_cannot_have_the_manager_broadcast_anything_but_a_move() {
    let mut c = settled(ABC, 2, 31);
    let forged = crate::ops::OpMessage::Submit { request: 7, command: "shutdown".into() };
    c.inject("a", "mgr", crate::node::Channel::Stream, forged.encode().expect("encodes"));
    c.run_for(ms(100));
    assert!(ABC.iter().all(|n| c.members[*n].applied.is_empty()), "nothing was sequenced");
    let answered = c.log.iter().any(|l| l.contains("mgr Send") && l.contains("to: \"a\""));
    assert!(answered, "the node is told its request was refused");
}
