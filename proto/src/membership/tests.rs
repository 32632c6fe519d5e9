//! Unit tests of one `Membership` core: the datagrams it refuses, and the phase a held-back gossip timer keeps. How members find, watch and
//! renew each other is tested on node cores wired together (`node::tests::membership`).

use rand::SeedableRng;

use std::collections::BTreeSet;

use super::*;
use crate::ids::Role;

fn roster(n: usize) -> Roster {
    let mut r = Roster::new();
    for i in 0..n {
        let sc = if i % 2 == 0 { "east" } else { "west" };
        r.insert(&format!("n{i}"), SocketAddr::from(([127, 0, 1, i as u8 + 1], 4803)), sc);
    }
    r.with_managers(&BTreeSet::from(["n0".to_owned()]))
}

fn id(i: usize, incarnation: u64) -> MemberId {
    MemberId {
        name: format!("n{i}"),
        addr: SocketAddr::from(([127, 0, 1, i as u8 + 1], 4803)),
        role: if i == 0 { Role::Manager } else { Role::Node },
        subcluster: if i.is_multiple_of(2) { "east".into() } else { "west".into() },
        incarnation,
    }
}

/// The first datagram `core` sends once started (its announce).
fn first_datagram(core: &mut Membership, now: Instant) -> Bytes {
    core.start(now);
    std::iter::from_fn(|| core.poll_output())
        .find_map(|o| match o {
            Output::Send { payload, .. } => Some(payload),
            _ => None,
        })
        .expect("a start announces")
}

#[test]
fn impostor_stranger_and_junk_datagrams_are_refused() {
    // The one clock read: a test picks its virtual epoch; the cores only see it.
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let core = |i, name: &str| {
        let me = MemberId { name: name.into(), ..id(i, 1) };
        Membership::new(me, roster(3), MembershipConfig::lan(3), StdRng::seed_from_u64(i as u64))
    };
    let mut n0 = core(0, "n0");
    n0.start(now);
    while n0.poll_output().is_some() {}
    let from_n1 = first_datagram(&mut core(1, "n1"), now);
    let err = n0.handle_datagram(now, "n2", &from_n1).expect_err("impostor");
    assert_eq!(err.to_string(), "peer authenticated as n2 claims to be n1");
    let from_stranger = first_datagram(&mut core(1, "evil"), now);
    let err = n0.handle_datagram(now, "evil", &from_stranger).expect_err("stranger");
    assert_eq!(err.to_string(), "evil is not a host of the segment file");
    let err = n0.handle_datagram(now, "n1", b"\x01\x01garbage").expect_err("garbage");
    assert!(err.to_string().starts_with("swim: "), "{err}");
    let err = n0.handle_datagram(now, "n1", b"").expect_err("empty");
    assert_eq!(err.to_string(), "truncated envelope: 0 bytes, need at least 2");
    // None of it reached foca: n0 still knows nobody.
    assert_eq!(n0.live_count(), 0);
    assert_eq!(n0.poll_output(), None, "a refused datagram is not answered");
    // The genuine datagram is accepted.
    n0.handle_datagram(now, "n1", &from_n1).expect("n1 announces itself");
}

#[test]
fn a_parked_timer_comes_back_on_its_old_phase() {
    #[allow(clippy::disallowed_methods)]
    let t0 = Instant::now();
    let period = Duration::from_millis(100);
    let due = t0 + Duration::from_millis(100);
    assert_eq!(super::next_round(due, t0 + Duration::from_millis(40), period), Duration::from_millis(60), "not due yet");
    assert_eq!(super::next_round(due, due, period), Duration::ZERO);
    assert_eq!(super::next_round(due, t0 + Duration::from_millis(1030), period), Duration::from_millis(70), "missed rounds skipped");
    assert_eq!(super::next_round(due, t0 + Duration::from_millis(1100), period), Duration::ZERO, "on a round");
}
