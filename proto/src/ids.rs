//! Member identity: who a member is, where it listens, what it does, and which incarnation of
//! it is running. The identity is what SWIM disseminates, so it stays small.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The role of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// An MTA node running `ecnode`.
    Node,
    /// The cluster manager, `eccmgr`.
    Manager,
}

impl Role {
    /// The lowercase name used in JSON output: `node` or `manager`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Manager => "manager",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member's identity as SWIM knows it.
///
/// Two identities with the same `name` (and so the same address) are the same member; the one with the higher
/// `incarnation` is the newer run of it and wins (see [`foca::Identity`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MemberId {
    /// The node name (the host's short name, as in the segment file).
    pub name: String,
    /// The QUIC address of the member.
    pub addr: SocketAddr,
    /// Node or manager.
    pub role: Role,
    /// The subcluster the member belongs to.
    pub subcluster: String,
    /// Renewed on every start (and when the member refutes being declared down).
    pub incarnation: u64,
}

impl MemberId {
    /// An identity used only to address a seed we have not heard from yet: foca accepts an
    /// announce whose destination has the right name, whatever its incarnation.
    pub fn seed(name: &str, addr: SocketAddr, subcluster: &str) -> Self {
        MemberId {
            name: name.to_owned(),
            addr,
            role: Role::Node,
            subcluster: subcluster.to_owned(),
            incarnation: 0,
        }
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}#{}", self.name, self.addr, self.incarnation)
    }
}

/// foca keys members by [`foca::Identity::Addr`]. The QUIC address is as unique as the name
/// (the roster ties each name to one address and refuses anyone else), and it is `Copy`:
/// foca compares addresses on every update it applies, so a `String` key would allocate
/// twice per known member per update.
impl foca::Identity for MemberId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        let mut next = self.clone();
        next.incarnation = self.incarnation.wrapping_add(1).max(1);
        Some(next)
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.incarnation > adversary.incarnation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Identity;

    #[test]
    fn renewed_identity_wins_over_the_old_one() {
        let old = MemberId::seed("east1", "127.0.1.11:4803".parse().expect("addr"), "east");
        let new = old.renew().expect("renewable");
        assert!(new.incarnation > old.incarnation);
        assert!(new.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&new));
        assert_eq!(old.addr(), new.addr());
    }
}
