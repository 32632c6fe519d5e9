//! Reading DuraVIP settings: a full valid configuration, the defaults, and every rule with the
//! exact message it prints.

use std::path::Path;
use std::time::Duration;

use eccluster_proto::duravip::Policy;

use super::*;
use crate::config::parse_str;

const NODES: &[&str] = &["east1", "east2", "west1", "west2"];

fn read_with(text: &str, nodes: &[&str]) -> Result<(DuravipSettings, Vec<ConfigWarning>), ConfigError> {
    let root = parse_str(text, Path::new("ecelerity.conf")).expect("the text parses");
    read(&root, nodes)
}

fn accepted(text: &str) -> (DuravipSettings, Vec<String>) {
    let (settings, warnings) = read_with(text, NODES).unwrap_or_else(|error| panic!("refused: {error}"));
    (settings, warnings.iter().map(ToString::to_string).collect())
}

fn error(text: &str) -> String {
    read_with(text, NODES).expect_err("refused").to_string()
}

fn warnings(text: &str) -> Vec<String> {
    accepted(text).1
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an address")
}

const B1: &str = "Binding \"b1\" { Enable_Duravip = true Bind_Address = 10.1.1.1 }\n";

#[test]
fn a_full_configuration_reads_into_typed_settings() {
    let text = r#"cluster {
  duravip_policy = "Majority"
  duravip_actuator = "netlink"
  duravip_address_lifetime = 8
  duravip_announce_repeat = 3
  duravip_announce_delay = 2.5
  view_mature_time = 4
  Topology "10.1.1.0/24" { cidrmask = "24" interface = "eth1" }
  Topology "10.1.0.0/16" { interface = "eth2" }
  Topology "2001:db8::/64" { interface = "eth1" }
}
Binding "duravip-1" { Enable_Duravip = true Bind_Address = "10.1.1.1" Duravip_Preference = "East1" }
Binding "outbound" { Bind_Address = "10.1.1.9" Outbound_Throttle_Messages = 10 }
ESMTP_Listener {
  SMTP_Extensions = ( "ENHANCEDSTATUSCODES" )
  Listen "10.1.1.1:25" { Enable_Duravip = true }
  Listen "10.1.1.1:587" { Enable_Duravip = true }
  Listen "10.1.2.4:25" { Enable_Duravip = true }
  Listen "10.1.1.3:25" { Duravip_Follow = "duravip-1" }
  Listen "10.1.1.3:587" { Duravip_Follow = "10.1.1.1" }
  Listen ":2525" { }
}
binding "duravip-2" { enable_duravip = yes bind_address = "2001:db8::5" }
Control_Listener {
  Listen "/tmp/2025" { }
  Listen "[2001:db8::7]:2025" { Duravip_Follow = "2001:db8::5" }
}
"#;
    let (settings, warnings) = accepted(text);
    assert_eq!(warnings, Vec::<String>::new());
    let names: Vec<&str> = settings.bindings.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["duravip-1", "ESMTP_Listener 10.1.2.4:25", "duravip-2"], "declaration order");
    assert_eq!(
        settings.bindings[0],
        Binding {
            name: "duravip-1".into(),
            addr: ip("10.1.1.1"),
            candidates: Vec::new(),
            preference: Some("east1".into())
        }
    );
    assert_eq!(settings.bindings[1].addr, ip("10.1.2.4"));
    assert_eq!(settings.bindings[1].preference, None);
    assert_eq!(settings.bindings[2].addr, ip("2001:db8::5"));
    assert_eq!(
        settings.core,
        DuraVipConfig { policy: Policy::Majority, settle: Duration::from_secs(4), ..DuraVipConfig::default() }
    );
    assert_eq!(settings.actuator, ActuatorKind::Netlink);
    assert_eq!(settings.lifetime, Duration::from_secs(8));
    assert_eq!(settings.announce, Announce { repeat: 3, delay: Duration::from_millis(2500) });

    assert_eq!(settings.plumbing.len(), 3);
    assert_eq!(
        settings.plumbing[&ip("10.1.1.1")],
        Plumbing {
            names: vec!["duravip-1".into(), "ESMTP_Listener 10.1.1.1:25".into(), "ESMTP_Listener 10.1.1.1:587".into()],
            interface: Some("eth1".into()),
            prefix_len: 24,
            followers: vec![Follower {
                addr: ip("10.1.1.3"),
                interface: Some("eth1".into()),
                prefix_len: 24,
                name: "ESMTP_Listener 10.1.1.3:25".into(),
            }],
        },
        "the first Topology that covers an address wins; a second port of a follower adds nothing"
    );
    assert_eq!(
        settings.plumbing[&ip("10.1.2.4")],
        Plumbing {
            names: vec!["ESMTP_Listener 10.1.2.4:25".into()],
            interface: Some("eth2".into()),
            prefix_len: 32,
            followers: Vec::new(),
        }
    );
    assert_eq!(
        settings.plumbing[&ip("2001:db8::5")],
        Plumbing {
            names: vec!["duravip-2".into()],
            interface: Some("eth1".into()),
            prefix_len: 128,
            followers: vec![Follower {
                addr: ip("2001:db8::7"),
                interface: Some("eth1".into()),
                prefix_len: 128,
                name: "Control_Listener [2001:db8::7]:2025".into(),
            }],
        }
    );
}

