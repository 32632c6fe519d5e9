//! The simulated cluster's hosts: who exists, at which address, in which subcluster and role.
//!
//! A topology comes either from a segment file (parsed by `eccluster_proto::segments`, exactly
//! as the daemons read it) or is generated: N nodes spread over K subclusters. Generated
//! topologies use the names `Segments::generate` uses (`mgr`, `east1`, ..., `west1`, ...) but
//! give each subcluster a /16 of 10.0.0.0/8, because `Segments::generate` fits a subcluster
//! in one /24 (at most 244 hosts) and the simulator runs thousands.
//!
//! Names resolve to node indices here; selectors in scenario files name a host, a subcluster,
//! `managers` or `all`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use eccluster_proto::membership::Roster;
use eccluster_proto::segments::Segments;
use eccluster_proto::{MemberId, Role};

/// The port generated hosts listen on (Momentum's mbus port).
pub const GENERATED_PORT: u16 = 4803;

/// One member of the simulated cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Lowercase host name.
    pub name: String,
    /// QUIC address.
    pub addr: SocketAddr,
    /// Subcluster name.
    pub subcluster: String,
    /// `Manager` for the host that manages a subcluster, else `Node`.
    pub role: Role,
}

impl Host {
    /// The identity this host starts with at `incarnation`.
    pub fn member_id(&self, incarnation: u64) -> MemberId {
        MemberId {
            name: self.name.clone(),
            addr: self.addr,
            role: self.role,
            subcluster: self.subcluster.clone(),
            incarnation,
        }
    }
}

/// Every host, with lookups by name, address and subcluster.
#[derive(Debug, Clone)]
pub struct Topology {
    hosts: Vec<Host>,
    subclusters: Vec<String>,
    subcluster_of: Vec<u16>,
    by_name: BTreeMap<String, u32>,
    by_addr: BTreeMap<SocketAddr, u32>,
}

impl Topology {
    /// The hosts of a parsed segment file, in file order.
    pub fn from_segments(segments: &Segments) -> Topology {
        let managers: Vec<&str> =
            segments.subclusters.iter().filter_map(|sc| sc.manager.as_deref()).collect();
        let hosts = segments
            .hosts
            .iter()
            .map(|h| Host {
                name: h.name.clone(),
                addr: h.socket_addr(),
                subcluster: h.subcluster.clone(),
                role: if managers.contains(&h.name.as_str()) { Role::Manager } else { Role::Node },
            })
            .collect();
        Topology::from_hosts(hosts)
    }

    /// `counts` hosts per subcluster, named as `Segments::generate` names them: the first host
    /// of the first subcluster is `mgr` (the manager of every subcluster), the others
    /// `<subcluster><i>` from 1. Subcluster `k` lives on 10.(k+1).0.0/16.
    pub fn generate(counts: &[(String, usize)]) -> Topology {
        let mut hosts = Vec::new();
        for (k, (subcluster, count)) in counts.iter().enumerate() {
            for i in 0..*count {
                let name = match (k, i) {
                    (0, 0) => "mgr".to_string(),
                    (0, i) => format!("{subcluster}{i}"),
                    (_, i) => format!("{subcluster}{}", i + 1),
                };
                let offset = 10 + i as u32;
                let ip = Ipv4Addr::new(10, (k + 1) as u8, (offset >> 8) as u8, (offset & 0xff) as u8);
                hosts.push(Host {
                    name,
                    addr: SocketAddr::V4(SocketAddrV4::new(ip, GENERATED_PORT)),
                    subcluster: subcluster.clone(),
                    role: if k == 0 && i == 0 { Role::Manager } else { Role::Node },
                });
            }
        }
        Topology::from_hosts(hosts)
    }

    fn from_hosts(hosts: Vec<Host>) -> Topology {
        let mut subclusters: Vec<String> = Vec::new();
        let mut subcluster_of = Vec::with_capacity(hosts.len());
        let mut by_name = BTreeMap::new();
        let mut by_addr = BTreeMap::new();
        for (i, h) in hosts.iter().enumerate() {
            let sc = match subclusters.iter().position(|s| *s == h.subcluster) {
                Some(pos) => pos,
                None => {
                    subclusters.push(h.subcluster.clone());
                    subclusters.len() - 1
                }
            };
            subcluster_of.push(sc as u16);
            by_name.insert(h.name.clone(), i as u32);
            by_addr.insert(h.addr, i as u32);
        }
        Topology { hosts, subclusters, subcluster_of, by_name, by_addr }
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// True if there is no host.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Every host, by index.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The host at `index`.
    pub fn host(&self, index: usize) -> &Host {
        &self.hosts[index]
    }

    /// The name of the host at `index`.
    pub fn name(&self, index: usize) -> &str {
        &self.hosts[index].name
    }

    /// Subcluster names in order of first appearance.
    pub fn subclusters(&self) -> &[String] {
        &self.subclusters
    }

    /// The index (into [`Topology::subclusters`]) of the subcluster of host `index`.
    pub fn subcluster_index(&self, index: usize) -> usize {
        self.subcluster_of[index] as usize
    }

    /// The host with this exact (lowercase) name.
    pub fn index_of_name(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).map(|&i| i as usize)
    }

