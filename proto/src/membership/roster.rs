//! The members a cluster may contain, from the segment file, indexed for the per-packet path.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use crate::error::MembershipError;
use crate::ids::{AddrKey, MemberId, Role, SwimId};

/// The members a cluster may contain, from the segment file: name → (address, subcluster),
/// and which of them are managers (every other host is a node). A packet from anyone else, or
/// naming a known host at another address, in another subcluster or role, is refused. Clones
/// share one table and one index (a simulator runs thousands of members with the same roster).
///
/// Hosts are numbered in name order (the ring announces walk); that number indexes the
/// per-member vectors of the membership core, and an address key finds it by binary search.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone, Default)]
struct Inner {
    hosts: BTreeMap<String, (SocketAddr, String)>,
    managers: BTreeSet<String>,
    /// Built on first use after the last change; shared by every clone.
    index: OnceLock<Arc<Index>>,
}

/// One host of the roster, as the per-packet path needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The host's name.
    pub name: Arc<str>,
    /// Its QUIC address.
    pub addr: SocketAddr,
    /// The key of that address.
    pub key: AddrKey,
    /// Its subcluster.
    pub subcluster: Arc<str>,
    /// Node or manager.
    pub role: Role,
}

#[derive(Debug, Default)]
struct Index {
    /// In name order.
    hosts: Vec<Host>,
    /// (key, host number), sorted by key; a key two hosts share is left out.
    by_key: Vec<(AddrKey, u32)>,
}

impl PartialEq for Roster {
    fn eq(&self, other: &Self) -> bool {
        self.inner.hosts == other.inner.hosts && self.inner.managers == other.inner.managers
    }
}

impl Eq for Roster {}

impl Roster {
    /// An empty roster (accepts nobody until hosts are added).
    pub fn new() -> Self {
        Roster::default()
    }

    fn changed(&mut self) -> &mut Inner {
        let inner = Arc::make_mut(&mut self.inner);
        inner.index = OnceLock::new();
        inner
    }

    fn index(&self) -> &Index {
        self.inner.index.get_or_init(|| Arc::new(self.build_index()))
    }

    fn build_index(&self) -> Index {
        let mut hosts = Vec::with_capacity(self.inner.hosts.len());
        for (name, (addr, subcluster)) in &self.inner.hosts {
            hosts.push(Host {
                name: Arc::from(name.as_str()),
                addr: *addr,
                key: AddrKey::of(*addr),
                subcluster: Arc::from(subcluster.as_str()),
                role: self.role_of(name),
            });
        }
        let mut by_key: Vec<(AddrKey, u32)> =
            hosts.iter().enumerate().map(|(i, h)| (h.key, u32::try_from(i).unwrap_or(u32::MAX))).collect();
        by_key.sort_unstable();
        // Two hosts at one address (or, for IPv6, two addresses whose keys collide) cannot be
        // told apart on the wire: neither is accepted, and the operator is told.
        let mut shared = BTreeSet::new();
        for pair in by_key.windows(2) {
            if pair[0].0 == pair[1].0 {
                shared.insert(pair[0].0);
            }
        }
        if !shared.is_empty() {
            for key in &shared {
                let names: Vec<&str> =
                    by_key.iter().filter(|(k, _)| k == key).filter_map(|(_, i)| hosts.get(*i as usize)).map(|h| &*h.name).collect();
                tracing::warn!(hosts = ?names, "hosts of the segment file share an address key; none of them is accepted");
            }
            by_key.retain(|(k, _)| !shared.contains(k));
        }
        Index { hosts, by_key }
    }

    /// Adds a permitted member.
    pub fn insert(&mut self, name: &str, addr: SocketAddr, subcluster: &str) {
        self.changed().hosts.insert(name.to_owned(), (addr, subcluster.to_owned()));
    }

    /// The same roster with the hosts `managers` in the manager role.
    ///
    /// A roster that already has these managers is returned as it is, still sharing its table
    /// and index with its clones (every member of a simulation starts from one roster).
    pub fn with_managers(mut self, managers: &BTreeSet<String>) -> Self {
        if self.inner.managers != *managers {
            self.changed().managers = managers.clone();
        }
        self
    }