#[test]
fn without_any_duravip_configuration_the_defaults_apply() {
    let (settings, warnings) =
        accepted("Binding \"b1\" { Bind_Address = 10.1.1.1 }\nESMTP_Listener { Listen \":25\" { } }\n");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(settings.bindings.is_empty() && settings.plumbing.is_empty());
    assert_eq!(settings.core, DuraVipConfig::default());
    assert_eq!(settings.core.settle, Duration::from_secs(2));
    assert_eq!(settings.actuator, ActuatorKind::None);
    assert_eq!(settings.lifetime, Duration::from_secs(6));
    assert_eq!(settings.announce, Announce { repeat: 5, delay: Duration::from_secs(5) });
    assert!(accepted("Binding \"b1\" { Enable_Duravip = false Bind_Address = 10.1.1.1 }").0.bindings.is_empty());
}

#[test]
fn under_the_none_actuator_an_uncovered_address_has_no_interface() {
    let (settings, _) =
        accepted(&format!("{B1}Binding \"b6\" {{ Enable_Duravip = on Bind_Address = \"2001:db8::1\" }}\n"));
    assert_eq!(settings.plumbing[&ip("10.1.1.1")].interface, None);
    assert_eq!(settings.plumbing[&ip("10.1.1.1")].prefix_len, 32);
    assert_eq!(settings.plumbing[&ip("2001:db8::1")].prefix_len, 128);
}

#[test]
fn the_script_actuator_reads_its_program_and_timeout() {
    let (settings, _) = accepted("cluster { duravip_actuator = SCRIPT duravip_script = \"/usr/local/sbin/vip\" }");
    assert_eq!(
        settings.actuator,
        ActuatorKind::Script { program: "/usr/local/sbin/vip".into(), timeout: Duration::from_secs(10) }
    );
    let (settings, _) =
        accepted("cluster { duravip_actuator = script duravip_script = \"/bin/vip\" duravip_script_timeout = 2.5 }");
    assert_eq!(
        settings.actuator,
        ActuatorKind::Script { program: "/bin/vip".into(), timeout: Duration::from_millis(2500) }
    );
}

#[test]
fn errors_and_warnings_print_their_place_first() {
    let error = read_with("cluster { duravip_policy = x }", NODES).expect_err("refused");
    assert_eq!(error.span().map(ToString::to_string).as_deref(), Some("ecelerity.conf:1:11"));
    let warning = ConfigWarning { span: error.span().expect("a place").clone(), message: "look".into() };
    assert_eq!(warning.to_string(), "ecelerity.conf:1:11: warning: look");
}

// ---- cluster { } ----

#[test]
fn an_unknown_option_in_cluster_is_an_error_naming_the_closest_option() {
    assert_eq!(
        error("cluster {\n  duravip_polcy = \"majority\"\n}\n"),
        "ecelerity.conf:2:3: unknown option 'duravip_polcy' in cluster { }; did you mean 'duravip_policy'?"
    );
    assert_eq!(
        error("cluster { heartbeat_per_sec = 2 }"),
        "ecelerity.conf:1:11: unknown option 'heartbeat_per_sec' in cluster { }; did you mean 'heartbeats_per_sec'?"
    );
    assert_eq!(
        error("cluster { view_mature = 2 }"),
        "ecelerity.conf:1:11: unknown option 'view_mature' in cluster { }; did you mean 'view_mature_time'?"
    );
    assert_eq!(
        error("cluster {\n  frobnicate = 1\n}\n"),
        "ecelerity.conf:2:3: unknown option 'frobnicate' in cluster { }; remove it (eccluster reads only its \
         DuraVIP options and Momentum's cluster-module options here)"
    );
}

#[test]
fn an_unknown_scope_in_cluster_is_an_error() {
    assert_eq!(
        error("cluster {\n  Topolgy \"10.1.1.0/24\" { interface = eth1 }\n}\n"),
        "ecelerity.conf:2:3: unknown scope 'Topolgy' in cluster { }; did you mean 'Topology'?"
    );
    assert_eq!(
        error("cluster { Peers { } }"),
        "ecelerity.conf:1:11: unknown scope 'Peers' in cluster { }; remove it (only Topology scopes belong here)"
    );
    assert_eq!(
        error("cluster { Topology = \"10.1.1.0/24\" }"),
        "ecelerity.conf:1:11: Topology is a scope; write Topology \"10.1.1.0/24\" { interface = \"eth0\" }"
    );
}

