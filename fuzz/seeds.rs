//! The seed corpus of every fuzz target: real messages encoded by the cores (SWIM packets
//! exchanged by running membership cores, operations and DuraVIP messages of every kind),
//! console frames and command lines an operator sends, the journal a manager writes, and the
//! repository's own configuration, segment and scenario files. Written by the ignored test
//! `fuzz_corpus::write_seed_corpus`; `cargo fuzz cmin` then keeps what adds coverage.

use std::collections::BTreeSet;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use eccluster_proto::duravip::{DuraVipMessage, HoldingState, Stamp, NO_TERM};
use eccluster_proto::holders::{HoldingsReport, Reporter, ReporterOutput, MAX_ENTRIES};
use eccluster_proto::membership::{Membership, MembershipConfig, Output, Roster, Timer};
use eccluster_proto::ops::journal::{self, JournalWrite};
use eccluster_proto::ops::{
    Answer, AnswerStatus, Op, OpId, OpMessage, OpsConfig, Receipt, Sequencer, SequencerOutput, SequencerTimer, Target,
};
use eccluster_proto::revisions::{
    bounded_error, Follower, FollowerOutput, Publisher, PublisherOutput, RevisionMessage, Revisions, MAX_ERROR,
    MAX_NAME, MAX_REPOS,
};
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
    put(corpus, "revisions", revision_messages());
    put(corpus, "holders", holder_reports());
    put(corpus, "console_frame", console_frames());
    put(corpus, "console_line", console_lines().iter().map(|l| l.as_bytes().to_vec()).collect());
    put(corpus, "journal", journals());
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
    put(corpus, "confrepo", confrepo_inputs().iter().map(|t| t.as_bytes().to_vec()).collect());
}

/// Commit bodies as eccfg sends them, a users file, endpoints and a fingerprint.
pub fn confrepo_inputs() -> Vec<&'static str> {
    vec![
        r#"{"message":"m","repos":[{"repo":"east","base":3,"changes":[{"path":"default/ecelerity.conf","content":"TG9nX0xldmVsID0gNAo="},{"path":"east1/x.conf","content":null}]}]}"#,
        r#"{"message":"","repos":[{"repo":"global","base":0,"changes":[{"path":"msgc.conf","content":"bXNnYyB7Cg=="}]}]}"#,
        r#"{"message":"t","repos":[{"repo":"east","base":1,"changes":[{"path":"../x","content":"eA=="},{"path":"default/.eccfg/wc.json","content":"eA=="}]}]}"#,
        "# users
admin:$argon2id$v=19$m=19456,t=2,p=1$IgNFRyvK0zHp+zIzLO5MrA$J26s91wOuhTpfkOtiFmUoR/zy6R3Yv7mgT0k2sXJVks
bob:plain
",
        "mgr.example.com:2027",
        "[::1]:2027",
        "SHA256:B1:15:C0:1F:00:A1:7D:C4:CC:76:5F:DF:CA:38:98:9B:EA:B8:D8:1B:2D:AB:15:FB:39:1C:3A:C2:83:47:E8:3F",
    ]
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
                        Output::Send { to, payload, .. } => {
                            let Some(dst) = cores.iter().position(|c| *c.identity().name == *to) else { continue };
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

/// DuraVIP holdings reports as a node's reporter sends them (everything to a manager that
/// comes up, then a change), and one at the bound: the most addresses, IPv6, longest terms.
fn holder_reports() -> Vec<Vec<u8>> {
    let a: IpAddr = "10.99.0.1".parse().expect("addr");
    let b: IpAddr = "2001:db8::7".parse().expect("addr");
    let mut reporter = Reporter::new(3, Duration::from_secs(30));
    reporter.observe([(a, NO_TERM, HoldingState::Held), (b, NO_TERM, HoldingState::Idle)].into_iter());
    reporter.handle_manager_up("mgr");
    reporter.observe([(a, NO_TERM, HoldingState::Idle), (b, (1_764_633_600_000, 7), HoldingState::Acquiring)].into_iter());
    let mut reports = Vec::new();
    while let Some(output) = reporter.poll_output() {
        if let ReporterOutput::Send { payload, .. } = output {
            reports.push(payload.to_vec());
        }
    }
    let widest = (0..MAX_ENTRIES)
        .map(|i| (IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16]), (u64::MAX, u64::MAX), HoldingState::Held))
        .collect();
    let report = HoldingsReport { stamp: Stamp { incarnation: u64::MAX, seq: u64::MAX }, entries: widest };
    reports.push(report.encode().expect("a report within the bounds encodes").to_vec());
    reports
}

