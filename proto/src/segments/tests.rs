//! Tests of the segment file parser, renderer and generator.

use std::net::{Ipv4Addr, SocketAddr};

use super::parse::broadcast_network;
use super::*;

const EXAMPLE: &str = "\
SocketPortReuse = on
DaemonUser = ecspread
DebugFlags = { EXIT CONFIGURATION }
EventTimeStamp
# Subcluster: east = mgr
Spread_Segment 127.0.1.255:4803 {      # the broadcast address of the segment
    mgr      127.0.1.10   # manager
    east1    127.0.1.11
}
Spread_Segment 127.0.2.255:4803 {
    east2    127.0.2.11
}

# Subcluster: west => mgr
Spread_Segment 127.0.3.255:4803 {
    west1    127.0.3.11
    west2    127.0.3.12
}
";

fn parse(text: &str) -> Segments {
    Segments::parse("t.conf", text).expect("test input parses")
}

fn err(text: &str) -> String {
    Segments::parse("t.conf", text)
        .expect_err("test input is rejected")
        .to_string()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

fn net(s: &str) -> ipnet::Ipv4Net {
    s.parse().expect("test network")
}

fn names<'a>(hosts: impl Iterator<Item = &'a SegmentHost>) -> Vec<&'a str> {
    hosts.map(|h| h.name.as_str()).collect()
}

#[test]
fn example_parses_into_subclusters_hosts_networks_and_ports() {
    let s = parse(EXAMPLE);
    let globals: Vec<(&str, &str)> = s
        .globals
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        globals,
        [
            ("SocketPortReuse", "on"),
            ("DaemonUser", "ecspread"),
            ("DebugFlags", "{ EXIT CONFIGURATION }"),
            ("EventTimeStamp", "")
        ]
    );
    let seg = |b: &str, n: &str, line| Segment {
        broadcast: ip(b),
        port: 4803,
        network: net(n),
        line,
    };
    assert_eq!(
        s.subclusters,
        [
            Subcluster {
                name: "east".into(),
                manager: Some("mgr".into()),
                segments: vec![
                    seg("127.0.1.255", "127.0.1.0/24", 6),
                    seg("127.0.2.255", "127.0.2.0/24", 10)
                ],
            },
            Subcluster {
                name: "west".into(),
                manager: Some("mgr".into()),
                segments: vec![seg("127.0.3.255", "127.0.3.0/24", 15)],
            },
        ]
    );
    let host = |name: &str, addr: &str, sc: &str, line| SegmentHost {
        name: name.into(),
        addr: ip(addr),
        port: 4803,
        subcluster: sc.into(),
        line,
    };
    assert_eq!(
        s.hosts,
        [
            host("mgr", "127.0.1.10", "east", 7),
            host("east1", "127.0.1.11", "east", 8),
            host("east2", "127.0.2.11", "east", 11),
            host("west1", "127.0.3.11", "west", 16),
            host("west2", "127.0.3.12", "west", 17),
        ]
    );
    assert_eq!(names(s.hosts_in("east")), ["mgr", "east1", "east2"]);
    assert_eq!(names(s.hosts_in("west")), ["west1", "west2"]);
    let west2 = s.host("west2").expect("west2");
    assert_eq!(
        west2.socket_addr(),
        "127.0.3.12:4803".parse::<SocketAddr>().expect("addr")
    );
}

#[test]
fn subcluster_line_accepts_both_arrows_and_flexible_spacing() {
    let s = parse(
        "#Subcluster:east=mgr\nSpread_Segment 127.0.1.255:4803 {\n mgr 127.0.1.10\n}\n\
         #   SUBCLUSTER :  west   =>   MGR   \nSpread_Segment 127.0.2.255:4803 {\n west1 127.0.2.11\n}\n",
    );
    let managers: Vec<_> = s
        .subclusters
        .iter()
        .map(|sc| (sc.name.as_str(), sc.manager.as_deref()))
        .collect();
    assert_eq!(managers, [("east", Some("mgr")), ("west", Some("mgr"))]);
}

