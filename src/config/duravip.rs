//! DuraVIP configuration of a member, read from its Momentum-syntax configuration into typed
//! settings: `Binding` scopes with `Enable_Duravip`, listeners' `Enable_Duravip` /
//! `Duravip_Follow`, and the `cluster { }` scope (`Topology`, `duravip_policy`,
//! `duravip_actuator`, timings). The core's part ([`DuravipSettings::bindings`],
//! [`DuravipSettings::core`]) goes to `eccluster_proto`; the plumbing (interfaces, prefixes,
//! followers, lifetime, announcements) stays with the shell's actuator.
//!
//! Only types and reading here; no I/O.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use eccluster_proto::duravip::{Binding, DuraVipConfig};

/// How a node applies ownership to the machine (`cluster { duravip_actuator = ... }`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ActuatorKind {
    /// Record only: nothing on the machine changes (the default under `eccluster local up`).
    #[default]
    None,
    /// Linux addresses through rtnetlink, with gratuitous ARP / unsolicited neighbour
    /// advertisement, and a valid lifetime the holder keeps renewing.
    Netlink,
    /// A program run as `PROGRAM add|del IP INTERFACE`, killed after `timeout`.
    Script {
        /// The program (absolute path).
        program: PathBuf,
        /// Killed after this long.
        timeout: Duration,
    },
}

/// An address plumbed together with a DuraVIP address: a listener with `Duravip_Follow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follower {
    /// The listener's address.
    pub addr: IpAddr,
    /// The interface from the `Topology` that covers it (`None` if none does).
    pub interface: Option<String>,
    /// The prefix length it is configured with (`cidrmask`, default 32 / 128).
    pub prefix_len: u8,
    /// How the listener is named in messages (`ESMTP_Listener "10.1.1.3:25"`).
    pub name: String,
}

/// How one DuraVIP address is put on the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plumbing {
    /// Every name the address is known by: the binding's, then listeners with `Enable_Duravip`
    /// on the same address (Momentum prints them as `IP/name1/name2`).
    pub names: Vec<String>,
    /// The interface from the `Topology` that covers the address (`None` if none does; an
    /// error under the netlink and script actuators).
    pub interface: Option<String>,
    /// The prefix length (`cidrmask`, default 32 for IPv4 and 128 for IPv6).
    pub prefix_len: u8,
    /// Listener addresses that follow this one (`Duravip_Follow`).
    pub followers: Vec<Follower>,
}

/// Gratuitous ARP / unsolicited neighbour advertisement after an address is acquired, as
/// keepalived does: `repeat` at once, and `repeat` again after `delay` (zero: no second round).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announce {
    /// Announcements per round.
    pub repeat: u32,
    /// Wait before the second round.
    pub delay: Duration,
}

impl Default for Announce {
    fn default() -> Self {
        Announce { repeat: 5, delay: Duration::from_secs(5) }
    }
}

/// The DuraVIP settings of one member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DuravipSettings {
    /// What the ownership core manages, in declaration order (empty: DuraVIP is off).
    pub bindings: Vec<Binding>,
    /// Policy and timings of the ownership core.
    pub core: DuraVipConfig,
    /// How ownership is applied to the machine.
    pub actuator: ActuatorKind,
    /// Per DuraVIP address: interface, prefix, names, followers.
    pub plumbing: BTreeMap<IpAddr, Plumbing>,
    /// Valid lifetime of an address the netlink actuator adds; the holder renews it well
    /// before it runs out, so the address of a holder that died expires on its own.
    pub lifetime: Duration,
    /// Announcements after an acquisition.
    pub announce: Announce,
}
