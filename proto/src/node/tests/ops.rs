//! Ordered operations through node cores: the manager's sequencer and the nodes' appliers
//! over the harness's network — targets fixed when an operation is sequenced, answers kept
//! for `retrieve`, each operation applied once and in order despite lost, duplicated and
//! reordered messages, nodes that die or restart before answering, a manager restart, and
//! commands that take time running one at a time.

use std::collections::BTreeMap;

use super::harness::*;
use super::refusal;
use crate::error::OpsError;
use crate::membership::ClusterEvent;
use crate::node::{Channel, CommandError, Reply};
use crate::ops::{Op, OpId, OpMessage, ResultStatus, RetrieveRow};

const THREE: &[&str] = &["east1", "east2", "west1"];

/// A manager and the nodes `THREE` (east1 and east2 in subcluster east, west1 in west), run
/// until the manager's sequencer knows every node.
fn three(seed: u64) -> Cluster {
    let mut c = Setup::new(THREE, seed).subcluster("east", &["east1", "east2"]).subcluster("west", &["west1"]).start();
    c.run_for(secs(3));
    let live: Vec<&str> = c.core("mgr").sequencer().expect("a manager").live_nodes().map(|(n, _)| n).collect();
    assert_eq!(live, THREE);
    c
}

fn rows(c: &Cluster, request: u64) -> Vec<RetrieveRow> {
    match c.reply(request) {
        Ok(Reply::Retrieved { rows, .. }) => rows.clone(),
        other => panic!("expected rows, got {other:?}"),
    }
}

fn status(rows: &[RetrieveRow], node: &str) -> ResultStatus {
    rows.iter().find(|r| r.node == node).expect("a row").result.status
}

#[test]
fn a_broadcast_reaches_every_live_node_once_and_its_answers_are_retrievable_until_flushed() {
    let mut c = three(1);
    let r = c.console("mgr", "broadcast version");
    let (id, targets) = c.submitted(r);
    assert_eq!(id, OpId { epoch: 1, seq: 1 });
    assert_eq!(targets, THREE);
    c.run_for(ms(100));
    for n in THREE {
        assert_eq!(c.members[*n].applied, vec![id], "{n}");
    }
    assert_eq!(c.members["mgr"].completed, vec![id]);
    let r = c.console("mgr", "retrieve version");
    let answers = rows(&c, r);
    assert_eq!(answers.len(), 3);
    for row in &answers {
        assert_eq!(row.result.status, ResultStatus::Ok);
        assert_eq!(row.result.body, format!("{} ran version", row.node));
    }
    let r = c.console("mgr", "flush control cache");
    assert_eq!(c.reply(r), &Ok(Reply::Flushed(3)));
    let r = c.console("mgr", "retrieve version");
    assert_eq!(c.reply(r), &Err(CommandError::NotSent("version".into())));
    let r = c.console("mgr", "subcluster broadcast north version");
    assert_eq!(refusal(&c, r), "no subcluster named north");
}

#[test]
fn subcluster_broadcast_and_unicast_target_exactly_their_nodes() {
    let mut c = three(2);
    let r = c.console("mgr", "subcluster broadcast east fail now");
    let (s, targets) = c.submitted(r);
    assert_eq!(targets, ["east1", "east2"]);
    let r = c.console("mgr", "unicast west1 version");
    let (u, _) = c.submitted(r);
    c.run_for(ms(100));
    assert_eq!(c.members["west1"].applied, vec![u]);
    assert_eq!(c.members["east1"].applied, vec![s]);
    assert_eq!(c.members["east2"].applied, vec![s]);
    let r = c.console("mgr", "subcluster retrieve east fail now");
    let east = rows(&c, r);
    assert_eq!(east.len(), 2);
    assert!(east.iter().all(|r| r.result.status == ResultStatus::Error), "{east:?}");
    let r = c.console("mgr", "subcluster retrieve west fail now");
    assert!(matches!(c.reply(r), Err(CommandError::NotSentTo { .. })), "{:?}", c.reply(r));
    let r = c.console("mgr", "retrieve_node west1 version");
    assert_eq!(status(&rows(&c, r), "west1"), ResultStatus::Ok);
    let r = c.console("mgr", "unicast nobody x");
    assert_eq!(c.reply(r), &Err(CommandError::NotAHost("nobody".into())));
    let r = c.console("mgr", "unicast mgr version");
    assert_eq!(c.reply(r), &Err(CommandError::NotANode("mgr".into())), "the manager is live, but no node");
    // A host of the segment file that is down is no target either, nor a subcluster whose
    // only node is down.
    c.crash("west1");
    c.run_for(secs(5));
    let r = c.console("mgr", "unicast west1 x");
    assert_eq!(c.reply(r), &Err(CommandError::Ops(OpsError::NotAMember("west1".into()))));
    let r = c.console("mgr", "subcluster broadcast west x");
    assert_eq!(c.reply(r), &Err(CommandError::Ops(OpsError::NoLiveNode("west".into()))));
}

