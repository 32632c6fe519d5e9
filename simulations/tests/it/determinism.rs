//! The same scenario and seed give a byte-identical trace (and so the same hash) and
//! byte-identical charts; another seed gives another trace; a seeded start is the same run
//! whatever the number of threads that fill its member tables.

use eccluster_simulations::sim::{SimOptions, Simulation};
use eccluster_simulations::Scenario;

use crate::support::{run_quiet, run_with_charts, scenario, scratch};

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    let dir = scratch("determinism");
    let run = |seed: u64, file: &str| {
        let trace = dir.join(file);
        let o = run_quiet(scenario("partition-east-west"), seed, None, Some(trace.clone())).expect("runs");
        (o.report.trace_hash.clone(), std::fs::read(&trace).expect("trace written"))
    };
    let (hash_a, trace_a) = run(7, "a.trace");
    let (hash_b, trace_b) = run(7, "b.trace");
    let (hash_c, trace_c) = run(8, "c.trace");
    assert_eq!(hash_a.len(), 64);
    assert_eq!(hash_a, hash_b, "same seed, same hash");
    assert!(trace_a == trace_b, "same seed, byte-identical text trace");
    assert!(trace_a.len() > 100_000, "the trace covers every delivery ({} bytes)", trace_a.len());
    assert_ne!(hash_a, hash_c, "another seed, another hash");
    assert!(trace_a != trace_c);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn churn_with_random_victims_is_reproducible() {
    let a = run_quiet(scenario("churn"), 42, Some(24), None).expect("runs");
    let b = run_quiet(scenario("churn"), 42, Some(24), None).expect("runs");
    assert_eq!(a.report.trace_hash, b.report.trace_hash);
    assert_eq!(a.report.crashes, b.report.crashes);
    assert_eq!(a.report.detection, b.report.detection);
    assert_eq!(a.report.traffic, b.report.traffic);
}

#[test]
fn duravip_and_operations_runs_are_reproducible() {
    let dir = scratch("determinism-vip");
    let run = |name: &str| {
        let trace = dir.join(format!("{name}.trace"));
        let o = run_with_charts(scenario("duravip-partition"), 11, dir.join(name), Some(trace.clone())).expect("runs");
        (o, std::fs::read_to_string(&trace).expect("trace written"))
    };
    let (a, trace_a) = run("a");
    let (b, trace_b) = run("b");
    assert_eq!(a.report.trace_hash, b.report.trace_hash);
    assert!(trace_a == trace_b, "byte-identical text trace");
    let charts = |o: &eccluster_simulations::Outcome| -> Vec<(String, Vec<u8>)> {
        o.plots
            .iter()
            .map(|p| (p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), std::fs::read(p).expect("chart written")))
            .collect()
    };
    let (charts_a, charts_b) = (charts(&a), charts(&b));
    let names: Vec<&str> = charts_a.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["members-up.svg", "traffic.svg", "vip-owners.svg"]);
    for ((name, svg_a), (_, svg_b)) in charts_a.iter().zip(&charts_b) {
        assert!(svg_a == svg_b, "{name}: same seed, byte-identical chart");
        assert!(String::from_utf8_lossy(svg_a).contains("crash east"), "{name}: the owner crash is marked");
    }
    assert!(trace_a.contains(" acquires 10.200.0.1"), "holder changes are in the trace");
    assert!(trace_a.contains("submit cluster: cluster duravip move 10.200.0.1 to west2"), "submissions are in the trace");
    assert_eq!(a.report.vips, b.report.vips);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn sim_seed_environment_variable_sets_the_seed() {
    // Only this test touches SIM_SEED, and only through choose_seed.
    assert_eq!(eccluster_simulations::choose_seed(Some(5), Some(6)).expect("flag"), 5);
    std::env::set_var(eccluster_simulations::SEED_ENV, "12345");
    let from_env = eccluster_simulations::choose_seed(None, Some(6));
    std::env::set_var(eccluster_simulations::SEED_ENV, "not-a-number");
    let bad = eccluster_simulations::choose_seed(None, Some(6));
    std::env::remove_var(eccluster_simulations::SEED_ENV);
    assert_eq!(from_env.expect("env seed"), 12345);
    let message = format!("{:#}", bad.expect_err("bad env seed"));
    assert!(message.contains("SIM_SEED=\"not-a-number\" is not a seed"), "{message}");
    assert_eq!(eccluster_simulations::choose_seed(None, Some(6)).expect("scenario seed"), 6);
}

#[test]
fn a_seeded_start_is_the_same_run_on_one_seeding_thread_or_two() {
    let dir = scratch("determinism-seeded");
    let run = |threads: usize| {
        let trace = dir.join(format!("{threads}.trace"));
        let file = std::fs::File::create(&trace).expect("trace file");
        let options = SimOptions {
            scenario: Scenario::load(&scenario("seeded-2000")).expect("scenario"),
            seed: 5,
            // Several batches of cores built ahead, and a last one cut short.
            nodes: Some(150),
            trace_text: Some(Box::new(std::io::BufWriter::new(file))),
            progress: false,
            seed_threads: Some(threads),
        };
        let finished = Simulation::new(options).expect("prepared").run();
        assert_eq!(finished.seed_threads, threads);
        assert_eq!(finished.seeded_ahead, 150, "{threads} thread(s): every core was built ahead");
        assert!(finished.violations.is_empty(), "{:?}", finished.violations.first());
        (finished.trace_hash, std::fs::read(&trace).expect("trace written"))
    };
    let (hash_1, trace_1) = run(1);
    let (hash_2, trace_2) = run(2);
    let (hash_3, trace_3) = run(3);
    assert_eq!(hash_1, hash_2, "one seeding thread or two, the same hash");
    assert_eq!(hash_1, hash_3, "or three");
    assert!(trace_1 == trace_2 && trace_1 == trace_3, "byte-identical text traces");
    assert!(trace_1.len() > 100_000, "the trace covers every delivery ({} bytes)", trace_1.len());
    std::fs::remove_dir_all(&dir).expect("clean up");
}
