//! Durable operations through node cores: a manager killed while consoles broadcast comes back
//! from its journal and delivers every acknowledged operation exactly once, in order, before
//! anything new; a torn journal keeps every complete record; the results buffer and the
//! journal stay bounded; a broadcast is never "ok" with no target; an answer that arrives after
//! its node was declared down is recorded, and the node's new sequence runs.

use std::collections::BTreeMap;

use super::harness::*;
use crate::error::OpsError;
use crate::node::{CommandError, Reply};
use crate::ops::{journal, OpId, OpsConfig, ResultStatus, ResultsLimits};

const FOUR: &[&str] = &["east1", "east2", "west1", "west2"];

fn cluster(seed: u64, ops: OpsConfig) -> Cluster {
    let mut c = Setup::new(FOUR, seed).ops(ops).start();
    c.run_for(secs(3));
    assert_eq!(c.core("mgr").sequencer().expect("a manager").live_nodes().count(), 4);
    c
}

/// Submits `line` at the manager; the id and targets if it was acknowledged.
fn acked(c: &mut Cluster, line: &str) -> Option<(OpId, Vec<String>)> {
    let r = c.console("mgr", line);
    match c.reply(r) {
        Ok(Reply::Submitted { id, targets, .. }) => Some((*id, targets.clone())),
        Ok(other) => panic!("unexpected reply {other:?}"),
        Err(_) => None,
    }
}

#[test]
fn a_killed_manager_delivers_every_acknowledged_operation_exactly_once_in_order() {
    for seed in 0..12 {
        let mut c = cluster(seed, OpsConfig::default());
        c.net.jitter = ms(3);
        for n in FOUR {
            c.members.get_mut(*n).expect("a node").answering = Answering::After(ms(7));
        }
        let mut expected: BTreeMap<String, Vec<OpId>> = BTreeMap::new();
        let mut refused = 0;
        for i in 0..300 {
            if i == 90 || i == 200 {
                // kill -9 while operations are in flight, and start again at once.
                c.crash("mgr");
                c.run_for(ms(5));
                c.start("mgr");
            }
            let line = match i % 3 {
                0 => format!("broadcast cmd {i}"),
                1 => format!("subcluster broadcast east cmd {i}"),
                _ => format!("unicast west2 cmd {i}"),
            };
            match acked(&mut c, &line) {
                Some((id, targets)) => {
                    for t in targets {
                        expected.entry(t).or_default().push(id);
                    }
                }
                None => refused += 1,
            }
            c.run_for(ms(4));
        }
        c.run_for(secs(40));
        assert!(refused > 0, "seed {seed}: the restarted manager took operations before recovering");
        for (node, ids) in &expected {
            assert_eq!(&c.members[node].applied, ids, "seed {seed}: {node} applied another sequence");
        }
        // Every acknowledged operation's answers are in the results buffer, old epochs too.
        let seq = c.core("mgr").sequencer().expect("a manager");
        for (node, ids) in &expected {
            for id in ids {
                let command = seq.results().command_of(*id).expect("still referenced");
                let row = seq.results().retrieve_node(node, command).expect("a row");
                assert_eq!(row.result.status, ResultStatus::Ok, "seed {seed}: {id} at {node}");
            }
        }
        assert!(!seq.recovering());
    }
}

#[test]
fn a_torn_journal_keeps_every_complete_record_and_is_rewritten_whole() {
    let mut c = cluster(3, OpsConfig::default());
    for i in 0..5 {
        acked(&mut c, &format!("broadcast step {i}")).expect("acknowledged");
        c.run_for(ms(50));
    }
    let whole = c.members["mgr"].disk.clone();
    let records = journal::read(&whole).records.len();
    assert!(records >= 5 * 5, "sequenced and answered records: {records}");
    // The last write was torn by the crash: half a frame, then garbage.
    c.crash("mgr");
    let disk = &mut c.members.get_mut("mgr").expect("the manager").disk;
    disk.truncate(whole.len() - 3);
    disk.extend_from_slice(&[0xde, 0xad]);
    c.start("mgr");
    let damage = c.members["mgr"].damage.clone().expect("damage reported");
    assert!(damage.offset > journal::MAGIC.len() as u64 && damage.offset < whole.len() as u64, "{damage:?}");
    c.run_for(secs(3));
    // Everything before the torn record is back; the file is whole again.
    let r = c.console("mgr", "retrieve step 3");
    match c.reply(r) {
        Ok(Reply::Retrieved { rows, .. }) => {
            assert_eq!(rows.len(), 4);
            assert!(rows.iter().all(|r| r.result.status == ResultStatus::Ok), "{rows:?}");
        }
        other => panic!("expected rows, got {other:?}"),
    }
    assert_eq!(journal::read(&c.members["mgr"].disk).damage, None);
    acked(&mut c, "broadcast after").expect("new operations are taken");
    // A file that is no journal at all is reported at offset 0 and replaced.
    c.crash("mgr");
    c.members.get_mut("mgr").expect("the manager").disk = b"garbage, not a journal".to_vec();
    c.start("mgr");
    assert_eq!(c.members["mgr"].damage.as_ref().map(|d| d.offset), Some(0));
    assert_eq!(journal::read(&c.members["mgr"].disk).damage, None);
}

