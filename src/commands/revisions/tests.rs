//! The parsing of `cluster config announce`, the rendering of both commands in the three
//! formats, and both run against a real manager core and a real node core.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use eccluster_proto::membership::{MembershipConfig, Roster};
use eccluster_proto::node::{DuravipSetup, NodeConfig};
use eccluster_proto::ops::OpsConfig;
use eccluster_proto::{MemberId, Role};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::console::frame::Status;
use crate::console::request::parse_line;

fn words(line: &str) -> Vec<String> {
    parse_line(line).unwrap().words
}

fn error_of(line: &str) -> String {
    parse(&words(line)).unwrap().unwrap_err()
}

#[test]
fn announce_takes_repository_revision_pairs_in_order() {
    assert_eq!(
        parse(&words("cluster config announce west 7 global 12")),
        Some(Ok(RevisionCommand::Announce(vec![("west".into(), 7), ("global".into(), 12)])))
    );
    assert_eq!(parse(&words("CLUSTER Config ANNOUNCE west 1")), Some(Ok(RevisionCommand::Announce(vec![("west".into(), 1)]))));
    assert_eq!(parse(&words("show cluster config")), Some(Ok(RevisionCommand::Show)));
    assert_eq!(parse(&words("SHOW CLUSTER CONFIG")), Some(Ok(RevisionCommand::Show)));
}

#[test]
fn other_commands_are_not_taken() {
    for line in ["cluster membership", "cluster info", "show cluster membership", "config get x", "show cluster", "cluster"] {
        assert_eq!(parse(&words(line)), None, "{line}");
    }
}

#[test]
fn bad_announcements_name_the_word_at_fault() {
    assert_eq!(error_of("cluster config announce"), format!("usage: {ANNOUNCE_USAGE}"));
    assert_eq!(error_of("cluster config"), format!("usage: {ANNOUNCE_USAGE}"));
    assert_eq!(error_of("cluster config publish west 7"), format!("usage: {ANNOUNCE_USAGE}"));
    assert_eq!(error_of("show cluster config now"), "usage: show cluster config");
    let odd = error_of("cluster config announce west 7 global");
    assert!(odd.contains("'global' has no revision"), "{odd}");
    let word = error_of("cluster config announce west seven");
    assert!(word.contains("'seven' is not a revision number of west"), "{word}");
    for number in ["-1", "+7", "7.0", "0", "18446744073709551616"] {
        let e = error_of(&format!("cluster config announce west {number}"));
        assert!(e.contains(&format!("'{number}' is not a revision number")), "{number}: {e}");
    }
    let empty = error_of("cluster config announce \"\" 3");
    assert!(empty.contains("'' is not a repository name (1 to 64 bytes"), "{empty}");
    let long = "r".repeat(MAX_NAME + 1);
    let e = error_of(&format!("cluster config announce {long} 3"));
    assert!(e.contains(&format!("'{long}' is not a repository name")), "{e}");
    let control = parse(&["cluster".into(), "config".into(), "announce".into(), "a\x1bb".into(), "3".into()]);
    let e = control.unwrap().unwrap_err();
    assert!(e.contains("'a\\x1bb' is not a repository name"), "{e}");
    let exact = "r".repeat(MAX_NAME);
    assert!(parse(&words(&format!("cluster config announce {exact} 3"))).unwrap().is_ok());
    let many: String = (0..=MAX_REPOS).map(|i| format!(" r{i} 1")).collect();
    let e = error_of(&format!("cluster config announce{many}"));
    assert!(e.contains(&format!("at most {MAX_REPOS}")), "{e}");
}

fn revisions(pairs: &[(&str, u64)]) -> Revisions {
    pairs.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect()
}

/// west1 runs the newest, west2 is behind with a two-line error, west3 never reported.
fn table(now: Instant) -> (Revisions, BTreeMap<String, NodeRevisions>) {
    let newest = revisions(&[("global", 2), ("west", 7)]);
    let mut nodes = BTreeMap::new();
    nodes.insert(
        "west1".to_owned(),
        NodeRevisions {
            subcluster: "west".into(),
            running: newest.clone(),
            error: None,
            knows: newest.clone(),
            heard: Some(now - Duration::from_secs(3)),
        },
    );
    nodes.insert(
        "west2".to_owned(),
        NodeRevisions {
            subcluster: "west".into(),
            running: revisions(&[("global", 2), ("west", 6)]),
            error: Some("pull failed:\nconnection <refused>\x1b[31m".to_owned()),
            knows: newest.clone(),
            heard: Some(now - Duration::from_secs(42)),
        },
    );
    nodes.insert("west3".to_owned(), NodeRevisions { subcluster: "west".into(), ..NodeRevisions::default() });
    (newest, nodes)
}

#[test]
fn show_as_text_is_one_row_per_node_with_the_error_on_that_row() {
    let now = Instant::now();
    let (newest, nodes) = table(now);
    let text = render_show(&newest, &nodes, now, Format::Text);
    assert_eq!(
        text,
        "Newest: global 2, west 7\n\
         Node   State    Reported  Running           Error\n\
         west1  current  3s ago    global 2, west 7  -\n\
         west2  behind   42s ago   global 2, west 6  pull failed:\\x0aconnection <refused>\\x1b[31m\n\
         west3  behind   never     none              -\n"
    );
    assert_eq!(
        render_show(&Revisions::new(), &BTreeMap::new(), now, Format::Text),
        "Newest: none announced yet (ecconfigd announces every commit)\nNo live nodes.\n"
    );
}

