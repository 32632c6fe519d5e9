//! A cluster whose nodes follow a configuration repository: a real ecconfigd over HTTPS on
//! loopback (announcing to the manager), a real eccmgr and ecnode processes started with
//! `--cluster-boot`, and an operator's working copy committing through the same library
//! functions as `eccfg`. Used by `follow.rs` and the configuration rollout benchmark.

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

use crate::support::{eventually, topology, Cluster};

const ECCONFIGD: &str = env!("CARGO_BIN_EXE_ecconfigd");
const ADMIN_PASSWORD: &str = "admin password for the tests";
const ECUSER_PASSWORD: &str = "ecuser password for the tests";

/// A cluster (manager `mgr`, nodes `east1..=n`) on 127.43.1.0/24, port 4800 + `net`, whose
/// nodes follow an ecconfigd on 127.43.(10 + `net`).1; the operator's working copy is `DIR/ops`.
pub struct Site {
    pub cluster: Cluster,
    state: PathBuf,
    addr: String,
    fingerprint: String,
    pub server: Option<Child>,
    conn: Connection,
    pub nodes: Vec<String>,
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
    pub async fn new(net: u8, nodes: usize, initial: &str) -> Site {
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

    pub fn dir(&self) -> &Path {
        self.cluster.dir.path()
    }

    pub fn ops(&self) -> PathBuf {
        self.dir().join("ops")
    }

    pub fn wc(&self, node: &str) -> PathBuf {
        self.dir().join("wc").join(node)
    }

    /// Starts ecconfigd, announcing to the manager; waits for its listening line.
    pub fn start_server(&mut self, env: &[(&str, &str)]) {
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
    pub async fn commit(&self, text: &str) -> u64 {
        fs::write(self.ops().join("default/ecelerity.conf"), text).expect("write");
        let done = wc::commit(&self.ops(), &self.conn, "test change", None).await.expect("commit");
        done.committed.iter().find(|h| h.repo == "east").expect("a revision of east").revision
    }

    /// `cluster info` of `node` as JSON.
    pub async fn info(&self, node: &str) -> Option<Value> {
        let reply = self.cluster.ask(node, "json cluster info").await.ok()?;
        serde_json::from_str(&reply.body).ok()
    }

    /// The value `config get Broadcast_Timeout` shows on `node`.
    pub async fn timeout_on(&self, node: &str) -> Option<String> {
        let reply = self.cluster.ask(node, "config get Broadcast_Timeout").await.ok()?;
        Some(reply.body.trim().to_owned())
    }

    /// Waits until every running node runs revision `rev` of east and shows `timeout`.
    pub async fn all_on(&self, rev: u64, timeout: u64, limit: Duration) {
        for node in self.cluster.running().into_iter().filter(|n| n != "mgr") {
            self.node_on(&node, rev, timeout, limit).await;
        }
    }

    /// Waits until `node` runs revision `rev` of east and shows `timeout`.
    pub async fn node_on(&self, node: &str, rev: u64, timeout: u64, limit: Duration) {
        let want = format!("Broadcast_Timeout = {timeout}");
        eventually(&format!("{node} on east {rev} with {want}"), limit, || async {
            let info = self.info(node).await?;
            let running = info["config_running"].as_str()?.to_owned();
            (running.contains(&format!("east {rev}")) && self.timeout_on(node).await? == want).then_some(())
        })
        .await;
    }

    /// Waits until `node`'s `cluster info` shows a configuration error containing `want`; the
    /// error.
    pub async fn error_of(&self, node: &str, want: &str, limit: Duration) -> String {
        eventually(&format!("{node} to report an error with {want:?}"), limit, || async {
            let info = self.info(node).await?;
            let error = info["config_error"].as_str()?.to_owned();
            (error != "none" && error.contains(want)).then_some(error)
        })
        .await
    }

    /// Adds `line` to `node`'s cluster.boot (a later key wins).
    pub fn boot_line(&self, node: &str, line: &str) {
        let path = self.dir().join(format!("{node}.boot"));
        let mut text = fs::read_to_string(&path).expect("cluster.boot");
        text.push_str(line);
        text.push('\n');
        fs::write(&path, text).expect("cluster.boot");
    }

    /// The revision of east `node`'s working copy is at, checking that its file is that
    /// revision's whole (`expect` is the timeout the revision sets).
    pub fn wc_whole(&self, node: &str) -> u64 {
        let wc = WorkingCopy::open(&self.wc(node)).expect("a working copy");
        assert!(wc.changes().expect("scan").is_empty(), "{node}'s working copy differs from its revision");
        wc.meta().bases["east"]
    }

    pub fn kill_server_when_stopped(&mut self) {
        let mut child = self.server.take().expect("ecconfigd running");
        kill_when_stopped(&mut child);
    }
}

/// Waits until `child` has stopped itself at a stop point (SIGSTOP), then kills and reaps it.
pub fn kill_when_stopped(child: &mut Child) {
    let pid = Pid::from_raw(child.id() as i32);
    match waitpid(pid, Some(WaitPidFlag::WUNTRACED)) {
        Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) => {}
        other => panic!("expected the process to stop at its stop point, got {other:?}"),
    }
    kill(pid, Signal::SIGKILL).expect("SIGKILL");
    child.wait().expect("reap");
}