#[test]
fn momentum_cluster_module_options_are_accepted_with_a_warning() {
    assert_eq!(
        warnings("cluster {\n  cluster_group = ec_cluster\n  View_Balance_Interval = 10\n}\n"),
        [
            "ecelerity.conf:2:3: warning: option 'cluster_group' has no effect in eccluster; it is accepted for \
             Momentum compatibility and can be removed",
            "ecelerity.conf:3:3: warning: option 'View_Balance_Interval' has no effect in eccluster; it is accepted \
             for Momentum compatibility and can be removed",
        ]
    );
    for name in [
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
    ] {
        let found = warnings(&format!("cluster {{ {name} = 1 }}"));
        assert_eq!(found.len(), 1, "{name}");
        assert!(found[0].contains(&format!("'{name}' has no effect in eccluster")), "{found:?}");
    }
}

#[test]
fn cluster_may_be_declared_once_and_without_a_name() {
    assert_eq!(
        error("cluster { }\ncluster { }\n"),
        "ecelerity.conf:2:1: cluster { } is declared again (first at ecelerity.conf:1:1); merge the two into one"
    );
    assert_eq!(error("cluster \"a\" { }"), "ecelerity.conf:1:1: cluster \"a\" takes no name; write cluster { ... }");
}

#[test]
fn policy_and_actuator_words_are_checked() {
    assert_eq!(
        error("cluster { duravip_policy = quorum }"),
        "ecelerity.conf:1:11: duravip_policy = \"quorum\" is not a policy; use \"available\" or \"majority\""
    );
    assert_eq!(accepted("cluster { duravip_policy = AVAILABLE }").0.core.policy, Policy::Available);
    assert_eq!(
        error("cluster { duravip_actuator = ip }"),
        "ecelerity.conf:1:11: duravip_actuator = \"ip\" is not an actuator; use \"netlink\", \"script\" or \"none\""
    );
}

#[test]
fn the_script_options_are_required_with_the_script_actuator_and_refused_without() {
    assert_eq!(
        error("cluster { duravip_actuator = script }"),
        "ecelerity.conf:1:11: duravip_actuator = \"script\" needs duravip_script = \"/path/to/program\" in cluster { }"
    );
    assert_eq!(
        error("cluster { duravip_actuator = script duravip_script = \"bin/vip\" }"),
        "ecelerity.conf:1:37: duravip_script = \"bin/vip\" is not an absolute path; write it from the root, such as \
         \"/usr/local/sbin/duravip\""
    );
    assert_eq!(
        error("cluster { duravip_actuator = script duravip_script = \"/bin/vip\" duravip_script_timeout = 0 }"),
        "ecelerity.conf:1:65: duravip_script_timeout = 0 is out of range; use 0.1 to 3600 seconds"
    );
    assert_eq!(
        error("cluster { duravip_script = \"/bin/vip\" }"),
        "ecelerity.conf:1:11: duravip_script is used only with duravip_actuator = \"script\"; remove it or set the actuator"
    );
    assert_eq!(
        error("cluster {\n  duravip_actuator = netlink\n  duravip_script_timeout = 5\n}"),
        "ecelerity.conf:3:3: duravip_script_timeout is used only with duravip_actuator = \"script\"; remove it or set \
         the actuator"
    );
}

#[test]
fn lifetime_announcements_and_mature_time_are_checked() {
    assert_eq!(
        error("cluster { duravip_address_lifetime = 2 }"),
        "ecelerity.conf:1:11: duravip_address_lifetime = 2 is out of range; use 3 to 86400 seconds (the holder renews \
         the address well before it runs out)"
    );
    assert_eq!(accepted("cluster { duravip_address_lifetime = 3 }").0.lifetime, Duration::from_secs(3));
    assert_eq!(
        error("cluster { duravip_address_lifetime = 1.5 }"),
        "ecelerity.conf:1:11: expected a whole number for option 'duravip_address_lifetime' but found '1.5'"
    );
    assert_eq!(
        error("cluster { duravip_announce_repeat = 101 }"),
        "ecelerity.conf:1:11: duravip_announce_repeat = 101 is too many; use 0 to 100"
    );
    assert_eq!(
        error("cluster {\n  view_mature_time = 90000\n}"),
        "ecelerity.conf:2:3: view_mature_time = 90000 is out of range; use 0 to 3600 seconds"
    );
}

