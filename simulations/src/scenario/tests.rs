//! Scenario parsing: timeline times, defaults, checked arguments.

use std::path::Path;
use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(Path::new("t.toml"), text)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn step_times_are_absolute_relative_or_after_a_wait() {
    let s = parse(
        r#"
[topology]
nodes = 4
[[timeline]]
at = "1s"
action = "assert_converged"
within = "3s"
[[timeline]]
at = "10s"
action = "heal"
[[timeline]]
at = "+5s"
action = "heal"
[[timeline]]
action = "wait"
for = "20s"
[[timeline]]
action = "crash"
count = 1
[[timeline]]
at = "35s"
action = "heal"
"#,
    )
    .expect("valid");
    let times: Vec<(usize, Duration, &str)> = s.steps.iter().map(|st| (st.index, st.at, st.action.name())).collect();
    assert_eq!(
        times,
        vec![
            (0, secs(1), "assert_converged"),
            (1, secs(10), "heal"),
            (2, secs(15), "heal"),
            (3, secs(15), "wait"),
            (4, secs(35), "crash"),
            (5, secs(35), "heal"),
        ]
    );
    assert_eq!(s.steps[4].action, Action::Crash(Pick::Random { count: 1, among: None }));
    assert_eq!(s.end(4), secs(40), "5 s after the last step");
    assert_eq!(s.name, "t");
    assert_eq!(s.topology, TopologySource::Generated { nodes: 4, subclusters: vec!["east".into(), "west".into()] });
}

#[test]
fn network_links_and_membership_tuning_are_checked() {
    let s = parse(
        r#"
[topology]
nodes = 10
subclusters = ["East", "west"]
[network]
latency = "2ms"
loss = 0.01
[[network.links]]
from = "east"
to = "west"
latency = "40ms"
[membership]
probe_period = "1s"
suspect_to_down_after = "5s"
max_transmissions = 9
[invariants]
false_down_bound = "12s"
max_false_downs = 3
"#,
    )
    .expect("valid");
    assert_eq!(s.network.latency, Duration::from_millis(2));
    assert_eq!(s.network.loss, 0.01);
    assert_eq!(s.links.len(), 1);
    assert!(matches!(&s.links[0].0, Links::Directed(Selector::One(a), Selector::One(b)) if a == "east" && b == "west"));
    let c = s.membership.config(10);
    assert_eq!(c.probe_period, secs(1));
    assert_eq!(c.suspect_to_down_after, secs(5));
    assert_eq!(c.max_transmissions.get(), 9);
    assert_eq!(s.invariants.false_down_bound, secs(12));
    assert_eq!(s.invariants.max_false_downs, Some(3));
    assert_eq!(
        s.topology,
        TopologySource::Generated { nodes: 10, subclusters: vec!["east".into(), "west".into()] },
        "subcluster names are lowercase, as segment files store them"
    );
}

#[test]
fn bad_links_and_membership_values_name_their_section() {
    let e = parse("[topology]\nnodes = 3\n[[network.links]]\nlatency = \"1ms\"\n").expect_err("no endpoints");
    assert!(e.to_string().contains("[network.links[0]] needs `between = [A, B]` or `from` and `to`"), "{e}");
    let e = parse("[topology]\nnodes = 3\n[membership]\nprobe_period = \"0\"\n").expect_err("zero");
    assert!(e.to_string().contains("[membership] `probe_period` must be more than 0"), "{e}");
    let e = parse("[topology]\nnodes = 3\nclock_drift = 0.7\n").expect_err("drift");
    assert!(e.to_string().contains("`clock_drift` must be in 0 ..< 0.5"), "{e}");
    let e = parse("[topology]\nnodes = 3\nsubclusters = [\"a\", \"A\"]\n").expect_err("twice");
    assert!(e.to_string().contains("has a name twice"), "{e}");
    let e = parse("[topology]\nnodes = 3\n[[timeline]]\nat = 5\naction = \"heal\"\n").expect_err("number");
    assert!(e.to_string().contains("`at` must be a string such as \"30s\""), "{e}");
    let full = "[topology]\nnodes = 3\n[[timeline]]\nat = \"5s\"\naction = \"disk_full\"\nnode = \"all\"\n";
    let e = parse(full).expect_err("no disk model");
    assert!(e.to_string().contains("timeline[0] disk_full needs a disk model: add [disk] fsync"), "{e}");
    let s = parse(&format!("{full}[disk]\nfsync = \"2ms\"\n")).expect("with a disk model");
    assert_eq!(s.steps[0].action, Action::SetDiskFull(Selector::One("all".to_owned()), true));
}

