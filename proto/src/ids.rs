//! Member identity: who a member is, where it listens, what it does, and which incarnation of
//! it is running. SWIM disseminates only the compact part ([`SwimId`]: an address key and an
//! incarnation), which every member holds for every other.

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

/// A member's identity in full, as the node's cores, consoles and events speak of it.
///
/// Two identities with the same `name` (and so the same address) are the same member; the one
/// with the higher `incarnation` is the newer run of it. SWIM carries and stores the compact
/// [`SwimId`] instead, and the rest is looked up in the roster.
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

/// The key SWIM knows a member by: its QUIC address, packed into 64 bits.
///
/// An IPv4 address and port fit exactly (tag bit clear); an IPv6 address and port are hashed
/// into the other 63 bits (tag bit set). The roster ties each host to one address and refuses a
/// segment file in which two hosts' keys collide, so within a cluster the key is as unique as
/// the name — and it is `Copy`, eight bytes, compared in one instruction on every update foca
/// applies (foca keeps its member table as a list and scans it per update).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AddrKey(pub u64);

impl AddrKey {
    const V6: u64 = 1 << 63;

    /// The key of a QUIC address.
    pub fn of(addr: SocketAddr) -> AddrKey {
        match addr {
            SocketAddr::V4(a) => AddrKey((u64::from(u32::from(*a.ip())) << 16) | u64::from(a.port())),
            SocketAddr::V6(a) => {
                // FNV-1a over the address and port: stable across builds and platforms.
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for b in a.ip().octets().iter().chain(a.port().to_be_bytes().iter()) {
                    h ^= u64::from(*b);
                    h = h.wrapping_mul(0x0000_0100_0000_01b3);
                }
                AddrKey(Self::V6 | (h & !Self::V6))
            }
        }
    }
}

impl fmt::Display for AddrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 & Self::V6 == 0 {
            let ip = std::net::Ipv4Addr::from(((self.0 >> 16) & 0xffff_ffff) as u32);
            write!(f, "{}:{}", ip, self.0 & 0xffff)
        } else {
            write!(f, "v6#{:015x}", self.0 & !Self::V6)
        }
    }
}

/// A member's identity as SWIM carries and stores it: the key of its address and the
/// incarnation of its run. Sixteen bytes, `Copy`, no heap: every member holds one per peer, so a
/// cluster of N members holds N² of them. The name, subcluster and role are looked up in the
/// shared roster (see [`crate::membership::Roster::member`]), where they cannot be forged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwimId {
    /// Which host.
    pub key: AddrKey,
    /// Which run of it; renewed on every start and when a down declaration is refuted.
    pub incarnation: u64,
}

impl SwimId {
    /// The SWIM identity of `id`.
    pub fn of(id: &MemberId) -> SwimId {
        SwimId { key: AddrKey::of(id.addr), incarnation: id.incarnation }
    }
}

impl fmt::Display for SwimId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.key, self.incarnation)
    }
}

/// foca keys members by [`foca::Identity::Addr`]: the address key. Two identities with the
/// same key are runs of the same host; the higher incarnation wins.
impl foca::Identity for SwimId {
    type Addr = AddrKey;

    fn renew(&self) -> Option<Self> {
        Some(SwimId { key: self.key, incarnation: self.incarnation.wrapping_add(1).max(1) })
    }

    fn addr(&self) -> AddrKey {
        self.key
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
        let old = SwimId::of(&MemberId::seed("east1", "127.0.1.11:4803".parse().expect("addr"), "east"));
        let new = old.renew().expect("renewable");
        assert!(new.incarnation > old.incarnation);
        assert!(new.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&new));
        assert_eq!(old.addr(), new.addr());
    }

    #[test]
    fn address_keys_are_distinct_and_readable() {
        let a = AddrKey::of("127.0.1.11:4803".parse().expect("addr"));
        let b = AddrKey::of("127.0.1.11:4804".parse().expect("addr"));
        let c = AddrKey::of("127.0.1.12:4803".parse().expect("addr"));
        let d = AddrKey::of("[::1]:4803".parse().expect("addr"));
        let e = AddrKey::of("[::2]:4803".parse().expect("addr"));
        assert!(a != b && a != c && b != c && d != e && a != d);
        assert_eq!(a.to_string(), "127.0.1.11:4803");
        assert!(d.to_string().starts_with("v6#"), "{d}");
        assert_eq!(std::mem::size_of::<SwimId>(), 16);
    }
}
