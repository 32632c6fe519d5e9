//! What every fuzz target checks, one function per decoder or parser. Each takes raw bytes,
//! feeds them to the code under test and panics only when a property is broken: a decoder
//! panicked, a decoded value does not survive encoding again, an error names no position or
//! the wrong one, a reader lost step with its stream.
//!
//! The fuzz targets (`fuzz/fuzz_targets/`) call these functions; the test suite
//! (`tests/it/fuzz_corpus.rs`) includes this file too and replays every committed corpus file
//! through them, so the corpus keeps running without the fuzzing toolchain.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use eccluster::config::{self, ConfigError, Scope};
use eccluster::console::frame::{self, FrameError, Reply};
use eccluster::registry::Registry;
use eccluster_proto::duravip::DuraVipMessage;
use eccluster_proto::membership::{Membership, MembershipConfig, Output, Roster};
use eccluster_proto::node::line::{self, RequestError};
use eccluster_proto::node::Command;
use eccluster_proto::ops::journal::{self, JournalRecord, JournalWrite, Replay};
use eccluster_proto::ops::{
    Answer, AnswerStatus, OpMessage, OpsConfig, Sequencer, SequencerOutput, SequencerTimer, Target,
};
use eccluster_proto::holders::{self, HoldingsReport};
use eccluster_proto::revisions::{self, RevisionMessage};
use eccluster_proto::segments::Segments;
use eccluster_proto::wire::{self, Kind};
use eccluster_proto::ids::SwimId;
use eccluster_proto::membership::codec::FixedCodec;
use eccluster_proto::{MemberId, Role};
use eccluster_simulations::scenario::{Scenario, TopologySource};
use eccluster_simulations::topology::Topology;
use foca::{Codec, Header};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The envelope: datagrams and stream messages split into kind and body, and a valid envelope
/// is exactly `encode(kind, body)`.
pub fn wire(data: &[u8]) {
    let datagram = wire::decode(data);
    let message = wire::decode_message(data);
    if data.len() <= wire::MAX_DATAGRAM {
        assert_eq!(datagram, message, "a datagram and a stream message of the same bytes decode differently");
    } else {
        assert!(datagram.is_err(), "a datagram of {} bytes was accepted", data.len());
    }
    if let Ok((kind, body)) = message {
        assert_eq!(&wire::encode(kind, body)[..], data, "the envelope does not re-encode to its bytes");
    }
}

/// The hosts a membership core under test may hear from.
fn roster() -> Roster {
    let mut roster = Roster::new();
    for i in 0..4u8 {
        let subcluster = if i.is_multiple_of(2) { "east" } else { "west" };
        roster.insert(&format!("n{i}"), SocketAddr::from(([127, 0, 1, i + 1], 4803)), subcluster);
    }
    roster
}

/// SWIM datagrams (foca's packets behind our envelope and roster checks) at a started member:
/// the header round-trips through foca's codec, the core never panics, and whatever it sends
/// in reply is a well-formed datagram within the size limit.
pub fn membership(data: &[u8]) {
    // The sender the transport authenticated: the host whose address the packet claims, so
    // that packets get past the impostor check and into foca (a mismatch is refused, and
    // tested elsewhere).
    let header: Option<Header<SwimId>> = wire::decode(data)
        .ok()
        .filter(|(kind, _)| *kind == Kind::Swim)
        .and_then(|(_, body)| FixedCodec.decode_header(body).ok());
    if let Some(header) = &header {
        let mut bytes = Vec::new();
        FixedCodec.encode_header(header, &mut bytes).expect("a decoded header encodes");
        let again: Header<SwimId> = FixedCodec.decode_header(&bytes[..]).expect("a re-encoded header decodes");
        assert_eq!(&again, header, "a header does not survive encoding");
    }
    let roster = roster();
    let peer = header.as_ref().and_then(|h| roster.host_of(&h.src)).map_or_else(|| "n1".to_owned(), |h| h.name.to_string());
    let peer = peer.as_str();
    let me = MemberId {
        name: "n0".into(),
        addr: SocketAddr::from(([127, 0, 1, 1], 4803)),
        role: Role::Manager,
        subcluster: "east".into(),
        incarnation: 1,
    };
    let mut core = Membership::new(me, roster, MembershipConfig::lan(4), StdRng::seed_from_u64(7));
    // The one clock read: the core only ever sees this value.
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    core.start(now);
    while core.poll_output().is_some() {}
    let _ = core.handle_datagram(now, peer, data);
    while let Some(output) = core.poll_output() {
        if let Output::Send { payload, .. } = output {
            let (kind, body) = wire::decode(&payload).expect("a datagram the core sends decodes");
            assert_eq!(kind, Kind::Swim);
            let _: Header<SwimId> = FixedCodec.decode_header(body).expect("a datagram the core sends has a header");
        }
    }
}

