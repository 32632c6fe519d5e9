//! The manager's view of who holds each DuraVIP address, as the nodes report it: right after
//! the election, after a failover and a move, after a partition heals, after the manager
//! restarts; a node speaks only for itself and junk is refused and counted.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::harness::*;
use super::{owner, ABC, FIVE};
use crate::duravip::{DuraVipConfig, HoldingState, Stamp, NO_TERM};
use crate::holders::HoldingsReport;
use crate::node::{Channel, Input, NodeError};

/// The manager's view: address → the nodes it believes hold it.
fn managers_view(c: &Cluster) -> BTreeMap<IpAddr, Vec<String>> {
    let book = c.core("mgr").duravip_holders().expect("a manager");
    book.all()
        .into_iter()
        .map(|(a, h)| (a, h.into_iter().filter(|h| h.state == HoldingState::Held).map(|h| h.node).collect::<Vec<_>>()))
        .filter(|(_, h)| !h.is_empty())
        .collect()
}

/// The truth: address → the nodes that hold it.
fn truth(c: &Cluster, count: u8) -> BTreeMap<IpAddr, Vec<String>> {
    (1..=count).map(vip).map(|a| (a, c.holders(a))).filter(|(_, h)| !h.is_empty()).collect()
}

#[test]
fn the_manager_knows_every_holder_after_election_failover_move_heal_and_its_own_restart() {
    for seed in 0..3 {
        let mut c = Cluster::new(FIVE, bindings(6), DuraVipConfig::default(), seed);
        c.run_for(secs(10));
        assert_eq!(managers_view(&c), truth(&c, 6), "seed {seed}: after the election");
        assert_eq!(managers_view(&c).len(), 6);

        let victim = owner(&c, vip(1));
        c.crash(&victim);
        c.run_for(secs(8));
        assert_eq!(managers_view(&c), truth(&c, 6), "seed {seed}: after {victim} died");
        assert!(managers_view(&c).values().all(|h| !h.contains(&victim)));

        let host = FIVE.iter().find(|n| **n != victim && !c.holders(vip(2)).iter().any(|h| h == *n)).expect("another node");
        c.console("mgr", &format!("broadcast cluster duravip move {} to {host}", vip(2)));
        c.run_for(secs(3));
        assert_eq!(managers_view(&c)[&vip(2)], [host.to_string()], "seed {seed}: after the move");
        let moved = c.core("mgr").duravip_holders().expect("manager").holders(vip(2));
        assert_ne!(moved[0].term, NO_TERM, "the move's term is known");

        // Both sides keep every address (the available policy) until the heal resolves it.
        c.holder_check = HolderCheck::Off;
        c.partition(&FIVE[..2], &["mgr", FIVE[2], FIVE[3], FIVE[4]]);
        c.run_for(secs(10));
        c.heal();
        c.run_for(secs(10));
        c.holder_check = HolderCheck::WhileConnected;
        assert_eq!(managers_view(&c), truth(&c, 6), "seed {seed}: after the partition healed");

        c.crash("mgr");
        c.run_for(secs(1));
        c.start("mgr");
        c.run_for(secs(6));
        assert_eq!(managers_view(&c), truth(&c, 6), "seed {seed}: after the manager restarted");
    }
}

#[test]
fn a_node_speaks_only_for_itself_and_junk_is_refused_and_counted() {
    let mut c = Cluster::new(ABC, bindings(2), DuraVipConfig::default(), 5);
    c.run_for(secs(10));
    let before = managers_view(&c);
    // Whatever "a" says, it is filed under "a": it cannot make "b" a holder.
    let claim = HoldingsReport {
        stamp: Stamp { incarnation: u64::MAX, seq: 1 },
        entries: vec![(vip(1), NO_TERM, HoldingState::Held), (vip(2), NO_TERM, HoldingState::Held), (IpAddr::from([192, 0, 2, 1]), NO_TERM, HoldingState::Held)],
    };
    c.inject("a", "mgr", Channel::Stream, claim.encode().expect("encodes"));
    c.run_for(ms(100));
    let book = c.core("mgr").duravip_holders().expect("a manager");
    assert!(book.holders(IpAddr::from([192, 0, 2, 1])).is_empty(), "an address without a binding is ignored");
    assert_eq!(book.ignored(), 1);
    for (addr, holders) in before {
        let now: Vec<String> = book.holders(addr).into_iter().map(|h| h.node).collect();
        assert!(holders.iter().all(|h| now.contains(h)), "{addr}: nobody else's holding was touched");
    }
    let mut junk = crate::wire::encode(crate::wire::Kind::Holders, &[0xff; 20]).to_vec();
    let at = c.at();
    let manager = c.members.get_mut("mgr").and_then(|m| m.core.as_mut()).expect("manager running");
    assert!(manager.handle(at, Input::Message { from: "a", payload: &junk }).is_err());
    junk.resize(crate::holders::MAX_BYTES + 1, 0);
    let refused = manager.handle(at, Input::Message { from: "a", payload: &junk });
    assert!(matches!(refused, Err(NodeError::Decode(crate::DecodeError::Oversize { .. }))), "{refused:?}");
    c.drain("mgr");
    assert_eq!(c.core("mgr").duravip_holders().expect("a manager").refused(), 2);
}