#[test]
fn every_number_of_the_cluster_scope_and_listeners_is_checked_against_its_range() {
    let refused = [
        ("cluster {\n  view_mature_time = 3600.5\n}", "ecelerity.conf:2:3: view_mature_time = 3600.5 is out of range; use 0 to 3600 seconds"),
        ("cluster {\n\n  duravip_announce_delay = 99999999999\n}", "ecelerity.conf:3:3: duravip_announce_delay = 99999999999 is out of range; use 0 to 3600 seconds"),
        (
            "cluster { duravip_actuator = script duravip_script = \"/bin/vip\"\n duravip_script_timeout = 0.05 }",
            "ecelerity.conf:2:2: duravip_script_timeout = 0.05 is out of range; use 0.1 to 3600 seconds",
        ),
        (
            "cluster { duravip_actuator = script duravip_script = \"/bin/vip\" duravip_script_timeout = 3601 }",
            "ecelerity.conf:1:65: duravip_script_timeout = 3601 is out of range; use 0.1 to 3600 seconds",
        ),
        ("cluster { duravip_address_lifetime = 86401 }", "ecelerity.conf:1:11: duravip_address_lifetime = 86401 is out of range; use 3 to 86400 seconds (the holder renews the address well before it runs out)"),
        ("cluster { duravip_announce_repeat = 18446744073709551615 }", "ecelerity.conf:1:11: duravip_announce_repeat = 18446744073709551615 is too many; use 0 to 100"),
        (
            "ESMTP_Listener {\n  Listen \"10.1.1.1:65536\" { Enable_Duravip = true }\n}",
            "ecelerity.conf:2:3: Listen \"10.1.1.1:65536\" has port 65536, which is out of range; use a port from 1 to 65535",
        ),
        (
            "Control_Listener { Listen \"[::1]:0\" { } }",
            "ecelerity.conf:1:20: Listen \"[::1]:0\" has port 0, which is out of range; use a port from 1 to 65535",
        ),
    ];
    for (text, expected) in refused {
        assert_eq!(error(text), expected, "{text}");
    }
    // The ends of every range are accepted.
    let (settings, _) = accepted(
        "cluster { view_mature_time = 0 duravip_announce_delay = 3600 duravip_address_lifetime = 86400 \
         duravip_announce_repeat = 0 }\nESMTP_Listener { Listen \"10.1.1.1:65535\" { } Listen \":1\" { } }",
    );
    assert_eq!(settings.core.settle, Duration::ZERO);
    assert_eq!(settings.announce.delay, Duration::from_secs(3600));
    assert_eq!(settings.lifetime, Duration::from_secs(86_400));
    accepted("cluster { duravip_actuator = script duravip_script = \"/bin/vip\" duravip_script_timeout = 0.1 }");
    accepted("cluster { duravip_actuator = script duravip_script = \"/bin/vip\" duravip_script_timeout = 3600 }");
}

// ---- Topology ----

#[test]
fn a_topology_names_a_cidr_network() {
    assert_eq!(
        error("cluster { Topology \"10.1.1.1\" { interface = eth0 } }"),
        "ecelerity.conf:1:11: Topology \"10.1.1.1\" is not a network; write it as ADDRESS/PREFIX, such as \"10.1.1.0/24\""
    );
    assert_eq!(
        error("cluster { Topology eth0 { interface = eth0 } }"),
        "ecelerity.conf:1:11: Topology \"eth0\" is not a network; write it as ADDRESS/PREFIX, such as \"10.1.1.0/24\""
    );
    assert_eq!(
        error("cluster { Topology \"10.1.1.5/24\" { interface = eth0 } }"),
        "ecelerity.conf:1:11: Topology \"10.1.1.5/24\" has host bits set; write the network \"10.1.1.0/24\""
    );
    assert_eq!(
        error("cluster { Topology { interface = eth0 } }"),
        "ecelerity.conf:1:11: Topology needs a network: Topology \"10.1.1.0/24\" { interface = \"eth0\" }"
    );
}

#[test]
fn cidrmask_must_fit_the_family() {
    assert_eq!(
        error("cluster { Topology \"10.1.1.0/24\" { cidrmask = \"33\" interface = eth0 } }"),
        "ecelerity.conf:1:36: cidrmask = \"33\" is out of range for an IPv4 network; use 1 to 32 (32 adds the address \
         alone)"
    );
    assert_eq!(
        error("cluster { Topology \"10.1.1.0/24\" { cidrmask = 0 interface = eth0 } }"),
        "ecelerity.conf:1:36: cidrmask = \"0\" is out of range for an IPv4 network; use 1 to 32 (32 adds the address \
         alone)"
    );
    assert_eq!(
        error("cluster { Topology \"2001:db8::/64\" { cidrmask = 129 interface = eth0 } }"),
        "ecelerity.conf:1:38: cidrmask = \"129\" is out of range for an IPv6 network; use 1 to 128 (128 adds the \
         address alone)"
    );
    let text = "cluster { duravip_actuator = netlink Topology \"2001:db8::/64\" { cidrmask = 64 interface = eth0 } }\n\
                Binding \"b6\" { Enable_Duravip = true Bind_Address = \"2001:db8::1\" }";
    assert_eq!(accepted(text).0.plumbing[&ip("2001:db8::1")].prefix_len, 64);
}

