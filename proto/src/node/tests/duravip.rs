//! DuraVIP through node cores, with real membership: nothing held before the view settles,
//! one agreed owner per address and an even spread, failover at once when a dead owner is
//! declared down, a returning owner, preference, the state table, a graceful leave, and a
//! holder that is stopped for a while (both policies).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use super::harness::*;
use super::{owner, settled, ABC, ABCD};
use crate::duravip::{rendezvous_score, DuraVipConfig, HoldingState};
use crate::ids::Role;
use crate::membership::ClusterEvent;
use crate::node::{Command, CommandError, Reply};

/// When `observer`'s DuraVIP view last changed at or before `at`: the last event about a
/// node (managers are not in the view).
fn view_changed(c: &Cluster, observer: &str, at: Duration) -> Duration {
    c.events_since(observer, Duration::ZERO, |e| match e {
        ClusterEvent::MemberUp(m) | ClusterEvent::MemberDown(m) | ClusterEvent::MemberRenewed { to: m, .. } => {
            m.role == Role::Node
        }
        _ => false,
    })
    .map(|(t, _)| *t)
    .filter(|t| *t <= at)
    .max()
    .unwrap_or_default()
}

#[test]
fn nothing_is_held_before_the_view_settles_then_each_address_has_one_agreed_owner_spread_evenly() {
    let mut c = Cluster::new(ABC, bindings(8), DuraVipConfig::default(), 2);
    c.run_for(ms(1900));
    assert!(c.changes.is_empty(), "acquired before the view settled: {:?}", c.changes);
    c.run_for(secs(8));
    // Each node acquired only once its view had been unchanged for `settle`.
    let settle = DuraVipConfig::default().settle;
    for n in ABC {
        let first = c.changes.iter().find(|ch| ch.1 == *n && ch.3).expect("acquired something").0;
        let changed = view_changed(&c, n, first);
        assert!(first >= changed + settle, "{n} acquired at {first:?}, its view changed at {changed:?}");
    }
    for i in 1..=8 {
        let o = owner(&c, vip(i));
        for n in ABC {
            let core = c.vip_core(n);
            assert_eq!(core.desired_owner(vip(i)), Some(o.as_str()), "{n} elects another owner of {}", vip(i));
            assert_eq!(core.owner_of(vip(i)), Some(o.as_str()), "{n} believes another node holds {}", vip(i));
        }
    }
    let mut counts: Vec<usize> = ABC.iter().map(|n| c.members[*n].held.len()).collect();
    counts.sort_unstable();
    assert_eq!(counts, vec![2, 3, 3]);
    assert!(c.core("mgr").duravip().is_none(), "the manager holds nothing");
    // Once settled, nothing changes any more.
    let before = c.changes.len();
    c.run_for(secs(20));
    assert_eq!(c.changes.len(), before);
}

#[test]
fn a_dead_owners_addresses_and_only_they_are_taken_over_as_soon_as_it_is_declared_down() {
    let mut c = settled(ABCD, 8, 6);
    let victim = owner(&c, vip(1));
    let survivors: Vec<&str> = ABCD.iter().copied().filter(|n| *n != victim).collect();
    let orphaned = c.members[&victim].held.clone();
    let kept: BTreeMap<&str, BTreeSet<IpAddr>> = survivors.iter().map(|n| (*n, c.members[*n].held.clone())).collect();
    c.crash(&victim);
    let crashed = c.now;
    c.run_for(secs(6));
    let mut last_takeover = crashed;
    for addr in &orphaned {
        let (taken, by) = c
            .changes
            .iter()
            .find(|ch| ch.0 >= crashed && ch.2 == *addr && ch.3)
            .map(|ch| (ch.0, ch.1.clone()))
            .expect("taken over");
        assert!(survivors.contains(&by.as_str()));
        // Its view had matured long ago: the successor takes over the moment its membership
        // declares the owner down, or, if that came within a beat and a half of the owner's
        // last claim, the moment the claim falls silent. Detection (probe, indirect probe,
        // suspicion) is the delay.
        let down = c.saw_down(&by, &victim, crashed).expect("declared down");
        assert!(taken >= down && taken - down <= ms(1500), "{addr} taken at {taken:?}, {victim} down at {by} at {down:?}");
        assert!(taken - crashed <= secs(4), "{addr} taken over after {:?}", taken - crashed);
        last_takeover = last_takeover.max(taken);
    }
    // Until then nothing but the takeovers happened: the survivors kept theirs.
    for ch in c.changes.iter().filter(|ch| ch.0 >= crashed && ch.0 <= last_takeover) {
        assert!(ch.3 && orphaned.contains(&ch.2), "{ch:?} before the last takeover");
    }
    // The survivors agree on every owner, the spread is even again, and most of the
    // survivors' own addresses stayed where they were.
    for i in 1..=8 {
        let o = owner(&c, vip(i));
        for s in &survivors {
            assert_eq!(c.vip_core(s).desired_owner(vip(i)), Some(o.as_str()), "{s} on {}", vip(i));
        }
    }
    let counts: Vec<usize> = survivors.iter().map(|n| c.members[*n].held.len()).collect();
    assert!(counts.iter().max().zip(counts.iter().min()).is_some_and(|(a, b)| a - b <= 1), "{counts:?}");
    let stayed: usize = kept.iter().map(|(n, held)| held.intersection(&c.members[*n].held).count()).sum();
    let had: usize = kept.values().map(BTreeSet::len).sum();
    assert!(stayed + 1 >= had, "{stayed} of {had} stayed");
}

