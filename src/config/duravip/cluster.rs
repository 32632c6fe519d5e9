//! The `cluster { }` scope: DuraVIP policy, actuator, address lifetime, announcements,
//! `view_mature_time` and the `Topology` hints. eccluster owns this scope, so an option or
//! scope it does not know is an error (with the closest known name), except Momentum's own
//! cluster-module options, which are accepted with a warning that they have no effect.
//!
//! Reads the syntax tree only; no I/O here.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use eccluster_proto::duravip::{DuraVipConfig, Policy};
use ipnet::IpNet;

use super::spelling::{closest, FOR_ERRORS};
use super::{invalid, ActuatorKind, Announce, ConfigWarning};
use crate::config::{ConfigError, ConfigOption, Scope, Span};

/// Options of `cluster { }` that eccluster reads.
pub(super) const OPTIONS: &[&str] = &[
    "duravip_policy",
    "duravip_actuator",
    "duravip_script",
    "duravip_script_timeout",
    "duravip_address_lifetime",
    "duravip_announce_repeat",
    "duravip_announce_delay",
    "view_mature_time",
];

/// Momentum cluster-module options that eccluster accepts and ignores.
const NO_EFFECT: &[&str] = &[
    "cluster_group",
    "control_group",
    "arp_all_hosts",
    "duravip_balance_set_size",
    "heartbeat_start_delay",
    "heartbeats_per_sec",
    "if_check_interval",
    "if_down_limit",
    "view_balance_interval",
    "view_broadcast_interval",
    "unconditional_rebind",
    "nodename",
    "nodeaddr",
    "log_group",
    "log_active_interval",
    "log_idle_interval",
    "logs",
    "mbus_config",
];

const TOPOLOGY_OPTIONS: &[&str] = &["cidrmask", "interface"];

/// `view_mature_time` when not set: how long a view must be unchanged before addresses move.
const DEFAULT_SETTLE: Duration = Duration::from_secs(2);
const DEFAULT_LIFETIME: u64 = 6;
const MIN_LIFETIME: u64 = 3;
const MAX_LIFETIME: u64 = 86_400;
const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The script must finish in this range: a tenth of a second is as quick as a fork-and-exec
/// of a shell script can be counted on; an hour is far past any address change.
const SCRIPT_TIMEOUT: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(3600));
const MAX_ANNOUNCE_REPEAT: u64 = 100;
/// `view_mature_time`: 0 (move at once) to an hour (addresses would stay on a dead node longer
/// than any operator waits).
const SETTLE: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(3600));
/// `duravip_announce_delay`: 0 (the second round at once) to an hour.
const ANNOUNCE_DELAY: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(3600));
/// Linux `IFNAMSIZ` less the terminating NUL.
const MAX_INTERFACE_LEN: usize = 15;

/// A `Topology "NETWORK" { }` hint: addresses in `network` go on `interface` with `prefix_len`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Topology {
    pub(super) network: IpNet,
    pub(super) interface: String,
    pub(super) prefix_len: u8,
    /// Where the `Topology` scope is.
    pub(super) span: Span,
}

/// What `cluster { }` says, with defaults for everything absent.
#[derive(Debug)]
pub(super) struct ClusterSettings {
    pub(super) core: DuraVipConfig,
    pub(super) actuator: ActuatorKind,
    pub(super) lifetime: Duration,
    pub(super) announce: Announce,
    /// In file order; the first that covers an address wins.
    pub(super) topologies: Vec<Topology>,
}

/// What `cluster { }` gives when it sets nothing.
pub(super) fn defaults() -> ClusterSettings {
    ClusterSettings {
        core: DuraVipConfig { settle: DEFAULT_SETTLE, ..DuraVipConfig::default() },
        actuator: ActuatorKind::None,
        lifetime: Duration::from_secs(DEFAULT_LIFETIME),
        announce: Announce::default(),
        topologies: Vec::new(),
    }
}

