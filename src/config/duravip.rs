//! DuraVIP configuration of a member, read from its Momentum-syntax configuration into typed
//! settings: `Binding` scopes with `Enable_Duravip`, listeners' `Enable_Duravip` /
//! `Duravip_Follow`, and the `cluster { }` scope (`Topology`, `duravip_policy`,
//! `duravip_actuator`, timings). The core's part ([`DuravipSettings::bindings`],
//! [`DuravipSettings::core`]) goes to `eccluster_proto`; the plumbing (interfaces, prefixes,
//! followers, lifetime, announcements) stays with the shell's actuator.
//!
//! Only types and reading here; no I/O.
//!
//! ```text
//! cluster {
//!   duravip_policy = "available"          # or "majority"
//!   duravip_actuator = "netlink"          # or "script" (with duravip_script), or "none"
//!   Topology "10.1.1.0/24" { cidrmask = "32"  interface = "eth1" }
//! }
//! Binding "duravip-1" { Enable_Duravip = true  Bind_Address = "10.1.1.1"  Duravip_Preference = "east1" }
//! ESMTP_Listener {
//!   Listen "10.1.1.1:25" { Enable_Duravip = true }          # adds a name to 10.1.1.1
//!   Listen "10.1.1.4:25" { Enable_Duravip = true }          # a DuraVIP of its own
//!   Listen "10.1.1.3:25" { Duravip_Follow = "duravip-1" }   # plumbed with 10.1.1.1
//! }
//! ```
//!
//! eccluster owns `cluster { }`: anything unknown there is an error. `Binding` and listener
//! scopes belong to the MTA: their other options are none of our business, but near misses of
//! the DuraVIP options (`Enable_Duravp`) are reported as [`ConfigWarning`]s.
//!
//! # Layout
//!
//! - this file — the settings types, [`read`], `Binding` scopes and listeners.
//! - `cluster.rs` — the `cluster { }` scope and its `Topology` hints.
//! - `spelling.rs` — near misses, for "did you mean".

mod cluster;
mod spelling;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use eccluster_proto::duravip::{Binding, DuraVipConfig};

use self::cluster::{ClusterSettings, Topology};
use self::spelling::{closest, FOR_ERRORS, FOR_WARNINGS};
use super::{ConfigError, ConfigOption, Scope, Span};

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
    /// How the listener is named in messages: its scope kind and `Listen` name
    /// (`ESMTP_Listener 10.1.1.3:25`).
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
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// What a member without a configuration file runs with: the same as an empty file gives.
impl Default for DuravipSettings {
    fn default() -> Self {
        let ClusterSettings { core, actuator, lifetime, announce, .. } = cluster::defaults();
        DuravipSettings { bindings: Vec::new(), core, actuator, plumbing: BTreeMap::new(), lifetime, announce }
    }
}

/// Something in the configuration that was accepted but is probably not what was meant (an
/// option with no effect, a near miss of a DuraVIP option). Reading goes on; the caller logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Where the option or scope is.
    pub span: Span,
    /// What looks wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: warning: {}", self.span, self.message)
    }
}

/// Options eccluster reads in a `Binding` scope.
const BINDING_OPTIONS: &[&str] = &["Enable_Duravip", "Bind_Address", "Duravip_Preference", "Duravip_Follow"];

/// Options eccluster reads in a listener's `Listen` scope.
const LISTEN_OPTIONS: &[&str] = &["Enable_Duravip", "Duravip_Follow", "Duravip_Preference"];

/// Top-level scopes eccluster reads (besides listeners: every kind ending in `_Listener`).
const TOP_LEVEL: &[&str] = &["cluster", "Binding"];

/// Reads the DuraVIP settings of a member from its configuration. `nodes` are the names of the
/// node hosts of the segment file, which `Duravip_Preference` must name.
///
/// On success, also returns warnings about things that were accepted but have no effect or look
/// misspelt. On error nothing is returned: the caller keeps the settings it had.
pub fn read(root: &Scope, nodes: &[&str]) -> Result<(DuravipSettings, Vec<ConfigWarning>), ConfigError> {
    let mut warnings = Vec::new();
    let cluster = cluster::read(cluster_scope(root)?, &mut warnings)?;
    check_top_level(root, &mut warnings);
    let mut reader = Reader { nodes, vips: Vec::new(), warnings };
    reader.read_bindings(root)?;
    let followers = reader.read_listeners(root)?;
    for follower in followers {
        reader.add_follower(follower)?;
    }
    let Reader { mut vips, warnings, .. } = reader;
    vips.sort_by_key(|vip| vip.order);
    let settings = settle_plumbing(vips, cluster)?;
    Ok((settings, warnings))
}