#[test]
fn a_returning_owner_gets_its_addresses_back_without_overlap() {
    let mut c = settled(ABC, 8, 12);
    let victim = owner(&c, vip(1));
    let owned = c.members[&victim].held.clone();
    c.crash(&victim);
    c.run_for(secs(6));
    assert_ne!(owner(&c, vip(1)), victim);
    // From here on the harness checks after every output that no address has two holders.
    c.start(&victim);
    c.run_for(secs(10));
    for i in 1..=8 {
        let o = owner(&c, vip(i));
        for n in ABC {
            assert_eq!(c.vip_core(n).desired_owner(vip(i)), Some(o.as_str()), "{n} on {}", vip(i));
        }
    }
    assert_eq!(c.members[&victim].held, owned);
}

#[test]
fn the_preferred_node_holds_while_alive_falls_back_to_the_election_and_gets_it_back_once() {
    let addr = vip(1);
    let by_score = *ABC.iter().max_by_key(|n| rendezvous_score(addr, n)).expect("three");
    let preferred = *ABC.iter().find(|n| **n != by_score).expect("another");
    let mut b = bindings(1);
    b[0].preference = Some(preferred.into());
    let mut c = Cluster::new(ABC, b, DuraVipConfig::default(), 7);
    c.run_for(secs(10));
    assert_eq!(owner(&c, addr), preferred);
    c.crash(preferred);
    c.run_for(secs(6));
    assert_eq!(owner(&c, addr), by_score);
    let restarted = c.now;
    c.start(preferred);
    c.run_for(secs(15));
    assert_eq!(owner(&c, addr), preferred);
    let after: Vec<_> = c.changes.iter().filter(|ch| ch.0 >= restarted && ch.2 == addr).collect();
    assert_eq!(after.len(), 2, "one release and one acquisition, no flapping: {after:?}");
    assert!(after[0].1 == by_score && !after[0].3 && after[1].1 == preferred && after[1].3, "{after:?}");
    let table = c.vip_core(by_score).table(c.at());
    assert_eq!(table.vips[0].preference.as_deref(), Some(preferred));
}

#[test]
fn the_table_shows_each_binding_with_its_owner_view_and_candidates() {
    let mut c = Cluster::new(ABC, bindings(2), DuraVipConfig::default(), 14);
    c.run_for(secs(7));
    let owner = owner(&c, vip(1));
    let r = c.console(&owner, "cluster duravip show");
    let Ok(Reply::Vips { table, tables: false }) = c.reply(r).clone() else { panic!("{:?}", c.reply(r)) };
    assert_eq!(table.node, owner);
    assert_eq!(table.view, ABC);
    let changed = view_changed(&c, &owner, c.now);
    assert_eq!(table.view_stable_secs, (c.now - changed).as_secs());
    assert_eq!(table.config_stable_secs, 7);
    assert!(table.settled);
    let row = &table.vips[0];
    assert_eq!((row.addr, row.binding.as_str()), (vip(1), "vip-1"));
    assert_eq!((row.ownership, row.safety), ("owned", "safe"));
    assert_eq!(row.owner.as_deref(), Some(owner.as_str()));
    assert_eq!(row.elected.as_deref(), Some(owner.as_str()));
    assert_eq!(row.holding, HoldingState::Held);
    assert_eq!(row.candidates, ABC);
    let other = ABC.iter().find(|n| **n != owner).expect("another");
    let r = c.console(other, "cluster duravip show tables");
    let Ok(Reply::Vips { table: theirs, tables: true }) = c.reply(r).clone() else { panic!("{:?}", c.reply(r)) };
    assert_eq!(theirs.vips[0].owner.as_deref(), Some(owner.as_str()));
    assert_ne!(theirs.vips[0].holding, HoldingState::Held);
}