#[test]
fn open_brace_may_be_on_the_next_line() {
    let s = parse("Spread_Segment 127.0.1.255:4803\n\n   {   # opens here\n mgr 127.0.1.10\n}\n");
    assert_eq!(names(s.hosts.iter()), ["mgr"]);
    assert_eq!(s.subclusters[0].segments[0].line, 1);
}

#[test]
fn trailing_comments_are_ignored_everywhere() {
    let s = parse(
        "DaemonUser = ecspread # who runs it\n\
         # Subcluster: east => mgr   # the main site\n\
         Spread_Segment 127.0.1.255:4803 { # segment\n\
         \tmgr\t127.0.1.10\t# tabbed\n\
         } # done\n\
         # a plain comment: Spread_Segment 10.0.0.255:1 {\n",
    );
    assert_eq!(
        s.globals,
        [("DaemonUser".to_string(), "ecspread".to_string())]
    );
    assert_eq!(s.subclusters[0].manager.as_deref(), Some("mgr"));
    assert_eq!(names(s.hosts.iter()), ["mgr"]);
}

#[test]
fn header_lines_may_repeat_between_subclusters() {
    let header = "SocketPortReuse = on\nDaemonUser = ecspread\nEventTimeStamp\n";
    let text = format!(
        "{header}\n# Subcluster: east => mgr\nSpread_Segment 127.0.1.255:4803 {{\n mgr 127.0.1.10\n}}\n\
         {header}\n# Subcluster: west => mgr\nSpread_Segment 127.0.2.255:4803 {{\n west1 127.0.2.11\n}}\n"
    );
    let s = parse(&text);
    assert_eq!(s.globals.len(), 6);
    assert_eq!(
        s.globals[3],
        ("SocketPortReuse".to_string(), "on".to_string())
    );
    assert_eq!(names(s.hosts_in("west")), ["west1"]);
}

#[test]
fn segments_before_any_subcluster_line_go_to_default() {
    let s = parse(
        "Spread_Segment 127.0.1.255:4803 {\n mgr 127.0.1.10\n}\n\n\
         # Subcluster: west => mgr\nSpread_Segment 127.0.2.255:4803 {\n west1 127.0.2.11\n}\n",
    );
    let default = s
        .subcluster(DEFAULT_SUBCLUSTER)
        .expect("default subcluster");
    assert_eq!(default.manager, None);
    assert_eq!(names(s.hosts_in("default")), ["mgr"]);
    assert_eq!(s.subclusters[1].name, "west");
    assert_eq!(parse(&s.render()), s);
}

#[test]
fn multi_address_host_line_keeps_the_first_address() {
    let s = parse(
        "Spread_Segment 127.0.1.255:4803 {\n\
         \x20   mgr 127.0.1.10 { D 127.0.1.10 C 192.168.0.10 }\n\
         \x20   east1 127.0.1.11 {\n        D 127.0.1.11\n        C 192.168.0.11\n    }\n\
         \x20   east2 127.0.1.12\n}\n",
    );
    let got: Vec<_> = s
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h.addr, h.line))
        .collect();
    assert_eq!(
        got,
        [
            ("mgr", ip("127.0.1.10"), 2),
            ("east1", ip("127.0.1.11"), 3),
            ("east2", ip("127.0.1.12"), 7)
        ]
    );
}

#[test]
fn names_match_case_insensitively_and_are_stored_lowercase() {
    let s = parse("# Subcluster: East => MGR\nSpread_Segment 127.0.1.255:4803 {\n MGR 127.0.1.10\n East1 127.0.1.11\n}\n");
    assert_eq!(names(s.hosts.iter()), ["mgr", "east1"]);
    assert_eq!(s.host("EAST1").map(|h| h.addr), Some(ip("127.0.1.11")));
    assert_eq!(
        s.subcluster("EAST").map(|sc| sc.name.as_str()),
        Some("east")
    );
    assert_eq!(s.hosts_in("eAsT").count(), 2);
    assert!(s.host("east2").is_none());
    assert!(s.subcluster("west").is_none());
}

