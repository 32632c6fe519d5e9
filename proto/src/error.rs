//! Error types of the sans-io core. Each variant says whether state changed and whether it is
//! expected in normal operation.

use thiserror::Error;

/// A datagram or message that could not be decoded. State never changes on a decode error.
#[derive(Debug, Error, PartialEq, Eq)]
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
    #[error("unsupported protocol version {0} (this build speaks {current})", current = crate::wire::VERSION)]
    Version(u8),
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
#[derive(Debug, Error, PartialEq, Eq)]
pub enum OpsError {
    /// `unicast` / `retrieve_node` to a name that is not a live node. Expected from typos.
    #[error("{0} is not a live node of the cluster")]
    NotAMember(String),
    /// `subcluster broadcast` to a subcluster with no live node.
    #[error("subcluster {0} has no live node")]
    NoLiveNode(String),
    /// A message of the wrong direction (an answer sent to a node, an apply to a manager).
    #[error("unexpected {what} message from {from}")]
    Unexpected {
        /// Sender.
        from: String,
        /// What it sent.
        what: &'static str,
    },
}