#[test]
fn lossy_duplicating_reordering_streams_still_apply_each_op_once_in_order() {
    for seed in 0..20 {
        let mut c = three(seed);
        c.net.stream_loss = 0.3;
        c.net.stream_duplicate = 0.2;
        c.net.jitter = ms(5);
        for n in THREE {
            c.members.get_mut(*n).expect("a node").answering = Answering::After(ms(2));
        }
        let started = c.now;
        let mut expected: BTreeMap<String, Vec<OpId>> = BTreeMap::new();
        let mut sent: Vec<(String, Vec<String>)> = Vec::new();
        for i in 0..200 {
            let line = match i % 3 {
                0 => format!("broadcast cmd {i}"),
                1 => format!("subcluster broadcast east cmd {i}"),
                _ => format!("unicast west1 cmd {i}"),
            };
            let r = c.console("mgr", &line);
            let (id, targets) = c.submitted(r);
            for t in &targets {
                expected.entry(t.clone()).or_default().push(id);
            }
            sent.push((format!("cmd {i}"), targets));
            if i % 7 == 0 {
                c.run_for(ms(3));
            }
        }
        c.run_for(secs(60));
        for (name, ids) in &expected {
            assert_eq!(&c.members[name].applied, ids, "seed {seed}: {name} applied a different sequence");
            let applier: Vec<OpId> = c.core(name).applier().expect("a node").applied().copied().collect();
            assert_eq!(&applier, ids, "seed {seed}: {name}");
        }
        let seq = c.core("mgr").sequencer().expect("a manager");
        assert_eq!(seq.in_flight(), 0, "seed {seed}: operations left incomplete");
        // Every answer reached the manager: those lost on the way were sent again when the
        // operation was (answered from memory, not run again).
        for (command, targets) in &sent {
            for t in targets {
                let row = seq.results().retrieve_node(t, command).expect("sent");
                assert_eq!(row.result.status, ResultStatus::Ok, "seed {seed}: {command} at {t}");
            }
        }
        // Only the streams were faulty: membership never lost anyone, so every operation
        // reached all its targets.
        for n in c.members.keys() {
            let downs = c.events_since(n, started, |e| matches!(e, ClusterEvent::MemberDown(_))).count();
            assert_eq!(downs, 0, "seed {seed}: {n} declared someone down");
        }
    }
}

#[test]
fn ops_unanswered_by_nodes_that_die_or_restart_are_node_left_and_by_silent_ones_no_answer() {
    let mut c = three(4);
    for n in THREE {
        c.members.get_mut(*n).expect("a node").answering = Answering::Never;
    }
    let r = c.console("mgr", "broadcast version");
    let (id, _) = c.submitted(r);
    let submitted = c.now;
    c.run_for(ms(10));
    assert!(THREE.iter().all(|n| c.members[*n].applied == [id]), "every node is running it");
    c.crash("east2");
    c.start("west1");
    c.run_for(secs(6));
    let r = c.console("mgr", "retrieve version");
    let before = rows(&c, r);
    assert_eq!(status(&before, "east2"), ResultStatus::NodeLeft);
    assert_eq!(status(&before, "west1"), ResultStatus::NodeLeft);
    assert_eq!(status(&before, "east1"), ResultStatus::Pending);
    assert!(c.members["mgr"].completed.is_empty(), "east1 may still answer");
    c.run_for(secs(31) - (c.now - submitted));
    let r = c.console("mgr", "retrieve version");
    assert_eq!(status(&rows(&c, r), "east1"), ResultStatus::NoAnswer);
    assert_eq!(c.members["mgr"].completed, vec![id]);
    // The restarted node has a fresh per-node sequence, and its answers arrive again.
    c.members.get_mut("west1").expect("a node").answering = Answering::AtOnce;
    let r = c.console("mgr", "unicast west1 again");
    let (u, _) = c.submitted(r);
    c.run_for(ms(100));
    assert_eq!(c.members["west1"].applied, vec![u]);
    let r = c.console("mgr", "retrieve_node west1 again");
    assert_eq!(status(&rows(&c, r), "west1"), ResultStatus::Ok);
}

