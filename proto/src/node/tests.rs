//! The crate's cluster tests: node cores wired in memory (see `harness`), so membership,
//! ordered operations and DuraVIP work together as the daemons and the simulator run them.
//! By subject: `membership`, `ops`, `duravip` (election, failover, preference, the state
//! table), `moves` (`cluster duravip move` and `announce view`), `partition` (both
//! policies), `reload` (configuration reloads), `holders` (the manager's view of who holds each
//! address) and `revisions` (configuration revisions
//! told to nodes); the determinism test is here.

mod durable;
mod duravip;
mod harness;
mod holders;
mod membership;
mod moves;
mod ops;
mod partition;
mod reload;
mod revisions;
mod stats;

use std::net::IpAddr;

use self::harness::*;
use crate::duravip::DuraVipConfig;

const ABC: &[&str] = &["a", "b", "c"];
const ABCD: &[&str] = &["a", "b", "c", "d"];
const FIVE: &[&str] = &["a", "b", "c", "d", "e"];

/// Nodes `names` with `count` open bindings under the available policy, run for 10 s, by
/// which time every member sees every other.
fn settled(names: &[&str], count: u8, seed: u64) -> Cluster {
    let mut c = Cluster::new(names, bindings(count), DuraVipConfig::default(), seed);
    c.run_for(secs(10));
    for n in names.iter().chain(["mgr"].iter()) {
        assert_eq!(c.up_view(n).len(), names.len() + 1, "{n} sees everyone");
    }
    c
}

/// The one holder of `addr`.
fn owner(c: &Cluster, addr: IpAddr) -> String {
    let h = c.holders(addr);
    assert_eq!(h.len(), 1, "{addr} held by {h:?}\n{}", c.tail());
    h[0].clone()
}

fn refusal(c: &Cluster, request: u64) -> String {
    match c.reply(request) {
        Err(e) => e.to_string(),
        Ok(r) => panic!("expected a refusal, got {r:?}"),
    }
}

#[test]
fn the_same_seed_gives_the_same_run() {
    // Failover, a restart, a move, a partition under the majority policy, a heal and an
    // announcement: every core and the network's randomness take part.
    let run = |seed| {
        let mut c = Setup::new(FIVE, seed).bindings(listed(6, FIVE)).duravip(majority()).start();
        c.holder_check = HolderCheck::Always;
        c.run_for(secs(10));
        let victim = owner(&c, vip(3));
        c.crash(&victim);
        c.run_for(secs(8));
        c.start(&victim);
        c.run_for(secs(3));
        let host = FIVE.iter().find(|n| **n != victim).expect("another node");
        c.console("mgr", &format!("broadcast cluster duravip move 10.1.1.4 to {host}"));
        c.run_for(secs(1));
        c.partition(&FIVE[..2], &["mgr", FIVE[2], FIVE[3], FIVE[4]]);
        c.run_for(secs(9));
        c.heal();
        c.run_for(secs(5));
        c.console("mgr", "broadcast cluster duravip announce view");
        c.run_for(secs(1));
        c.log
    };
    let first = run(11);
    assert!(first.len() > 1000, "the run did too little to compare: {} lines", first.len());
    assert_eq!(first, run(11));
    assert_ne!(first, run(12));
}