    /// The role host `name` has in the segment file.
    pub fn role_of(&self, name: &str) -> Role {
        if self.inner.managers.contains(name) {
            Role::Manager
        } else {
            Role::Node
        }
    }

    /// Checks a claimed identity against the roster: a host, at its address, in its
    /// subcluster, in its role.
    pub fn check(&self, id: &MemberId) -> Result<(), MembershipError> {
        self.check_address(id)?;
        let role = self.role_of(&id.name);
        if id.role != role {
            return Err(MembershipError::NotInRoster(format!(
                "{} claims the role {} but the segment file makes it a {}",
                id.name, id.role, role
            )));
        }
        Ok(())
    }

    /// Checks the name, address and subcluster of an identity (the identities we announce to
    /// before we have heard from a host carry no role).
    pub fn check_address(&self, id: &MemberId) -> Result<(), MembershipError> {
        match self.inner.hosts.get(&id.name) {
            None => Err(MembershipError::NotInRoster(format!("{} is not a host of the segment file", id.name))),
            Some((addr, _)) if *addr != id.addr => Err(MembershipError::NotInRoster(format!(
                "{} claims address {} but the segment file says {}",
                id.name, id.addr, addr
            ))),
            Some((_, sc)) if *sc != id.subcluster => Err(MembershipError::NotInRoster(format!(
                "{} claims subcluster {} but the segment file says {}",
                id.name, id.subcluster, sc
            ))),
            Some(_) => Ok(()),
        }
    }

    /// True if `name` is a host of the roster.
    pub fn contains(&self, name: &str) -> bool {
        self.inner.hosts.contains_key(name)
    }

    /// The QUIC address of host `name`.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.inner.hosts.get(name).map(|(addr, _)| *addr)
    }

    /// The subcluster of host `name`.
    pub fn subcluster_of(&self, name: &str) -> Option<&str> {
        self.inner.hosts.get(name).map(|(_, sc)| sc.as_str())
    }

    /// The subcluster named `name` (compared ignoring ASCII case), as the roster spells it.
    pub fn subcluster(&self, name: &str) -> Option<&str> {
        self.inner.hosts.values().map(|(_, sc)| sc.as_str()).find(|sc| sc.eq_ignore_ascii_case(name))
    }

    /// The hosts' names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inner.hosts.keys().map(String::as_str)
    }

    /// Number of permitted members.
    pub fn len(&self) -> usize {
        self.inner.hosts.len()
    }

    /// True if no member is permitted.
    pub fn is_empty(&self) -> bool {
        self.inner.hosts.is_empty()
    }

    /// Host number `i` (in name order).
    pub fn host(&self, i: u32) -> Option<&Host> {
        self.index().hosts.get(i as usize)
    }

    /// The number of the host whose address has key `key`.
    pub fn number_of_key(&self, key: AddrKey) -> Option<u32> {
        let by_key = &self.index().by_key;
        by_key.binary_search_by_key(&key, |(k, _)| *k).ok().and_then(|at| by_key.get(at)).map(|(_, i)| *i)
    }

    /// The number of host `name`.
    pub fn number_of(&self, name: &str) -> Option<u32> {
        let hosts = &self.index().hosts;
        let at = hosts.binary_search_by(|h| (*h.name).cmp(name)).ok()?;
        u32::try_from(at).ok()
    }

    /// The host SWIM identity `id` names, if the roster lists it.
    pub fn host_of(&self, id: &SwimId) -> Option<&Host> {
        self.number_of_key(id.key).and_then(|i| self.host(i))
    }

    /// The full identity of `id`: name, address, subcluster and role from the roster.
    pub fn member(&self, id: &SwimId) -> Option<MemberId> {
        self.host_of(id).map(|h| MemberId {
            name: h.name.to_string(),
            addr: h.addr,
            role: h.role,
            subcluster: h.subcluster.to_string(),
            incarnation: id.incarnation,
        })
    }

    /// The full identity of `id`, or one naming its address key if the roster does not list it
    /// (only for messages about identities that were refused).
    pub fn member_or_key(&self, id: &SwimId) -> MemberId {
        self.member(id).unwrap_or_else(|| MemberId {
            name: format!("unlisted {}", id.key),
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            role: Role::Node,
            subcluster: String::new(),
            incarnation: id.incarnation,
        })
    }
}