#[test]
fn a_topology_needs_an_interface_and_nothing_else() {
    assert_eq!(
        error("cluster { Topology \"10.1.1.0/24\" { cidrmask = 32 } }"),
        "ecelerity.conf:1:11: Topology \"10.1.1.0/24\" needs interface = \"NAME\", the interface its addresses are added to"
    );
    assert_eq!(
        error("cluster { Topology \"10.1.1.0/24\" { interface = \"eth0 1\" } }"),
        "ecelerity.conf:1:36: interface = \"eth0 1\" is not an interface name; use 1 to 15 characters without '/' or \
         spaces, such as \"eth0\""
    );
    assert_eq!(
        error("cluster { Topology \"10.1.1.0/24\" { intrface = eth0 } }"),
        "ecelerity.conf:1:36: unknown option 'intrface' in Topology \"10.1.1.0/24\"; did you mean 'interface'?"
    );
    assert_eq!(
        error("cluster { Topology \"10.1.1.0/24\" { interface = eth0 mtu = 9000 } }"),
        "ecelerity.conf:1:53: unknown option 'mtu' in Topology \"10.1.1.0/24\"; remove it (a Topology takes only \
         cidrmask and interface)"
    );
    assert_eq!(
        error("cluster { Topology \"10.1.1.0/24\" { interface = eth0 Hosts { } } }"),
        "ecelerity.conf:1:53: unknown scope 'Hosts' in Topology \"10.1.1.0/24\"; remove it (a Topology takes only \
         cidrmask and interface)"
    );
}

#[test]
fn a_second_topology_for_the_same_network_is_a_warning() {
    assert_eq!(
        warnings("cluster {\n  Topology \"10.1.1.0/24\" { interface = eth0 }\n  Topology \"10.1.1.0/24\" { interface = eth1 }\n}"),
        ["ecelerity.conf:3:3: warning: Topology \"10.1.1.0/24\" is already declared at ecelerity.conf:2:3; this one has \
          no effect, remove it"]
    );
}

#[test]
fn netlink_and_script_need_a_topology_for_every_address() {
    let cluster = "cluster {\n  duravip_actuator = netlink\n  Topology \"10.1.1.0/24\" { interface = eth1 }\n}\n";
    assert_eq!(
        error(&format!("{cluster}Binding \"b9\" {{ Enable_Duravip = true Bind_Address = 10.9.9.9 }}\n")),
        "ecelerity.conf:5:38: no Topology in cluster { } covers 10.9.9.9; add Topology \"10.9.9.0/24\" { interface = \"eth0\" }"
    );
    assert_eq!(
        error(&format!("{cluster}{B1}ESMTP_Listener {{ Listen \"10.9.9.3:25\" {{ Duravip_Follow = b1 }} }}\n")),
        "ecelerity.conf:6:18: no Topology in cluster { } covers 10.9.9.3; add Topology \"10.9.9.0/24\" { interface = \"eth0\" }"
    );
    let script = "cluster { duravip_actuator = script duravip_script = \"/bin/vip\" }\n";
    assert_eq!(
        error(&format!("{script}ESMTP_Listener {{ Listen \"[2001:db8:1::9]:25\" {{ Enable_Duravip = true }} }}\n")),
        "ecelerity.conf:2:18: no Topology in cluster { } covers 2001:db8:1::9; add Topology \"2001:db8:1::/64\" \
         { interface = \"eth0\" }"
    );
}

// ---- Binding ----

#[test]
fn a_duravip_binding_needs_a_name_and_an_ip_address() {
    assert_eq!(
        error("Binding \"b1\" { Enable_Duravip = true }"),
        "ecelerity.conf:1:1: Binding \"b1\" has Enable_Duravip = true but no Bind_Address; add Bind_Address = \"IP\" or \
         set Enable_Duravip = false"
    );
    assert_eq!(
        error("Binding \"b1\" {\n  Enable_Duravip = true\n  Bind_Address = mail.example.com\n}"),
        "ecelerity.conf:3:3: Bind_Address = \"mail.example.com\" is not an IP address; a DuraVIP binding needs one, such \
         as \"10.1.1.1\""
    );
    assert_eq!(
        error("Binding \"b1\" { Enable_Duravip = true Bind_Address = 0.0.0.0 }"),
        "ecelerity.conf:1:38: Bind_Address = \"0.0.0.0\" cannot be a DuraVIP; name the one address the binding uses"
    );
    assert_eq!(
        error("Binding { Enable_Duravip = true Bind_Address = 10.1.1.1 }"),
        "ecelerity.conf:1:1: a DuraVIP Binding needs a name: Binding \"name\" { Enable_Duravip = true ... }"
    );
    assert_eq!(
        error("Binding \"b1\" { Enable_Duravip = maybe }"),
        "ecelerity.conf:1:16: expected a boolean (on/off, true/false, yes/no, enabled/disabled, 1/0) for option \
         'Enable_Duravip' but found 'maybe'"
    );
}