/// Configuration-revision messages as the manager's publisher and a node's follower send
/// them (the newest revisions; a node's report, with and without an error), and two at the
/// bounds: the most repositories, one with the longest name (the others short, so that the
/// seed stays small and fuzzing fast), and the longest error.
fn revision_messages() -> Vec<Vec<u8>> {
    let mut publisher = Publisher::new(Duration::from_secs(1));
    publisher.handle_node_up("east1", "east");
    publisher.publish("global", 3);
    publisher.publish("east", 12);
    let mut follower = Follower::new();
    follower.handle_manager_up("mgr");
    follower.handle_newest("mgr", publisher.newest());
    let running = Revisions::from([("global".to_owned(), 3), ("east".to_owned(), 11)]);
    follower.set_running(running, Some("pull of east 12 failed: cannot reach ecconfigd at mgr:2027".into()));
    let mut messages = Vec::new();
    while let Some(output) = publisher.poll_output() {
        if let PublisherOutput::Send { payload, .. } = output {
            messages.push(payload.to_vec());
        }
    }
    while let Some(output) = follower.poll_output() {
        if let FollowerOutput::Send { payload, .. } = output {
            messages.push(payload.to_vec());
        }
    }
    let widest: Revisions = (1..MAX_REPOS)
        .map(|i| (i.to_string(), u64::MAX - i as u64))
        .chain([("n".repeat(MAX_NAME), 1)])
        .collect();
    let longest = bounded_error(&"é\n".repeat(MAX_ERROR));
    for message in [
        RevisionMessage::Newest(widest),
        RevisionMessage::Running { revisions: Revisions::new(), error: Some(longest), knows: Revisions::new() },
    ] {
        messages.push(message.encode().expect("a message within the bounds encodes").to_vec());
    }
    messages
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

/// A manager's journal file as its sequencer writes it, with what the sequencer sent since the
/// last look.
struct Manager {
    sequencer: Sequencer,
    disk: Vec<u8>,
    /// Every state the file went through, one per drain that wrote something.
    files: Vec<Vec<u8>>,
    /// Operations sent per node, not yet answered here.
    sent: Vec<(String, Op)>,
    timers: Vec<SequencerTimer>,
}

impl Manager {
    /// Performs the journal writes (appends and compactions), then collects the sends and
    /// timers, as the driver does after every input.
    fn drain(&mut self) {
        let mut wrote = false;
        while let Some(write) = self.sequencer.poll_journal() {
            wrote = true;
            match write {
                JournalWrite::Append(bytes) => self.disk.extend_from_slice(&bytes),
                JournalWrite::Replace(bytes) => self.disk = bytes.to_vec(),
            }
        }
        if wrote {
            self.files.push(self.disk.clone());
        }
        while let Some(output) = self.sequencer.poll_output() {
            match output {
                SequencerOutput::Send { to, payload, .. } => {
                    if let Ok(OpMessage::Apply { ops, .. }) = OpMessage::decode(&payload) {
                        self.sent.extend(ops.into_iter().map(|op| (to.clone(), op)));
                    }
                }
                SequencerOutput::SetTimer { timer, .. } => self.timers.push(timer),
                SequencerOutput::Completed(_) => {}
            }
        }
    }

    fn submit(&mut self, now: Instant, command: &str, target: Target) -> OpId {
        let id = self.sequencer.submit(now, command, target).expect("a live target").id;
        self.drain();
        id
    }

    /// `node` answers what it was sent (`status` for every operation, its command echoed).
    fn answer(&mut self, now: Instant, node: &str, status: AnswerStatus) {
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sent).into_iter().partition(|(to, _)| to == node);
        self.sent = others;
        let answers = mine
            .into_iter()
            .map(|(_, op)| Answer { id: op.id, node_seq: op.node_seq, status, body: format!("{}\n", op.command) })
            .collect();
        self.sequencer.handle_message(now, node, OpMessage::Answers { incarnation: 1, answers }).expect("answers");
        self.drain();
    }

    fn up(&mut self, now: Instant, nodes: &[u8]) {
        for i in nodes {
            self.sequencer.handle_member_up(now, &member(*i));
        }
        self.drain();
    }
}