#[test]
fn segment_for_finds_the_network_holding_an_address() {
    let s = parse(EXAMPLE);
    let (sc, seg) = s.segment_for(ip("127.0.2.200")).expect("inside");
    assert_eq!(
        (sc.name.as_str(), seg.network),
        ("east", net("127.0.2.0/24"))
    );
    let (sc, seg) = s.segment_for(ip("127.0.3.1")).expect("inside");
    assert_eq!((sc.name.as_str(), seg.line), ("west", 15));
    assert!(s.segment_for(ip("127.0.4.1")).is_none());
    assert!(s.segment_for(ip("10.0.0.1")).is_none());
}

#[test]
fn host_by_addr_needs_address_and_port() {
    let s = parse(EXAMPLE);
    let at = |a: &str| a.parse::<SocketAddr>().expect("socket addr");
    assert_eq!(
        s.host_by_addr(at("127.0.1.11:4803"))
            .map(|h| h.name.as_str()),
        Some("east1")
    );
    assert_eq!(
        s.host_by_addr(at("[::ffff:127.0.1.11]:4803"))
            .map(|h| h.name.as_str()),
        Some("east1")
    );
    assert!(s.host_by_addr(at("127.0.1.11:4804")).is_none());
    assert!(s.host_by_addr(at("127.0.1.99:4803")).is_none());
}

#[test]
fn broadcast_addresses_map_to_networks() {
    let cases = [
        ("10.79.24.255", "10.79.24.0/24"),
        ("127.0.1.255", "127.0.1.0/24"),
        ("127.0.3.255", "127.0.3.0/24"),
        ("10.0.0.127", "10.0.0.0/25"),
        ("10.0.0.3", "10.0.0.0/30"),
        ("10.1.255.255", "10.1.0.0/16"),
    ];
    for (b, n) in cases {
        assert_eq!(broadcast_network(ip(b)), Some(net(n)), "{b}");
    }
    assert_eq!(broadcast_network(ip("10.0.0.1")), None);
    assert_eq!(broadcast_network(ip("10.0.0.254")), None);
}

#[test]
fn momentum_docs_example_resolves_fqdn_manager_to_short_name() {
    let s = parse(
        "# Subcluster: east = rh52mgr.vmnet24.example.com\nSpread_Segment 10.79.24.255:4803 {\n\
         \x20      rh52bare        10.79.24.130\n       rh52mgr         10.79.24.136\n}\n\n\
         # Subcluster: west = rh52mgr.vmnet24.example.com\nSpread_Segment 10.79.240.255:4803 {\n\
         \x20      rh52bar2        10.79.240.129\n}\n",
    );
    assert_eq!(
        s.subcluster("west").and_then(|sc| sc.manager.as_deref()),
        Some("rh52mgr")
    );
    assert_eq!(
        s.segment_for(ip("10.79.240.129"))
            .map(|(_, seg)| seg.network),
        Some(net("10.79.240.0/24"))
    );
}

#[test]
fn generate_render_parse_round_trip_two_by_sixteen() {
    let s = Segments::generate(&[("east", 16), ("west", 16)], ip("127.0.1.0"), 4803).expect("generate");
    assert_eq!(s.hosts.len(), 32);
    assert_eq!(names(s.hosts_in("east").take(3)), ["mgr", "east1", "east2"]);
    assert_eq!(
        s.host("mgr").map(|h| (h.addr, h.port)),
        Some((ip("127.0.1.10"), 4803))
    );
    assert_eq!(s.host("east15").map(|h| h.addr), Some(ip("127.0.1.25")));
    assert_eq!(s.host("west1").map(|h| h.addr), Some(ip("127.0.2.11")));
    assert_eq!(s.host("west16").map(|h| h.addr), Some(ip("127.0.2.26")));
    assert!(s
        .subclusters
        .iter()
        .all(|sc| sc.manager.as_deref() == Some("mgr")));
    assert_eq!(
        s.subcluster("west").map(|sc| sc.segments[0].network),
        Some(net("127.0.2.0/24"))
    );
    let text = s.render();
    assert!(text.starts_with(
        "# Subcluster: east => mgr\nSpread_Segment 127.0.1.255:4803 {\n    mgr      127.0.1.10\n"
    ));
    assert_eq!(parse(&text), s);
    assert_eq!(parse(&text).render(), text);
}