    /// The host listening on `addr`.
    pub fn index_of_addr(&self, addr: &SocketAddr) -> Option<usize> {
        self.by_addr.get(addr).map(|&i| i as usize)
    }

    /// The hosts a selector names: `all`, `managers`, a subcluster or a host (case-insensitive).
    pub fn resolve(&self, selector: &str) -> Option<Vec<usize>> {
        let wanted = selector.trim().to_ascii_lowercase();
        match wanted.as_str() {
            "all" => Some((0..self.len()).collect()),
            "managers" => Some(
                (0..self.len()).filter(|&i| self.hosts[i].role == Role::Manager).collect(),
            ),
            _ => {
                if let Some(sc) = self.subclusters.iter().position(|s| *s == wanted) {
                    Some((0..self.len()).filter(|&i| self.subcluster_of[i] as usize == sc).collect())
                } else {
                    self.index_of_name(&wanted).map(|i| vec![i])
                }
            }
        }
    }

    /// A short list of valid selectors, for error messages.
    pub fn selector_hint(&self) -> String {
        let mut hosts: Vec<&str> = self.hosts.iter().take(4).map(|h| h.name.as_str()).collect();
        if self.hosts.len() > 4 {
            hosts.push("...");
        }
        format!(
            "use all, managers, a subcluster ({}) or a host ({})",
            self.subclusters.join(", "),
            hosts.join(", ")
        )
    }

    /// The roster every member is started with: every host, as the daemons build it, with
    /// the managers in their role (so that the members' clones share one table and index).
    pub fn roster(&self) -> Roster {
        let mut roster = Roster::new();
        for h in &self.hosts {
            roster.insert(&h.name, h.addr, &h.subcluster);
        }
        let managers = self.hosts.iter().filter(|h| h.role == eccluster_proto::Role::Manager).map(|h| h.name.clone()).collect();
        roster.with_managers(&managers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_follow_the_segments_generator() {
        let t = Topology::generate(&[("east".into(), 3), ("west".into(), 2)]);
        let names: Vec<&str> = t.hosts().iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, vec!["mgr", "east1", "east2", "west1", "west2"]);
        assert_eq!(t.host(0).role, Role::Manager);
        assert_eq!(t.resolve("WEST"), Some(vec![3, 4]));
        assert_eq!(t.resolve("east2"), Some(vec![2]));
        assert_eq!(t.resolve("managers"), Some(vec![0]));
        assert_eq!(t.resolve("nowhere"), None);
        assert_eq!(t.index_of_addr(&t.host(4).addr), Some(4));
    }

    #[test]
    fn large_generated_topologies_have_unique_addresses() {
        let t = Topology::generate(&[("east".into(), 5000), ("west".into(), 5000)]);
        assert_eq!(t.len(), 10_000);
        assert_eq!(t.by_addr.len(), 10_000);
        assert_eq!(t.by_name.len(), 10_000);
    }

    #[test]
    fn segment_files_keep_names_subclusters_and_managers() {
        let text = "# Subcluster: east => mgr\nSpread_Segment 127.0.1.255:4803 {\n mgr 127.0.1.10\n east1 127.0.1.11\n}\n# Subcluster: west => mgr\nSpread_Segment 127.0.2.255:4803 {\n west1 127.0.2.11\n}\n";
        let segments = Segments::parse("t.conf", text).expect("valid segment text");
        let t = Topology::from_segments(&segments);
        assert_eq!(t.len(), 3);
        assert_eq!(t.subclusters(), ["east".to_string(), "west".to_string()]);
        assert_eq!(t.host(0).role, Role::Manager);
        assert_eq!(t.host(2).subcluster, "west");
        assert_eq!(t.roster().len(), 3);
    }
}
