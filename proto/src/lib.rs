//! eccluster-proto: the sans-io core of eccluster.
//!
//! Everything here is a deterministic state machine: it takes inputs (a datagram, a timer
//! firing, a command, the current time) and returns outputs to be drained by a driver (datagrams
//! to send, timers to set, events). Nothing here touches a socket, a clock, a thread or a random
//! source it was not given. The real runtime (`eccluster`, tokio + quinn) and the simulator
//! (`eccluster-simulations`) drive the same cores, as quinn drives quinn-proto.
//!
//! # Layout
//!
//! - [`ids`]: member identity (name, address, role, subcluster, incarnation).
//! - [`wire`]: the versioned envelope every datagram travels in, with size limits.
//! - [`membership`]: SWIM membership (foca) behind our own adapter and output queue.
//! - [`ops`]: ordered cluster-wide operations: sequencer (manager), applier (node), results.
//! - [`duravip`]: DuraVIP address ownership: who holds each virtual address, failover,
//!   moves, partition policy (available or majority).
//! - [`revisions`]: configuration revisions: the newest of each repository, told by the
//!   manager to every node, and what each node runs.
//! - [`holders`]: who holds each DuraVIP address, reported by the nodes to the manager.
//! - [`node`]: the state machine of one member, composing the cores above; the one thing
//!   the daemons and the simulator drive.
//! - [`stats`]: the counters and gauges of a member, read as one snapshot.
//! - [`segments`]: mbus.conf-style segment files mapped to subclusters and networks.
//! - [`error`]: the error types of the core.
//!
//! # Driving contract
//!
//! Shells drive [`node::Node`] only: call [`node::Node::handle`] (or a command) with the
//! current time, then [`node::Node::poll_output`] until it returns `None`, performing each
//! output in order. Time passed in must never go backwards. The cores inside follow the same
//! contract and are driven by the node.
#![forbid(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]

pub mod duravip;
pub mod error;
pub mod holders;
pub mod ids;
pub mod membership;
pub mod node;
pub mod ops;
pub mod revisions;
pub mod segments;
pub mod stats;
pub mod wire;

pub use error::{DecodeError, DuraVipError, MembershipError, OpsError};
pub use ids::{MemberId, Role};
