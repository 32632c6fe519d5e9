//! Prometheus metrics of real daemons: `GET /metrics` of a manager and its nodes, read back by
//! the text format's rules (`prometheus-parse`); members by state move when a node is killed;
//! a bad `Metrics_Listener` stops the start naming its place, a port in use names the address.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{converged, eventually, topology, Cluster};

/// `GET /metrics` over plain HTTP/1.0: the status code and the body.
async fn get(addr: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await?;
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut raw)).await??;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(|| anyhow::anyhow!("no end of headers in {raw:?}"))?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| anyhow::anyhow!("no status in {head:?}"))?;
    Ok((status, body.to_owned()))
}

/// A scrape of `addr`, parsed.
pub(crate) async fn scrape(addr: &str) -> prometheus_parse::Scrape {
    let (status, body) = get(addr).await.expect("metrics answer");
    assert_eq!(status, 200, "{body}");
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text")
}

/// The value of the sample `metric` whose labels include `labels`.
pub(crate) fn value(s: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .filter(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .reduce(|a, b| a + b)
}

/// Members in `state` over every subcluster.
fn members(s: &prometheus_parse::Scrape, state: &str) -> Option<f64> {
    value(s, "eccluster_members", &[("state", state)])
}

const NET: u8 = 46;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_by_state_follow_a_killed_node_in_the_managers_and_a_nodes_metrics() {
    let mut c = Cluster::new(&topology(NET, 4946, &[("east", 3)]));
    let metrics = |name: &str| {
        let last = match name { "mgr" => 10, "east1" => 11, "east2" => 12, _ => 13 };
        format!("127.{NET}.1.{last}:9464")
    };
    for name in ["mgr", "east1", "east2", "east3"] {
        c.set_member_config(name, &format!("Metrics_Listener {{\n  Listen = \"{}\"\n}}\n", metrics(name)));
    }
    c.start_all();
    converged(&c, 4, Duration::from_secs(30)).await;

    let mgr = scrape(&metrics("mgr")).await;
    assert_eq!(members(&mgr, "alive"), Some(4.0), "{:?}", mgr.samples);
    assert_eq!(members(&mgr, "down"), Some(0.0));
    assert_eq!(value(&mgr, "eccluster_members", &[("subcluster", "east"), ("state", "alive"), ("role", "manager")]), Some(4.0));
    assert!(mgr.docs.contains_key("eccluster_members"), "every metric has its # HELP");
    assert_eq!(value(&mgr, "eccluster_operations_sequenced_total", &[]), Some(0.0));
    assert!(value(&mgr, "eccluster_process_resident_memory_bytes", &[]).is_some_and(|b| b > 1e6));
    let node = scrape(&metrics("east1")).await;
    assert_eq!(members(&node, "alive"), Some(4.0));
    assert_eq!(value(&node, "eccluster_operations_applied_total", &[("role", "node")]), Some(0.0));

    // An operation moves the manager's and the nodes' counters.
    let reply = eventually("a broadcast to be taken", Duration::from_secs(15), || async {
        c.ask("mgr", "broadcast version").await.ok().filter(|r| r.body.contains("sent to 3 nodes"))
    })
    .await;
    assert!(reply.body.starts_with("Operation"), "{}", reply.body);
    eventually("east1 to count the operation applied", Duration::from_secs(10), || async {
        let s = scrape(&metrics("east1")).await;
        (value(&s, "eccluster_operations_applied_total", &[]) == Some(1.0)).then_some(())
    })
    .await;
    eventually("the manager to count it sequenced and completed", Duration::from_secs(10), || async {
        let s = scrape(&metrics("mgr")).await;
        let done = value(&s, "eccluster_operations_sequenced_total", &[]) == Some(1.0)
            && value(&s, "eccluster_operations_completed_total", &[]) == Some(1.0)
            && value(&s, "eccluster_operation_latency_seconds_count", &[]) == Some(1.0);
        done.then_some(())
    })
    .await;

    c.kill9("east3");
    let mgr = eventually("the manager's metrics to count east3 down", Duration::from_secs(30), || async {
        let s = scrape(&metrics("mgr")).await;
        (members(&s, "down") == Some(1.0)).then_some(s)
    })
    .await;
    assert_eq!(members(&mgr, "alive"), Some(3.0), "{:?}", mgr.samples);
    assert!(value(&mgr, "eccluster_member_downs_total", &[]).is_some_and(|n| n >= 1.0));
    eventually("east1's metrics to count 3 alive", Duration::from_secs(30), || async {
        let s = scrape(&metrics("east1")).await;
        (members(&s, "alive") == Some(3.0) && members(&s, "down") == Some(1.0)).then_some(())
    })
    .await;
    // Someone's probe of east3 went unanswered before it was declared down.
    let mut raised = 0.0;
    for name in ["mgr", "east1", "east2"] {
        raised += value(&scrape(&metrics(name)).await, "eccluster_suspicions_raised_total", &[]).unwrap_or(0.0);
    }
    assert!(raised >= 1.0, "suspicions raised by the survivors: {raised}");
}

/// Runs eccmgr of a one-manager cluster with configuration `text` and returns its exit code
/// and standard error.
fn start_manager(c: &Cluster, text: &str) -> (Option<i32>, String) {
    let conf = c.dir.path().join("mgr.conf");
    std::fs::write(&conf, text).expect("write config");
    let err = c.dir.path().join("mgr.stderr");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_eccmgr"))
        .arg("--name").arg("mgr")
        .arg("--segments").arg(&c.segments)
        .arg("--tls-dir").arg(&c.tls)
        .arg("--console").arg(c.console("mgr"))
        .arg("-c").arg(&conf)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("run eccmgr");
    // A start that is not refused runs on: it is ended after 20 s, and the test fails on its
    // status (killed: no code).
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || tx.send(child.wait().expect("wait")));
    let status = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(status) => status,
        Err(_) => {
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill");
            rx.recv().expect("reaped")
        }
    };
    waiter.join().expect("waiter").expect("sent");
    (status.code(), std::fs::read_to_string(&err).unwrap_or_default())
}