/// Operations messages read from a stream: decoding never panics and a decoded message
/// survives encoding.
pub fn ops(data: &[u8]) {
    if let Ok(message) = OpMessage::decode(data) {
        let bytes = message.encode().expect("a decoded operations message encodes");
        assert_eq!(OpMessage::decode(&bytes).as_ref(), Ok(&message), "an operations message does not survive encoding");
    }
}

/// Configuration-revision messages read from a stream: decoding never panics, a decoded
/// message is within the bounds a message may carry, and it survives encoding.
pub fn revisions(data: &[u8]) {
    if let Ok(message) = RevisionMessage::decode(data) {
        let (maps, error) = match &message {
            RevisionMessage::Newest(revisions) => ([revisions, revisions], None),
            RevisionMessage::Running { revisions, error, knows } => ([revisions, knows], error.as_ref()),
        };
        for revisions in maps {
            assert!(revisions.len() <= revisions::MAX_REPOS, "{} repositories decoded", revisions.len());
            assert!(revisions.keys().all(|name| !name.is_empty() && name.len() <= revisions::MAX_NAME), "a name out of bounds decoded");
        }
        assert!(error.is_none_or(|e| e.len() <= revisions::MAX_ERROR), "an error text out of bounds decoded");
        let bytes = message.encode().expect("a decoded revision message encodes");
        assert!(bytes.len() <= data.len(), "a decoded revision message encodes longer than it came");
        assert_eq!(RevisionMessage::decode(&bytes).as_ref(), Ok(&message), "a revision message does not survive encoding");
    }
}

/// A node's DuraVIP holdings report read from a stream: decoding never panics, a decoded
/// report is within the bounds, and it survives encoding.
pub fn holders(data: &[u8]) {
    if let Ok(report) = HoldingsReport::decode(data) {
        assert!(report.entries.len() <= holders::MAX_ENTRIES, "{} addresses decoded", report.entries.len());
        let bytes = report.encode().expect("a decoded holdings report encodes");
        assert!(bytes.len() <= data.len(), "a decoded holdings report encodes longer than it came");
        assert_eq!(HoldingsReport::decode(&bytes).as_ref(), Ok(&report), "a holdings report does not survive encoding");
    }
}

/// DuraVIP datagrams: decoding never panics and a decoded message encodes again, within the
/// datagram limit, to the same message.
pub fn duravip(data: &[u8]) {
    if let Ok(message) = DuraVipMessage::decode(data) {
        let bytes = message.encode().expect("a decoded DuraVIP message encodes within a datagram");
        assert_eq!(DuraVipMessage::decode(&bytes).as_ref(), Ok(&message), "a DuraVIP message does not survive encoding");
    }
}

/// The epoch of the manager run that reads a fuzzed journal (a start time in milliseconds, as
/// the daemon's counter gives): ids of the journal may be below it, at it or above it.
const JOURNAL_EPOCH: u64 = 1_764_633_600_000;