#[test]
fn a_restarted_manager_delivers_what_it_acknowledged_before_anything_of_its_new_epoch() {
    let mut c = three(5);
    let r = c.console("mgr", "broadcast version");
    let (first, _) = c.submitted(r);
    c.run_for(ms(100));
    // The manager's next operation is held up on its way to east1; before it arrives the
    // manager restarts, with a larger epoch. It was acknowledged, so the new run delivers it
    // (from the journal, under its own id) before its own first operation.
    c.delay("mgr", "east1", secs(5));
    let r = c.console("mgr", "broadcast late");
    let (late, _) = c.submitted(r);
    c.run_for(ms(100));
    c.heal();
    c.start("mgr");
    c.run_for(secs(3));
    let r = c.console("mgr", "broadcast version");
    let (second, _) = c.submitted(r);
    assert_eq!(second, OpId { epoch: 2, seq: 1 });
    assert!(second > late);
    c.run_for(secs(3));
    // The old run's copy still arrives at east1 afterwards: it is answered from memory, not
    // applied again.
    for n in THREE {
        assert_eq!(c.members[*n].applied, vec![first, late, second], "{n}");
    }
    // Nor is a copy of one it already applied.
    let stale = OpMessage::Apply { incarnation: 1, ops: vec![Op { id: first, node_seq: 1, command: "version".into() }] };
    c.inject("mgr", "east2", Channel::Stream, stale.encode().expect("encodes"));
    c.run_for(ms(100));
    assert_eq!(c.members["east2"].applied, vec![first, late, second]);
    let r = c.console("mgr", "retrieve late");
    assert!(rows(&c, r).iter().all(|row| row.result.status == ResultStatus::Ok), "answers of the old run are kept");
}

#[test]
fn operations_run_one_at_a_time_in_order_while_their_commands_take_time() {
    let mut c = three(6);
    for n in THREE {
        c.members.get_mut(*n).expect("a node").answering = Answering::After(ms(500));
    }
    let ids: Vec<OpId> = ["one", "two", "three"]
        .iter()
        .map(|cmd| {
            let r = c.console("mgr", &format!("broadcast {cmd}"));
            c.submitted(r).0
        })
        .collect();
    c.run_for(ms(100));
    for n in THREE {
        let applier = c.core(n).applier().expect("a node");
        assert_eq!(applier.running().map(|op| op.id), Some(ids[0]), "{n}");
        assert_eq!(applier.waiting(), 2, "{n}");
        assert_eq!(c.members[*n].applied, ids[..1], "{n}");
    }
    c.run_for(ms(500));
    assert!(THREE.iter().all(|n| c.members[*n].applied == ids[..2]));
    c.run_for(secs(2));
    assert!(THREE.iter().all(|n| c.members[*n].applied == ids));
    assert_eq!(c.members["mgr"].completed, ids);
}

#[test]
fn a_node_only_the_manager_declared_down_goes_on_with_its_sequence_and_gets_what_it_missed() {
    let mut c = three(7);
    for n in THREE {
        c.members.get_mut(*n).expect("a node").answering = Answering::After(secs(12));
    }
    let r = c.console("mgr", "broadcast first");
    let (first, _) = c.submitted(r);
    c.run_for(ms(10));
    // The manager's cable is out long enough for it to declare every node down; the nodes,
    // among themselves, stay up and keep their incarnations.
    let incarnations: Vec<u64> = THREE.iter().map(|n| c.core(n).identity().incarnation).collect();
    c.isolate("mgr");
    c.run_for(secs(10));
    assert!(c.saw_down("mgr", "west1", std::time::Duration::ZERO).is_some(), "the manager declared west1 down");
    let r = c.console("mgr", "retrieve first");
    assert_eq!(status(&rows(&c, r), "west1"), ResultStatus::NodeLeft);
    c.heal();
    c.run_for(secs(5));
    let now: Vec<u64> = THREE.iter().map(|n| c.core(n).identity().incarnation).collect();
    assert_eq!(now, incarnations, "no node restarted or renewed");
    let r = c.console("mgr", "broadcast second");
    let (second, targets) = c.submitted(r);
    assert_eq!(targets, THREE);
    c.run_for(secs(13));
    for n in THREE {
        assert_eq!(c.members[*n].applied, vec![first, second], "{n} runs what it was acknowledged for, once, in order");
    }
    for command in ["first", "second"] {
        let r = c.console("mgr", &format!("retrieve {command}"));
        assert!(rows(&c, r).iter().all(|row| row.result.status == ResultStatus::Ok), "{command}: every answer recorded");
    }
}
