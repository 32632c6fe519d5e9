//! The seed corpus of every fuzz target: real messages encoded by the cores (SWIM packets
//! exchanged by running membership cores, operations and DuraVIP messages of every kind),
//! console frames and command lines an operator sends, and the repository's own
//! configuration, segment and scenario files. Written by the ignored test
//! `fuzz_corpus::write_seed_corpus`; `cargo fuzz cmin` then keeps what adds coverage.

use std::collections::BTreeSet;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use eccluster_proto::duravip::{DuraVipMessage, Stamp};
use eccluster_proto::membership::{Membership, MembershipConfig, Output, Roster, Timer};
use eccluster_proto::ops::{Answer, AnswerStatus, Op, OpId, OpMessage, Receipt};
use eccluster_proto::wire::{self, Kind};
use eccluster_proto::{MemberId, Role};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Writes every target's seeds under `corpus/TARGET/`.
pub fn write(corpus: &Path) {
    let root = corpus.parent().and_then(Path::parent).expect("fuzz/corpus inside the repository");
    let swim = swim_datagrams();
    let ops = ops_messages();
    let duravip = duravip_datagrams();
    let mut envelopes: Vec<Vec<u8>> = Vec::new();
    envelopes.extend(swim.iter().take(4).cloned());
    envelopes.extend(ops.iter().take(2).cloned());
    envelopes.extend(duravip.iter().take(2).cloned());
    envelopes.push(vec![wire::VERSION, Kind::Swim as u8]);
    put(corpus, "wire", envelopes);
    put(corpus, "membership", swim);
    put(corpus, "ops", ops);
    put(corpus, "duravip", duravip);
    put(corpus, "console_frame", console_frames());
    put(corpus, "console_line", console_lines().iter().map(|l| l.as_bytes().to_vec()).collect());
    let mut configs = files(&root.join("docs/examples"), "conf");
    configs.extend(
        [
            "include \"a.conf\"\n",
            "readonly_include \"d/\"\nBroadcast_Timeout = 30\n",
            "include \"file://cycle.conf\"\n",
            "include \"bad.conf\"\n",
            "include \"latin1.conf\"\n",
            "/* block */ Name = ( a \"b c\" ) # comment\nDict = [ k1 = v1 k2 \"v 2\" ]\nKind \"x\" {\n  Inner yes\n}\nKind y\n{\n}\n",
            "command \"uptime\" {\n  program = \"/usr/bin/uptime\"\n  args = ( \"-p\" )\n  timeout = 5\n}\n",
        ]
        .map(|t| t.as_bytes().to_vec()),
    );
    put(corpus, "config", configs);
    put(corpus, "segments", files(&root.join("segments"), "conf"));
    put(corpus, "scenario", files(&root.join("simulations/scenarios"), "toml"));
}

/// Writes `inputs` as `corpus/TARGET/seed-N`.
fn put(corpus: &Path, target: &str, inputs: Vec<Vec<u8>>) {
    let dir = corpus.join(target);
    fs::create_dir_all(&dir).expect("creating the corpus directory");
    for (i, input) in inputs.iter().enumerate() {
        fs::write(dir.join(format!("seed-{i}")), input).expect("writing a seed");
    }
}

/// The files of `dir` ending in `.ext`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = fs::read_dir(dir)
        .expect("reading a seed directory")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    paths.sort();
    paths.iter().map(|p| fs::read(p).expect("reading a seed file")).collect()
}

/// Identity `i` of the cluster the `membership` target's core belongs to.
fn member(i: u8) -> MemberId {
    MemberId {
        name: format!("n{i}"),
        addr: SocketAddr::from(([127, 0, 1, i + 1], 4803)),
        role: if i == 0 { Role::Manager } else { Role::Node },
        subcluster: if i.is_multiple_of(2) { "east".into() } else { "west".into() },
        incarnation: 1,
    }
}

/// Datagrams sent to `n0` by three members of a four-member cluster that start, gossip for
/// a while, lose one member and see another leave: announces, feeds, pings, acks, indirect
/// probes, gossip and leave notices.
fn swim_datagrams() -> Vec<Vec<u8>> {
    let mut roster = Roster::new();
    for i in 0..4 {
        let id = member(i);
        roster.insert(&id.name, id.addr, &id.subcluster);
    }
    let mut cores: Vec<Membership> = (0..4)
        .map(|i| Membership::new(member(i), roster.clone(), MembershipConfig::lan(4), StdRng::seed_from_u64(u64::from(i))))
        .collect();
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut now = start;
    let mut timers: Vec<(Instant, usize, Timer)> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut to_n0 = Vec::new();
    let mut left = false;
    for core in &mut cores {
        core.start(now);
    }
    let end = start + Duration::from_secs(20);
    while now < end {
        // Deliver everything that is ready, as if the network were instant.
        let mut progress = true;
        while progress {
            progress = false;
            for from in 0..cores.len() {
                while let Some(output) = cores[from].poll_output() {
                    progress = true;
                    match output {
                        Output::Send { to, payload } => {
                            let Some(dst) = cores.iter().position(|c| c.identity().name == to.name) else { continue };
                            // n3 is cut off after 8 s; n2 leaves at 15 s.
                            let down = now >= start + Duration::from_secs(8) && (dst == 3 || from == 3);
                            if dst == 0 && seen.insert(payload.to_vec()) {
                                to_n0.push(payload.to_vec());
                            }
                            if !down {
                                let name = cores[from].identity().name.clone();
                                let _ = cores[dst].handle_datagram(now, &name, &payload);
                            }
                        }
                        Output::SetTimer { after, timer } => timers.push((now + after, from, timer)),
                        Output::Event(_) => {}
                    }
                }
            }
        }
        if now >= start + Duration::from_secs(15) && !left {
            left = true;
            cores[2].leave(now);
            timers.retain(|(_, i, _)| *i != 2);
            continue;
        }
        timers.sort_by_key(|(at, _, _)| *at);
        if timers.is_empty() {
            break;
        }
        let (at, i, timer) = timers.remove(0);
        now = at.max(now);
        cores[i].handle_timer(now, timer);
    }
    to_n0.truncate(64);
    to_n0
}

