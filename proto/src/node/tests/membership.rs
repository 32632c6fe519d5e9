//! SWIM membership through node cores: convergence from the roster, crash detection within
//! its bound, restarts, graceful leave, renewed identities told to peers that still speak to
//! the old one, an isolated member starting afresh, a frozen member renewing, one-way cuts
//! routed around.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::harness::*;
use crate::ids::{AddrKey, SwimId};
use crate::membership::codec::FixedCodec;
use crate::membership::{ClusterEvent, MemberState};
use crate::node::{Channel, Input, Output};
use crate::wire::{self, Kind};

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

/// A SWIM packet from `from` to `to` (their current identities) carrying `message` and the
/// membership `updates`, in its envelope, as a member with a valid certificate could forge it.
fn forged(c: &Cluster, from: &str, to: &str, message: foca::Message<SwimId>, updates: &[SwimId]) -> Bytes {
    use foca::{Codec, Header, Member, State};
    let header = Header {
        src: SwimId::of(c.core(from).identity()),
        src_incarnation: 0,
        dst: SwimId::of(c.core(to).identity()),
        message,
    };
    let mut body = Vec::new();
    FixedCodec.encode_header(&header, &mut body).expect("header fits");
    body.extend_from_slice(&u16::try_from(updates.len()).expect("few").to_be_bytes());
    for id in updates {
        FixedCodec.encode_member(&Member::new(*id, 0, State::Alive), &mut body).expect("member fits");
    }
    wire::encode(Kind::Swim, &body)
}

/// The SWIM identity of a host at `addr`, first run.
fn at(addr: &str) -> SwimId {
    SwimId { key: AddrKey::of(addr.parse().expect("addr")), incarnation: 1 }
}

/// The identity host `name` of the test cluster has (or would have) in its first run.
fn identity_of(c: &Cluster, name: &str) -> SwimId {
    SwimId { key: AddrKey::of(c.members[name].addr), incarnation: 1 }
}

/// Runs `body` with the warnings logged on this thread captured, and returns them.
fn logged(body: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, body);
    let bytes = buffer.0.lock().expect("log buffer").clone();
    String::from_utf8(bytes).expect("utf-8 log")
}

#[test]
fn forged_gossip_is_cut_out_and_the_honest_updates_of_the_same_packet_are_applied() {
    // mgr, a, b, c on 127.0.1.1-4 (east, west, east, west); c is a host that never started.
    let mut c = Setup::new(&nodes(3), 41).stopped(&["c"]).start();
    c.run_for(secs(2));
    assert!(c.core("mgr").members().iter().all(|m| m.id.name != "c"), "nobody has heard of c yet");
    // A stranger's address, and b's name at an address that is not b's: an identity carries
    // no name, subcluster or role to forge (those come from the roster), only an address key.
    let stranger = at("127.0.9.9:4803");
    let moved = at("127.0.9.10:4803");
    let honest = identity_of(&c, "c");
    let packet = forged(&c, "a", "mgr", foca::Message::Gossip, &[stranger, honest, moved]);
    let sent_at = c.log.len();
    let log = logged(|| {
        c.inject("a", "mgr", Channel::Datagram, packet);
        c.run_for(secs(5));
    });

    // The honest update in the same packet was applied: mgr learned of c (and, as c never
    // answers, now suspects it or holds it down).
    let row = c.core("mgr").members().into_iter().find(|m| m.id.name == "c").expect("mgr learned of c");
    assert_eq!(row.id.addr, c.members["c"].addr);
    // The forged ones were not: nobody lists the stranger, b and a keep their true identity.
    for n in ["mgr", "a", "b"] {
        for row in c.core(n).members() {
            assert_ne!(row.id.name, "evil", "{n} adopted the stranger");
            let m = &c.members[&row.id.name];
            assert_eq!((row.id.addr, row.id.role, &row.id.subcluster), (m.addr, m.role, &m.subcluster), "{n}'s row of {}", row.id.name);
        }
    }
    // Nobody sent anything to the forged addresses.
    for line in &c.log[sent_at..] {
        assert!(!line.contains("127.0.9."), "a member dialled a forged address: {line}");
    }
    // mgr kept the two refusals, each naming the relay, and logged the first one.
    let (refusals, total) = c.core("mgr").gossip_refusals();
    let refusals: Vec<_> = refusals.collect();
    assert_eq!(total, 2);
    assert!(refusals.iter().all(|r| r.relay == "a"), "{refusals:?}");
    assert_eq!(refusals[0].member.name, "unlisted 127.0.9.9:4803");
    assert_eq!(refusals[0].reason, "127.0.9.9:4803 is not an address of the segment file");
    assert_eq!(refusals[1].reason, "127.0.9.10:4803 is not an address of the segment file");
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("dropped gossip")).collect();
    assert_eq!(warnings.len(), 1, "one warning per relay per period:\n{log}");
    assert!(warnings[0].contains("relay=\"a\"") && warnings[0].contains("127.0.9.9:4803#1"), "{log}");
}