/// `invalid(span, message)`: a [`ConfigError::Invalid`].
fn invalid(span: &Span, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { span: span.clone(), message: message.into() }
}

fn is_listener(kind: &str) -> bool {
    let suffix = "_listener";
    kind.len() > suffix.len()
        && kind.is_char_boundary(kind.len() - suffix.len())
        && kind[kind.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

fn is_one_of(name: &str, known: &[&str]) -> bool {
    known.iter().any(|known| known.eq_ignore_ascii_case(name))
}

/// The one anonymous `cluster { }` scope, if there is one.
fn cluster_scope(root: &Scope) -> Result<Option<&Scope>, ConfigError> {
    let mut found: Option<&Scope> = None;
    for scope in root.scopes("cluster") {
        if let Some(name) = &scope.name {
            return Err(invalid(
                &scope.span,
                format!("{} \"{name}\" takes no name; write {} {{ ... }}", scope.kind, scope.kind),
            ));
        }
        if let Some(first) = found {
            return Err(invalid(
                &scope.span,
                format!("cluster {{ }} is declared again (first at {}); merge the two into one", first.span),
            ));
        }
        found = Some(scope);
    }
    Ok(found)
}

/// Warnings about the top level: misplaced DuraVIP options and near misses of `cluster` and
/// `Binding`.
fn check_top_level(root: &Scope, warnings: &mut Vec<ConfigWarning>) {
    let mut warn = |span: &Span, message: String| warnings.push(ConfigWarning { span: span.clone(), message });
    for scope in &root.scopes {
        let kind = scope.kind.as_str();
        if is_listener(kind) || is_one_of(kind, TOP_LEVEL) {
            continue;
        }
        if kind.eq_ignore_ascii_case("Topology") {
            warn(&scope.span, "Topology has no effect at top level; move it into cluster { }".to_owned());
        } else if let Some(meant) = closest(kind, TOP_LEVEL, FOR_WARNINGS) {
            warn(&scope.span, format!("scope '{kind}' is not one eccluster reads; did you mean '{meant}'?"));
        }
    }
    for option in &root.options {
        let name = option.name.as_str();
        if name.eq_ignore_ascii_case("cluster") {
            warn(&option.span, format!("'{name}' here is an option, not a scope; write cluster {{ ... }}"));
        } else if name.eq_ignore_ascii_case("Binding") {
            warn(&option.span, format!("'{name}' here is an option, not a scope; write Binding \"name\" {{ ... }}"));
        } else if is_one_of(name, cluster::OPTIONS) {
            warn(&option.span, format!("option '{name}' has no effect at top level; move it into cluster {{ }}"));
        } else if is_one_of(name, LISTEN_OPTIONS) {
            warn(
                &option.span,
                format!("option '{name}' has no effect at top level; set it in a Binding or Listen scope"),
            );
        } else if let Some(meant) = closest(name, TOP_LEVEL, FOR_WARNINGS) {
            warn(
                &option.span,
                format!("option '{name}' is not one eccluster reads; did you mean the scope '{meant}'?"),
            );
        }
    }
}

/// Warns about options of a scope the MTA owns that look like misspelt DuraVIP options.
fn warn_near_misses(scope: &Scope, known: &[&str], warnings: &mut Vec<ConfigWarning>) {
    for option in &scope.options {
        if let Some(meant) = closest(&option.name, known, FOR_WARNINGS) {
            warnings.push(ConfigWarning {
                span: option.span.clone(),
                message: format!(
                    "option '{}' in {} is not one eccluster reads; did you mean '{meant}'?",
                    option.name,
                    scope.describe()
                ),
            });
        }
    }
}

fn enabled(scope: &Scope) -> Result<bool, ConfigError> {
    scope.option("Enable_Duravip").map(ConfigOption::as_bool).transpose().map(|enabled| enabled == Some(true))
}

/// What a `Listen` name says about its address.
enum ListenAddress {
    /// `IP:PORT` or `[IPv6]:PORT`.
    Ip(IpAddr),
    /// A path (`/tmp/2025`), `:25`, `0.0.0.0:25`: no single address.
    Any,
    /// Something that is neither (`mail.example.com:25`, `10.1.1.300:25`).
    Unreadable,
}

fn listen_address(name: &str) -> ListenAddress {
    if name.is_empty() || name.starts_with('/') {
        return ListenAddress::Any;
    }
    let host = if let Some(rest) = name.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, _port)) => host,
            None => return ListenAddress::Unreadable,
        }
    } else if name.parse::<IpAddr>().is_ok() {
        name
    } else {
        match name.rsplit_once(':') {
            Some((host, _port)) => host,
            None => return ListenAddress::Unreadable,
        }
    };
    if host.is_empty() || host == "*" {
        return ListenAddress::Any;
    }
    match host.parse::<IpAddr>() {
        Ok(addr) if addr.is_unspecified() => ListenAddress::Any,
        Ok(addr) => ListenAddress::Ip(addr),
        Err(_) => ListenAddress::Unreadable,
    }
}