/// Journal files a manager writes (`Control_Cache`): every state of the file of a run that
/// broadcasts, unicasts and sends to a subcluster, records answers, failures, a node lost, an
/// answer timeout and a flush; the compaction a restarted manager writes from it, and what it
/// appends while it delivers and abandons the recovered operations; a file torn in its last
/// frame, one damaged in the middle, and one that is not a journal.
fn journals() -> Vec<Vec<u8>> {
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let at = |ms: u64| start + Duration::from_millis(ms);
    let epoch = 1_764_633_000_000;
    let fresh = |epoch| Manager {
        sequencer: Sequencer::new(epoch, OpsConfig::default()).with_cluster_nodes(3),
        disk: Vec::new(),
        files: Vec::new(),
        sent: Vec::new(),
        timers: Vec::new(),
    };
    // n1 and n3 are in west, n2 in east.
    let mut first = fresh(epoch);
    first.sequencer.start(at(0));
    first.drain();
    first.up(at(10), &[1, 2, 3]);
    first.submit(at(20), "show cluster membership", Target::Cluster);
    first.submit(at(21), "config set Foo \"a b\"", Target::Subcluster("west".into()));
    first.submit(at(22), "version", Target::Node("n2".into()));
    first.answer(at(30), "n1", AnswerStatus::Ok);
    first.answer(at(31), "n2", AnswerStatus::Error);
    first.sequencer.handle_member_down(at(40), "n3");
    first.drain();
    let slow = first.submit(at(50), "cluster duravip move 10.99.0.1 to east2", Target::Cluster);
    first.answer(at(60), "n1", AnswerStatus::Ok);
    first.sequencer.handle_timer(at(30_050), SequencerTimer::AnswerTimeout(slow));
    first.drain();
    first.sequencer.flush_results();
    first.drain();
    first.submit(at(30_100), "show cluster membership", Target::Cluster);
    first.submit(at(30_101), "echo \u{e9}t\u{e9}", Target::Subcluster("east".into()));
    first.answer(at(30_110), "n1", AnswerStatus::Ok);
    // Crashed with operations unanswered by n2: a new run recovers them.
    let mut second = fresh(epoch + 60_000);
    second.sequencer.recover(at(31_000), &journal::read(&first.disk).records);
    second.drain();
    second.sequencer.start(at(31_000));
    second.up(at(31_010), &[1, 3]);
    let deadline = second.timers.iter().rev().find(|t| matches!(t, SequencerTimer::RecoveryDeadline(_))).cloned();
    second.sequencer.handle_timer(at(61_000), deadline.expect("a recovery deadline"));
    second.drain();
    second.up(at(61_010), &[2]);
    second.submit(at(61_020), "version", Target::Cluster);
    second.answer(at(61_030), "n2", AnswerStatus::Ok);
    let last = second.disk.clone();
    let mut torn = last[..last.len() - 3].to_vec();
    torn.extend_from_slice(&[0xde, 0xad]);
    let mut flipped = last.clone();
    flipped[journal::MAGIC.len() + 12] ^= 0x40;
    let mut files = first.files;
    files.extend(second.files);
    files.extend([torn, flipped, b"garbage, not a journal".to_vec()]);
    files
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