/// Reads `cluster { }` (`None`: every default).
pub(super) fn read(cluster: Option<&Scope>, warnings: &mut Vec<ConfigWarning>) -> Result<ClusterSettings, ConfigError> {
    let mut settings = defaults();
    let Some(cluster) = cluster else {
        return Ok(settings);
    };
    check_names(cluster, warnings)?;

    if let Some(option) = cluster.option("duravip_policy") {
        let word = option.as_str()?;
        settings.core.policy = match word.to_ascii_lowercase().as_str() {
            "available" => Policy::Available,
            "majority" => Policy::Majority,
            _ => {
                return Err(invalid(
                    &option.span,
                    format!("duravip_policy = \"{word}\" is not a policy; use \"available\" or \"majority\""),
                ))
            }
        };
    }
    if let Some(option) = cluster.option("view_mature_time") {
        settings.core.settle = option.as_secs_in(SETTLE.0, SETTLE.1)?;
    }
    if let Err(error) = settings.core.validate() {
        return Err(invalid(&cluster.span, format!("{error}; check view_mature_time")));
    }

    settings.actuator = actuator(cluster)?;
    if let Some(option) = cluster.option("duravip_address_lifetime") {
        let secs = option.as_u64()?;
        if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&secs) {
            return Err(invalid(
                &option.span,
                format!(
                    "duravip_address_lifetime = {secs} is out of range; use {MIN_LIFETIME} to {MAX_LIFETIME} seconds \
                     (the holder renews the address well before it runs out)"
                ),
            ));
        }
        settings.lifetime = Duration::from_secs(secs);
    }
    if let Some(option) = cluster.option("duravip_announce_repeat") {
        let repeat = option.as_u64()?;
        settings.announce.repeat =
            u32::try_from(repeat).ok().filter(|repeat| u64::from(*repeat) <= MAX_ANNOUNCE_REPEAT).ok_or_else(|| {
                invalid(
                    &option.span,
                    format!("duravip_announce_repeat = {repeat} is too many; use 0 to {MAX_ANNOUNCE_REPEAT}"),
                )
            })?;
    }
    if let Some(option) = cluster.option("duravip_announce_delay") {
        settings.announce.delay = option.as_secs_in(ANNOUNCE_DELAY.0, ANNOUNCE_DELAY.1)?;
    }

    for scope in cluster.scopes("Topology") {
        let topology = topology(scope)?;
        if let Some(first) = settings.topologies.iter().find(|t| t.network == topology.network) {
            warnings.push(ConfigWarning {
                span: scope.span.clone(),
                message: format!(
                    "Topology \"{}\" is already declared at {}; this one has no effect, remove it",
                    topology.network, first.span
                ),
            });
            continue;
        }
        settings.topologies.push(topology);
    }
    Ok(settings)
}

/// Every option and scope in `cluster { }` must be one eccluster knows.
fn check_names(cluster: &Scope, warnings: &mut Vec<ConfigWarning>) -> Result<(), ConfigError> {
    for option in &cluster.options {
        let name = option.name.as_str();
        if OPTIONS.iter().any(|known| known.eq_ignore_ascii_case(name)) {
            continue;
        }
        if NO_EFFECT.iter().any(|known| known.eq_ignore_ascii_case(name)) {
            warnings.push(ConfigWarning {
                span: option.span.clone(),
                message: format!(
                    "option '{name}' has no effect in eccluster; it is accepted for Momentum compatibility and can be removed"
                ),
            });
            continue;
        }
        if name.eq_ignore_ascii_case("Topology") {
            return Err(invalid(
                &option.span,
                "Topology is a scope; write Topology \"10.1.1.0/24\" { interface = \"eth0\" }",
            ));
        }
        let known: Vec<&str> = OPTIONS.iter().chain(NO_EFFECT).copied().collect();
        let hint = match closest(name, &known, FOR_ERRORS) {
            Some(meant) => format!("did you mean '{meant}'?"),
            None => "remove it (eccluster reads only its DuraVIP options and Momentum's cluster-module options here)"
                .to_owned(),
        };
        return Err(invalid(&option.span, format!("unknown option '{name}' in cluster {{ }}; {hint}")));
    }
    for scope in &cluster.scopes {
        if scope.kind.eq_ignore_ascii_case("Topology") {
            continue;
        }
        let hint = match closest(&scope.kind, &["Topology"], FOR_ERRORS) {
            Some(meant) => format!("did you mean '{meant}'?"),
            None => "remove it (only Topology scopes belong here)".to_owned(),
        };
        return Err(invalid(&scope.span, format!("unknown scope '{}' in cluster {{ }}; {hint}", scope.kind)));
    }
    Ok(())
}