/// A `Listen "HOST:PORT"` whose port is a number must name a port from 1 to 65535. A name
/// without a port (a path, a bare address) or with a service name is left to the listener.
fn check_listen_port(listen: &Scope, label: &str) -> Result<(), ConfigError> {
    if label.is_empty() || label.starts_with('/') {
        return Ok(());
    }
    let port = if let Some(rest) = label.strip_prefix('[') {
        rest.split_once("]:").map(|(_, port)| port)
    } else if label.parse::<IpAddr>().is_ok() {
        None
    } else {
        label.rsplit_once(':').map(|(_, port)| port)
    };
    let Some(port) = port.filter(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())) else {
        return Ok(());
    };
    match port.parse::<u16>() {
        Ok(number) if number != 0 => Ok(()),
        _ => Err(invalid(
            &listen.span,
            format!("Listen \"{label}\" has port {port}, which is out of range; use a port from 1 to 65535"),
        )),
    }
}

/// A DuraVIP address being assembled.
struct Vip {
    /// (index of the top-level scope, index of the `Listen` in it): declaration order.
    order: (usize, usize),
    binding: Binding,
    /// How it is named in messages: `Binding "duravip-1"` or `ESMTP_Listener 10.1.1.4:25`.
    label: String,
    /// Where the address was given: the `Bind_Address` option or the `Listen` scope.
    span: Span,
    names: Vec<String>,
    followers: Vec<(Follower, Span)>,
}

/// A listener with `Duravip_Follow`, resolved once every DuraVIP address is known.
struct PendingFollower<'s> {
    addr: IpAddr,
    name: String,
    follow: &'s ConfigOption,
    listen: &'s Scope,
}

struct Reader<'n> {
    nodes: &'n [&'n str],
    vips: Vec<Vip>,
    warnings: Vec<ConfigWarning>,
}