#[test]
fn a_preference_names_a_node_of_the_segment_file() {
    let with = |preference: &str| {
        format!("Binding \"b1\" {{ Enable_Duravip = true Bind_Address = 10.1.1.1 Duravip_Preference = {preference} }}")
    };
    assert_eq!(accepted(&with("WEST2")).0.bindings[0].preference.as_deref(), Some("west2"));
    assert_eq!(
        error(&with("esat1")),
        "ecelerity.conf:1:62: Duravip_Preference = \"esat1\" names no node of the segment file; did you mean \"east1\"?"
    );
    assert_eq!(
        error(&with("north")),
        "ecelerity.conf:1:62: Duravip_Preference = \"north\" names no node of the segment file; use one of: east1, \
         east2, west1, west2"
    );
    assert_eq!(
        read_with(&with("east1"), &[]).expect_err("no nodes").to_string(),
        "ecelerity.conf:1:62: Duravip_Preference = \"east1\" names no node of the segment file; the segment file has \
         no nodes"
    );
    let many: Vec<String> = (1..=12).map(|n| format!("node{n:02}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        read_with(&with("mx"), &many).expect_err("unknown").to_string(),
        "ecelerity.conf:1:62: Duravip_Preference = \"mx\" names no node of the segment file; use one of: node01, \
         node02, node03, node04, node05, node06, node07, node08, ... (12 nodes)"
    );
    assert_eq!(
        warnings("Binding \"b1\" { Bind_Address = 10.1.1.1 Duravip_Preference = east1 }"),
        ["ecelerity.conf:1:40: warning: Duravip_Preference has no effect without Enable_Duravip = true"]
    );
}

#[test]
fn two_bindings_may_not_share_an_address_or_a_name() {
    assert_eq!(
        error(&format!("{B1}Binding \"b2\" {{ Enable_Duravip = true Bind_Address = 10.1.1.1 }}")),
        "ecelerity.conf:2:38: Binding \"b2\" declares 10.1.1.1, which Binding \"b1\" already declares at \
         ecelerity.conf:1:38; give each DuraVIP binding its own address"
    );
    assert_eq!(
        error(&format!("{B1}Binding \"b1\" {{ Enable_Duravip = true Bind_Address = 10.1.1.2 }}")),
        "ecelerity.conf:2:1: Binding \"b1\" is declared again (first at ecelerity.conf:1:1); give each DuraVIP binding \
         its own name"
    );
    assert_eq!(
        error(&format!("Binding \"b1\" {{ Bind_Address = 10.1.1.2 }}\n{B1}")),
        "ecelerity.conf:2:1: Binding \"b1\" is declared again (first at ecelerity.conf:1:1); give each DuraVIP binding \
         its own name"
    );
    accepted("Binding \"o\" { Bind_Address = 10.1.1.2 }\nBinding \"o\" { Bind_Address = 10.1.1.2 }\n");
}

#[test]
fn bindings_cannot_follow() {
    assert_eq!(
        error("Binding \"b2\" { Bind_Address = 10.1.1.2 Duravip_Follow = b1 }"),
        "ecelerity.conf:1:40: Duravip_Follow is not allowed in a Binding (bindings cannot follow); put it in a \
         listener's Listen \"IP:PORT\" { } scope"
    );
}

// ---- near misses in scopes the MTA owns ----

#[test]
fn near_misses_of_duravip_options_in_bindings_and_listeners_are_warnings() {
    let text = "Binding \"b1\" {\n  Enable_Duravp = true\n  Bind_Adress = 10.1.1.1\n  Duravip_Prefernce = east1\n  \
                Outbound_Throttle_Messages = 10\n}\nESMTP_Listener {\n  Enable_Duravp = true\n  \
                Listen \"10.1.1.3:25\" { duravip_follows = b1 }\n}\n";
    let (settings, found) = accepted(text);
    assert!(settings.bindings.is_empty());
    assert_eq!(
        found,
        [
            "ecelerity.conf:2:3: warning: option 'Enable_Duravp' in Binding \"b1\" is not one eccluster reads; did you \
             mean 'Enable_Duravip'?",
            "ecelerity.conf:3:3: warning: option 'Bind_Adress' in Binding \"b1\" is not one eccluster reads; did you \
             mean 'Bind_Address'?",
            "ecelerity.conf:4:3: warning: option 'Duravip_Prefernce' in Binding \"b1\" is not one eccluster reads; did \
             you mean 'Duravip_Preference'?",
            "ecelerity.conf:8:3: warning: option 'Enable_Duravp' in ESMTP_Listener is not one eccluster reads; did you \
             mean 'Enable_Duravip'?",
            "ecelerity.conf:9:26: warning: option 'duravip_follows' in Listen \"10.1.1.3:25\" is not one eccluster \
             reads; did you mean 'Duravip_Follow'?",
        ]
    );
}

#[test]
fn near_misses_and_misplaced_duravip_items_at_top_level_are_warnings() {
    let text = "Clustr {\n}\nBindng \"b1\" { }\nclusters = 1\nBinding = b1\nTopology \"10.1.1.0/24\" { interface = eth0 }\n\
                duravip_policy = majority\nEnable_Duravip = true\nDomain \"example.com\" { }\nRelay_Hosts ( 10.0.0.1 )\n";
    assert_eq!(
        warnings(text),
        [
            "ecelerity.conf:1:1: warning: scope 'Clustr' is not one eccluster reads; did you mean 'cluster'?",
            "ecelerity.conf:3:1: warning: scope 'Bindng' is not one eccluster reads; did you mean 'Binding'?",
            "ecelerity.conf:6:1: warning: Topology has no effect at top level; move it into cluster { }",
            "ecelerity.conf:4:1: warning: option 'clusters' is not one eccluster reads; did you mean the scope 'cluster'?",
            "ecelerity.conf:5:1: warning: 'Binding' here is an option, not a scope; write Binding \"name\" { ... }",
            "ecelerity.conf:7:1: warning: option 'duravip_policy' has no effect at top level; move it into cluster { }",
            "ecelerity.conf:8:1: warning: option 'Enable_Duravip' has no effect at top level; set it in a Binding or \
             Listen scope",
        ]
    );
}

#[test]
fn duravip_options_on_a_listener_rather_than_its_listen_scopes_have_no_effect() {
    assert_eq!(
        warnings("ESMTP_Listener {\n  Enable_Duravip = true\n  Listen \"10.1.1.1:25\" { }\n}\n"),
        ["ecelerity.conf:2:3: warning: option 'Enable_Duravip' has no effect in ESMTP_Listener { }; set it in each \
          Listen \"IP:PORT\" { } scope"]
    );
}

// ---- listeners ----

#[test]
fn an_enabled_listener_address_joins_its_binding_or_becomes_a_binding() {
    let text = format!(
        "ESMTP_Listener {{ Listen \"10.1.1.1:25\" {{ Enable_Duravip = true }} }}\n{B1}\
         Control_Listener {{ Listen \"10.1.1.4:2025\" {{ Enable_Duravip = true }} Listen \"10.1.1.4:2026\" {{ Enable_Duravip = true }} }}\n"
    );
    let (settings, found) = accepted(&text);
    assert!(found.is_empty(), "{found:?}");
    let names: Vec<&str> = settings.bindings.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["b1", "Control_Listener 10.1.1.4:2025"]);
    assert_eq!(settings.plumbing[&ip("10.1.1.1")].names, ["b1", "ESMTP_Listener 10.1.1.1:25"]);
    assert_eq!(
        settings.plumbing[&ip("10.1.1.4")].names,
        ["Control_Listener 10.1.1.4:2025", "Control_Listener 10.1.1.4:2026"]
    );
}