#[test]
fn show_as_xml_escapes_markup_and_controls() {
    let now = Instant::now();
    let (newest, nodes) = table(now);
    let xml = render_show(&newest, &nodes, now, Format::Xml);
    assert!(xml.starts_with("<ClusterConfig>\n  <Newest>\n    <Repository name=\"global\" revision=\"2\"/>\n"), "{xml}");
    assert!(
        xml.contains(
            "  <Node>\n    <NodeName>west2</NodeName>\n    <State>behind</State>\n    <ReportedSeconds>42</ReportedSeconds>\n    \
             <Running>\n      <Repository name=\"global\" revision=\"2\"/>\n      <Repository name=\"west\" revision=\"6\"/>\n    \
             </Running>\n    <Error>pull failed:\\x0aconnection &lt;refused&gt;\\x1b[31m</Error>\n  </Node>\n"
        ),
        "{xml}"
    );
    assert!(xml.contains("<NodeName>west3</NodeName>\n    <State>behind</State>\n    <Running>\n    </Running>\n  </Node>"), "{xml}");
    assert!(!xml.chars().any(|c| c.is_control() && c != '\n'), "{xml}");
    assert!(xml.ends_with("</ClusterConfig>\n"), "{xml}");
}

#[test]
fn show_as_json_carries_every_field() {
    let now = Instant::now();
    let (newest, nodes) = table(now);
    let json = render_show(&newest, &nodes, now, Format::Json);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["newest"], json!({ "global": 2, "west": 7 }));
    let rows = v["nodes"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0], json!({ "name": "west1", "state": "current", "running": { "global": 2, "west": 7 }, "error": null, "reported_seconds": 3 }));
    assert_eq!(rows[1]["state"], "behind");
    assert_eq!(rows[1]["error"], "pull failed:\nconnection <refused>\x1b[31m");
    assert_eq!(rows[2]["reported_seconds"], Value::Null);
    assert_eq!(rows[2]["running"], json!({}));
    assert_eq!(json.lines().filter(|l| l.contains("pull failed")).count(), 1, "{json}");
}

#[test]
fn the_announce_answer_says_per_repository_what_happened() {
    let outcomes = [
        Announced { repo: "west".into(), rev: 7, newer: true, newest: Some(7), told: 2 },
        Announced { repo: "east".into(), rev: 3, newer: true, newest: Some(3), told: 1 },
        Announced { repo: "global".into(), rev: 4, newer: false, newest: Some(5), told: 0 },
    ];
    assert_eq!(
        render_announced(&outcomes, Format::Text),
        "west 7: announced to 2 nodes\neast 3: announced to 1 node\nglobal 4: already known (newest 5)\n"
    );
    let v: Value = serde_json::from_str(&render_announced(&outcomes, Format::Json)).unwrap();
    assert_eq!(v[2], json!({ "repo": "global", "revision": 4, "outcome": "known", "newest": 5, "nodes": 0 }));
    let xml = render_announced(&outcomes, Format::Xml);
    assert!(xml.contains("<Repository name=\"west\" revision=\"7\" outcome=\"announced\" newest=\"7\" nodes=\"2\"/>"), "{xml}");
}

fn core(role: Role) -> Node {
    let addr: SocketAddr = "127.42.200.1:4803".parse().unwrap();
    let mut roster = Roster::new();
    roster.insert("mgr", addr, "west");
    let id = MemberId { name: "mgr".into(), addr, role, subcluster: "west".into(), incarnation: 1 };
    let managers = if role == Role::Manager { BTreeSet::from(["mgr".to_owned()]) } else { BTreeSet::new() };
    let config = NodeConfig {
        id,
        roster,
        managers,
        membership: MembershipConfig::lan(1),
        ops: OpsConfig::default(),
        epoch: 1,
        duravip: DuravipSetup::default(),
    };
    let mut node = Node::new(config, StdRng::seed_from_u64(0xC0FFEE)).unwrap();
    node.start(Instant::now());
    while node.poll_output().is_some() {}
    node
}

fn run(node: &mut Node, line: &str) -> Reply {
    handle(node, Instant::now(), &parse_line(line).unwrap()).expect("one of the revision commands")
}

#[test]
fn a_manager_core_takes_newer_revisions_once_and_shows_them() {
    let mut mgr = core(Role::Manager);
    let first = run(&mut mgr, "cluster config announce west 7 global 2");
    assert_eq!((first.status, first.body.as_str()), (Status::Ok, "west 7: announced to 0 nodes\nglobal 2: announced to 0 nodes\n"));
    let again = run(&mut mgr, "cluster config announce west 7 global 1");
    assert_eq!(again.body, "west 7: already known (newest 7)\nglobal 1: already known (newest 2)\n");
    assert_eq!(again.status, Status::Ok);
    let bad = run(&mut mgr, "cluster config announce west 8 east");
    assert_eq!(bad.status, Status::Failed);
    assert_eq!(mgr.config_publisher().unwrap().newest().get("west"), Some(&7), "a refused command changed nothing");
    let show = run(&mut mgr, "show cluster config");
    assert_eq!(show.body, "Newest: global 2, west 7\nNo live nodes.\n");
    assert!(handle(&mut mgr, Instant::now(), &parse_line("cluster membership").unwrap()).is_none());
}

#[test]
fn a_node_core_refuses_both_commands() {
    let mut node = core(Role::Node);
    for line in ["cluster config announce west 7", "show cluster config", "cluster config announce"] {
        let reply = run(&mut node, line);
        assert_eq!(reply.status, Status::Failed, "{line}");
        assert!(reply.body.contains("is not available on a node"), "{line}: {}", reply.body);
    }
}
