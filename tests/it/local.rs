//! `eccluster local up` as an operator starts it from the README: the manager and five nodes
//! of `segments/local.conf` with the DuraVIP example `docs/examples/duravip.conf`; a move
//! through the manager, every node's `cluster duravip show` agreeing; the manager told the
//! revisions ecconfigd made before it was up; a node and then the manager killed with kill -9,
//! each reported at once; Ctrl-C stops the rest.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::support::eventually;

const NODES: [&str; 5] = ["east1", "east2", "east3", "west1", "west2"];

/// Both tests start `segments/local.conf`, whose addresses and ports are fixed: one at a time.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn owners(dir: &Path, node: &str) -> Option<Vec<(String, String)>> {
    let reply = eccluster::local::ask(&dir.join(format!("{node}.console")), "json cluster duravip show").await.ok()?;
    let v: Value = serde_json::from_str(&reply.body).ok()?;
    v["vips"].as_array()?.iter().map(|r| Some((r["addr"].as_str()?.to_owned(), r["owner"].as_str()?.to_owned()))).collect()
}

async fn agreed(dir: &Path) -> Option<Vec<(String, String)>> {
    let first = owners(dir, NODES[0]).await?;
    for n in &NODES[1..] {
        if owners(dir, n).await? != first {
            return None;
        }
    }
    Some(first)
}

/// `local up`, stopped with SIGINT (which stops its members) if the test ends early.
struct StopOnDrop(Option<std::process::Child>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(mut up) = self.0.take() {
            if kill(Pid::from_raw(up.id() as i32), Signal::SIGINT).is_ok() {
                up.wait().ok();
            }
        }
    }
}

/// The lines `local up` prints, as they come.
fn lines_of(stdout: std::process::ChildStdout) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line, failing (not hanging) the test after `limit`.
async fn next_line(lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>, limit: Duration) -> String {
    match tokio::time::timeout(limit, lines.recv()).await {
        Ok(Some(line)) => line,
        Ok(None) => panic!("local up closed its output"),
        Err(_) => panic!("no line from local up within {limit:?}"),
    }
}