/// The manager's journal (`Control_Cache`), read as a file: reading never panics; the records
/// read, framed again after the magic, read back to themselves with no damage; damage is
/// reported inside the input, at 0 for a file without the magic and after the magic otherwise,
/// and every record before it is kept (the input cut at the damage reads to the same records,
/// undamaged). The records then rebuild a sequencer's state: no panic; its compacted journal
/// reads back undamaged, compacts again (in another sequencer) to a subset of its records,
/// and that compaction compacts to the same bytes; and the manager goes on after recovery
/// (nodes come back, answer, new operations are taken) without a panic.
pub fn journal(data: &[u8]) {
    let replay = journal::read(data);
    let again = journal::read(&journal::file_of(&replay.records));
    assert_eq!(again, Replay { records: replay.records.clone(), damage: None }, "the records do not survive framing");
    match &replay.damage {
        None => assert!(data.is_empty() || data.starts_with(journal::MAGIC), "a file without the magic read undamaged"),
        Some(damage) => {
            let offset = usize::try_from(damage.offset).expect("an offset inside the input");
            assert!(offset < data.len(), "damage at {offset} of {} bytes", data.len());
            if data.starts_with(journal::MAGIC) {
                assert!(offset >= journal::MAGIC.len(), "damage at {offset}, inside the magic");
            } else {
                assert_eq!(offset, 0, "a file without the magic damaged at {offset}");
            }
            let kept = journal::read(&data[..offset]);
            assert_eq!(kept, Replay { records: replay.records.clone(), damage: None }, "the records before the damage differ");
        }
    }
    // The one clock read: the sequencers only ever see this value.
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let first = compacted(now, &replay.records);
    let back = journal::read(&first);
    assert_eq!(back.damage, None, "a compacted journal reads back damaged");
    // Compacting once more may still change a compaction of arbitrary records, which the
    // sequencer never writes: a snapshot record naming one node twice, or one operation id
    // under two commands, or ids out of order. The results buffer keys its eviction order by
    // each command's latest id, which a second restore recomputes from what the first kept,
    // so commands may change places, and of two commands with the same latest id only one
    // stays. Nothing is invented, though, and from the second compaction on it is stable.
    let second = compacted(now, &back.records);
    let back_again = journal::read(&second);
    assert_eq!(back_again.damage, None, "a compacted journal reads back damaged");
    for record in &back_again.records {
        assert!(back.records.contains(record), "compacting a compacted journal invented {record:?}");
    }
    let third = compacted(now, &back_again.records);
    assert_eq!(third, second, "compacting a compacted journal twice changes it");
    restarted(now, &replay.records);
}

/// The journal a fresh manager writes after recovering `records`: one compaction, nothing else.
fn compacted(now: Instant, records: &[JournalRecord]) -> bytes::Bytes {
    let mut sequencer = Sequencer::new(JOURNAL_EPOCH, OpsConfig::default());
    sequencer.recover(now, records);
    while sequencer.poll_output().is_some() {}
    let Some(JournalWrite::Replace(file)) = sequencer.poll_journal() else {
        panic!("recovery wrote no compacted journal");
    };
    assert_eq!(sequencer.poll_journal(), None, "recovery wrote more than its compaction");
    file
}

/// A manager that recovered `records` goes on: the nodes they name come back (at most eight,
/// in the incarnation recorded first), answer what they are sent, the recovery deadline
/// passes and an operation is broadcast. No panic, and every operations message it sends is
/// an `Apply` whose operations are in the node's order.
fn restarted(now: Instant, records: &[JournalRecord]) {
    let mut sequencer = Sequencer::new(JOURNAL_EPOCH, OpsConfig::default());
    sequencer.recover(now, records);
    sequencer.start(now);
    let mut nodes: BTreeMap<&str, (&str, u64)> = BTreeMap::new();
    for record in records {
        if let JournalRecord::Sequenced { nodes: assigned, .. } | JournalRecord::Delivery { nodes: assigned, .. } = record {
            for a in assigned {
                if nodes.len() < 8 || nodes.contains_key(a.node.as_str()) {
                    nodes.entry(&a.node).or_insert((&a.subcluster, a.incarnation));
                }
            }
        }
    }
    for (name, (subcluster, incarnation)) in &nodes {
        let id = MemberId {
            name: (*name).to_owned(),
            addr: SocketAddr::from(([127, 0, 2, 1], 4803)),
            role: Role::Node,
            subcluster: (*subcluster).to_owned(),
            incarnation: *incarnation,
        };
        sequencer.handle_member_up(now, &id);
    }
    if let Some(deadline) = answer_all(now, &mut sequencer) {
        sequencer.handle_timer(now, deadline);
    }
    answer_all(now, &mut sequencer);
    if sequencer.submit(now, "version", Target::Cluster).is_ok() {
        answer_all(now, &mut sequencer);
    }
}

