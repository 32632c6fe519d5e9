//! SWIM membership through node cores: convergence from the roster, crash detection within
//! its bound, restarts, graceful leave, renewed identities told to peers that still speak to
//! the old one, an isolated member starting afresh, a frozen member renewing, one-way cuts
//! routed around.

use std::collections::BTreeSet;

use super::harness::*;
use crate::membership::{ClusterEvent, MemberState};

fn all(c: &Cluster) -> BTreeSet<String> {
    c.members.keys().cloned().collect()
}

/// Nodes `a`, `b`, ... (`count` of them) besides the manager.
fn nodes(count: usize) -> Vec<&'static str> {
    ["a", "b", "c", "d", "e", "f", "g"][..count].to_vec()
}

#[test]
fn six_members_converge_from_the_roster() {
    let mut c = Setup::new(&nodes(5), 0xC0FFEE).start();
    c.run_for(secs(3));
    let everyone = all(&c);
    assert_eq!(everyone.len(), 6);
    for n in &everyone {
        assert_eq!(c.up_view(n), everyone, "view of {n}");
    }
}

#[test]
fn a_crashed_member_is_declared_down_everywhere_once_within_bound() {
    let mut c = Setup::new(&nodes(7), 7).start();
    c.run_for(secs(3));
    c.crash("c");
    let crashed = c.now;
    c.run_for(secs(6));
    for n in all(&c).iter().filter(|n| *n != "c") {
        let downs: Vec<_> =
            c.events_since(n, crashed, |e| matches!(e, ClusterEvent::MemberDown(m) if m.name == "c")).collect();
        assert_eq!(downs.len(), 1, "{n} must see c down once: {downs:?}");
        assert!(downs[0].0 - crashed < secs(5), "{n} too slow: {:?}", downs[0].0 - crashed);
        assert!(!c.up_view(n).contains("c"));
    }
    // Nobody else was declared down, at any time.
    for n in all(&c).iter().filter(|n| *n != "c") {
        let others = c.events_since(n, ms(0), |e| matches!(e, ClusterEvent::MemberDown(m) if m.name != "c")).count();
        assert_eq!(others, 0, "{n} declared a live member down");
    }
}

#[test]
fn a_restarted_member_rejoins_with_a_higher_incarnation() {
    let mut c = Setup::new(&nodes(4), 11).start();
    c.run_for(secs(2));
    c.crash("b");
    c.run_for(secs(6));
    c.start("b");
    c.run_for(secs(4));
    for n in all(&c) {
        let row = c.core(&n).members().into_iter().find(|m| m.id.name == "b").expect("b known");
        assert_eq!((row.state, row.id.incarnation), (MemberState::Up, 2), "b in the view of {n}");
    }
}

#[test]
fn graceful_leave_is_seen_as_down_at_once() {
    let mut c = Setup::new(&nodes(3), 3).start();
    c.run_for(secs(2));
    c.leave("a");
    let left = c.now;
    c.run_for(ms(300));
    // Failure detection alone (a probe, an indirect probe, 1.5 s of suspicion) would take
    // seconds: the goodbye is heard before the process even ends.
    for n in ["mgr", "b", "c"] {
        let down = c.saw_down(n, "a", left).expect("a seen down");
        assert!(down - left <= ms(50), "{n} saw a down {:?} after it left", down - left);
    }
    c.crash("a");
    c.run_for(secs(1));
    for n in ["mgr", "b", "c"] {
        assert!(!c.up_view(n).contains("a"), "{n} still sees a up");
    }
}

#[test]
fn a_peer_talking_to_an_old_identity_is_told_the_new_one() {
    let mut c = Setup::new(&nodes(3), 21).start();
    c.run_for(secs(2));
    // a comes back at a higher incarnation without announcing itself (as after being declared
    // down across a cut): its peers still probe a#1, which foca ignores unread. Nor does it
    // ever announce by itself: the old run's timers are gone with it.
    c.renew_unannounced("a");
    let renewed = c.now;
    c.run_for(secs(6));
    for n in ["mgr", "b", "c"] {
        let row = c.core(n).members().into_iter().find(|m| m.id.name == "a").expect("a known");
        assert_eq!((row.state, row.id.incarnation), (MemberState::Up, 2), "a in the view of {n}");
        assert_eq!(c.saw_down(n, "a", renewed), None, "a was alive throughout, yet {n} saw it down");
    }
    assert_eq!(c.up_view("a").len(), 4, "a learned the others from their answers");
}

#[test]
fn an_isolated_member_starts_afresh_instead_of_making_everyone_renew() {
    let mut c = Setup::new(&nodes(4), 33).start();
    c.run_for(secs(3));
    c.isolate("b");
    c.run_for(secs(15));
    let isolated = c.events_since("b", ms(0), |e| matches!(e, ClusterEvent::Isolated)).count();
    assert!(isolated > 0, "b saw everyone down");
    assert!(c.core("b").identity().incarnation > 1, "b renewed its identity");
    let healed = c.now;
    c.heal();
    c.run_for(secs(8));
    let everyone = all(&c);
    for n in &everyone {
        assert_eq!(c.up_view(n), everyone, "view of {n} after the heal");
    }
    // b's declarations from its isolation were not gossiped: nobody else had to renew.
    for n in everyone.iter().filter(|n| *n != "b") {
        let renewed: Vec<_> = c.events_since(n, healed, |e| matches!(e, ClusterEvent::Rejoined(_))).collect();
        assert!(renewed.is_empty(), "{n} renewed: {renewed:?}");
    }
}

#[test]
fn a_renewed_member_tells_every_live_member_at_once() {
    let mut c = Setup::new(&nodes(7), 8).start();
    c.run_for(secs(3));
    // a stops for a while (a stopped process): the others declare it down; when it runs
    // again it hears so, renews, and must tell everyone, not only foca's few gossip targets.
    c.freeze("a");
    c.run_for(secs(6));
    c.thaw("a");
    c.run_for(secs(3));
    let (renewed, incarnation) = c
        .events_since("a", ms(0), |e| matches!(e, ClusterEvent::Rejoined(_)))
        .find_map(|(at, e)| match e {
            ClusterEvent::Rejoined(id) => Some((*at, id.incarnation)),
            _ => None,
        })
        .expect("a renewed");
    let told: BTreeSet<String> = all(&c)
        .into_iter()
        .filter(|n| n != "a")
        .filter(|n| {
            c.events_since(n, ms(0), |e| {
                matches!(e, ClusterEvent::MemberRenewed { to, .. } | ClusterEvent::MemberUp(to)
                    if to.name == "a" && to.incarnation == incarnation)
            })
            .any(|(at, _)| *at <= renewed + ms(20))
        })
        .collect();
    assert_eq!(told.len(), 7, "within 20 ms of the renewal: {told:?}");
}

#[test]
fn one_way_cuts_are_routed_around_and_nobody_is_declared_down() {
    let mut c = Setup::new(&nodes(4), 40).start();
    c.run_for(secs(3));
    let cut = c.now;
    // Probes across a one-way cut fail, but indirect probes through the others succeed.
    c.cut_one_way(&["a"], &["b"]);
    c.cut_one_way(&["c"], &["mgr"]);
    c.run_for(secs(20));
    let everyone = all(&c);
    for n in &everyone {
        let downs: Vec<_> = c.events_since(n, cut, |e| matches!(e, ClusterEvent::MemberDown(_))).collect();
        assert!(downs.is_empty(), "{n}: {downs:?}");
        assert_eq!(c.up_view(n), everyone, "view of {n}");
    }
}