/// `eccluster local up` of `segments/local.conf` in `dir`, with the repository's `config`
/// file if given, its standard output piped.
fn local_up(dir: &Path, config: Option<&str>) -> std::process::Child {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eccluster"));
    cmd.args(["local", "up", "--segments"]).arg(root.join("segments/local.conf")).arg("--dir").arg(dir);
    if let Some(config) = config {
        cmd.arg("--config").arg(root.join(config));
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("eccluster local up")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_up_with_duravip_moves_an_address_and_every_node_agrees() {
    let _one = ONE_CLUSTER.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut up = local_up(dir.path(), Some("docs/examples/duravip.conf"));
    let mut lines = lines_of(up.stdout.take().expect("stdout"));
    let mut up = StopOnDrop(Some(up));
    assert_eq!(next_line(&mut lines, Duration::from_secs(90)).await, "ready: 6 members");
    assert!(next_line(&mut lines, Duration::from_secs(5)).await.starts_with("manager console: "));
    assert_eq!(next_line(&mut lines, Duration::from_secs(5)).await, "config repository: https://127.0.1.10:2027");
    // The manager's remote console, as printed: its address, then how to log in (TLS, user admin).
    let tcp = next_line(&mut lines, Duration::from_secs(5)).await;
    let tcp = tcp.strip_prefix("console tcp: ").unwrap_or_else(|| panic!("console tcp line: {tcp}")).to_owned();
    assert!(tcp.starts_with("127.0.1.10:"), "{tcp}");
    let remote = next_line(&mut lines, Duration::from_secs(5)).await;
    let (_, how) = remote.split_once("ec_console ").expect("how to connect");
    let expected = format!("--ca {} --password-file {}", dir.path().join("tls/ca.pem").display(), dir.path().join("admin.password").display());
    assert!(remote.starts_with(&format!("console login: ec_console admin@{tcp} ")) && how.ends_with(&expected), "{remote}");
    let mut args: Vec<&str> = how.split(' ').collect();
    args.push("show cluster membership");
    let (code, out, err) = crate::support::ec_console(&args);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("east1"), "{out}");
    // Every daemon serves metrics: the manager's first (`metrics: URL`), then ecconfigd and the
    // nodes in the segment file's order (`metrics (NAME): URL`).
    let mut metrics = Vec::new();
    for name in ["mgr", "ecconfigd", "east1", "east2", "east3", "west1", "west2"] {
        let line = next_line(&mut lines, Duration::from_secs(5)).await;
        let prefix = if name == "mgr" { "metrics: http://".to_owned() } else { format!("metrics ({name}): http://") };
        let url = line.strip_prefix(&prefix).and_then(|l| l.strip_suffix("/metrics"));
        metrics.push(url.unwrap_or_else(|| panic!("metrics of {name}: {line}")).to_owned());
    }
    let manager = crate::metrics::scrape(&metrics[0]).await;
    assert_eq!(crate::metrics::value(&manager, "eccluster_members", &[("state", "alive")]), Some(6.0));
    let repo = crate::metrics::scrape(&metrics[1]).await;
    assert_eq!(crate::metrics::value(&repo, "eccluster_config_revision_newest", &[("repo", "east"), ("role", "configd")]), Some(1.0));
    let west2 = crate::metrics::scrape(&metrics[6]).await;
    assert_eq!(crate::metrics::value(&west2, "eccluster_members", &[("state", "alive")]), Some(6.0));
    let page = next_line(&mut lines, Duration::from_secs(5)).await;
    assert!(page.starts_with("page: https://127.0.1.10:") && page.ends_with('/'), "{page}");
    let login = next_line(&mut lines, Duration::from_secs(5)).await;
    assert_eq!(login, format!("page login: admin, password in {}", dir.path().canonicalize().expect("dir").join("admin.password").display()));
    // The operator's working copy, seeded with the configuration, usable with admin's password.
    let conf = dir.path().join("conf");
    let seeded = std::fs::read_to_string(conf.join("default/ecelerity.conf")).expect("seeded default/ecelerity.conf");
    assert_eq!(seeded, std::fs::read_to_string("docs/examples/duravip.conf").expect("example"));
    assert!(conf.join("default").is_dir() && conf.join("global").is_dir());
    // Every node follows the repository: its working copy is DIR/wc/NAME, and it runs the
    // seeded file from there (the DuraVIP bindings below come from it).
    for node in NODES {
        let wc = dir.path().join("wc").join(node);
        eventually(&format!("{node} to run its working copy"), Duration::from_secs(30), || async {
            let console = dir.path().join(format!("{node}.console"));
            let reply = eccluster::local::ask(&console, "json cluster info").await.ok()?;
            let v: Value = serde_json::from_str(&reply.body).ok()?;
            let running = v["config_running"].as_str()?.to_owned();
            (running.contains(" 1") && running.contains("global 0")).then_some(())
        })
        .await;
        assert_eq!(std::fs::read_to_string(wc.join("default/ecelerity.conf")).expect("node's copy"), seeded, "{node}");
    }
    let pull = std::process::Command::new(env!("CARGO_BIN_EXE_eccfg"))
        .arg("--wc").arg(&conf)
        .arg("--password-file").arg(dir.path().join("admin.password"))
        .arg("pull")
        .output()
        .expect("eccfg pull");
    assert!(String::from_utf8_lossy(&pull.stdout).contains("No files changed."), "{}", String::from_utf8_lossy(&pull.stderr));
    // ecconfigd made the seed revisions before the manager was up; it announces them again
    // every 10 s, so the manager learns them, having logged the failed attempts once.
    eventually("the manager to know the seed revisions", Duration::from_secs(30), || async {
        let reply = eccluster::local::ask(&dir.path().join("console"), "json show cluster config").await.ok()?;
        let v: Value = serde_json::from_str(&reply.body).ok()?;
        (v["newest"]["east"] == 1 && v["newest"]["west"] == 1).then_some(())
    })
    .await;
    let log = std::fs::read_to_string(dir.path().join("ecconfigd.log")).expect("ecconfigd.log");
    assert!(log.matches("cannot announce configuration revisions").count() <= 1, "{log}");

    let before = eventually("every node agreeing on six owners", Duration::from_secs(20), || async {
        agreed(dir.path()).await.filter(|o| o.len() == 6)
    })
    .await;
    let (addr, owner) = before[2].clone();
    let target = NODES.iter().find(|n| **n != owner).expect("another node");
    let console = dir.path().join("console");
    let r = eccluster::local::ask(&console, &format!("broadcast cluster duravip move {addr} to {target}")).await.expect("move");
    assert!(r.is_ok(), "{}", r.body);
    eventually("every node agreeing on the move", Duration::from_secs(10), || async {
        agreed(dir.path()).await.filter(|o| o.iter().any(|(a, w)| *a == addr && w == target))
    })
    .await;
    let r = eccluster::local::ask(&console, &format!("broadcast cluster duravip move {addr} to {target}.example.com")).await.expect("reply");
    assert!(!r.is_ok() && r.body.contains(&format!("did you mean {target}?")), "{}", r.body);

    // A member killed with kill -9 is reported at once: which, how, where its log is.
    for (name, consequence) in [
        ("west2", "the cluster goes on without it"),
        ("mgr", "it was the manager: broadcast, unicast and retrieve are unavailable"),
    ] {
        let pid_file = dir.path().join(format!("{name}.pid"));
        let pid: i32 = std::fs::read_to_string(&pid_file).expect("pid file").trim().parse().expect("pid");
        kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill -9");
        let line = next_line(&mut lines, Duration::from_secs(10)).await;
        let log = dir.path().join(format!("{name}.log"));
        let expected = format!("{name} exited (signal: 9 (SIGKILL)); log: {}; {consequence}", log.display());
        assert!(line.starts_with(&expected), "{line}");
        assert!(!pid_file.exists(), "the pid file of a member that is gone is removed");
    }
    // The others keep running and answering.
    assert!(eccluster::local::ask(&dir.path().join("east1.console"), "cluster nodename").await.expect("east1").is_ok());

    let mut up = up.0.take().expect("local up");
    kill(Pid::from_raw(up.id() as i32), Signal::SIGINT).expect("SIGINT");
    let status = tokio::task::spawn_blocking(move || up.wait()).await.expect("waiter").expect("exit");
    assert!(status.success(), "{status}");
    for n in NODES {
        assert!(!dir.path().join(format!("{n}.pid")).exists(), "{n} left behind");
    }
}

/// `local up | head -1`: with its standard output closed, `local up` keeps its cluster
/// running, still notices a member that exits, and stops cleanly on Ctrl-C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_up_with_its_output_closed_keeps_running() {
    let _one = ONE_CLUSTER.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut up = local_up(dir.path(), None);
    // Like `head -1`: read up to the ready line, then close the pipe.
    let stdout = up.stdout.take().expect("stdout");
    let mut up = StopOnDrop(Some(up));
    let first = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::task::spawn_blocking(move || BufReader::new(stdout).lines().next().and_then(Result::ok)),
    )
    .await
    .expect("a line from local up within 90 s")
    .expect("reader");
    assert_eq!(first.as_deref(), Some("ready: 6 members"));
    let console = dir.path().join("console");
    let pid_file = dir.path().join("west2.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file).expect("pid file").trim().parse().expect("pid");
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill -9");
    eventually("local up noticing west2's exit", Duration::from_secs(10), || async { (!pid_file.exists()).then_some(()) }).await;
    let answer = eccluster::local::ask(&console, "version").await;
    let log = std::fs::read_to_string(dir.path().join("mgr.log")).unwrap_or_default();
    assert!(answer.as_ref().is_ok_and(|r| r.is_ok()), "the manager still answers: {answer:?}\n{log}");

    let mut up = up.0.take().expect("local up");
    assert!(up.try_wait().expect("wait").is_none(), "local up is still running");
    kill(Pid::from_raw(up.id() as i32), Signal::SIGINT).expect("SIGINT");
    let status = tokio::task::spawn_blocking(move || up.wait()).await.expect("waiter").expect("exit");
    assert!(status.success(), "{status}");
}