#[test]
fn the_results_buffer_and_the_journal_stay_bounded_and_flush_empties_both() {
    let limits = ResultsLimits { max_entries: 1_000, max_bytes: 2 << 20 };
    let mut c = cluster(4, OpsConfig { results: limits, ..OpsConfig::default() });
    let big = "x".repeat(60_000);
    let mut largest_disk = 0;
    for i in 0..300 {
        acked(&mut c, &format!("broadcast echo {i} {big}")).expect("acknowledged");
        c.run_for(ms(20));
        let results = c.core("mgr").sequencer().expect("a manager").results();
        assert!(results.bytes() <= limits.max_bytes, "{} bytes after {i}", results.bytes());
        largest_disk = largest_disk.max(c.members["mgr"].disk.len());
    }
    // Results of 60 KB commands on four nodes: kept to the bound, the oldest gone.
    let results = c.core("mgr").sequencer().expect("a manager").results();
    assert!(results.evicted() > 250, "evicted {}", results.evicted());
    assert!(results.retrieve(&format!("echo 299 {big}")).is_some());
    assert!(results.retrieve(&format!("echo 0 {big}")).is_none());
    // The journal is compacted: never much more than twice the bound, not 300 x 5 x 60 KB.
    assert!(largest_disk < 3 * limits.max_bytes + (1 << 20), "journal reached {largest_disk} bytes");
    // After a restart the buffer is the same, and flush empties it for good.
    let before = results.len();
    c.start("mgr");
    c.run_for(secs(3));
    assert_eq!(c.core("mgr").sequencer().expect("a manager").results().len(), before);
    let r = c.console("mgr", "flush control cache");
    assert_eq!(c.reply(r), &Ok(Reply::Flushed(before)));
    c.start("mgr");
    c.run_for(secs(3));
    assert!(c.core("mgr").sequencer().expect("a manager").results().is_empty(), "the flush was journaled");
}

#[test]
fn a_broadcast_is_never_ok_without_targets() {
    // The manager starts alone: while its view forms it refuses, then it says nobody is live.
    let mut c = Setup::new(FOUR, 5).stopped(FOUR).start();
    let r = c.console("mgr", "broadcast version");
    assert_eq!(c.reply(r), &Err(CommandError::Ops(OpsError::ViewForming { up: 0, nodes: 4 })));
    c.run_for(secs(4));
    let r = c.console("mgr", "broadcast version");
    assert_eq!(c.reply(r), &Err(CommandError::Ops(OpsError::NoLiveNodes)));
    // With part of the cluster up the view is formed once the settle time has passed.
    c.start("east1");
    c.start("west1");
    c.run_for(secs(2));
    let (_, targets) = acked(&mut c, "broadcast version").expect("acknowledged");
    assert_eq!(targets, ["east1", "west1"]);
    // A manager restarted next to a full cluster takes operations once it sees every node.
    let mut c = cluster(6, OpsConfig::default());
    c.start("mgr");
    let r = c.console("mgr", "broadcast version");
    assert!(matches!(c.reply(r), Err(CommandError::Ops(OpsError::ViewForming { .. }))), "{:?}", c.reply(r));
    c.run_for(secs(2));
    let (_, targets) = acked(&mut c, "broadcast version").expect("acknowledged");
    assert_eq!(targets, FOUR);
}

#[test]
fn an_answer_after_the_node_was_declared_down_is_recorded_and_its_new_sequence_runs() {
    let mut c = cluster(7, OpsConfig::default());
    c.members.get_mut("west1").expect("a node").answering = Answering::After(secs(2));
    let (id, _) = acked(&mut c, "unicast west1 slow job").expect("acknowledged");
    c.run_for(ms(100));
    assert_eq!(c.members["west1"].applied, [id], "running");
    // SIGSTOP while the command runs, long enough to be declared down; then SIGCONT.
    c.freeze("west1");
    c.run_for(secs(10));
    let seq = c.core("mgr").sequencer().expect("a manager");
    assert_eq!(seq.results().retrieve_node("west1", "slow job").expect("row").result.status, ResultStatus::NodeLeft);
    c.thaw("west1");
    c.run_for(secs(5));
    let row = c.core("mgr").sequencer().expect("a manager").results().retrieve_node("west1", "slow job").expect("row");
    assert_eq!(row.result.status, ResultStatus::Ok, "the late answer is what ran");
    assert_eq!(row.result.body, "west1 ran slow job");
    // The node rejoined under a new incarnation: its new sequence runs from its first place.
    c.members.get_mut("west1").expect("a node").answering = Answering::AtOnce;
    let (next, _) = acked(&mut c, "unicast west1 next").expect("acknowledged");
    c.run_for(ms(200));
    assert_eq!(c.members["west1"].applied, [id, next]);
    let row = c.core("mgr").sequencer().expect("a manager").results().retrieve_node("west1", "next").expect("row");
    assert_eq!(row.result.status, ResultStatus::Ok, "{:?}", row.result);
}