/// Drains a sequencer; every node answers every operation it is sent, until nothing is sent.
/// Returns the latest recovery deadline it set meanwhile (only the latest counts).
fn answer_all(now: Instant, sequencer: &mut Sequencer) -> Option<SequencerTimer> {
    let mut deadline = None;
    loop {
        while sequencer.poll_journal().is_some() {}
        let mut answers: BTreeMap<String, Vec<Answer>> = BTreeMap::new();
        while let Some(output) = sequencer.poll_output() {
            let SequencerOutput::Send { to, payload } = output else {
                if let SequencerOutput::SetTimer { timer: t @ SequencerTimer::RecoveryDeadline(_), .. } = output {
                    deadline = Some(t);
                }
                continue;
            };
            let Ok(OpMessage::Apply { ops, .. }) = OpMessage::decode(&payload) else {
                panic!("the manager sent {to} something other than operations");
            };
            assert!(ops.windows(2).all(|w| w[0].node_seq < w[1].node_seq), "operations out of order for {to}");
            let body = String::new();
            let answered = ops.iter().map(|op| Answer { id: op.id, node_seq: op.node_seq, status: AnswerStatus::Ok, body: body.clone() });
            answers.entry(to).or_default().extend(answered);
        }
        if answers.is_empty() {
            return deadline;
        }
        for (node, answers) in answers {
            let message = OpMessage::Answers { incarnation: 0, answers };
            sequencer.handle_message(now, &node, message).expect("the manager takes answers");
        }
    }
}

/// A runtime for the console's async readers; one per thread, built once.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime =
            tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime");
    }
    RUNTIME.with(|rt| rt.block_on(future))
}

/// The length a frame at the start of `bytes` announces, if its header is complete.
fn announced(bytes: &[u8]) -> Option<u64> {
    let header: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some(u64::from(u32::from_be_bytes(header)))
}

/// The console socket's byte stream, read as requests (by a server) and as replies (by a
/// client): no panic; a frame that was read, or refused recoverably, consumed exactly its
/// header and announced length (the stream stays in step); requests and replies that were
/// read survive writing and reading again.
pub fn console_frame(data: &[u8]) {
    block_on(async {
        let mut rest = data;
        loop {
            let before = rest;
            let result = frame::read_request(&mut rest).await;
            let consumed = (before.len() - rest.len()) as u64;
            match result {
                Ok(None) => {
                    assert!(before.is_empty(), "a clean end reported with {} bytes left", before.len());
                    break;
                }
                Ok(Some(request)) => {
                    assert!(request.len() <= frame::MAX_REQUEST);
                    assert_eq!(Some(consumed - 4), announced(before), "a request frame was not consumed exactly");
                    let mut written = Vec::new();
                    frame::write_request(&mut written, &request).await.expect("writing to memory");
                    let back = frame::read_request(&mut &written[..]).await.expect("a written request reads");
                    assert_eq!(back.as_deref(), Some(request.as_str()));
                }
                Err(error) if error.is_recoverable() => {
                    assert_eq!(Some(consumed - 4), announced(before), "{error}: the stream lost step");
                    if let FrameError::TooLarge { len, limit } = error {
                        assert!(len > limit as u64);
                    }
                }
                Err(FrameError::Truncated { got, expected }) => {
                    assert!(got < expected && got == consumed, "{got} of {expected} after {consumed} bytes");
                    break;
                }
                Err(error) => panic!("reading from memory failed: {error}"),
            }
        }
        let mut rest = data;
        loop {
            let before = rest;
            let result = frame::read_reply(&mut rest).await;
            let consumed = (before.len() - rest.len()) as u64;
            match result {
                Ok(None) => break,
                Ok(Some(reply)) => {
                    assert_eq!(Some(consumed - 4), announced(before), "a reply frame was not consumed exactly");
                    let mut written = Vec::new();
                    frame::write_reply(&mut written, &reply).await.expect("writing to memory");
                    let back: Option<Reply> = frame::read_reply(&mut &written[..]).await.expect("a written reply reads");
                    assert_eq!(back.as_ref(), Some(&reply));
                }
                Err(error) if error.is_recoverable() => {
                    assert_eq!(Some(consumed - 4), announced(before), "{error}: the stream lost step");
                }
                Err(FrameError::Truncated { .. }) => break,
                Err(error) => panic!("reading from memory failed: {error}"),
            }
        }
    });
}

