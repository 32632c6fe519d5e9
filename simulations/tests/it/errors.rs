//! Bad scenario files are refused before anything runs, with the file and the field named.

use eccluster_simulations::{RunArgs, ScenarioError, EXIT_BAD_INPUT};

use crate::support::{run_quiet, scenario, write_scenario};

fn error_of(tag: &str, text: &str) -> String {
    let path = write_scenario(tag, text);
    let err = run_quiet(path.clone(), 1, None, None).expect_err("bad scenario refused");
    assert!(err.downcast_ref::<ScenarioError>().is_some(), "a scenario error: {err:#}");
    let message = format!("{err:#}");
    assert!(message.starts_with(&path.display().to_string()), "names the file: {message}");
    message
}

const TOPOLOGY: &str = "[topology]\nnodes = 4\n";

#[test]
fn unknown_fields_are_named() {
    let m = error_of("top-field", &format!("durration = \"1s\"\n{TOPOLOGY}"));
    assert!(m.contains("unknown field `durration`"), "{m}");
    let m = error_of("net-field", &format!("{TOPOLOGY}[network]\nlatncy = \"1ms\"\n"));
    assert!(m.contains("unknown field `latncy`"), "{m}");
    let m = error_of(
        "step-field",
        &format!("{TOPOLOGY}[[timeline]]\nat = \"1s\"\naction = \"partition\"\ngrups = [\"east\", \"west\"]\n"),
    );
    assert!(m.contains("timeline[0]: partition at 1.000s: unknown field `grups`, expected `groups`"), "{m}");
}

#[test]
fn bad_values_are_explained() {
    let m = error_of("action", &format!("{TOPOLOGY}[[timeline]]\naction = \"partitoin\"\n"));
    assert!(m.contains("timeline[0]: partitoin at 0.000s: unknown variant `partitoin`"), "{m}");
    let m = error_of("at", &format!("{TOPOLOGY}[[timeline]]\nat = \"30x\"\naction = \"heal\"\n"));
    assert!(m.contains("timeline[0]: `at`: bad duration \"30x\": unknown unit \"x\""), "{m}");
    let m = error_of("loss", &format!("{TOPOLOGY}[[timeline]]\naction = \"set_loss\"\nloss = 1.5\n"));
    assert!(m.contains("`loss` must be a probability between 0 and 1, not 1.5"), "{m}");
    let m = error_of("pick", &format!("{TOPOLOGY}[[timeline]]\naction = \"crash\"\nnode = \"east1\"\ncount = 2\n"));
    assert!(m.contains("give either `node` or `count`"), "{m}");
    let m = error_of("no-topology", "duration = \"1s\"\n");
    assert!(m.contains("missing field `topology`"), "{m}");
    let m = error_of("both", "[topology]\nnodes = 4\nsegments = \"x.conf\"\n");
    assert!(m.contains("[topology] give either `segments` or `nodes`"), "{m}");
}

#[test]
fn names_are_checked_against_the_topology() {
    let m = error_of(
        "selector",
        &format!("{TOPOLOGY}[[timeline]]\nat = \"2s\"\naction = \"partition\"\ngroups = [\"east\", \"wset\"]\n"),
    );
    assert!(m.contains("timeline[0] (partition at 2.000s) `groups`: no host or subcluster named \"wset\""), "{m}");
    assert!(m.contains("subcluster (east, west)"), "{m}");
    let m = error_of("member", &format!("{TOPOLOGY}[[timeline]]\naction = \"assert_down\"\nmember = \"nobody\"\n"));
    assert!(m.contains("`member`: no host named \"nobody\""), "{m}");
    let m = error_of("late", &format!("duration = \"10s\"\n{TOPOLOGY}[[timeline]]\nat = \"20s\"\naction = \"heal\"\n"));
    assert!(m.contains("timeline[0] (heal) is at 20.000s, after the end of the run at 10.000s"), "{m}");
}

#[test]
fn segment_files_must_exist_and_parse_and_nodes_only_scales_generated_topologies() {
    let m = error_of("missing-seg", "[topology]\nsegments = \"segments/nowhere.conf\"\n");
    assert!(m.contains("segment file \"segments/nowhere.conf\" not found"), "{m}");
    let bad = crate::support::scratch("bad-seg").join("bad.conf");
    std::fs::write(&bad, "Spread_Segment 10.0.0.255:4803 {\n  host1 not-an-address\n}\n").expect("write");
    let m = error_of("bad-seg", &format!("[topology]\nsegments = \"{}\"\n", bad.display()));
    assert!(m.contains("[topology] bad segment file: ") && m.contains("bad.conf:2"), "{m}");
    let err = run_quiet(scenario("partition-east-west"), 1, Some(50), None).expect_err("--nodes refused");
    assert!(format!("{err:#}").contains("--nodes applies only to generated topologies"), "{err:#}");
}

