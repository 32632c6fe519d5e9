//! Ordered cluster-wide operations: the manager's [`Sequencer`] gives every console
//! operation an [`OpId`] and delivers it to its targets; each node's [`Applier`] runs the
//! operations addressed to it strictly in order, exactly once, and answers; the manager keeps
//! the answers in its [`Results`] buffer. No I/O here.
//!
//! # Ordering and exactly-once
//!
//! Ids are `(epoch, seq)`: the epoch is stored by the manager and grows on every restart, the
//! sequence grows with every operation, so ids are totally ordered across restarts. Each
//! target also gets a dense per-node sequence (`node_seq`, 1, 2, 3, … within one epoch and
//! one incarnation of the node): a node runs `node_seq = n` only after `n - 1`, so a gap is
//! filled (by retransmission) before anything after it runs, and a retransmitted operation
//! whose `node_seq` was already run is answered again from memory, not run again.
//!
//! # Across a manager restart
//!
//! The manager journals every operation before acknowledging or sending it (see
//! [`journal`]); a new run replays the journal and delivers what was not answered under the
//! original ids and per-node places before it takes new operations, so the per-node order and
//! the deduplication above carry over (see [`Sequencer`]).

mod applier;
pub mod journal;
mod results;
mod sequencer;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::DecodeError;
use crate::wire::{self, Kind};

pub use self::applier::{Applier, ApplierOutput};
pub use self::results::{LatestCommand, NodeResult, ResultStatus, Results, ResultsLimits, RetrieveRow};
pub use self::sequencer::{Sequencer, SequencerOutput, SequencerTimer, Submitted};

/// The id of an operation: manager epoch, then sequence within the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId {
    /// The manager's epoch (grows on every manager start).
    pub epoch: u64,
    /// The sequence number within the epoch, from 1.
    pub seq: u64,
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.epoch, self.seq)
    }
}

/// Who an operation is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Target {
    /// Every live node of the cluster.
    Cluster,
    /// Every live node of one subcluster.
    Subcluster(String),
    /// One node.
    Node(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Cluster => f.write_str("cluster"),
            Target::Subcluster(s) => write!(f, "subcluster {s}"),
            Target::Node(n) => write!(f, "node {n}"),
        }
    }
}

/// One operation as delivered to one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The operation's id.
    pub id: OpId,
    /// Dense per-node sequence within (epoch, node incarnation), from 1.
    pub node_seq: u64,
    /// The console command to run.
    pub command: String,
}

/// Whether a node's command succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnswerStatus {
    /// The command ran and succeeded.
    Ok,
    /// The command failed, was unknown, or could not run.
    Error,
}

/// A node's answer to one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The operation answered.
    pub id: OpId,
    /// Its per-node sequence.
    pub node_seq: u64,
    /// Success or failure.
    pub status: AnswerStatus,
    /// What the command printed.
    pub body: String,
}

/// Messages of the operations protocol, carried on reliable QUIC streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpMessage {
    /// Manager → node: operations to run, for the node's incarnation `incarnation`.
    Apply {
        /// The incarnation of the node the operations were sequenced for.
        incarnation: u64,
        /// The operations, in `node_seq` order.
        ops: Vec<Op>,
    },
    /// Node → manager: answers to operations.
    Answers {
        /// The node's incarnation.
        incarnation: u64,
        /// The answers.
        answers: Vec<Answer>,
    },
    /// Node → manager: a console command typed at the node that the manager must order for
    /// the whole cluster (`cluster duravip move`), to be broadcast as if typed at the manager.
    Submit {
        /// The node's number for the request, echoed in the answer.
        request: u64,
        /// The command to broadcast.
        command: String,
    },
    /// Manager → node: how a `Submit` went.
    Submitted {
        /// The node's number for the request.
        request: u64,
        /// The operation and its targets, or why it was refused.
        result: Result<Receipt, String>,
    },
}

impl OpMessage {
    /// The message in its envelope, for a stream; refused above [`wire::MAX_MESSAGE`].
    pub fn encode(&self) -> Result<Bytes, DecodeError> {
        wire::encode_body(Kind::Ops, self, wire::MAX_MESSAGE)
    }

    /// A message read from a stream: the envelope (version, size, kind), then exactly one
    /// message. Junk is an error, never a panic.
    pub fn decode(message: &[u8]) -> Result<OpMessage, DecodeError> {
        let (kind, body) = wire::decode_message(message)?;
        wire::decode_body(Kind::Ops, kind, body)
    }
}

/// What the manager sequenced for a forwarded command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The operation.
    pub id: OpId,
    /// Its target nodes, by name.
    pub targets: Vec<String>,
}

/// Tuning of the operations protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsConfig {
    /// A target that has not answered within this is recorded as "no answer" (a later
    /// answer still replaces that record).
    pub answer_timeout: Duration,
    /// Unanswered operations are sent again after this long.
    pub retransmit_after: Duration,
    /// At most this many operations in one `Apply` message.
    pub max_batch: usize,
    /// A node remembers this many recent answers, to answer retransmissions.
    pub answer_memory: usize,
    /// A node remembers this many applied ids, for `cluster oplog`.
    pub applied_memory: usize,
    /// The bound of the manager's results buffer.
    pub results: ResultsLimits,
    /// Whether the manager journals operations and results (emits journal writes).
    pub journal: bool,
    /// Just after start, a manager that does not yet see every node up refuses operations
    /// for this long (its view of the cluster is still forming).
    pub view_settle: Duration,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            answer_timeout: Duration::from_secs(30),
            retransmit_after: Duration::from_millis(1000),
            max_batch: 512,
            answer_memory: 4096,
            applied_memory: 100_000,
            results: ResultsLimits::default(),
            journal: true,
            view_settle: Duration::from_secs(3),
        }
    }
}

#[cfg(test)]
mod codec_tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_junk_is_refused() {
        let m = OpMessage::Apply {
            incarnation: 3,
            ops: vec![Op { id: OpId { epoch: 2, seq: 9 }, node_seq: 1, command: "version".into() }],
        };
        let bytes = m.encode().expect("encode");
        assert_eq!(OpMessage::decode(&bytes), Ok(m));
        assert!(matches!(OpMessage::decode(&[1, 2, 0xff, 0xff]), Err(DecodeError::Body(_))));
        assert_eq!(OpMessage::decode(&[1, 1, 0]), Err(DecodeError::Kind(1)));
        // Every truncation of a valid message is an error, never a panic.
        for n in 0..bytes.len() {
            assert!(OpMessage::decode(&bytes[..n]).is_err(), "prefix of {n} bytes decoded");
        }
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert!(matches!(OpMessage::decode(&trailing), Err(DecodeError::Body(_))));
    }
}