impl Reader<'_> {
    fn warn(&mut self, span: &Span, message: String) {
        self.warnings.push(ConfigWarning { span: span.clone(), message });
    }

    /// The node a `Duravip_Preference` names, spelt as in the segment file.
    fn preference(&self, option: &ConfigOption) -> Result<String, ConfigError> {
        let wanted = option.as_str()?;
        if let Some(node) = self.nodes.iter().find(|node| node.eq_ignore_ascii_case(wanted)) {
            return Ok((*node).to_owned());
        }
        const SHOWN: usize = 8;
        let hint = match closest(wanted, self.nodes, FOR_ERRORS) {
            Some(node) => format!("did you mean \"{node}\"?"),
            None if self.nodes.is_empty() => "the segment file has no nodes".to_owned(),
            None if self.nodes.len() <= SHOWN => format!("use one of: {}", self.nodes.join(", ")),
            None => format!("use one of: {}, ... ({} nodes)", self.nodes[..SHOWN].join(", "), self.nodes.len()),
        };
        Err(invalid(
            &option.span,
            format!("Duravip_Preference = \"{wanted}\" names no node of the segment file; {hint}"),
        ))
    }

    /// Every `Binding` scope with `Enable_Duravip = true`, in file order.
    fn read_bindings(&mut self, root: &Scope) -> Result<(), ConfigError> {
        let mut seen: Vec<(&str, &Span, bool)> = Vec::new();
        for (index, scope) in root.scopes.iter().enumerate() {
            if !scope.kind.eq_ignore_ascii_case("Binding") {
                continue;
            }
            warn_near_misses(scope, BINDING_OPTIONS, &mut self.warnings);
            if let Some(option) = scope.option("Duravip_Follow") {
                return Err(invalid(
                    &option.span,
                    "Duravip_Follow is not allowed in a Binding (bindings cannot follow); \
                     put it in a listener's Listen \"IP:PORT\" { } scope",
                ));
            }
            let enabled = enabled(scope)?;
            if let Some(name) = scope.name.as_deref() {
                let first = seen.iter().find(|(seen_name, ..)| *seen_name == name);
                if let Some((_, first, first_enabled)) = first {
                    if enabled || *first_enabled {
                        return Err(invalid(
                            &scope.span,
                            format!(
                                "Binding \"{name}\" is declared again (first at {first}); give each DuraVIP binding its own name"
                            ),
                        ));
                    }
                }
                seen.push((name, &scope.span, enabled));
            }
            if !enabled {
                if let Some(option) = scope.option("Duravip_Preference") {
                    let message = "Duravip_Preference has no effect without Enable_Duravip = true".to_owned();
                    self.warn(&option.span, message);
                }
                continue;
            }
            self.add_binding(index, scope)?;
        }
        Ok(())
    }

    fn add_binding(&mut self, index: usize, scope: &Scope) -> Result<(), ConfigError> {
        let Some(name) = scope.name.as_deref() else {
            return Err(invalid(
                &scope.span,
                "a DuraVIP Binding needs a name: Binding \"name\" { Enable_Duravip = true ... }",
            ));
        };
        let label = format!("Binding \"{name}\"");
        let Some(option) = scope.option("Bind_Address") else {
            return Err(invalid(
                &scope.span,
                format!("{label} has Enable_Duravip = true but no Bind_Address; add Bind_Address = \"IP\" or set Enable_Duravip = false"),
            ));
        };
        let text = option.as_str()?;
        let addr: IpAddr = text.parse().map_err(|_| {
            invalid(
                &option.span,
                format!(
                    "Bind_Address = \"{text}\" is not an IP address; a DuraVIP binding needs one, such as \"10.1.1.1\""
                ),
            )
        })?;
        if addr.is_unspecified() {
            return Err(invalid(
                &option.span,
                format!("Bind_Address = \"{text}\" cannot be a DuraVIP; name the one address the binding uses"),
            ));
        }
        if let Some(first) = self.vips.iter().find(|vip| vip.binding.addr == addr) {
            return Err(invalid(
                &option.span,
                format!(
                    "{label} declares {addr}, which {} already declares at {}; give each DuraVIP binding its own address",
                    first.label, first.span
                ),
            ));
        }
        let preference = scope.option("Duravip_Preference").map(|option| self.preference(option)).transpose()?;
        self.vips.push(Vip {
            order: (index, 0),
            binding: Binding { name: name.to_owned(), addr, candidates: Vec::new(), preference },
            label,
            span: option.span.clone(),
            names: vec![name.to_owned()],
            followers: Vec::new(),
        });
        Ok(())
    }

    /// Every `Listen` of every listener: `Enable_Duravip` ones become (or join) DuraVIP
    /// addresses now; `Duravip_Follow` ones are returned for [`Reader::add_follower`].
    fn read_listeners<'s>(&mut self, root: &'s Scope) -> Result<Vec<PendingFollower<'s>>, ConfigError> {
        let mut followers = Vec::new();
        for (index, listener) in root.scopes.iter().enumerate() {
            if !is_listener(&listener.kind) {
                continue;
            }
            for option in &listener.options {
                if is_one_of(&option.name, LISTEN_OPTIONS) {
                    let message = format!(
                        "option '{}' has no effect in {} {{ }}; set it in each Listen \"IP:PORT\" {{ }} scope",
                        option.name, listener.kind
                    );
                    self.warn(&option.span, message);
                }
            }
            warn_near_misses(listener, LISTEN_OPTIONS, &mut self.warnings);
            for (position, listen) in listener.scopes.iter().enumerate() {
                if listen.kind.eq_ignore_ascii_case("Listen") {
                    if let Some(follower) = self.read_listen((index, position), listener, listen)? {
                        followers.push(follower);
                    }
                }
            }
        }
        Ok(followers)
    }

    fn read_listen<'s>(
        &mut self,
        order: (usize, usize),
        listener: &Scope,
        listen: &'s Scope,
    ) -> Result<Option<PendingFollower<'s>>, ConfigError> {
        warn_near_misses(listen, LISTEN_OPTIONS, &mut self.warnings);
        let label = listen.name.as_deref().unwrap_or_default();
        check_listen_port(listen, label)?;
        let name = format!("{} {label}", listener.kind);
        let enabled = enabled(listen)?;
        let follow = listen.option("Duravip_Follow");
        let preference = listen.option("Duravip_Preference");
        if let (true, Some(follow)) = (enabled, follow) {
            return Err(invalid(
                &follow.span,
                "a listener cannot be both Enable_Duravip and Duravip_Follow; remove one of them",
            ));
        }
        if let (Some(_), Some(preference)) = (follow, preference) {
            return Err(invalid(
                &preference.span,
                "Duravip_Preference cannot be combined with Duravip_Follow (the listener goes wherever \
                 the address it follows goes); remove Duravip_Preference",
            ));
        }
        if !enabled && follow.is_none() {
            if let Some(option) = preference {
                let message = "Duravip_Preference has no effect without Enable_Duravip = true".to_owned();
                self.warn(&option.span, message);
            }
            return Ok(None);
        }
        let addr = match listen_address(label) {
            ListenAddress::Ip(addr) => addr,
            ListenAddress::Any => {
                if let Some(follow) = follow {
                    return Err(invalid(
                        &follow.span,
                        format!("Duravip_Follow on Listen \"{label}\" needs a single address to plumb; name one as \"IP:PORT\""),
                    ));
                }
                let span = listen.option("Enable_Duravip").map_or(&listen.span, |option| &option.span);
                let message = format!(
                    "Enable_Duravip on Listen \"{label}\" has no effect: it has no single address; name one as \"IP:PORT\" to make it a DuraVIP"
                );
                self.warn(span, message);
                return Ok(None);
            }
            ListenAddress::Unreadable => {
                return Err(invalid(
                    &listen.span,
                    format!("Listen \"{label}\" is not \"IP:PORT\" or \"[IPv6]:PORT\", so it cannot be a DuraVIP; write its address as an IP"),
                ));
            }
        };
        if let Some(follow) = follow {
            return Ok(Some(PendingFollower { addr, name, follow, listen }));
        }
        let preference = match preference {
            Some(option) => Some((option, self.preference(option)?)),
            None => None,
        };
        let index = match self.vips.iter().position(|vip| vip.binding.addr == addr) {
            Some(index) => index,
            None => {
                if let Some(other) = self.vips.iter().find(|vip| vip.binding.name == name) {
                    return Err(invalid(
                        &listen.span,
                        format!("{name} is also the name of {} at {}; rename that binding", other.label, other.span),
                    ));
                }
                self.vips.push(Vip {
                    order,
                    binding: Binding { name: name.clone(), addr, candidates: Vec::new(), preference: None },
                    label: name.clone(),
                    span: listen.span.clone(),
                    names: Vec::new(),
                    followers: Vec::new(),
                });
                self.vips.len() - 1
            }
        };
        let vip = &mut self.vips[index];
        if !vip.names.contains(&name) {
            vip.names.push(name);
        }
        if let Some((option, node)) = preference {
            let mut message = format!(
                "Momentum advises against Duravip_Preference on a listener with Enable_Duravip; \
                 set it on a Binding with Bind_Address = \"{addr}\" instead"
            );
            match &vip.binding.preference {
                Some(kept) if *kept != node => {
                    message.push_str(&format!("; ignored here because {} prefers \"{kept}\"", vip.label));
                }
                Some(_) => {}
                None => vip.binding.preference = Some(node),
            }
            self.warn(&option.span, message);
        }
        Ok(None)
    }

    /// Attaches a `Duravip_Follow` listener to the DuraVIP address it names.
    fn add_follower(&mut self, pending: PendingFollower<'_>) -> Result<(), ConfigError> {
        let PendingFollower { addr, name, follow, listen } = pending;
        let wanted = follow.as_str()?;
        let by_addr = wanted.parse::<IpAddr>().ok();
        let Some(target) =
            self.vips.iter().position(|vip| vip.binding.name == wanted || Some(vip.binding.addr) == by_addr)
        else {
            let names: Vec<&str> = self.vips.iter().map(|vip| vip.binding.name.as_str()).collect();
            let same_but_case = names.iter().copied().find(|name| name.eq_ignore_ascii_case(wanted));
            let hint = match same_but_case.or_else(|| closest(wanted, &names, FOR_ERRORS)) {
                Some(meant) => format!("did you mean \"{meant}\"?"),
                None => "name a Binding with Enable_Duravip = true, by its name or its Bind_Address".to_owned(),
            };
            return Err(invalid(
                &follow.span,
                format!("Duravip_Follow = \"{wanted}\" names no DuraVIP binding; {hint}"),
            ));
        };
        let followed = &self.vips[target];
        if followed.binding.addr == addr {
            return Err(invalid(
                &follow.span,
                format!(
                    "Listen \"{}\" has the address of {} ({addr}) itself; a follower needs a different address, \
                     or use Enable_Duravip = true to serve the DuraVIP",
                    listen.name.as_deref().unwrap_or_default(),
                    followed.label
                ),
            ));
        }
        if let Some(other) = self.vips.iter().find(|vip| vip.binding.addr == addr) {
            return Err(invalid(
                &follow.span,
                format!(
                    "{addr} is itself a DuraVIP ({}); a listener following {} needs an address of its own",
                    other.label, followed.label
                ),
            ));
        }
        for (index, vip) in self.vips.iter().enumerate() {
            let Some((_, first)) = vip.followers.iter().find(|(follower, _)| follower.addr == addr) else {
                continue;
            };
            if index == target {
                return Ok(());
            }
            return Err(invalid(
                &follow.span,
                format!("{addr} already follows {} (at {first}); an address can follow only one DuraVIP", vip.label),
            ));
        }
        let follower = Follower { addr, interface: None, prefix_len: host_prefix(addr), name };
        self.vips[target].followers.push((follower, listen.span.clone()));
        Ok(())
    }
}

