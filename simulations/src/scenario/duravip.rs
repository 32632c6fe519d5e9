//! The `[duravip]` section of a scenario: policy, timing, and the addresses it binds.

use std::net::IpAddr;
use std::path::Path;

use eccluster_proto::duravip::Policy;

use super::{opt_duration, BindingSpec, DuraVipFile, DuraVipSpec, ScenarioError};

pub(super) fn parse_duravip(path: &Path, file: DuraVipFile) -> Result<DuraVipSpec, ScenarioError> {
    let err = |m: String| ScenarioError::new(path, format!("[duravip] {m}"));
    let policy = match file.policy.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("available") => Policy::Available,
        Some("majority") => Policy::Majority,
        Some(other) => return Err(err(format!("`policy` must be \"available\" or \"majority\", not {other:?}"))),
    };
    let mut timing = [None; 4];
    for (slot, (field, value)) in timing.iter_mut().zip([
        ("settle", &file.settle),
        ("beat", &file.beat),
        ("lease", &file.lease),
        ("claim_silence", &file.claim_silence),
    ]) {
        *slot = opt_duration(field, value).map_err(err)?;
    }
    let mut bindings = Vec::new();
    for (i, b) in file.bindings.into_iter().enumerate() {
        let addr: IpAddr =
            b.addr.trim().parse().map_err(|_| err(format!("bindings[{i}] `addr`: {:?} is not an IP address", b.addr)))?;
        bindings.push(BindingSpec {
            name: b.name.unwrap_or_else(|| format!("duravip-{}", bindings.len() + 1)),
            addr,
            candidates: b.candidates,
            preference: b.preference,
        });
    }
    for (i, r) in file.ranges.into_iter().enumerate() {
        let net: ipnet::IpNet =
            r.network.trim().parse().map_err(|_| err(format!("ranges[{i}] `network`: {:?} is not a network such as 10.200.0.0/24", r.network)))?;
        let hosts: Vec<IpAddr> = net.hosts().take(r.count).collect();
        if r.count == 0 || hosts.len() < r.count {
            return Err(err(format!("ranges[{i}]: {} holds {} host addresses, {} asked for", r.network, hosts.len(), r.count)));
        }
        for addr in hosts {
            bindings.push(BindingSpec {
                name: format!("duravip-{}", bindings.len() + 1),
                addr,
                candidates: r.candidates.clone(),
                preference: None,
            });
        }
    }
    if bindings.is_empty() {
        return Err(err("needs at least one `[[duravip.bindings]]` or `[[duravip.ranges]]`".into()));
    }
    let mut addrs: Vec<IpAddr> = bindings.iter().map(|b| b.addr).collect();
    addrs.sort();
    if let Some(w) = addrs.windows(2).find(|w| w[0] == w[1]) {
        return Err(err(format!("{} is bound twice", w[0])));
    }
    Ok(DuraVipSpec { policy, timing, bindings })
}
