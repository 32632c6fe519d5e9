//! Segment files: the cluster's static topology in the `mbus.conf` syntax Momentum inherited from
//! Spread's `spread.conf` — which hosts exist, their addresses, the broadcast segments they sit on
//! and the subcluster (and its manager) each belongs to.
//!
//! This module owns parsing ([`Segments::parse`]), lookups, rendering back to text and
//! synthesising test topologies. It does no I/O: the caller reads the file and passes its text
//! and a display name used in error messages.
//!
//! ```text
//! SocketPortReuse = on
//! DebugFlags = { EXIT CONFIGURATION }
//! EventTimeStamp
//! # Subcluster: east => mgr
//! Spread_Segment 127.0.1.255:4803 {      # the broadcast address of the segment
//!     mgr      127.0.1.10   # manager
//!     east1    127.0.1.11
//! }
//! ```
//!
//! * Header lines (`Key = value`, `Key = { A B }`, bare `Key`) are kept in order as
//!   (key, value) pairs, the value's words joined by single spaces; they may appear anywhere
//!   outside a segment block.
//! * A whole-line `# Subcluster: NAME => MANAGER` (or `=`) starts a subcluster; every segment up
//!   to the next such line belongs to it. Segments before the first one belong to `default`,
//!   which has no manager. Other `#` comments are ignored.
//! * `Spread_Segment BCAST:PORT {` lists one `NAME ADDRESS` host per line; Spread's extra
//!   `{ D addr C addr }` block after the address is accepted and ignored. The segment's network
//!   is the broadcast address with its trailing 1-bits cleared, counted in whole octets once
//!   there are 8 or more (`10.0.0.127` → `10.0.0.0/25`, `127.0.1.255` → `127.0.1.0/24`, not the
//!   /23 it could also be). Segments never overlap.
//! * Host and subcluster names compare case-insensitively and are stored lowercase.

mod error;
mod parse;
#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub use error::{Location, SegmentError};

/// The subcluster that segments listed before any `# Subcluster:` line belong to.
pub const DEFAULT_SUBCLUSTER: &str = "default";

/// A parsed segment file: header settings, subclusters with their segments, and every host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segments {
    /// Header settings in file order, as (key, value); a bare word has an empty value.
    pub globals: Vec<(String, String)>,
    /// Subclusters in file order.
    pub subclusters: Vec<Subcluster>,
    /// Every host in file order; names and addresses are unique.
    pub hosts: Vec<SegmentHost>,
}

/// A named group of segments with the manager host that administers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subcluster {
    /// Lowercase name, e.g. `east`.
    pub name: String,
    /// The manager's host name (lowercase, one of [`Segments::hosts`]); `None` only for the
    /// implicit `default` subcluster.
    pub manager: Option<String>,
    /// The subcluster's segments in file order.
    pub segments: Vec<Segment>,
}

/// One `Spread_Segment` block: a broadcast domain and the port its hosts use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// The broadcast address as written.
    pub broadcast: Ipv4Addr,
    /// The port every host of the segment listens on.
    pub port: u16,
    /// The network derived from the broadcast address; segments never overlap.
    pub network: Ipv4Net,
    /// The line of the `Spread_Segment` keyword.
    pub line: u32,
}

/// One host line of a segment block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentHost {
    /// Lowercase host name (a DNS label).
    pub name: String,
    /// The host's address, inside its segment's network.
    pub addr: Ipv4Addr,
    /// The port of its segment.
    pub port: u16,
    /// The lowercase name of its subcluster.
    pub subcluster: String,
    /// The line the host is listed on.
    pub line: u32,
}

impl SegmentHost {
    /// The address and port the host listens on.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.addr, self.port))
    }
}

impl Segments {
    /// Parses the text of a segment file. `origin` names it in errors (`ORIGIN:LINE:COLUMN: ...`).
    ///
    /// Returns the first error in file order; the check that every manager is a host runs last.
    /// Never panics, whatever the text.
    pub fn parse(origin: &str, text: &str) -> Result<Segments, SegmentError> {
        parse::parse(origin, text)
    }

    /// The host with this name, compared case-insensitively.
    pub fn host(&self, name: &str) -> Option<&SegmentHost> {
        self.hosts
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
    }

    /// The host listening on exactly this address and port (IPv4-mapped IPv6 addresses match too).
    pub fn host_by_addr(&self, addr: SocketAddr) -> Option<&SegmentHost> {
        let ip = match addr {
            SocketAddr::V4(v4) => *v4.ip(),
            SocketAddr::V6(v6) => v6.ip().to_ipv4_mapped()?,
        };
        self.hosts
            .iter()
            .find(|h| h.addr == ip && h.port == addr.port())
    }

    /// The segment whose network holds `addr`, with its subcluster.
    pub fn segment_for(&self, addr: Ipv4Addr) -> Option<(&Subcluster, &Segment)> {
        self.subclusters
            .iter()
            .flat_map(|sc| sc.segments.iter().map(move |seg| (sc, seg)))
            .find(|(_, seg)| seg.network.contains(&addr))
    }

    /// The subcluster with this name, compared case-insensitively.
    pub fn subcluster(&self, name: &str) -> Option<&Subcluster> {
        self.subclusters
            .iter()
            .find(|sc| sc.name.eq_ignore_ascii_case(name))
    }