#[test]
fn operations_for_nodes_a_killed_manager_had_declared_down_reach_them_when_they_are_back() {
    for seed in 0..6 {
        let mut c = cluster(seed, OpsConfig::default());
        let incarnations: Vec<u64> = FOUR.iter().map(|n| c.core(n).identity().incarnation).collect();
        // The manager's cable is out: it acknowledges operations it cannot deliver, then
        // declares every node down. The nodes stay up among themselves.
        c.isolate("mgr");
        let (one, _) = acked(&mut c, "unicast west2 one").expect("acknowledged");
        let (two, targets) = acked(&mut c, "broadcast two").expect("acknowledged");
        assert_eq!(targets, FOUR);
        c.run_for(secs(10));
        let seq = c.core("mgr").sequencer().expect("a manager");
        assert_eq!(seq.live_nodes().count(), 0, "seed {seed}: the manager declared every node down");
        assert_eq!(seq.results().retrieve_node("west2", "one").expect("row").result.status, ResultStatus::NodeLeft);
        // kill -9 and a new run, still cut off (on odd seeds twice: the second run reads the
        // first one's compacted journal); the cable comes back much later.
        for _ in 0..1 + seed % 2 {
            c.crash("mgr");
            c.run_for(ms(5));
            c.start("mgr");
            c.run_for(secs(4));
            // What is kept for nodes declared down does not hold up new operations.
            assert!(!c.core("mgr").sequencer().expect("a manager").recovering(), "seed {seed}");
        }
        // Away for longer than the answer timeout: still kept for them.
        c.run_for(OpsConfig::default().answer_timeout + secs(5));
        c.heal();
        c.run_for(secs(6));
        let now: Vec<u64> = FOUR.iter().map(|n| c.core(n).identity().incarnation).collect();
        assert_eq!(now, incarnations, "seed {seed}: no node restarted or renewed");
        let (three, targets) = acked(&mut c, "broadcast three").expect("acknowledged after the nodes are back");
        assert_eq!(targets, FOUR);
        c.run_for(secs(2));
        for n in FOUR {
            let expected = if *n == "west2" { vec![one, two, three] } else { vec![two, three] };
            assert_eq!(c.members[*n].applied, expected, "seed {seed}: {n} runs what it was acknowledged for, once, in order");
        }
        let seq = c.core("mgr").sequencer().expect("a manager");
        for (command, nodes) in [("one", &["west2"][..]), ("two", FOUR), ("three", FOUR)] {
            for n in nodes {
                let row = seq.results().retrieve_node(n, command).expect("a row");
                assert_eq!(row.result.status, ResultStatus::Ok, "seed {seed}: {command} at {n}");
            }
        }
        assert!(!seq.recovering());
    }
}

#[test]
fn while_the_journal_cannot_be_written_new_operations_are_refused_and_nothing_is_journaled() {
    let mut c = cluster(8, OpsConfig::default());
    let (first, _) = acked(&mut c, "broadcast version").expect("acknowledged");
    c.run_for(ms(200));
    let disk = c.members["mgr"].disk.len();
    let fault = "appending to control_cache: No space left on device (os error 28)".to_owned();
    let at = c.at();
    let mgr = c.members.get_mut("mgr").expect("the manager").core.as_mut().expect("running");
    mgr.journal_failed(at, Some(fault.clone()));
    for line in ["broadcast version", "subcluster broadcast west version", "unicast east1 version"] {
        let r = c.console("mgr", line);
        assert_eq!(c.reply(r), &Err(CommandError::Ops(OpsError::JournalUnwritable(fault.clone()))), "{line}");
    }
    c.run_for(ms(200));
    assert_eq!(c.members["mgr"].disk.len(), disk, "a refused operation journals nothing");
    for n in FOUR {
        assert_eq!(c.members[*n].applied, [first], "{n} ran only the operation taken before");
    }
    // Written again: operations are taken again.
    let at = c.at();
    let mgr = c.members.get_mut("mgr").expect("the manager").core.as_mut().expect("running");
    mgr.journal_failed(at, None);
    let (second, targets) = acked(&mut c, "broadcast version").expect("acknowledged");
    assert_eq!(targets, FOUR);
    c.run_for(ms(200));
    for n in FOUR {
        assert_eq!(c.members[*n].applied, [first, second]);
    }
}