#[test]
fn render_round_trips_the_example() {
    let s = parse(EXAMPLE);
    let again = parse(&s.render());
    assert_eq!(again.globals, s.globals);
    assert_eq!(again.render(), s.render());
    assert_eq!(names(again.hosts.iter()), names(s.hosts.iter()));
}

#[test]
fn rejects_bad_segment_addresses() {
    assert_eq!(
        err("Spread_Segment 10.0.0.255 {\n    a 10.0.0.1\n}\n"),
        "t.conf:1:16: missing port in segment address 10.0.0.255 (expected BCAST:PORT, e.g. 10.0.0.255:4803)"
    );
    assert_eq!(
        err("Spread_Segment 10.0.0.255:48o3 {\n"),
        "t.conf:1:27: bad port `48o3` in segment address 10.0.0.255:48o3 (expected 1 to 65535)"
    );
    assert_eq!(
        err("Spread_Segment 10.0.0.255:0 {\n"),
        "t.conf:1:27: bad port `0` in segment address 10.0.0.255:0 (expected 1 to 65535)"
    );
    assert_eq!(
        err("Spread_Segment 10.0.0.256:4803 {\n"),
        "t.conf:1:16: bad broadcast address `10.0.0.256` in Spread_Segment (expected an IPv4 address like 10.0.0.255)"
    );
    assert_eq!(
        err("\nSpread_Segment   10.0.0.1:4803 {\n"),
        "t.conf:2:18: segment address 10.0.0.1 is not a broadcast address (it must end in at least two 1-bits, like 10.0.0.255)"
    );
    assert_eq!(
        err("Spread_Segment {\n"),
        "t.conf:1:16: missing address after Spread_Segment (expected BCAST:PORT), found `{`"
    );
}

#[test]
fn rejects_bad_host_addresses() {
    let seg = "# Subcluster: east = mgr\nSpread_Segment 127.0.1.255:4803 {\n    mgr 127.0.1.10\n";
    assert_eq!(
        err(&format!("{seg}    east1 127.0.1.300\n}}\n")),
        "t.conf:4:11: bad address `127.0.1.300` for host east1 (expected an IPv4 address like 10.0.0.11)"
    );
    assert_eq!(
        err(&format!("{seg}    east1 10.1.1.1\n}}\n")),
        "t.conf:4:11: host east1 address 10.1.1.1 is outside segment 127.0.1.0/24"
    );
    assert_eq!(
        err(&format!("{seg}    east1 127.0.1.255\n}}\n")),
        "t.conf:4:11: host east1 address 127.0.1.255 is the broadcast address of segment 127.0.1.0/24"
    );
    assert_eq!(
        err(&format!("{seg}    east1 127.0.1.0\n}}\n")),
        "t.conf:4:11: host east1 address 127.0.1.0 is the network address of segment 127.0.1.0/24"
    );
    assert_eq!(
        err(&format!("{seg}    east1\n}}\n")),
        "t.conf:4:10: host east1 has no address (expected `east1 ADDRESS`)"
    );
}

#[test]
fn rejects_duplicate_host_names_naming_the_first_line() {
    assert_eq!(
        err("Spread_Segment 127.0.1.255:4803 {\n    east1 127.0.1.11\n}\nSpread_Segment 127.0.2.255:4803 {\n    EAST1 127.0.2.11\n}\n"),
        "t.conf:5:5: duplicate host name east1 (first defined at line 2)"
    );
}