    /// The hosts named as a subcluster's manager (`# Subcluster: NAME = MANAGER`): they run
    /// `eccmgr`, every other host runs `ecnode`.
    pub fn managers(&self) -> std::collections::BTreeSet<String> {
        self.subclusters.iter().filter_map(|s| s.manager.clone()).collect()
    }

    /// The hosts of one subcluster (name compared case-insensitively), in file order.
    pub fn hosts_in(&self, subcluster: &str) -> impl Iterator<Item = &SegmentHost> + '_ {
        let wanted = subcluster.to_ascii_lowercase();
        self.hosts.iter().filter(move |h| h.subcluster == wanted)
    }

    /// Synthesises a topology for tests and the simulator: each subcluster gets as many /24
    /// segments as its hosts need (244 hosts each, from `.10`), allocated one after another
    /// from `base`'s /24, skipping /24s of the form x.y.255.0 (their broadcast would read
    /// back as a /16). Hosts are named `<subcluster><i>` from 1, except that the first host of
    /// the first subcluster is `mgr`, the manager of every subcluster. So
    /// `[("east", 3), ("west", 2)]` on `127.0.1.0` gives `mgr` 127.0.1.10, `east1`, `east2`,
    /// then `west1` 127.0.2.11, `west2`.
    ///
    /// The result is exactly what [`Segments::parse`] returns for its [`render`](Self::render),
    /// line numbers included. Fails (with the parser's error, origin `generated`) when the
    /// names are not valid subcluster and host names, when the first subcluster is empty, or
    /// when the address space after `base` runs out.
    pub fn generate(subclusters: &[(&str, usize)], base: Ipv4Addr, port: u16) -> Result<Segments, SegmentError> {
        const PER_SEGMENT: usize = 244;
        let mut next_net = u64::from(u32::from(base) & !0xff);
        let mut out = Segments { globals: Vec::new(), subclusters: Vec::new(), hosts: Vec::new() };
        let exhausted = || SegmentError::Syntax {
            at: Location { origin: "generated".into(), line: 1, column: 1 },
            message: "generated topology does not fit in the IPv4 space after the base address".into(),
        };
        for (k, &(name, count)) in subclusters.iter().enumerate() {
            // The first subcluster's hosts start at .10 with `mgr`; the others at .11.
            let first_offset = if k == 0 { 0 } else { 1 };
            let mut segments = Vec::new();
            let mut placed = 0usize;
            while placed < count || segments.is_empty() {
                while next_net & 0xff00 == 0xff00 {
                    next_net += 256;
                }
                let net = u32::try_from(next_net).ok().filter(|n| *n < 0xffff_ff00).ok_or_else(exhausted)?;
                next_net += 256;
                let network = Ipv4Net::new(Ipv4Addr::from(net), 24).map_err(|_| exhausted())?;
                segments.push(Segment { broadcast: Ipv4Addr::from(net | 0xff), port, network, line: 0 });
                let room = if segments.len() == 1 { PER_SEGMENT - first_offset } else { PER_SEGMENT };
                let here = room.min(count - placed);
                for j in 0..here {
                    let i = placed + j;
                    let host = match (k, i) {
                        (0, 0) => "mgr".to_string(),
                        (0, i) => format!("{name}{i}"),
                        (_, i) => format!("{name}{}", i + 1),
                    };
                    let slot = if segments.len() == 1 { j + first_offset } else { j };
                    let addr = Ipv4Addr::from(net + 10 + u32::try_from(slot).unwrap_or(0));
                    out.hosts.push(SegmentHost { name: host, addr, port, subcluster: name.to_string(), line: 0 });
                }
                placed += here;
                if count == 0 {
                    break;
                }
            }
            out.subclusters.push(Subcluster { name: name.to_string(), manager: Some("mgr".into()), segments });
        }
        Segments::parse("generated", &out.render())
    }

    /// Writes the topology back in the file format: header settings first (as `key = value` or a
    /// bare `key`), then each subcluster's `# Subcluster: NAME => MANAGER` line and segments.
    ///
    /// `parse(render(x)) == x` for every `x` that [`parse`](Self::parse) or
    /// [`generate`](Self::generate) returned, except that header settings move to the top (which
    /// can shift line numbers). A subcluster without a manager is written without a
    /// `# Subcluster:` line, which reads back right only for a leading `default`; hosts outside
    /// all of their subcluster's segments are not written.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (key, value) in &self.globals {
            if value.is_empty() {
                out.push_str(&format!("{key}\n"));
            } else {
                out.push_str(&format!("{key} = {value}\n"));
            }
        }
        for (i, sc) in self.subclusters.iter().enumerate() {
            if i > 0 || !self.globals.is_empty() {
                out.push('\n');
            }
            if let Some(manager) = &sc.manager {
                out.push_str(&format!("# Subcluster: {} => {manager}\n", sc.name));
            }
            for seg in &sc.segments {
                out.push_str(&format!(
                    "Spread_Segment {}:{} {{\n",
                    seg.broadcast, seg.port
                ));
                let hosts: Vec<&SegmentHost> = self
                    .hosts
                    .iter()
                    .filter(|h| h.subcluster == sc.name && seg.network.contains(&h.addr))
                    .collect();
                let width = hosts.iter().map(|h| h.name.len()).max().unwrap_or(0).max(8);
                for h in hosts {
                    out.push_str(&format!("    {:<width$} {}\n", h.name, h.addr));
                }
                out.push_str("}\n");
            }
        }
        out
    }
}
