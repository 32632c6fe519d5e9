//! Error types of the sans-io core. Each variant says whether state changed and whether it is
//! expected in normal operation.

use std::net::IpAddr;

use thiserror::Error;

/// A datagram or message that could not be decoded. State never changes on a decode error.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer was shorter than the envelope header. Expected only from broken or hostile peers.
    #[error("truncated envelope: {len} bytes, need at least {need}")]
    Truncated {
        /// Bytes received.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The envelope carries a protocol version we do not speak. Expected during a rolling
    /// upgrade across incompatible versions.
    #[error("unsupported protocol version {found} (this build speaks {speaks})")]
    Version {
        /// The version the envelope carries.
        found: u8,
        /// The version this build speaks.
        speaks: u8,
    },
    /// The envelope's kind byte is unknown.
    #[error("unknown message kind {0}")]
    Kind(u8),
    /// The datagram is larger than the limit.
    #[error("datagram of {len} bytes exceeds the limit of {limit} bytes")]
    Oversize {
        /// Bytes received.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The body could not be decoded.
    #[error("undecodable body: {0}")]
    Body(String),
}

/// An input the membership core refused. State is unchanged unless the variant says otherwise.
#[derive(Debug, Error)]
pub enum MembershipError {
    /// The datagram's envelope was bad; nothing changed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The SWIM header names a sender other than the authenticated peer; nothing changed.
    /// Expected only from a misconfigured or hostile peer.
    #[error("peer authenticated as {authenticated} claims to be {claimed}")]
    Impostor {
        /// Name from the peer's certificate.
        authenticated: String,
        /// Name the packet claims.
        claimed: String,
    },
    /// The sender is not a host of the segment file, or its address or subcluster differ
    /// from the file; nothing changed.
    #[error("{0}")]
    NotInRoster(String),
    /// foca refused the input (bad packet, stale identity, ...). foca documents that its state
    /// is unchanged for data errors.
    #[error("swim: {0}")]
    Swim(String),
}

/// An operations-protocol input that was refused. Nothing changed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum OpsError {
    /// `unicast` / `retrieve_node` to a name that is not a live node. Expected from typos.
    #[error("{0} is not a live node of the cluster")]
    NotAMember(String),
    /// `subcluster broadcast` to a subcluster with no live node.
    #[error("subcluster {0} has no live node")]
    NoLiveNode(String),
    /// A cluster broadcast while no node is live: it would reach nobody. Nothing sequenced.
    #[error("no node of the cluster is live; nothing was sent")]
    NoLiveNodes,
    /// The manager just started and does not see every node yet. Nothing sequenced; expected
    /// for a few seconds after a manager start.
    #[error("the manager is still forming its view of the cluster ({up} of {nodes} nodes up); try again in a few seconds")]
    ViewForming {
        /// Nodes up so far.
        up: usize,
        /// Nodes of the segment file.
        nodes: usize,
    },
    /// The manager restarted and is still delivering operations acknowledged before; new ones
    /// would overtake them. Nothing sequenced; expected just after a manager restart.
    #[error("the manager is delivering {0} operation(s) acknowledged before its restart; try again shortly")]
    Recovering(usize),
    /// No operation id, or no place in a target node's order, follows the last one the
    /// recovered journal holds: it holds the very last one, which only a damaged or foreign
    /// file can. Nothing sequenced; never expected.
    #[error("the control cache holds the last possible operation id or place in a node's order; move the control cache file away and restart the manager")]
    IdsExhausted,
    /// The manager's shell cannot write its journal (the `Control_Cache` file): an operation
    /// sequenced now could not be made durable, so it is not sequenced. Nothing changed;
    /// expected while the disk is full or the file unwritable, until the shell reports the
    /// journal written again.
    #[error("the control cache cannot be written ({0}); no operation is taken until it can be: free space on its disk or fix its permissions")]
    JournalUnwritable(String),
    /// A message of the wrong direction (an answer sent to a node, an apply to a manager).
    #[error("unexpected {what} message from {from}")]
    Unexpected {
        /// Sender.
        from: String,
        /// What it sent.
        what: &'static str,
    },
}

/// A DuraVIP configuration, datagram or command that was refused. Nothing changed unless the
/// variant says otherwise.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DuraVipError {
    /// The datagram's envelope or body was bad; nothing changed. Expected only from broken or
    /// hostile peers, or during a rolling upgrade across incompatible versions.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Two bindings declare the same address; no core was built.
    #[error("bindings {first} and {second} both declare address {addr}")]
    DuplicateAddress {
        /// The address declared twice.
        addr: IpAddr,
        /// The first binding declaring it.
        first: String,
        /// The second binding declaring it.
        second: String,
    },
    /// Two bindings carry the same name; no core was built.
    #[error("binding {0} is declared twice")]
    DuplicateName(String),
    /// A binding is unusable as declared; no core was built.
    #[error("binding {binding}: {problem}")]
    Binding {
        /// The binding's name.
        binding: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A tuning value is out of range (the message names the field); no core was built.
    #[error("{0}")]
    Config(String),
    /// `duravip move` names an address no binding declares; nothing changed. Expected from typos.
    #[error("{0} is not a DuraVIP address of this node")]
    UnknownAddress(IpAddr),
    /// `duravip move` names a host that is not a live node in this node's view; nothing
    /// changed. Expected from typos and while the host is down.
    #[error("{0} is not a live node of the cluster")]
    NotALiveMember(String),
    /// `duravip move` names a live node that may not hold the address; nothing changed.
    #[error("{host} is not a candidate for {addr} (binding {binding})")]
    NotACandidate {
        /// The address.
        addr: IpAddr,
        /// The host named.
        host: String,
        /// The binding declaring the address.
        binding: String,
    },
}