#[test]
fn a_listener_binding_may_not_take_the_name_of_a_binding() {
    assert_eq!(
        error("Binding \"ESMTP_Listener 10.1.1.4:25\" { Enable_Duravip = true Bind_Address = 10.1.1.5 }\n\
               ESMTP_Listener { Listen \"10.1.1.4:25\" { Enable_Duravip = true } }"),
        "ecelerity.conf:2:18: ESMTP_Listener 10.1.1.4:25 is also the name of Binding \"ESMTP_Listener 10.1.1.4:25\" at \
         ecelerity.conf:1:62; rename that binding"
    );
}

#[test]
fn a_listener_without_a_single_address_cannot_be_a_duravip() {
    assert_eq!(
        warnings("ESMTP_Listener { Listen \":25\" { Enable_Duravip = true } }"),
        ["ecelerity.conf:1:33: warning: Enable_Duravip on Listen \":25\" has no effect: it has no single address; name \
          one as \"IP:PORT\" to make it a DuraVIP"]
    );
    assert_eq!(warnings("Control_Listener { Listen \"/tmp/2025\" { Enable_Duravip = true } Listen \"0.0.0.0:26\" { Enable_Duravip = true } }").len(), 2);
    assert_eq!(
        error(&format!("{B1}ESMTP_Listener {{ Listen \":25\" {{ Duravip_Follow = b1 }} }}")),
        "ecelerity.conf:2:33: Duravip_Follow on Listen \":25\" needs a single address to plumb; name one as \"IP:PORT\""
    );
    assert_eq!(
        error("ESMTP_Listener { Listen \"10.1.1.300:25\" { Enable_Duravip = true } }"),
        "ecelerity.conf:1:18: Listen \"10.1.1.300:25\" is not \"IP:PORT\" or \"[IPv6]:PORT\", so it cannot be a DuraVIP; \
         write its address as an IP"
    );
}

#[test]
fn a_follower_names_an_existing_duravip_by_name_or_address() {
    let (settings, _) =
        accepted(&format!("{B1}ESMTP_Listener {{ Listen \"10.1.1.3:25\" {{ Duravip_Follow = \"10.1.1.1\" }} }}"));
    assert_eq!(settings.plumbing[&ip("10.1.1.1")].followers[0].addr, ip("10.1.1.3"));
    assert_eq!(
        error(&format!("{B1}ESMTP_Listener {{ Listen \"10.1.1.3:25\" {{ Duravip_Follow = \"B1\" }} }}")),
        "ecelerity.conf:2:41: Duravip_Follow = \"B1\" names no DuraVIP binding; did you mean \"b1\"?"
    );
    assert_eq!(
        error(
            "Binding \"duravip-1\" { Enable_Duravip = true Bind_Address = 10.1.1.1 }\n\
             ESMTP_Listener { Listen \"10.1.1.3:25\" { Duravip_Follow = \"duravip-7\" } }"
        ),
        "ecelerity.conf:2:41: Duravip_Follow = \"duravip-7\" names no DuraVIP binding; did you mean \"duravip-1\"?"
    );
    assert_eq!(
        error(&format!(
            "{B1}Binding \"outbound\" {{ Bind_Address = 10.1.1.8 }}\n\
             ESMTP_Listener {{ Listen \"10.1.1.3:25\" {{ Duravip_Follow = outbound }} }}"
        )),
        "ecelerity.conf:3:41: Duravip_Follow = \"outbound\" names no DuraVIP binding; name a Binding with \
         Enable_Duravip = true, by its name or its Bind_Address"
    );
}