#[test]
fn rejects_duplicate_addresses() {
    assert_eq!(
        err("Spread_Segment 127.0.1.255:4803 {\n    east1 127.0.1.11\n    east2 127.0.1.11\n}\n"),
        "t.conf:3:11: duplicate address 127.0.1.11 for host east2 (already used by east1 at line 2)"
    );
}

#[test]
fn rejects_overlapping_segments() {
    assert_eq!(
        err("Spread_Segment 10.0.255.255:4803 {\n a 10.0.1.1\n}\nSpread_Segment 10.0.3.255:4803 {\n b 10.0.3.1\n}\n"),
        "t.conf:4:16: segment 10.0.3.0/24 overlaps segment 10.0.0.0/16 at line 1"
    );
}

#[test]
fn rejects_a_subcluster_declared_twice() {
    let block = "Spread_Segment 127.0.1.255:4803 {\n    mgr 127.0.1.10\n}\n";
    assert_eq!(
        err(&format!(
            "# Subcluster: east => mgr\n{block}# Subcluster: East => mgr\n"
        )),
        "t.conf:5:15: subcluster east declared twice (first at line 1)"
    );
    assert_eq!(
        err(&format!("{block}# Subcluster: default => mgr\n")),
        "t.conf:4:15: subcluster default declared twice (first at line 1)"
    );
}

#[test]
fn rejects_unterminated_braces() {
    let open = "Spread_Segment 127.0.1.255:4803 {\n    mgr 127.0.1.10\n";
    assert_eq!(
        err(open),
        "t.conf:1:33: unterminated `{` of Spread_Segment 127.0.1.255:4803 (no `}` before end of file)"
    );
    assert_eq!(
        err(&format!("{open}Spread_Segment 127.0.2.255:4803 {{\n}}\n")),
        "t.conf:1:33: unterminated `{` of Spread_Segment 127.0.1.255:4803 (no `}` before line 3)"
    );
    assert_eq!(
        err(&format!("{open}# Subcluster: west => mgr\n")),
        "t.conf:1:33: unterminated `{` of Spread_Segment 127.0.1.255:4803 (no `}` before line 3)"
    );
    assert_eq!(
        err("Spread_Segment 127.0.1.255:4803 {\n    mgr 127.0.1.10 { D 127.0.1.10\n"),
        "t.conf:2:20: unterminated `{` of the addresses of host mgr (no `}` before end of file)"
    );
    assert_eq!(
        err("DebugFlags = { EXIT\n"),
        "t.conf:1:14: unterminated `{` of the value of DebugFlags (no `}` before end of file)"
    );
}

#[test]
fn rejects_text_after_a_closing_brace() {
    let open = "Spread_Segment 127.0.1.255:4803 {\n    mgr 127.0.1.10\n";
    assert_eq!(
        err(&format!("{open}}} junk\n")),
        "t.conf:3:3: unexpected `junk` after `}` (put it on its own line)"
    );
    assert_eq!(
        err(&format!(
            "{open}  }}Spread_Segment 127.0.2.255:4803 {{\n}}\n"
        )),
        "t.conf:3:4: unexpected `Spread_Segment` after `}` (put it on its own line)"
    );
}

