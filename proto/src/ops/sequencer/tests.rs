use std::net::SocketAddr;

use super::*;
use crate::ops::Answer;

fn node(name: &str) -> MemberId {
    MemberId {
        name: name.to_owned(),
        addr: SocketAddr::from(([127, 0, 0, 1], 4803)),
        role: Role::Node,
        subcluster: "east".into(),
        incarnation: 1,
    }
}

fn sent_ops(seq: &mut Sequencer) -> Vec<Op> {
    let mut ops = Vec::new();
    while let Some(output) = seq.poll_output() {
        if let SequencerOutput::Send { payload, .. } = output {
            if let Ok(OpMessage::Apply { ops: sent, .. }) = OpMessage::decode(&payload) {
                ops.extend(sent);
            }
        }
    }
    ops
}

#[test]
fn a_journal_of_the_last_epoch_is_delivered_and_new_ids_still_follow_it() {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let last = OpId { epoch: u64::MAX, seq: 7 };
    let a = Assigned { node: "a".into(), subcluster: "east".into(), incarnation: 1, node_seq: 3 };
    let records = [JournalRecord::Delivery { id: last, command: "version".into(), nodes: vec![a] }];
    let mut seq = Sequencer::new(1_764_633_600_000, OpsConfig::default()).with_cluster_nodes(1);
    seq.recover(now, &records);
    seq.start(now);
    seq.handle_member_up(now, &node("a"));
    let recovered = sent_ops(&mut seq);
    assert_eq!(recovered, [Op { id: last, node_seq: 3, command: "version".into() }]);
    // No epoch comes after the last one: the run continues the journal's sequence in it,
    // and the node's order goes on after the recovered operation.
    let id = seq.submit(now, "uptime", Target::Cluster).expect("taken").id;
    assert_eq!(id, OpId { epoch: u64::MAX, seq: 8 });
    assert_eq!(sent_ops(&mut seq), [Op { id, node_seq: 4, command: "uptime".into() }]);
}

#[test]
fn after_the_very_last_id_new_operations_are_refused() {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut seq = Sequencer::new(1, OpsConfig::default()).with_cluster_nodes(1);
    seq.recover(now, &[JournalRecord::Latest(OpId { epoch: u64::MAX, seq: u64::MAX })]);
    seq.start(now);
    seq.handle_member_up(now, &node("a"));
    assert_eq!(seq.submit(now, "uptime", Target::Cluster), Err(OpsError::IdsExhausted));
    assert!(sent_ops(&mut seq).is_empty());
}

#[test]
fn a_recovered_operation_at_the_last_place_of_a_node_is_delivered_without_overflow() {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let old = OpId { epoch: 5, seq: 1 };
    let a = Assigned { node: "a".into(), subcluster: "east".into(), incarnation: 1, node_seq: u64::MAX };
    let records = [JournalRecord::Delivery { id: old, command: "version".into(), nodes: vec![a.clone()] }];
    let mut seq = Sequencer::new(9, OpsConfig::default()).with_cluster_nodes(1);
    seq.recover(now, &records);
    seq.start(now);
    seq.handle_member_up(now, &node("a"));
    assert_eq!(sent_ops(&mut seq), [Op { id: old, node_seq: u64::MAX, command: "version".into() }]);
    let answer = Answer { id: old, node_seq: u64::MAX, status: AnswerStatus::Ok, body: String::new() };
    seq.handle_message(now, "a", OpMessage::Answers { incarnation: 1, answers: vec![answer] }).expect("an answer");
    // The new epoch starts the node's order afresh.
    let id = seq.submit(now, "uptime", Target::Cluster).expect("taken").id;
    assert_eq!(sent_ops(&mut seq), [Op { id, node_seq: 1, command: "uptime".into() }]);
    // In the last epoch the order cannot start afresh: no place is left after the last.
    let last = OpId { epoch: u64::MAX, seq: 1 };
    let records = [JournalRecord::Delivery { id: last, command: "version".into(), nodes: vec![a] }];
    let mut seq = Sequencer::new(9, OpsConfig::default()).with_cluster_nodes(1);
    seq.recover(now, &records);
    seq.start(now);
    seq.handle_member_up(now, &node("a"));
    assert_eq!(sent_ops(&mut seq).len(), 1);
    let answer = Answer { id: last, node_seq: u64::MAX, status: AnswerStatus::Ok, body: String::new() };
    seq.handle_message(now, "a", OpMessage::Answers { incarnation: 1, answers: vec![answer] }).expect("an answer");
    assert_eq!(seq.submit(now, "uptime", Target::Cluster), Err(OpsError::IdsExhausted));
    assert!(sent_ops(&mut seq).is_empty());
}
