//! The counters of [`crate::node::Node::stats`] move with what the cores do: a crashed member
//! is suspected and declared down, probes are timed, operations sequenced and applied are
//! counted, a member declared down while alive counts the false down it refuted.

use super::harness::*;
use crate::stats::MemberCounts;

const NODES: &[&str] = &["a", "b", "c", "d"];

#[test]
fn a_crash_raises_suspicions_and_moves_the_members_by_state() {
    let mut c = Setup::new(NODES, 21).start();
    c.run_for(secs(3));
    let before = c.core("mgr").stats();
    assert_eq!(before.member_totals(), (5, 0, 0));
    assert_eq!(before.counters.membership.suspicions_raised, 0);
    assert!(before.counters.membership.probe_rtt.count > 0, "probes were answered and timed: {before:?}");
    c.crash("c");
    c.run_for(secs(8));
    let survivors = ["mgr", "a", "b", "d"];
    let raised: u64 = survivors.iter().map(|n| c.core(n).counters().membership.suspicions_raised).sum();
    assert!(raised >= 1, "someone suspected c before it was declared down");
    for n in survivors {
        let stats = c.core(n).stats();
        assert_eq!(stats.member_totals(), (4, 0, 1), "{n}: {:?}", stats.members);
        assert_eq!(stats.counters.membership.downs, 1, "{n}");
    }
}

#[test]
fn operations_sequenced_applied_and_their_latency_are_counted() {
    let mut c = Setup::new(NODES, 5).start();
    c.run_for(secs(3));
    c.console("mgr", "broadcast version");
    c.console("mgr", "broadcast cluster nodename");
    c.run_for(ms(200));
    let mgr = c.core("mgr").stats();
    assert_eq!((mgr.counters.ops.sequenced, mgr.counters.ops.completed, mgr.counters.ops.in_flight, mgr.counters.ops.timed_out), (2, 2, 0, 0));
    assert_eq!(mgr.counters.ops.latency.count, 2);
    assert!(mgr.counters.ops.latency.sum > ms(0));
    for n in NODES {
        let stats = c.core(n).stats();
        assert_eq!(stats.counters.ops.applied, 2, "{n}");
        assert_eq!(stats.counters.ops.sequenced, 0, "{n} sequences nothing");
        let subclusters: Vec<(&str, u64)> = stats.members.iter().map(|m: &MemberCounts| (m.subcluster.as_str(), m.up)).collect();
        assert_eq!(subclusters, [("east", 3), ("west", 2)], "{n}");
    }
}

#[test]
fn a_member_declared_down_while_alive_counts_the_false_down_it_refuted() {
    let mut c = Setup::new(NODES, 8).start();
    c.run_for(secs(3));
    c.freeze("a");
    c.run_for(secs(6));
    c.thaw("a");
    c.run_for(secs(3));
    let stats = c.core("a").stats();
    assert_eq!(stats.counters.membership.false_downs_refuted, 1, "{:?}", stats.counters.membership);
    assert_eq!(stats.member_totals(), (5, 0, 0));
}