#[test]
fn a_missing_scenario_file_is_bad_input() {
    let args = RunArgs { scenario: "no/such/file.toml".into(), ..RunArgs::default() };
    let err = eccluster_simulations::run(&args).expect_err("missing file");
    assert!(format!("{err:#}").starts_with("no/such/file.toml: cannot read the scenario file"), "{err:#}");
    assert_eq!(EXIT_BAD_INPUT, 2);
}

#[test]
fn every_shipped_scenario_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    for path in names {
        let s = eccluster_simulations::Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.description.is_empty(), "{} has a description", path.display());
        assert!(!s.steps.is_empty(), "{} has a timeline", path.display());
    }
}

#[test]
fn duravip_sections_and_operations_are_checked() {
    let m = error_of("policy", &format!("{TOPOLOGY}[duravip]\npolicy = \"quorum\"\n[[duravip.ranges]]\nnetwork = \"10.200.0.0/24\"\ncount = 2\n"));
    assert!(m.contains("[duravip] `policy` must be \"available\" or \"majority\", not \"quorum\""), "{m}");
    let m = error_of("vip-addr", &format!("{TOPOLOGY}[duravip]\n[[duravip.bindings]]\naddr = \"10.200.0.300\"\n"));
    assert!(m.contains("[duravip] bindings[0] `addr`: \"10.200.0.300\" is not an IP address"), "{m}");
    let m = error_of(
        "vip-twice",
        &format!("{TOPOLOGY}[duravip]\n[[duravip.bindings]]\naddr = \"10.200.0.1\"\n[[duravip.ranges]]\nnetwork = \"10.200.0.0/30\"\ncount = 2\n"),
    );
    assert!(m.contains("10.200.0.1 is bound twice"), "{m}");
    let m = error_of("vip-range", &format!("{TOPOLOGY}[duravip]\n[[duravip.ranges]]\nnetwork = \"10.200.0.0/30\"\ncount = 3\n"));
    assert!(m.contains("ranges[0]: 10.200.0.0/30 holds 2 host addresses, 3 asked for"), "{m}");
    let m = error_of(
        "vip-pref",
        &format!("{TOPOLOGY}[duravip]\n[[duravip.bindings]]\naddr = \"10.200.0.1\"\npreference = \"east9\"\n"),
    );
    assert!(m.contains("`preference`: no host named \"east9\""), "{m}");
    let m = error_of("holders", &format!("{TOPOLOGY}[[timeline]]\naction = \"assert_holders\"\ncount = 1\n"));
    assert!(m.contains("the scenario has no [duravip] section"), "{m}");
    let m = error_of("bcast-sc", &format!("{TOPOLOGY}[[timeline]]\naction = \"broadcast\"\ncommand = \"cluster info\"\nsubcluster = \"north\"\n"));
    assert!(m.contains("`subcluster`: no subcluster named \"north\""), "{m}");
    let m = error_of("bcast-every", &format!("{TOPOLOGY}[[timeline]]\naction = \"broadcast\"\ncommand = \"x\"\nevery = \"1s\"\n"));
    assert!(m.contains("`every` and `for` go together"), "{m}");
}

#[test]
fn duravip_candidates_must_include_a_node() {
    let m = error_of(
        "vip-managers",
        &format!("{TOPOLOGY}[duravip]\n[[duravip.bindings]]\naddr = \"10.200.0.1\"\ncandidates = \"managers\"\n"),
    );
    assert!(m.contains("`candidates`: managers names no node (managers never hold addresses)"), "{m}");
}

/// `eccluster-sim … | head -1`: the reader goes away before the report is written. The run
/// ends as it would have (its exit code is the verdict), with no panic about standard output.
#[test]
fn a_closed_standard_output_ends_the_run_quietly() {
    let path = write_scenario("closed-stdout", &format!("duration = \"5s\"\n{TOPOLOGY}"));
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eccluster-sim"))
        .arg(&path)
        .args(["--seed", "3"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run eccluster-sim");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