/// `duravip_actuator` and, for `script`, `duravip_script` and `duravip_script_timeout`.
fn actuator(cluster: &Scope) -> Result<ActuatorKind, ConfigError> {
    let script = cluster.option("duravip_script");
    let timeout = cluster.option("duravip_script_timeout");
    let chosen = cluster.option("duravip_actuator");
    let word = chosen.map(ConfigOption::as_str).transpose()?.unwrap_or("none");
    let kind = match word.to_ascii_lowercase().as_str() {
        "none" => ActuatorKind::None,
        "netlink" => ActuatorKind::Netlink,
        "script" => {
            let span = chosen.map_or(&cluster.span, |option| &option.span);
            let Some(script) = script else {
                return Err(invalid(
                    span,
                    "duravip_actuator = \"script\" needs duravip_script = \"/path/to/program\" in cluster { }",
                ));
            };
            let program = PathBuf::from(script.as_str()?);
            if !program.is_absolute() {
                return Err(invalid(
                    &script.span,
                    format!(
                        "duravip_script = \"{}\" is not an absolute path; write it from the root, such as \"/usr/local/sbin/duravip\"",
                        program.display()
                    ),
                ));
            }
            let timeout = match timeout {
                Some(option) => option.as_secs_in(SCRIPT_TIMEOUT.0, SCRIPT_TIMEOUT.1)?,
                None => DEFAULT_SCRIPT_TIMEOUT,
            };
            return Ok(ActuatorKind::Script { program, timeout });
        }
        _ => {
            let span = chosen.map_or(&cluster.span, |option| &option.span);
            return Err(invalid(
                span,
                format!("duravip_actuator = \"{word}\" is not an actuator; use \"netlink\", \"script\" or \"none\""),
            ));
        }
    };
    if let Some(option) = script.or(timeout) {
        return Err(invalid(
            &option.span,
            format!("{} is used only with duravip_actuator = \"script\"; remove it or set the actuator", option.name),
        ));
    }
    Ok(kind)
}

/// One `Topology "NETWORK" { cidrmask = "N" interface = "NAME" }`.
fn topology(scope: &Scope) -> Result<Topology, ConfigError> {
    let Some(name) = scope.name.as_deref() else {
        return Err(invalid(
            &scope.span,
            "Topology needs a network: Topology \"10.1.1.0/24\" { interface = \"eth0\" }",
        ));
    };
    let network: IpNet = match name.parse() {
        Ok(network) => network,
        Err(_) => {
            let example = match name.parse::<IpAddr>() {
                Ok(addr) => suggested_network(addr).to_string(),
                Err(_) => "10.1.1.0/24".to_owned(),
            };
            return Err(invalid(
                &scope.span,
                format!("Topology \"{name}\" is not a network; write it as ADDRESS/PREFIX, such as \"{example}\""),
            ));
        }
    };
    if network.trunc() != network {
        return Err(invalid(
            &scope.span,
            format!("Topology \"{name}\" has host bits set; write the network \"{}\"", network.trunc()),
        ));
    }
    for option in &scope.options {
        if !TOPOLOGY_OPTIONS.iter().any(|known| known.eq_ignore_ascii_case(&option.name)) {
            let hint = match closest(&option.name, TOPOLOGY_OPTIONS, FOR_ERRORS) {
                Some(meant) => format!("did you mean '{meant}'?"),
                None => "remove it (a Topology takes only cidrmask and interface)".to_owned(),
            };
            return Err(invalid(
                &option.span,
                format!("unknown option '{}' in {}; {hint}", option.name, scope.describe()),
            ));
        }
    }
    if let Some(inner) = scope.scopes.first() {
        return Err(invalid(
            &inner.span,
            format!(
                "unknown scope '{}' in {}; remove it (a Topology takes only cidrmask and interface)",
                inner.kind,
                scope.describe()
            ),
        ));
    }
    let max = network.max_prefix_len();
    let prefix_len = match scope.option("cidrmask") {
        None => max,
        Some(option) => {
            let text = option.as_str()?;
            let family = if network.addr().is_ipv4() { "an IPv4" } else { "an IPv6" };
            option
                .as_u64()
                .ok()
                .and_then(|mask| u8::try_from(mask).ok())
                .filter(|mask| (1..=max).contains(mask))
                .ok_or_else(|| {
                    invalid(
                        &option.span,
                        format!(
                            "cidrmask = \"{text}\" is out of range for {family} network; use 1 to {max} ({max} adds the address alone)"
                        ),
                    )
                })?
        }
    };
    let Some(option) = scope.option("interface") else {
        return Err(invalid(
            &scope.span,
            format!("Topology \"{name}\" needs interface = \"NAME\", the interface its addresses are added to"),
        ));
    };
    let interface = option.as_str()?;
    let valid = !interface.is_empty()
        && interface.len() <= MAX_INTERFACE_LEN
        && !interface.contains(|c: char| c == '/' || c.is_whitespace() || c.is_control());
    if !valid {
        return Err(invalid(
            &option.span,
            format!(
                "interface = \"{interface}\" is not an interface name; use 1 to {MAX_INTERFACE_LEN} characters without '/' or spaces, such as \"eth0\""
            ),
        ));
    }
    Ok(Topology { network, interface: interface.to_owned(), prefix_len, span: scope.span.clone() })
}

/// The network to suggest for an address no `Topology` covers: its /24 (IPv4) or /64 (IPv6).
pub(super) fn suggested_network(addr: IpAddr) -> IpNet {
    let prefix = if addr.is_ipv4() { 24 } else { 64 };
    IpNet::new(addr, prefix).map_or_else(|_| IpNet::from(addr), |network| network.trunc())
}
