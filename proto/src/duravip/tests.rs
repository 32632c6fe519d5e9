//! Unit tests of one DuraVIP core, driven by method calls: refused configurations, junk
//! datagrams, refused moves, a manager's core, and the majority policy's backing and
//! acknowledgement rules fed by hand-made messages. How the cores work together — election,
//! failover, moves, partitions — is tested on node cores wired together (`node::tests`).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::*;
use crate::error::DecodeError;
use crate::ids::{MemberId, Role};
use crate::wire;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 1, 1, last])
}

fn member(name: &str, incarnation: u64) -> MemberId {
    MemberId {
        name: name.into(),
        addr: SocketAddr::from(([127, 0, 0, 1], 4803)),
        role: Role::Node,
        subcluster: "east".into(),
        incarnation,
    }
}

/// `count` bindings `vip-1`.. on 10.1.1.1.., every node a candidate.
fn open_bindings(count: u8) -> Vec<Binding> {
    (1..=count)
        .map(|i| Binding { name: format!("vip-{i}"), addr: ip(i), candidates: Vec::new(), preference: None })
        .collect()
}

/// The same, with an explicit candidate list (needed by the majority policy).
fn listed_bindings(count: u8, names: &[&str]) -> Vec<Binding> {
    let mut b = open_bindings(count);
    for binding in &mut b {
        binding.candidates = names.iter().map(|n| n.to_string()).collect();
    }
    b
}

fn majority() -> DuraVipConfig {
    DuraVipConfig { policy: Policy::Majority, ..DuraVipConfig::default() }
}

/// The virtual epoch of a test.
fn epoch() -> Instant {
    // The one clock read: a test picks its virtual epoch; the core only sees it.
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

/// The core of `me` started at `t0` with `peers` up.
fn started(me: &str, peers: &[&str], bindings: Vec<Binding>, config: DuraVipConfig, t0: Instant) -> DuraVip {
    let mut core = DuraVip::new(member(me, 1), bindings, config).expect("config");
    core.start(t0);
    for p in peers {
        core.handle_member_up(t0, &member(p, 1));
    }
    outputs(&mut core);
    core
}

fn encode(m: DuraVipMessage) -> bytes::Bytes {
    m.encode().expect("encode")
}

fn claim(incarnation: u64, seq: u64, addr: IpAddr) -> bytes::Bytes {
    encode(DuraVipMessage::Claim { stamp: Stamp { incarnation, seq }, claims: vec![(addr, NO_TERM)] })
}

/// How many acknowledgements among `outputs` go to `to`.
fn acks_to(outputs: &[DuraVipOutput], to: &str) -> usize {
    outputs
        .iter()
        .filter(|o| {
            matches!(o, DuraVipOutput::Send { to: t, payload } if t == to
                && matches!(DuraVipMessage::decode(payload), Ok(DuraVipMessage::ClaimAck { .. })))
        })
        .count()
}

fn changes_holdings(outputs: &[DuraVipOutput]) -> bool {
    outputs.iter().any(|o| matches!(o, DuraVipOutput::Acquire(_) | DuraVipOutput::Release(_)))
}

#[test]
fn junk_datagrams_are_errors_and_change_nothing() {
    let t0 = epoch();
    let mut core = started("a", &["b", "c"], open_bindings(3), DuraVipConfig::default(), t0);
    let now = t0 + DuraVipConfig::default().settle;
    core.handle_timer(now, DuraVipTimer::Settle(core.generation()));
    outputs(&mut core);
    let held: BTreeSet<IpAddr> = core.held().collect();
    assert!(!held.is_empty(), "a holds what its view elects it for");
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
        assert_eq!(core.poll_output(), None, "{b:?} was answered");
    }
    assert!(matches!(core.handle_datagram(now, "b", &[1, 77]), Err(DuraVipError::Decode(DecodeError::Kind(77)))));
    let valid = encode(DuraVipMessage::State {
        stamp: Stamp { incarnation: 1, seq: 1 },
        holdings: vec![(ip(1), (0, 0))],
        overrides: vec![(ip(2), "b".into(), (3, 3))],
    });
    for n in 0..valid.len() {
        assert!(core.handle_datagram(now, "b", &valid[..n]).is_err(), "prefix of {n} bytes accepted");
    }
    let mut trailing = valid.to_vec();
    trailing.push(0);
    assert!(core.handle_datagram(now, "b", &trailing).is_err());
    assert!(core.override_of(ip(2)).is_none(), "a refused datagram taught a move");
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
    assert!(!changes_holdings(&outputs(&mut core)));
    assert_eq!(core.held().collect::<BTreeSet<_>>(), held);
}