fn op_id(seq: u64) -> OpId {
    OpId { epoch: 3, seq }
}

/// One operations message of every kind, as the sequencer and appliers send them.
fn ops_messages() -> Vec<Vec<u8>> {
    let messages = [
        OpMessage::Apply {
            incarnation: 2,
            ops: vec![
                Op { id: op_id(7), node_seq: 1, command: "show cluster membership".into() },
                Op { id: op_id(8), node_seq: 2, command: "config set Foo \"a b\"".into() },
            ],
        },
        OpMessage::Answers {
            incarnation: 2,
            answers: vec![
                Answer { id: op_id(7), node_seq: 1, status: AnswerStatus::Ok, body: "east1 up\n".into() },
                Answer { id: op_id(8), node_seq: 2, status: AnswerStatus::Error, body: "unknown command".into() },
            ],
        },
        OpMessage::Submit { request: 4, command: "cluster duravip move 10.99.0.1 to east2".into() },
        OpMessage::Submitted {
            request: 4,
            result: Ok(Receipt { id: op_id(9), targets: vec!["east1".into(), "west1".into()] }),
        },
        OpMessage::Submitted { request: 5, result: Err("no binding for 10.99.0.9".into()) },
    ];
    messages.iter().map(|m| m.encode().expect("encode").to_vec()).collect()
}

/// One DuraVIP datagram of every kind, IPv4 and IPv6.
fn duravip_datagrams() -> Vec<Vec<u8>> {
    let v4: IpAddr = "10.99.0.1".parse().expect("an address");
    let v6: IpAddr = "2001:db8::7".parse().expect("an address");
    let stamp = Stamp { incarnation: 5, seq: 12 };
    let messages = [
        DuraVipMessage::Claim { stamp, claims: vec![(v4, (0, 0)), (v6, (3, 1))] },
        DuraVipMessage::ClaimAck { stamp, addrs: vec![v4] },
        DuraVipMessage::Released { stamp, addrs: vec![v6, v4] },
        DuraVipMessage::State { stamp, holdings: vec![(v4, (0, 0))], overrides: vec![(v6, "east2".into(), (3, 1))] },
    ];
    messages.iter().map(|m| m.encode().expect("encode").to_vec()).collect()
}

/// A frame: the 4-byte big-endian length, then the payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(payload.len()).expect("a small frame").to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// Request and reply streams: several frames in a row, an oversize announcement, a frame
/// that is not UTF-8, an empty reply, a truncated frame.
fn console_frames() -> Vec<Vec<u8>> {
    let lines = console_lines();
    let mut requests = Vec::new();
    for line in &lines[..4] {
        requests.extend(frame(line.as_bytes()));
    }
    let mut replies = Vec::new();
    for (status, body) in [(0u8, "east1 up\nwest1 up\n"), (1, "no such node"), (2, "unterminated quote")] {
        let mut payload = vec![status];
        payload.extend_from_slice(body.as_bytes());
        replies.extend(frame(&payload));
    }
    let mut oversize = (64u32 * 1024 + 1).to_be_bytes().to_vec();
    oversize.extend(std::iter::repeat_n(b'x', 16));
    vec![
        requests,
        replies,
        oversize,
        frame(b"echo \xff\xfe"),
        [frame(b""), frame(b"\x07oops")].concat(),
        vec![0, 0, 0, 10, b'a', b'b'],
    ]
}

/// Command lines an operator types at the console of a manager or a node.
fn console_lines() -> Vec<String> {
    [
        "show cluster membership",
        "xml show cluster membership",
        "json cluster duravip show tables",
        "config set Foo \"a \\\"b\\\" c\"",
        "broadcast version",
        "unicast east1 show cluster membership",
        "subcluster broadcast west cluster duravip announce view",
        "subcluster retrieve east version",
        "retrieve_node west1 cluster oplog",
        "flush control cache",
        "cluster duravip move 10.99.0.1 to east2",
        "cluster duravip explain 2001:db8::7",
        "retrieve \"a\\\\b\" ^reg.*ex$",
        "echo \"unterminated",
        "   ",
        "json",
    ]
    .map(str::to_owned)
    .to_vec()
}
