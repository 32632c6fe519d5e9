//! Nodes following the configuration repository, end to end: a real ecconfigd over HTTPS on
//! loopback with the certificate it generates, a real eccmgr and real ecnode processes started
//! with `--cluster-boot`, and an operator's working copy committing through the same library
//! functions as `eccfg`. Addresses on 127.43.0.0/16 (one port and server address per test).
//!
//! Processes are killed at exact moments through stop points (`ECCFG_STOP_AT`; see
//! `eccluster::confrepo::stop_point`): the process stops itself with SIGSTOP there, the test
//! sees the stop (`waitpid` with `WUNTRACED`) and kills it.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use eccluster::confrepo::client::{Credentials, Endpoint};
use eccluster::confrepo::wc::{self, BootstrapOptions, Connection, TrustChoice, WorkingCopy};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde_json::Value;

use crate::support::{converged, eventually, topology, Cluster};

const ECCONFIGD: &str = env!("CARGO_BIN_EXE_ecconfigd");
const ADMIN_PASSWORD: &str = "admin password for the tests";
const ECUSER_PASSWORD: &str = "ecuser password for the tests";

/// A cluster (manager `mgr`, nodes `east1..=n`) on 127.43.1.0/24, port 4800 + `net`, whose
/// nodes follow an ecconfigd on 127.43.(10 + `net`).1; the operator's working copy is `DIR/ops`.
struct Site {
    cluster: Cluster,
    state: PathBuf,
    addr: String,
    fingerprint: String,
    server: Option<Child>,
    conn: Connection,
    nodes: Vec<String>,
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Site {
    /// The cluster's files, ecconfigd started, the operator's working copy made with
    /// `default/ecelerity.conf` = `initial` committed (revision 1), and every node given a
    /// cluster.boot; the members are not started.
    async fn new(net: u8, nodes: usize, initial: &str) -> Site {
        let cluster = Cluster::new(&topology(43, 4800 + u16::from(net), &[("east", nodes)]));
        let dir = cluster.dir.path().to_path_buf();
        let state = dir.join("ecconfigd");
        for (user, password) in [("admin", ADMIN_PASSWORD), ("ecuser", ECUSER_PASSWORD)] {
            let file = dir.join(format!("{user}.password"));
            fs::write(&file, format!("{password}\n")).expect("password file");
            let out = Command::new(ECCONFIGD)
                .args(["user", "add", user, "--password-file"])
                .arg(&file)
                .arg("--state-dir")
                .arg(&state)
                .output()
                .expect("ecconfigd user add");
            assert!(out.status.success(), "user add: {}", String::from_utf8_lossy(&out.stderr));
        }
        let conn = Connection {
            credentials: Credentials { user: "admin".into(), password: ADMIN_PASSWORD.into() },
            timeout: Duration::from_secs(20),
        };
        let mut site = Site {
            cluster,
            state,
            addr: format!("127.43.{}.1:2027", 10 + net),
            fingerprint: String::new(),
            server: None,
            conn,
            nodes: (1..=nodes).map(|i| format!("east{i}")).collect(),
        };
        site.start_server(&[]);
        let opts = BootstrapOptions {
            server: Endpoint::parse(&site.addr).expect("endpoint"),
            clustername: "east".into(),
            node: None,
            wc: site.ops(),
            trust: TrustChoice::Fingerprint(site.fingerprint.clone()),
            password_file: None,
        };
        wc::bootstrap(&opts, &site.conn).await.expect("operator's working copy");
        assert_eq!(site.commit(initial).await, 1);
        for node in site.nodes.clone() {
            let boot = dir.join(format!("{node}.boot"));
            fs::write(
                &boot,
                format!(
                    "# cluster.boot of {node}\ncluster_name=east\nrepo={addr}\nwc=wc/{node}\npassword_file=ecuser.password\n\
                     fingerprint={fp}\npoll_interval=3600\n",
                    addr = site.addr,
                    fp = site.fingerprint
                ),
            )
            .expect("cluster.boot");
            site.cluster.member_args.insert(node, vec!["--cluster-boot".into(), boot.into()]);
        }
        site
    }

    fn dir(&self) -> &Path {
        self.cluster.dir.path()
    }

    fn ops(&self) -> PathBuf {
        self.dir().join("ops")
    }

    fn wc(&self, node: &str) -> PathBuf {
        self.dir().join("wc").join(node)
    }

    /// Starts ecconfigd, announcing to the manager; waits for its listening line.
    fn start_server(&mut self, env: &[(&str, &str)]) {
        let log = fs::OpenOptions::new().create(true).append(true).open(self.dir().join("ecconfigd.log")).expect("log");
        let mut child = Command::new(ECCONFIGD)
            .args(["--listen", &self.addr, "--subcluster", "east", "--log-level", "6", "--state-dir"])
            .arg(&self.state)
            .arg("--announce")
            .arg(self.cluster.console("mgr"))
            .args(["--announce-interval", "1"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn ecconfigd");
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        reader.read_line(&mut line).expect("ecconfigd's first line");
        // Keep draining its standard output so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        self.fingerprint = line.split(" key ").nth(1).unwrap_or_else(|| panic!("no key in {line:?}")).trim().to_owned();
        self.server = Some(child);
    }

    /// Writes `default/ecelerity.conf` in the operator's copy and commits it; the revision.
    async fn commit(&self, text: &str) -> u64 {
        fs::write(self.ops().join("default/ecelerity.conf"), text).expect("write");
        let done = wc::commit(&self.ops(), &self.conn, "test change", None).await.expect("commit");
        done.committed.iter().find(|h| h.repo == "east").expect("a revision of east").revision
    }

    /// `cluster info` of `node` as JSON.
    async fn info(&self, node: &str) -> Option<Value> {
        let reply = self.cluster.ask(node, "json cluster info").await.ok()?;
        serde_json::from_str(&reply.body).ok()
    }

    /// The value `config get Broadcast_Timeout` shows on `node`.
    async fn timeout_on(&self, node: &str) -> Option<String> {
        let reply = self.cluster.ask(node, "config get Broadcast_Timeout").await.ok()?;
        Some(reply.body.trim().to_owned())
    }

    /// Waits until every running node runs revision `rev` of east and shows `timeout`.
    async fn all_on(&self, rev: u64, timeout: u64, limit: Duration) {
        let want = format!("Broadcast_Timeout = {timeout}");
        for node in self.cluster.running().into_iter().filter(|n| n != "mgr") {
            eventually(&format!("{node} on east {rev} with {want}"), limit, || async {
                let info = self.info(&node).await?;
                let running = info["config_running"].as_str()?.to_owned();
                (running.contains(&format!("east {rev}")) && self.timeout_on(&node).await? == want).then_some(())
            })
            .await;
        }
    }

    /// The revision of east `node`'s working copy is at, checking that its file is that
    /// revision's whole (`expect` is the timeout the revision sets).
    fn wc_whole(&self, node: &str) -> u64 {
        let wc = WorkingCopy::open(&self.wc(node)).expect("a working copy");
        assert!(wc.changes().expect("scan").is_empty(), "{node}'s working copy differs from its revision");
        wc.meta().bases["east"]
    }

    fn kill_server_when_stopped(&mut self) {
        let mut child = self.server.take().expect("ecconfigd running");
        kill_when_stopped(&mut child);
    }
}

/// Waits until `child` has stopped itself at a stop point (SIGSTOP), then kills and reaps it.
fn kill_when_stopped(child: &mut Child) {
    let pid = Pid::from_raw(child.id() as i32);
    match waitpid(pid, Some(WaitPidFlag::WUNTRACED)) {
        Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) => {}
        other => panic!("expected the process to stop at its stop point, got {other:?}"),
    }
    kill(pid, Signal::SIGKILL).expect("SIGKILL");
    child.wait().expect("reap");
}

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_take_each_commit_and_keep_the_last_good_one_when_a_revision_does_not_load() {
    let mut site = Site::new(1, 3, "Broadcast_Timeout = 20\n").await;
    site.cluster.start_all();
    converged(&site.cluster, 4, LIMIT).await;
    // At start each node makes its working copy and runs it.
    site.all_on(1, 20, LIMIT).await;

    // A commit reaches every node through the manager's announcement (their poll interval is
    // an hour): `config get` shows the new value.
    assert_eq!(site.commit("Broadcast_Timeout = 25\n").await, 2);
    site.all_on(2, 25, LIMIT).await;
    for node in site.nodes.clone() {
        assert_eq!(site.wc_whole(&node), 2);
        assert_eq!(fs::read_to_string(site.wc(&node).join("default/ecelerity.conf")).expect("file"), "Broadcast_Timeout = 25\n");
    }

    // A revision that parses (ecconfigd accepts it) but does not load on the nodes: they keep
    // the last good one, in their working copy too, and say why.
    assert_eq!(site.commit("Broadcast_Timeout = 0\n").await, 3);
    for node in site.nodes.clone() {
        let error = eventually(&format!("{node} to refuse east 3"), LIMIT, || async {
            let info = site.info(&node).await?;
            let error = info["config_error"].as_str()?.to_owned();
            (error != "none").then_some(error)
        })
        .await;
        assert!(error.contains("Broadcast_Timeout") && error.contains("default/ecelerity.conf:1:"), "{node}: {error}");
        assert!(error.contains(&site.wc(&node).display().to_string()), "the error names the working copy's file: {error}");
        assert_eq!(site.timeout_on(&node).await.as_deref(), Some("Broadcast_Timeout = 25"));
        assert_eq!(site.wc_whole(&node), 2);
        assert!(site.cluster.log_text(&node).contains("configuration not updated; the running configuration stays"));
    }
    // A node restarted now runs the last good revision.
    site.cluster.kill9("east1");
    site.cluster.start("east1");
    site.all_on(2, 25, LIMIT).await;

    // The fix reaches everyone and clears the error.
    assert_eq!(site.commit("Broadcast_Timeout = 30\n").await, 4);
    site.all_on(4, 30, LIMIT).await;
    for node in site.nodes.clone() {
        let info = site.info(&node).await.expect("cluster info");
        assert_eq!(info["config_error"], "none", "{node}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_keep_their_last_complete_revision_when_ecconfigd_dies_mid_pull_and_converge_after_its_restart() {
    let mut site = Site::new(2, 2, "Broadcast_Timeout = 20\n").await;
    site.cluster.start_all();
    converged(&site.cluster, 3, LIMIT).await;
    site.all_on(1, 20, LIMIT).await;

    // ecconfigd restarted so that it freezes when it serves the first snapshot; the commit
    // (no snapshot) lands, the first node to pull freezes it, and it is killed there.
    let mut server = site.server.take().expect("running");
    server.kill().expect("kill");
    server.wait().expect("reap");
    site.start_server(&[("ECCFG_STOP_AT", "ecconfigd-before-snapshot")]);
    assert_eq!(site.commit("Broadcast_Timeout = 25\n").await, 2);
    tokio::task::block_in_place(|| site.kill_server_when_stopped());

    for node in site.nodes.clone() {
        let error = eventually(&format!("{node} to report the failed pull"), LIMIT, || async {
            let info = site.info(&node).await?;
            let error = info["config_error"].as_str()?.to_owned();
            (error != "none").then_some(error)
        })
        .await;
        assert!(error.contains("pull from") && error.contains("failed"), "{node}: {error}");
        assert_eq!(site.wc_whole(&node), 1, "{node} keeps revision 1 whole");
        assert_eq!(site.timeout_on(&node).await.as_deref(), Some("Broadcast_Timeout = 20"));
    }

    // Back up: the nodes converge on revision 2 without anyone touching them.
    site.start_server(&[]);
    site.all_on(2, 25, LIMIT).await;
    for node in site.nodes.clone() {
        assert_eq!(site.wc_whole(&node), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_during_its_swap_restarts_on_a_complete_revision() {
    let mut site = Site::new(3, 1, "Broadcast_Timeout = 20\n").await;
    site.cluster.start_all();
    converged(&site.cluster, 2, LIMIT).await;
    site.all_on(1, 20, LIMIT).await;
    let mut rev = 1;
    for (point, expect_after_kill) in [("eccfg-before-swap", false), ("eccfg-after-swap", true)] {
        // The node is stopped, a revision committed, and the node started again with the
        // stop point: its pull at start freezes at the swap and it is killed there.
        site.cluster.terminate("east1");
        rev += 1;
        let timeout = 20 + rev;
        assert_eq!(site.commit(&format!("Broadcast_Timeout = {timeout}\n")).await, rev);
        site.cluster.member_env.insert("east1".into(), vec![("ECCFG_STOP_AT".into(), point.into())]);
        site.cluster.start("east1");
        let mut proc = site.cluster.procs.remove("east1").expect("started");
        tokio::task::block_in_place(|| kill_when_stopped(&mut proc.child));
        let at = site.wc_whole("east1");
        assert_eq!(at, if expect_after_kill { rev } else { rev - 1 }, "killed at {point}");
        // Started again (without the stop point): it runs a complete revision, cleans up and
        // reaches the newest.
        site.cluster.start("east1");
        site.all_on(rev, timeout, LIMIT).await;
        assert_eq!(site.wc_whole("east1"), rev);
        let left: Vec<String> = fs::read_dir(site.dir().join("wc"))
            .expect("list")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.contains("eccfg-tmp"))
            .collect();
        assert!(left.is_empty(), "temporary trees left after a restart from {point}: {left:?}");
    }
}