#[test]
fn move_refuses_unknown_addresses_hosts_and_non_candidates_by_name() {
    let mut bindings = open_bindings(2);
    bindings[1].candidates = vec!["a".into(), "b".into()];
    let now = epoch();
    let mut core = started("a", &["b", "c"], bindings, DuraVipConfig::default(), now);
    let e = core.move_to(now, (1, 1), ip(9), "b").expect_err("unknown address");
    assert_eq!(e, DuraVipError::UnknownAddress(ip(9)));
    assert_eq!(e.to_string(), "10.1.1.9 is not a DuraVIP address of this node");
    let e = core.move_to(now, (1, 1), ip(1), "nosuch").expect_err("unknown host");
    assert_eq!(e.to_string(), "nosuch is not a live node of the cluster");
    let e = core.move_to(now, (1, 1), ip(2), "c").expect_err("not a candidate");
    assert_eq!(e.to_string(), "c is not a candidate for 10.1.1.2 (binding vip-2)");
    assert!(core.override_of(ip(1)).is_none() && core.override_of(ip(2)).is_none());
    // A move older than the one in force is answered, and changes nothing.
    assert!(core.move_to(now, (1, 2), ip(1), "b").expect("moved").applied);
    let late = core.move_to(now, (0, 9), ip(1), "c").expect("answered");
    assert!(!late.applied && late.superseded_by.as_deref() == Some("1.2"), "{late:?}");
    assert_eq!(core.override_of(ip(1)), Some(("b", (1, 2))));
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
    let t0 = epoch();
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

fn outputs(core: &mut DuraVip) -> Vec<DuraVipOutput> {
    std::iter::from_fn(|| core.poll_output()).collect()
}

/// The stamps of the claims among `outputs` sent to `to`.
fn claim_stamps(outputs: &[DuraVipOutput], to: &str) -> Vec<Stamp> {
    outputs
        .iter()
        .filter_map(|o| match o {
            DuraVipOutput::Send { to: t, payload } if t == to => match DuraVipMessage::decode(payload) {
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
    let t0 = epoch();
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
    let send = |m: DuraVipMessage| m.encode().expect("encode");
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
    let t0 = epoch();
    let mut core = started("b", &["a", "c"], listed_bindings(1, &["a", "b", "c"]), majority(), t0);
    // A new run has forgotten whom its previous run backed: no acknowledgement yet.
    core.handle_datagram(t0 + Duration::from_secs(1), "a", &claim(1, 1, addr)).expect("claim");
    assert_eq!(acks_to(&outputs(&mut core), "a"), 0, "backs nobody during the amnesia");
    // Afterwards it backs a...
    let t = t0 + majority().claim_silence;
    core.handle_datagram(t, "a", &claim(1, 2, addr)).expect("claim");
    assert_eq!(acks_to(&outputs(&mut core), "a"), 1);
    // ...refuses a rival while a's claim is recent, and keeps backing a all the same.
    core.handle_datagram(t + ms(100), "c", &claim(1, 1, addr)).expect("rival claim");
    assert_eq!(acks_to(&outputs(&mut core), "c"), 0, "one backing at a time");
    core.handle_datagram(t + ms(1000), "a", &claim(1, 3, addr)).expect("claim");
    assert_eq!(acks_to(&outputs(&mut core), "a"), 1, "the holder is not starved by the rival");
}

#[test]
fn majority_backers_back_one_claimant_at_a_time() {
    // A rival whose view lacks the holder elects itself and claims, every beat, while the
    // holder goes on claiming too. A backer that hears both never acknowledges the rival as
    // long as the holder's claims keep coming, so the rival never gathers a majority; once
    // the holder lets go, the rival is backed. (Real membership does not keep such views
    // apart for long — indirect probes and refutations reach around a cut link — so this
    // rule is checked here, on one core, rather than across a cluster.)
    let addr = ip(1);
    let mut names = ["a", "b", "c", "d", "e"];
    names.sort_by_key(|n| std::cmp::Reverse(rendezvous_score(addr, n)));
    let [holder, rival, backer, ..] = names;
    let peers: Vec<&str> = names.iter().copied().filter(|n| *n != backer).collect();
    let t0 = epoch();
    let mut core = started(backer, &peers, listed_bindings(1, &names), majority(), t0);
    let t = t0 + majority().claim_silence;
    core.handle_timer(t, DuraVipTimer::Settle(core.generation()));
    assert_eq!(core.desired_owner(addr), Some(holder));
    let mut seq = 0;
    for beat in 0..20 {
        seq += 1;
        let now = t + Duration::from_secs(beat);
        core.handle_datagram(now, holder, &claim(1, seq, addr)).expect("holder's claim");
        assert_eq!(acks_to(&outputs(&mut core), holder), 1, "beat {beat}: the holder is backed");
        core.handle_datagram(now + ms(400), rival, &claim(1, seq, addr)).expect("rival's claim");
        core.handle_timer(now + ms(500), DuraVipTimer::Beat);
        let out = outputs(&mut core);
        assert_eq!(acks_to(&out, rival), 0, "beat {beat}: the rival is backed too");
        assert!(!changes_holdings(&out) && core.held().count() == 0, "a backer acquired");
    }
    let now = t + Duration::from_secs(20);
    let released = encode(DuraVipMessage::Released { stamp: Stamp { incarnation: 1, seq: seq + 1 }, addrs: vec![addr] });
    core.handle_datagram(now, holder, &released).expect("release");
    core.handle_datagram(now + ms(400), rival, &claim(1, seq + 1, addr)).expect("rival's claim");
    assert_eq!(acks_to(&outputs(&mut core), rival), 1, "the rival is backed once the holder let go");
}

#[test]
fn majority_without_a_list_or_a_cluster_size_never_holds() {
    let t0 = epoch();
    let mut core = started("a", &["b", "c"], open_bindings(2), majority(), t0);
    for s in 1..=20 {
        core.handle_timer(t0 + Duration::from_secs(s), DuraVipTimer::Beat);
        core.handle_timer(t0 + Duration::from_secs(s), DuraVipTimer::Settle(core.generation()));
    }
    assert!(!changes_holdings(&outputs(&mut core)), "held without knowing how many nodes make a majority");
    let table = core.table(t0 + Duration::from_secs(20));
    assert!(table.vips.iter().all(|v| v.safety == "minority"), "{table:?}");
}

#[test]
fn a_reload_may_change_bindings_but_not_the_policy() {
    let t0 = epoch();
    let mut core = started("a", &["b"], open_bindings(2), DuraVipConfig::default(), t0);
    let e = core.reconfigure(t0, open_bindings(2), majority()).expect_err("policy change");
    assert!(e.to_string().starts_with("duravip_policy changes only at a restart"), "{e}");
    assert_eq!(core.table(t0).vips.len(), 2, "nothing changed");
    core.reconfigure(t0, open_bindings(3), DuraVipConfig::default()).expect("more bindings");
    assert_eq!(core.table(t0).vips.len(), 3);
}

#[test]
fn available_a_dead_owner_declared_down_right_after_its_claim_is_replaced_once_it_falls_silent() {
    let bindings = vec![Binding { name: "vip-1".into(), addr: ip(1), candidates: Vec::new(), preference: Some("b".into()) }];
    let t0 = epoch();
    let mut core = started("a", &["b"], bindings, DuraVipConfig::default(), t0);
    core.handle_timer(t0 + ms(3000), DuraVipTimer::Settle(core.generation()));
    let last_claim = t0 + ms(4000);
    core.handle_datagram(last_claim, "b", &claim(1, 1, ip(1))).expect("a claim");
    outputs(&mut core);
    // Declared down 1.2 s after its last claim: not silent yet (a beat and a half), so its
    // claim still holds the address back, as a false down's would.
    core.handle_member_down(last_claim + ms(1200), &member("b", 1));
    let out = outputs(&mut core);
    assert!(!changes_holdings(&out), "acquired while the dead owner's claim was fresh");
    // It is taken over the moment the claim falls silent, well before the 3 s lease runs out.
    assert!(out.contains(&DuraVipOutput::SetTimer { after: ms(300), timer: DuraVipTimer::Silence }), "{out:?}");
    core.handle_timer(last_claim + ms(1500), DuraVipTimer::Silence);
    assert!(outputs(&mut core).contains(&DuraVipOutput::Acquire(ip(1))), "not taken over once silent");
}

#[test]
fn available_two_dead_owners_declared_down_close_together_are_each_replaced_as_they_fall_silent() {
    let bindings = vec![
        Binding { name: "vip-1".into(), addr: ip(1), candidates: Vec::new(), preference: Some("b".into()) },
        Binding { name: "vip-2".into(), addr: ip(2), candidates: Vec::new(), preference: Some("c".into()) },
    ];
    let t0 = epoch();
    let mut core = started("a", &["b", "c"], bindings, DuraVipConfig::default(), t0);
    core.handle_timer(t0 + ms(3000), DuraVipTimer::Settle(core.generation()));
    core.handle_datagram(t0 + ms(4000), "b", &claim(1, 1, ip(1))).expect("b's claim");
    core.handle_datagram(t0 + ms(4200), "c", &claim(1, 1, ip(2))).expect("c's claim");
    core.handle_member_down(t0 + ms(5200), &member("b", 1));
    core.handle_member_down(t0 + ms(5300), &member("c", 1));
    assert!(!changes_holdings(&outputs(&mut core)), "acquired while the claims were fresh");
    // b falls silent first (5.5 s): its address is taken over, and the wait goes on for c's.
    core.handle_timer(t0 + ms(5500), DuraVipTimer::Silence);
    let out = outputs(&mut core);
    assert!(out.contains(&DuraVipOutput::Acquire(ip(1))) && !out.contains(&DuraVipOutput::Acquire(ip(2))), "{out:?}");
    assert!(out.contains(&DuraVipOutput::SetTimer { after: ms(200), timer: DuraVipTimer::Silence }), "{out:?}");
    core.handle_timer(t0 + ms(5700), DuraVipTimer::Silence);
    assert!(outputs(&mut core).contains(&DuraVipOutput::Acquire(ip(2))), "c's address not taken over once silent");
}

#[test]
fn available_a_dead_owners_claim_heard_late_is_dropped_at_the_next_beat() {
    let bindings = vec![Binding { name: "vip-1".into(), addr: ip(1), candidates: Vec::new(), preference: Some("b".into()) }];
    let t0 = epoch();
    let mut core = started("a", &["b"], bindings, DuraVipConfig::default(), t0);
    core.handle_timer(t0 + ms(3000), DuraVipTimer::Settle(core.generation()));
    core.handle_member_down(t0 + ms(4000), &member("b", 1));
    outputs(&mut core);
    // A claim of the down member delayed in the network arrives after the down: no silence
    // timer is set for it, and the beat after it falls silent drops it.
    let late = t0 + ms(4100);
    core.handle_datagram(late, "b", &claim(1, 1, ip(1))).expect("a claim");
    outputs(&mut core);
    core.handle_timer(late + ms(1000), DuraVipTimer::Beat);
    assert!(!changes_holdings(&outputs(&mut core)), "acquired while the claim was fresh");
    core.handle_timer(late + ms(2000), DuraVipTimer::Beat);
    assert!(outputs(&mut core).contains(&DuraVipOutput::Acquire(ip(1))), "not taken over at the beat after silence");
}