#[test]
fn a_bad_metrics_address_stops_the_start_naming_its_place_and_a_port_in_use_names_the_address() {
    let c = Cluster::new(&topology(NET, 4947, &[("west", 1)]));
    let conf = c.dir.path().join("mgr.conf").display().to_string();
    let (code, err) = start_manager(&c, "Broadcast_Timeout = 30\nMetrics_Listener {\n  Listen = \"127.46.2.10\"\n}\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("{conf}:3:3: Listen = \"127.46.2.10\" is not an address and port")), "{err}");
    assert!(!c.console("mgr").exists(), "nothing was started");

    let busy = std::net::TcpListener::bind("127.46.1.10:9465").expect("hold the port");
    let (code, err) = start_manager(&c, "Metrics_Listener { Listen = \"127.46.1.10:9465\" }\n");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!("{conf}:1:20: Metrics_Listener: cannot serve metrics on 127.46.1.10:9465")), "{err}");
    drop(busy);
}

#[test]
fn ecconfigd_counts_commits_refused_commits_and_failed_logins() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    let (state, wc) = (dir.path().join("state"), dir.path().join("wc"));
    let (password, wrong) = (dir.path().join("admin.password"), dir.path().join("wrong.password"));
    std::fs::write(&password, "admin password\n").expect("password");
    std::fs::write(&wrong, "not it\n").expect("password");
    let ecconfigd = env!("CARGO_BIN_EXE_ecconfigd");
    let added = Command::new(ecconfigd).args(["user", "add", "admin", "--password-file"]).arg(&password).arg("--state-dir").arg(&state).output().expect("user add");
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let (listen, metrics) = ("127.46.3.1:2027", "127.46.3.1:9466");
    let mut server = Command::new(ecconfigd)
        .args(["--listen", listen, "--subcluster", "east", "--metrics", metrics, "--state-dir"])
        .arg(&state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("ecconfigd.log")).expect("log"))
        .spawn()
        .expect("ecconfigd");
    let mut guard = ChildGuard(Some(server.id()));
    let line = crate::confrepo::first_line(server.stdout.take().expect("stdout"), Duration::from_secs(30)).expect("listening line");
    let fingerprint = line.split(" key ").nth(1).expect("key").trim().to_owned();
    let eccfg = |password: &std::path::Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_eccfg"))
            .arg("--wc").arg(&wc)
            .args(["--username", "admin", "--timeout", "10", "--password-file"])
            .arg(password)
            .args(args)
            .stdin(Stdio::null())
            .env_remove("ECCFG_PASSWORD")
            .output()
            .expect("eccfg")
    };
    let out = eccfg(&password, &["bootstrap", "--server", listen, "--clustername", "east", "--trust", &fingerprint]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(wc.join("default/ecelerity.conf"), "Broadcast_Timeout = 45\n").expect("write");
    let out = eccfg(&password, &["commit", "-m", "longer"]);
    let committed = String::from_utf8_lossy(&out.stdout).into_owned();
    let revision: f64 = committed.lines().find_map(|l| l.strip_prefix("Committed revision ")).and_then(|r| r.strip_suffix('.')).and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("{committed}{}", String::from_utf8_lossy(&out.stderr)));
    std::fs::write(wc.join("default/ecelerity.conf"), "Broken {\n").expect("write");
    assert_eq!(eccfg(&password, &["commit", "-m", "does not parse"]).status.code(), Some(1));
    assert_eq!(eccfg(&wrong, &["pull"]).status.code(), Some(1));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let s = runtime.block_on(scrape(metrics));
    assert_eq!(value(&s, "eccluster_config_revision_newest", &[("repo", "east"), ("role", "configd")]), Some(revision));
    assert_eq!(value(&s, "eccluster_config_commits_total", &[]), Some(1.0));
    assert_eq!(value(&s, "eccluster_config_commits_refused_total", &[]), Some(1.0));
    assert_eq!(value(&s, "eccluster_config_logins_failed_total", &[]), Some(1.0));
    guard.0 = None;
    server.kill().expect("kill");
    server.wait().expect("reap");
}

/// Kills a process left running by a failed assertion (cleared before the test reaps it, so
/// that a recycled pid is never signalled).
struct ChildGuard(Option<u32>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            if let Err(error) = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL) {
                eprintln!("ecconfigd {pid}: {error}");
            }
        }
    }
}