#[test]
fn duravip_commands_at_a_node_without_bindings_say_so() {
    let mut c = settled(ABC, 0, 13);
    let r = c.command("a", Command::DuravipShow { tables: false });
    assert_eq!(c.reply(r), &Err(CommandError::DuravipOff));
    assert_eq!(
        Command::parse(Role::Node, &["cluster".into(), "duravip".into(), "mvoe".into()]),
        Some(Err(CommandError::Usage("cluster duravip show [tables] | move IP to HOST | announce view | explain IP")))
    );
}

#[test]
fn a_leaving_node_releases_at_once_and_its_addresses_are_taken_over_without_waiting() {
    let mut c = settled(ABC, 6, 30);
    let leaver = owner(&c, vip(1));
    let held = c.members[&leaver].held.clone();
    c.leave(&leaver);
    let left = c.now;
    assert!(c.members[&leaver].held.is_empty(), "released in the same turn");
    c.run_for(ms(100));
    // No lease to wait out and no failure to detect: the goodbye says it all.
    for addr in &held {
        let (taken, by) = c.last_acquired(*addr).expect("taken over");
        assert!(by != leaver && taken - left <= ms(20), "{addr} taken by {by} {:?} after the leave", taken - left);
    }
    c.crash(&leaver);
    c.run_for(secs(5));
    for i in 1..=6 {
        assert_ne!(owner(&c, vip(i)), leaver);
    }
}

#[test]
fn a_frozen_holder_is_replaced_and_gives_way_when_it_runs_again() {
    let mut c = settled(ABC, 6, 32);
    let frozen = owner(&c, vip(1));
    let held = c.members[&frozen].held.clone();
    // A stopped process keeps its addresses configured: while it is frozen they have two
    // holders, which the available policy accepts.
    c.holder_check = HolderCheck::Off;
    c.freeze(&frozen);
    let stopped = c.now;
    c.run_for(secs(6));
    for n in ABC.iter().filter(|n| **n != frozen) {
        assert!(c.saw_down(n, &frozen, stopped).is_some(), "{n} saw {frozen} down");
    }
    for addr in &held {
        let h = c.holders(*addr);
        assert!(h.len() == 2 && h.contains(&frozen), "{addr} held by {h:?}");
    }
    c.thaw(&frozen);
    let resumed = c.now;
    c.run_for(secs(15));
    for i in 1..=6 {
        let o = owner(&c, vip(i));
        for n in ABC {
            assert_eq!(c.vip_core(n).desired_owner(vip(i)), Some(o.as_str()), "{n} on {}", vip(i));
        }
        let changes = c.changes.iter().filter(|ch| ch.0 >= resumed && ch.2 == vip(i)).count();
        assert!(changes <= 2, "{} changed hands {changes} times after the thaw", vip(i));
    }
    c.holder_check = HolderCheck::WhileConnected;
    let settled = c.changes.len();
    c.run_for(secs(10));
    assert_eq!(c.changes.len(), settled, "ownership kept changing");
}

#[test]
fn a_frozen_majority_holder_releases_the_moment_it_runs_again() {
    let mut c = Cluster::new(ABC, listed(6, ABC), majority(), 33);
    c.holder_check = HolderCheck::Always;
    c.run_for(secs(10));
    let frozen = owner(&c, vip(1));
    let held = c.members[&frozen].held.clone();
    // A stopped process cannot check its lease: its addresses stay configured while the
    // others, once its claims have been silent for claim_silence, take them over. (The lease
    // assumes processes keep running; this is the case it cannot cover.)
    c.holder_check = HolderCheck::Off;
    c.freeze(&frozen);
    let stopped = c.now;
    c.run_for(secs(8));
    for addr in &held {
        let (taken, by) = c.last_acquired(*addr).expect("taken over");
        assert!(by != frozen && taken >= stopped + majority().claim_silence, "{addr} taken by {by} at {taken:?}");
    }
    // Running again, it lets its lapsed leases go in the same instant, as the timers that
    // came due while it was stopped fire: from then on, never two holders, though its view
    // still elects it and it soon gets its addresses back.
    c.thaw(&frozen);
    let resumed = c.now;
    c.run_for(Duration::ZERO);
    let released: Vec<_> = c.changes.iter().filter(|ch| ch.0 >= resumed).collect();
    assert!(released.len() == held.len() && released.iter().all(|ch| ch.1 == frozen && !ch.3), "{released:?}");
    c.holder_check = HolderCheck::Always;
    c.run_for(secs(15));
    for i in 1..=6 {
        owner(&c, vip(i));
    }
}