/// Console command lines: splitting never panics; the normalised line splits back into the
/// same words; an unterminated quote is reported at the column of a quote; the cores' command
/// parser takes whatever words come out, for both roles.
pub fn console_line(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match line::parse_line(text) {
        Ok(request) => {
            assert!(!request.words.is_empty());
            // A command whose own first word is a format word (`json xml show`) reads back
            // as a format prefix: that is what nodes see when it is forwarded, by design.
            let prefixed = ["xml", "json"].iter().any(|p| request.words[0].eq_ignore_ascii_case(p));
            if !prefixed {
                let again = line::parse_line(&request.line).expect("a normalised line parses");
                assert_eq!(again.words, request.words, "the normalised line {:?} splits differently", request.line);
                assert_eq!(again.format, line::Format::Text);
            }
            assert_eq!(line::join_words(&request.words), request.line);
            for role in [Role::Manager, Role::Node] {
                let _ = Command::parse(role, &request.words);
            }
        }
        Err(RequestError::UnterminatedQuote { column }) => {
            let at = column.checked_sub(1).and_then(|i| text.chars().nth(i));
            assert_eq!(at, Some('"'), "unterminated quote reported at column {column}");
        }
        Err(RequestError::Empty) => assert!(text.trim().is_empty() || text.chars().all(char::is_whitespace)),
        Err(RequestError::MissingCommand { .. }) => {}
    }
}

/// A directory of files for fuzzed `include`s and scenario `segments` to find: the example
/// DuraVIP configuration, a directory of two files, a file that includes itself, one with a
/// syntax error, one that is not UTF-8, and the two-data-centre segment file. Built once per
/// process.
fn config_fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("eccluster-fuzz-config-{}", std::process::id()));
        let files: [(&str, &[u8]); 7] = [
            ("a.conf", include_bytes!("../../docs/examples/duravip.conf")),
            ("d/1.conf", b"Control_Listener {\n  Listen \"/tmp/2025\" { }\n}\n"),
            ("d/2.conf", b"command \"uptime\" { program = \"/usr/bin/uptime\" }\n"),
            ("cycle.conf", b"include \"cycle.conf\"\n"),
            ("bad.conf", b"cluster {\n  x = ( a b\n"),
            ("latin1.conf", b"name = \"caf\xe9\"\n"),
            ("segments/two-dc.conf", include_bytes!("../../segments/two-dc.conf")),
        ];
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("creating the fixture directory");
            std::fs::write(&path, text).expect("writing a fixture");
        }
        dir
    })
}

/// Number of lines of `text` and the length in characters of line `n` (1-based).
fn line_len(text: &str, n: u32) -> Option<usize> {
    text.split('\n').nth(usize::try_from(n).ok()?.checked_sub(1)?).map(|l| l.chars().count())
}

/// Momentum configuration text (lexer, parser, includes) and the readers of the typed
/// settings: no panic; an error in the text itself names a line and column inside it; a tree
/// printed back parses to the same tree.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let origin = config_fixtures().join("fuzz.conf");
    match config::parse_str(text, &origin) {
        Ok(scope) => {
            let printed = config::render(&scope);
            let again = config::parse_str(&printed, &origin)
                .unwrap_or_else(|e| panic!("the printed tree does not parse: {e}\n{printed}"));
            assert!(again.same_content(&scope), "the printed tree parses differently:\n{printed}");
            typed_settings(&scope);
        }
        Err(error) => check_config_error(text, &origin, &error),
    }
}

/// The readers of typed settings, which only ever see a parsed tree.
fn typed_settings(scope: &Scope) {
    let _ = Registry::from_config(scope);
    let _ = config::duravip::read(scope, &["n1", "n2"]);
}

fn check_config_error(text: &str, origin: &Path, error: &ConfigError) {
    let message = error.to_string();
    let Some(span) = error.span() else { return };
    assert!(span.line >= 1 && span.column >= 1, "{message}: no position");
    assert!(message.contains(&format!("{}:{}", span.line, span.column)), "{message}: the message names no position");
    if span.file.as_path() == origin {
        let len = line_len(text, span.line).unwrap_or_else(|| panic!("{message}: line {} is past the end", span.line));
        assert!(span.column as usize <= len + 1, "{message}: column {} is past the end of the line ({len})", span.column);
    }
}

/// Segment files: no panic; an error names a line and column inside the text; a parsed file
/// printed back parses to the same subclusters, segments and hosts.
pub fn segments(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Segments::parse("fuzz.segments", text) {
        Ok(parsed) => {
            let printed = parsed.render();
            let again = Segments::parse("printed", &printed)
                .unwrap_or_else(|e| panic!("the printed file does not parse: {e}\n{printed}"));
            assert_eq!(lineless(&again), lineless(&parsed), "the printed file parses differently:\n{printed}");
        }
        Err(error) => {
            let at = error.location();
            let message = error.to_string();
            assert!(message.starts_with(&format!("fuzz.segments:{}:{}", at.line, at.column)), "{message}");
            let len = line_len(text, at.line).unwrap_or_else(|| panic!("{message}: line {} is past the end", at.line));
            assert!(at.line >= 1 && at.column >= 1, "{message}");
            assert!(at.column as usize <= len + 1, "{message}: column {} is past the end of the line ({len})", at.column);
        }
    }
}