#[test]
fn an_absolute_time_earlier_than_the_step_before_is_an_error() {
    let e = parse(
        "[topology]\nnodes = 3\n[[timeline]]\nat = \"5s\"\naction = \"heal\"\n[[timeline]]\nat = \"+15s\"\n\
         action = \"heal\"\n[[timeline]]\nat = \"20s\"\naction = \"heal\"\n[[timeline]]\nat = \"10s\"\naction = \"heal\"\n",
    )
    .expect_err("out of order");
    assert_eq!(
        e.to_string(),
        "t.toml: timeline[3]: at = \"10s\" is earlier than the step before it (20.000s); steps must be in time order \
         (use \"+5s\" for relative times)"
    );
}

#[test]
fn an_absolute_time_inside_a_preceding_wait_is_an_error() {
    let e = parse(
        "[topology]\nnodes = 3\n[[timeline]]\nat = \"5s\"\naction = \"wait\"\nfor = \"10s\"\n\
         [[timeline]]\nat = \"12s\"\naction = \"heal\"\n",
    )
    .expect_err("inside the wait");
    assert_eq!(
        e.to_string(),
        "t.toml: timeline[1]: at = \"12s\" is earlier than the end of the wait before it (15.000s); \
         steps must be in time order (use \"+5s\" for relative times)"
    );
    parse("[topology]\nnodes = 3\n[[timeline]]\nat = \"5s\"\naction = \"wait\"\nfor = \"10s\"\n[[timeline]]\nat = \"15s\"\naction = \"heal\"\n")
        .expect("the end of the wait itself is in order");
}

#[test]
fn a_relative_segment_path_is_found_from_the_scenario_directory_upwards() {
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(root.path().join("segments")).expect("mkdir");
    std::fs::create_dir_all(root.path().join("a/b")).expect("mkdir");
    let file = root.path().join("segments/two.conf");
    std::fs::write(&file, "").expect("write");
    let found = find_segments_from(&root.path().join("a/b"), "segments/two.conf").expect("found in a parent");
    assert_eq!(std::fs::canonicalize(found).expect("exists"), std::fs::canonicalize(&file).expect("exists"));

    let searched = std::fs::canonicalize(root.path().join("a")).expect("exists");
    let e = find_segments_from(&root.path().join("a"), "segments/none.conf").expect_err("missing");
    assert!(
        e.starts_with(&format!(
            "[topology] segment file \"segments/none.conf\" not found in {} or its parents, nor in the current directory (",
            searched.display()
        )),
        "{e}"
    );
}

#[test]
fn a_scenario_given_by_bare_file_name_searches_the_current_directory_and_its_parents() {
    assert_eq!(scenario_dir(Path::new("x.toml")), Path::new("."));
    assert_eq!(scenario_dir(Path::new("scenarios/x.toml")), Path::new("scenarios"));
    // Tests run in the package directory (simulations/); the repository's segments/ is in its parent.
    let shipped = std::fs::read_dir("../segments")
        .expect("the repository's segments directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".conf"))
        .expect("a shipped segment file");
    let found = find_segments(Path::new("x.toml"), &format!("segments/{shipped}")).expect("found in the parent");
    assert!(found.is_absolute() && found.is_file(), "{}", found.display());
    let e = find_segments(Path::new("x.toml"), "segments/none.conf").expect_err("missing");
    let here = std::fs::canonicalize(".").expect("current directory");
    assert!(e.contains(&format!("not found in {} or its parents", here.display())), "{e}");
}