#[test]
fn rejects_subcluster_lines_without_name_or_manager() {
    assert_eq!(
        err("# Subcluster:\n"),
        "t.conf:1:14: `# Subcluster:` line has no subcluster name (expected `# Subcluster: NAME => MANAGER`)"
    );
    assert_eq!(
        err("# Subcluster: => mgr\n"),
        "t.conf:1:15: `# Subcluster:` line has no subcluster name (expected `# Subcluster: NAME => MANAGER`)"
    );
    assert_eq!(
        err("# Subcluster: east\n"),
        "t.conf:1:19: `# Subcluster:` line for east has no manager host (expected `# Subcluster: east => MANAGER`)"
    );
    assert_eq!(
        err("# Subcluster: east =>   # to do\n"),
        "t.conf:1:25: `# Subcluster:` line for east has no manager host (expected `# Subcluster: east => MANAGER`)"
    );
    assert_eq!(
        err("# Subcluster: east mgr\n"),
        "t.conf:1:20: expected `=>` or `=` after subcluster name east, found `mgr`"
    );
    assert_eq!(
        err("# Subcluster: e/st => mgr\n"),
        "t.conf:1:15: subcluster name `e/st` is not valid (use 1 to 63 letters, digits, `-` and `_`)"
    );
}

#[test]
fn rejects_host_names_that_are_not_dns_labels() {
    let text =
        |name: &str| format!("Spread_Segment 127.0.1.255:4803 {{\n    {name} 127.0.1.10\n}}\n");
    let msg = "is not a valid DNS label (use 1 to 63 letters, digits and `-`, not starting or ending with `-`)";
    assert_eq!(
        err(&text("east_1")),
        format!("t.conf:2:5: host name `east_1` {msg}")
    );
    assert_eq!(
        err(&text("-east")),
        format!("t.conf:2:5: host name `-east` {msg}")
    );
    let long = "a".repeat(64);
    assert_eq!(
        err(&text(&long)),
        format!("t.conf:2:5: host name `{long}` {msg}")
    );
    assert_eq!(parse(&text(&"a".repeat(63))).hosts.len(), 1);
}

#[test]
fn rejects_a_file_without_hosts() {
    let msg =
        "t.conf:1:1: no hosts defined (expected at least one Spread_Segment block with a host)";
    assert_eq!(err(""), msg);
    assert_eq!(err("# nothing here\nEventTimeStamp\n"), msg);
    assert_eq!(err("Spread_Segment 127.0.1.255:4803 {\n}\n"), msg);
}

#[test]
fn rejects_a_manager_that_is_not_a_host_at_the_end() {
    assert_eq!(
        err("# Subcluster: east => boss\nSpread_Segment 127.0.1.255:4803 {\n    east1 127.0.1.11\n}\n"),
        "t.conf:1:23: manager host boss of subcluster east is not a host in this file"
    );
}

#[test]
fn rejects_other_syntax_errors_with_their_place() {
    assert_eq!(err("}\n"), "t.conf:1:1: unexpected `}` with no open `{`");
    assert_eq!(
        err("Spread_Segment 127.0.1.255:4803\n    mgr 127.0.1.10\n"),
        "t.conf:2:5: expected `{` after Spread_Segment 127.0.1.255:4803, found `mgr`"
    );
    assert_eq!(
        err("Spread_Segment 127.0.1.255:4803 {\n    mgr 127.0.1.10 east1 127.0.1.11\n}\n"),
        "t.conf:2:20: unexpected `east1` after host mgr (put one host per line)"
    );
    assert_eq!(
        err("DaemonUser =\n"),
        "t.conf:1:12: setting `DaemonUser` has no value after `=`"
    );
    assert_eq!(
        err("DaemonUser ecspread\n"),
        "t.conf:1:12: unexpected `ecspread` after setting `DaemonUser` (expected `DaemonUser = VALUE` or `DaemonUser` alone)"
    );
    assert_eq!(
        err("EventTimeStamp = \"[%a %d\n"),
        "t.conf:1:18: unterminated string (add the closing `\"`)"
    );
}

/// Fixed-seed xorshift64, so the no-panic test is reproducible.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
}

/// Parses `bytes`; whatever parses must render into text that parses to the same topology.
/// Returns whether the input parsed.
fn check_no_panic(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Ok(s) = Segments::parse("fuzz", &text) else {
        return false;
    };
    let rendered = s.render();
    let again = Segments::parse("fuzz", &rendered).expect("rendered text parses");
    assert_eq!(again.render(), rendered, "input: {text:?}");
    assert_eq!(names(again.hosts.iter()), names(s.hosts.iter()));
    true
}