/// The prefix length of a single address: 32 for IPv4, 128 for IPv6.
fn host_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// The interface and prefix of `addr` from the first `Topology` that covers it. Under the
/// netlink and script actuators an address no `Topology` covers is an error; under `none` it
/// has no interface and a single-address prefix.
fn locate(
    addr: IpAddr,
    span: &Span,
    topologies: &[Topology],
    actuator: &ActuatorKind,
) -> Result<(Option<String>, u8), ConfigError> {
    if let Some(topology) = topologies.iter().find(|topology| topology.network.contains(&addr)) {
        return Ok((Some(topology.interface.clone()), topology.prefix_len));
    }
    if *actuator == ActuatorKind::None {
        return Ok((None, host_prefix(addr)));
    }
    Err(invalid(
        span,
        format!(
            "no Topology in cluster {{ }} covers {addr}; add Topology \"{}\" {{ interface = \"eth0\" }}",
            cluster::suggested_network(addr)
        ),
    ))
}

/// The settings, with every address and follower placed on its interface.
fn settle_plumbing(vips: Vec<Vip>, cluster: ClusterSettings) -> Result<DuravipSettings, ConfigError> {
    let ClusterSettings { core, actuator, lifetime, announce, topologies } = cluster;
    let mut bindings = Vec::with_capacity(vips.len());
    let mut plumbing = BTreeMap::new();
    for vip in vips {
        let (interface, prefix_len) = locate(vip.binding.addr, &vip.span, &topologies, &actuator)?;
        let mut followers = Vec::with_capacity(vip.followers.len());
        for (mut follower, span) in vip.followers {
            (follower.interface, follower.prefix_len) = locate(follower.addr, &span, &topologies, &actuator)?;
            followers.push(follower);
        }
        plumbing.insert(vip.binding.addr, Plumbing { names: vip.names, interface, prefix_len, followers });
        bindings.push(vip.binding);
    }
    Ok(DuravipSettings { bindings, core, actuator, plumbing, lifetime, announce })
}