#[test]
fn a_follower_has_an_address_of_its_own() {
    assert_eq!(
        error(&format!("{B1}ESMTP_Listener {{ Listen \"10.1.1.1:25\" {{ Duravip_Follow = b1 }} }}")),
        "ecelerity.conf:2:41: Listen \"10.1.1.1:25\" has the address of Binding \"b1\" (10.1.1.1) itself; a follower \
         needs a different address, or use Enable_Duravip = true to serve the DuraVIP"
    );
    assert_eq!(
        error(&format!(
            "{B1}Binding \"b2\" {{ Enable_Duravip = true Bind_Address = 10.1.1.2 }}\n\
             ESMTP_Listener {{ Listen \"10.1.1.2:25\" {{ Duravip_Follow = b1 }} }}"
        )),
        "ecelerity.conf:3:41: 10.1.1.2 is itself a DuraVIP (Binding \"b2\"); a listener following Binding \"b1\" needs \
         an address of its own"
    );
    assert_eq!(
        error(&format!(
            "{B1}Binding \"b2\" {{ Enable_Duravip = true Bind_Address = 10.1.1.2 }}\n\
             ESMTP_Listener {{\n  Listen \"10.1.1.3:25\" {{ Duravip_Follow = b1 }}\n  Listen \"10.1.1.3:26\" {{ Duravip_Follow = b2 }}\n}}"
        )),
        "ecelerity.conf:5:26: 10.1.1.3 already follows Binding \"b1\" (at ecelerity.conf:4:3); an address can follow \
         only one DuraVIP"
    );
}

#[test]
fn a_listener_is_either_a_duravip_or_a_follower_and_followers_have_no_preference() {
    assert_eq!(
        error(&format!(
            "{B1}ESMTP_Listener {{ Listen \"10.1.1.3:25\" {{ Enable_Duravip = true Duravip_Follow = b1 }} }}"
        )),
        "ecelerity.conf:2:63: a listener cannot be both Enable_Duravip and Duravip_Follow; remove one of them"
    );
    assert_eq!(
        error(&format!("{B1}ESMTP_Listener {{ Listen \"10.1.1.3:25\" {{ Duravip_Follow = b1 Duravip_Preference = east1 }} }}")),
        "ecelerity.conf:2:61: Duravip_Preference cannot be combined with Duravip_Follow (the listener goes wherever the \
         address it follows goes); remove Duravip_Preference"
    );
    assert_eq!(
        warnings("ESMTP_Listener { Listen \"10.1.1.3:25\" { Duravip_Preference = east1 } }"),
        ["ecelerity.conf:1:41: warning: Duravip_Preference has no effect without Enable_Duravip = true"]
    );
}

#[test]
fn a_preference_on_an_enabled_listener_is_a_warning() {
    let (settings, found) =
        accepted("ESMTP_Listener { Listen \"10.1.1.4:25\" { Enable_Duravip = true Duravip_Preference = west1 } }");
    assert_eq!(settings.bindings[0].preference.as_deref(), Some("west1"));
    assert_eq!(
        found,
        ["ecelerity.conf:1:63: warning: Momentum advises against Duravip_Preference on a listener with Enable_Duravip; \
          set it on a Binding with Bind_Address = \"10.1.1.4\" instead"]
    );
    let text = "Binding \"b1\" { Enable_Duravip = true Bind_Address = 10.1.1.1 Duravip_Preference = east1 }\n\
                ESMTP_Listener { Listen \"10.1.1.1:25\" { Enable_Duravip = true Duravip_Preference = west1 } }";
    let (settings, found) = accepted(text);
    assert_eq!(settings.bindings[0].preference.as_deref(), Some("east1"));
    assert_eq!(
        found,
        ["ecelerity.conf:2:63: warning: Momentum advises against Duravip_Preference on a listener with Enable_Duravip; \
          set it on a Binding with Bind_Address = \"10.1.1.1\" instead; ignored here because Binding \"b1\" prefers \
          \"east1\""]
    );
    assert_eq!(
        error("ESMTP_Listener { Listen \"10.1.1.4:25\" { Enable_Duravip = true Duravip_Preference = nobody } }"),
        "ecelerity.conf:1:63: Duravip_Preference = \"nobody\" names no node of the segment file; use one of: east1, \
         east2, west1, west2"
    );
}