/// The parsed file without line numbers (printing moves header settings to the top).
fn lineless(s: &Segments) -> Segments {
    let mut s = s.clone();
    for sc in &mut s.subclusters {
        for seg in &mut sc.segments {
            seg.line = 0;
        }
    }
    for host in &mut s.hosts {
        host.line = 0;
    }
    s
}

/// Simulator scenario files: no panic in parsing nor in what a run does with the parsed
/// scenario before it starts (topology, validation against it, end time, tuning, bindings).
pub fn scenario(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let dir = config_fixtures();
    let Ok(scenario) = Scenario::parse(&dir.join("fuzz.toml"), text) else { return };
    let topology = match &scenario.topology {
        TopologySource::Generated { nodes, subclusters } => {
            // Large generated clusters are the simulator's business, not the parser's.
            if *nodes < 2 || *nodes > 64 || subclusters.len() > *nodes {
                return;
            }
            let k = subclusters.len();
            let counts: Vec<(String, usize)> =
                subclusters.iter().enumerate().map(|(i, s)| (s.clone(), nodes / k + usize::from(i < nodes % k))).collect();
            Topology::generate(&counts)
        }
        TopologySource::Segments(path) => {
            let Ok(text) = std::fs::read_to_string(path) else { return };
            let Ok(segments) = Segments::parse("segments", &text) else { return };
            Topology::from_segments(&segments)
        }
    };
    let n = topology.len();
    let end = scenario.end(n);
    if scenario.validate(&topology, end).is_err() {
        return;
    }
    let _ = scenario.membership.config(n).to_foca();
    if let Some(spec) = &scenario.duravip {
        let _ = spec.resolve(&topology);
    }
}

/// ecconfigd's inputs from the network and its users file, and the names eccfg parses: the
/// bytes as a commit body (`CommitRequest`) through the checks a commit runs before any lock
/// (`store::check_changes`: names, placement, bounds, `.conf` syntax), as a users file
/// (`Users::parse`), as a server endpoint and as a key fingerprint.
pub fn confrepo(data: &[u8]) {
    use eccluster::confrepo::{cert, client::Endpoint, path, store, users::Users, wire::CommitRequest};
    if let Ok(request) = serde_json::from_slice::<CommitRequest>(data) {
        for changes in &request.repos {
            match store::check_changes(changes) {
                Ok(count) => {
                    assert_eq!(count, changes.changes.len());
                    for change in &changes.changes {
                        let p = &change.path;
                        let checked = path::RepoPath::parse(p).unwrap_or_else(|e| panic!("accepted {p:?}: {e}"));
                        assert!(
                            !p.starts_with('/') && !p.split('/').any(|c| c.is_empty() || c == ".." || c.starts_with('.')),
                            "accepted a path that leaves the repository or reaches hidden files: {p:?}"
                        );
                        assert!(path::check_placement(&changes.repo, &checked).is_ok(), "{p:?} in {}", changes.repo);
                    }
                }
                Err(store::StoreError::Invalid(detail)) => {
                    assert!(detail.message.starts_with(&format!("{}:", detail.path)), "{}", detail.message);
                    assert!(detail.line.is_some_and(|l| l >= 1) && detail.column.is_some_and(|c| c >= 1), "{}", detail.message);
                }
                Err(_) => {}
            }
        }
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(users) = Users::parse(text, "fuzz.users") {
        for name in users.names() {
            assert!(path::check_user_name(name).is_ok(), "accepted user name {name:?}");
        }
    }
    if let Ok(endpoint) = Endpoint::parse(text) {
        let shown = endpoint.to_string();
        assert_eq!(Endpoint::parse(&shown).as_ref(), Ok(&endpoint), "{text:?} shown as {shown:?}");
    }
    if let Ok(fingerprint) = cert::normalise_fingerprint(text) {
        assert_eq!(cert::normalise_fingerprint(&fingerprint).ok().as_ref(), Some(&fingerprint));
    }
}
