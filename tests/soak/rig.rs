//! The soak's cluster: the manager and six nodes in two subclusters, each member in its own
//! network namespace on one bridge, the nodes holding six DuraVIP addresses through the
//! netlink actuator; and what can be read from it — console answers (with a deadline: a
//! stopped member never answers), the addresses in each namespace, resident memory.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use eccluster::console::frame::Reply;
use serde_json::Value;

use crate::netns::{addresses_in, ip, Lab};
use crate::schedule::{MANAGER, MEMBERS, VIPS};
use crate::support::Cluster;

/// Each member's address on 10.NET.0.0/24: east (with the manager) in 10.NET.0.0/25, west in
/// 10.NET.0.128/26, so that the two subclusters are two segments of one bridge.
const OCTETS: [(&str, u8); 7] =
    [(MANAGER, 10), ("east1", 11), ("east2", 12), ("east3", 13), ("west1", 140), ("west2", 141), ("west3", 142)];

/// The netlink actuator's address lifetime (seconds): a killed or stopped holder's addresses
/// leave its interface after this long.
pub const LIFETIME: u64 = 4;

pub struct Rig {
    pub lab: Lab,
    pub c: Cluster,
}

fn segments(lab: &Lab, net: u8) -> String {
    let mut s = String::from("# the soak's cluster\n");
    for (sc, broadcast) in [("east", 127), ("west", 191)] {
        s.push_str(&format!("# Subcluster: {sc} = {MANAGER}\nSpread_Segment 10.{net}.0.{broadcast}:4803 {{\n"));
        let in_east = |name: &str| name == MANAGER || name.starts_with("east");
        for (name, _) in OCTETS.iter().filter(|(n, _)| in_east(n) == (sc == "east")) {
            s.push_str(&format!("    {name} {}\n", lab.addr(name)));
        }
        s.push_str("}\n");
    }
    s
}

fn config(lab: &Lab, net: u8, policy: &str) -> String {
    let mut s = format!(
        "cluster {{\n  duravip_policy = \"{policy}\"\n  duravip_actuator = \"netlink\"\n  duravip_address_lifetime = {LIFETIME}\n  \
         duravip_announce_repeat = 2\n  duravip_announce_delay = 1\n  Topology \"10.{net}.0.0/24\" {{ interface = \"eth0\"  cidrmask = \"32\" }}\n}}\n"
    );
    for i in 1..=VIPS {
        s.push_str(&format!("Binding \"vip-{i}\" {{\n  Enable_Duravip = true\n  Bind_Address = \"{}\"\n", lab.service_addr(i)));
        // Two addresses with a preferred node, which takes them back after it returns.
        match i {
            1 => s.push_str("  Duravip_Preference = \"east1\"\n"),
            4 => s.push_str("  Duravip_Preference = \"west1\"\n"),
            _ => {}
        }
        s.push_str("}\n");
    }
    s
}

impl Rig {
    /// Namespaces on 10.`net`.0.0/24 and every member started in its own.
    pub fn new(net: u8, policy: &str) -> Rig {
        let lab = Lab::with_octets("s", net, &OCTETS);
        let mut c = Cluster::new(&segments(&lab, net));
        for (name, _) in OCTETS {
            c.netns.insert(name.to_owned(), lab.ns(name));
        }
        c.set_node_config(&config(&lab, net, policy));
        c.start_all();
        Rig { lab, c }
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        self.c.procs.get(name).map(|p| p.child.id())
    }

    pub fn vip(&self, i: u8) -> IpAddr {
        IpAddr::V4(self.lab.service_addr(i))
    }

    /// Stops (`blocked`) or lets through again everything `from` sends to `to`'s address, while
    /// `to` can still reach `from`: an unreachable route in `from`'s namespace. (Not a
    /// blackhole route: its EINVAL on send makes QUIC turn segmentation offload off for good.)
    pub fn block(&self, from: &str, to: &str, blocked: bool) {
        let dest = format!("{}/32", self.lab.addr(to));
        ip(&["-n", &self.lab.ns(from), "route", if blocked { "add" } else { "del" }, "unreachable", &dest]);
    }

    /// What reads the DuraVIP addresses off every member's interface.
    pub fn probe(&self) -> VipProbe {
        VipProbe {
            namespaces: MEMBERS.iter().map(|m| (m.to_string(), self.lab.ns(m))).collect(),
            vips: (1..=VIPS).map(|i| self.vip(i)).collect(),
        }
    }
}

/// Reads which members hold which DuraVIP address, as the kernel says; owns what it needs so
/// that it can run on a blocking thread.
#[derive(Clone, Debug)]
pub struct VipProbe {
    namespaces: Vec<(String, String)>,
    vips: Vec<IpAddr>,
}

impl VipProbe {
    /// Per DuraVIP address, the members whose interface has it.
    pub fn holders(&self) -> BTreeMap<IpAddr, Vec<String>> {
        let held: Vec<(&String, Vec<IpAddr>)> = self.namespaces.iter().map(|(m, ns)| (m, addresses_in(ns))).collect();
        self.vips.iter().map(|vip| (*vip, held.iter().filter(|(_, a)| a.contains(vip)).map(|(m, _)| m.to_string()).collect())).collect()
    }
}

/// One console command with a deadline; `None` if the member did not answer in time.
pub async fn ask(console: &Path, line: &str, limit: Duration) -> Option<Reply> {
    tokio::time::timeout(limit, eccluster::local::ask(console, line)).await.ok()?.ok()
}

/// One console command answered in JSON, if answered and parseable.
pub async fn ask_json(console: &Path, line: &str, limit: Duration) -> Option<Value> {
    let reply = ask(console, &format!("json {line}"), limit).await?;
    serde_json::from_str(&reply.body).ok()
}

/// The member table as `name` sees it: member → (state, incarnation).
pub async fn view(console: &Path, name: &str) -> Option<BTreeMap<String, (String, u64)>> {
    let cmd = if name == MANAGER { "show cluster membership" } else { "cluster membership" };
    let rows = ask_json(console, cmd, Duration::from_secs(2)).await?;
    rows.as_array()?
        .iter()
        .map(|r| Some((r["name"].as_str()?.to_owned(), (r["state"].as_str()?.to_owned(), r["incarnation"].as_u64()?))))
        .collect()
}

/// Resident memory of process `pid` in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