#[test]
fn never_panics_on_prefixes_or_random_input() {
    let mut parsed = [0usize; 4];
    for end in 0..=EXAMPLE.len() {
        parsed[3] += usize::from(check_no_panic(&EXAMPLE.as_bytes()[..end]));
    }
    let vocab: [&[u8]; 36] = [
        b"Spread_Segment ",
        b" ",
        b"\n",
        b"{",
        b"}",
        b"=",
        b"=>",
        b"# Subcluster: ",
        b"east",
        b"West",
        b"mgr ",
        b"127.0.1.255:4803",
        b"127.0.1.11",
        b"127.0.1.10\n",
        b"127.0.2.255:4803 {\n",
        b"127.0.2.11",
        b"10.0.0.1",
        b":",
        b"#",
        b"\"",
        b"DebugFlags",
        b"EXIT",
        "\u{e9}\u{e9}".as_bytes(),
        b"\r\n",
        b"\t",
        b"default",
        b"-",
        b"a_b",
        b"99999999999",
        b"255.255.255.255:1",
        b"\nSpread_Segment 127.0.1.255:4803 {\n",
        b"\n}\n",
        b"\n# Subcluster: east => mgr\n",
        b"\nmgr 127.0.1.10\n",
        b"\nwest1 127.0.2.12 { D 1.2.3.4 }\n",
        b"\nDebugFlags = { EXIT\n",
    ];
    let mut rng = XorShift(0xC0FFEE);
    for round in 0..4000 {
        let mut bytes = Vec::new();
        match round % 3 {
            0 => bytes.extend((0..rng.below(200)).map(|_| rng.next() as u8)),
            1 => {
                // Mostly whole lines (the last six entries), so some soups parse.
                for _ in 0..rng.below(12) {
                    let pick = if rng.below(10) < 8 {
                        vocab.len() - 1 - rng.below(6)
                    } else {
                        rng.below(vocab.len())
                    };
                    bytes.extend_from_slice(vocab[pick]);
                }
            }
            _ => {
                bytes.extend_from_slice(EXAMPLE.as_bytes());
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(bytes.len());
                    match rng.below(3) {
                        0 => bytes[at] = rng.next() as u8,
                        1 => bytes.insert(at, vocab[rng.below(vocab.len())][0]),
                        _ => {
                            bytes.remove(at);
                        }
                    }
                }
            }
        }
        parsed[round % 3] += usize::from(check_no_panic(&bytes));
    }
    eprintln!("inputs that parsed (bytes, tokens, mutations, prefixes): {parsed:?}");
    assert!(
        parsed[1] > 0 && parsed[2] > 100 && parsed[3] > 0,
        "the no-panic inputs reach the checks"
    );
}

#[test]
fn generate_spreads_large_subclusters_over_several_segments() {
    let s = Segments::generate(&[("east", 5000), ("west", 5000)], ip("127.1.0.0"), 4803).expect("generate");
    assert_eq!(s.hosts.len(), 10_000);
    assert_eq!(s.hosts_in("east").count(), 5000);
    assert_eq!(s.subcluster("east").expect("east").segments.len(), 21);
    for h in &s.hosts {
        let (sc, _) = s.segment_for(h.addr).expect("inside a segment");
        assert_eq!(sc.name, h.subcluster, "{}", h.name);
    }
    let again = Segments::parse("generated", &s.render()).expect("round trip");
    assert_eq!(again, s);
    let err = Segments::generate(&[("east", 300)], ip("255.255.254.0"), 4803).expect_err("no room");
    assert!(err.to_string().contains("does not fit"), "{err}");
    let err = Segments::generate(&[("bad name", 2)], ip("127.0.1.0"), 4803).expect_err("bad name");
    assert!(err.to_string().starts_with("generated:"), "{err}");
}