#[test]
fn a_probe_request_naming_a_stranger_is_refused_whole() {
    let mut c = Setup::new(&nodes(2), 42).start();
    c.run_for(secs(2));
    let stranger = at("127.0.9.9:4803");
    let moved = at("127.0.9.10:4803");
    let now = c.at();
    for target in [stranger, moved] {
        let packet = forged(&c, "a", "mgr", foca::Message::PingReq { target, probe_number: 1 }, &[]);
        let core = c.members.get_mut("mgr").and_then(|m| m.core.as_mut()).expect("mgr runs");
        let error = core.handle(now, Input::Datagram { from: "a", payload: &packet }).expect_err("refused");
        assert!(error.to_string().contains(&target.key.to_string()), "{error}");
        while let Some(output) = core.poll_output() {
            assert!(!matches!(output, Output::Send { ref addr, .. } if addr.ip().to_string().starts_with("127.0.9.")), "{output:?}");
        }
    }
}

#[test]
fn in_a_two_member_cluster_the_one_that_stays_lists_the_one_that_left_as_down() {
    for leaving in ["mgr", "a"] {
        let mut c = Setup::new(&["a"], 43).start();
        c.run_for(secs(2));
        let staying = if leaving == "mgr" { "a" } else { "mgr" };
        assert_eq!(c.up_view(staying).len(), 2);
        c.leave(leaving);
        c.run_for(ms(300));
        c.crash(leaving);
        // Alone now, the staying member starts its SWIM state afresh; the table must not
        // forget the member that left.
        c.run_for(secs(10));
        assert!(c.events_since(staying, ms(0), |e| matches!(e, ClusterEvent::Isolated)).count() > 0);
        let row = c.core(staying).members().into_iter().find(|m| m.id.name == leaving);
        let row = row.unwrap_or_else(|| panic!("{staying} forgot {leaving}"));
        assert_eq!(row.state, MemberState::Down, "{leaving} in the view of {staying}");
        // And when it comes back, it is up again.
        c.start(leaving);
        c.run_for(secs(4));
        let row = c.core(staying).members().into_iter().find(|m| m.id.name == leaving).expect("known");
        assert_eq!((row.state, row.id.incarnation), (MemberState::Up, 2), "{leaving} back in the view of {staying}");
    }
}

/// The log lines of gossip timers set from log line `from` on.
fn gossip_timers(c: &Cluster, from: usize) -> usize {
    c.log[from..].iter().filter(|l| l.contains("SetTimer") && l.contains("PeriodicGossip")).count()
}

#[test]
fn a_quiet_cluster_gossips_nothing_and_news_restarts_gossip_at_once() {
    let mut c = Setup::new(&nodes(5), 21).start();
    c.run_for(secs(10));
    // Once every update has been sent its share of times, nobody's gossip timer is set again.
    let quiet = c.log.len();
    c.run_for(secs(5));
    assert_eq!(gossip_timers(&c, quiet), 0, "gossip timers in a quiet cluster");
    // A crash is news: gossip starts again, the death reaches everyone, and then it stops.
    c.crash("c");
    let crashed = c.now;
    let mark = c.log.len();
    c.run_for(secs(4));
    assert!(gossip_timers(&c, mark) > 0, "nobody gossiped the crash");
    for n in all(&c).iter().filter(|n| *n != "c") {
        assert!(c.saw_down(n, "c", crashed).is_some(), "{n} never heard c is down");
    }
    c.run_for(secs(10));
    let quiet = c.log.len();
    c.run_for(secs(5));
    assert_eq!(gossip_timers(&c, quiet), 0, "gossip timers once the crash was told");
}
