//! ecconfigd announcing new revisions to eccmgr: a real manager and two real nodes on
//! 127.42.1.0/24, a real ecconfigd on 127.42.9.1 with `--announce` pointing at the manager's
//! console, commits made with the library's working-copy functions, and the manager's
//! `show cluster config` read through its console until it shows them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use eccluster::confrepo::client::{Credentials, Endpoint};
use eccluster::confrepo::users::Users;
use eccluster::confrepo::wc::{self, BootstrapOptions, Connection, TrustChoice};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{converged, eventually, topology, Cluster};

const PASSWORD: &str = "announce test password";
const LISTEN: &str = "127.42.9.1:2027";

/// ecconfigd, killed when dropped.
struct Ecconfigd {
    child: Child,
    log: PathBuf,
}

impl Drop for Ecconfigd {
    fn drop(&mut self) {
        if let Err(error) = self.child.start_kill() {
            eprintln!("killing ecconfigd: {error}");
        }
    }
}

impl Ecconfigd {
    async fn stop(mut self) {
        self.child.kill().await.expect("kill ecconfigd");
    }
}

/// Starts ecconfigd for subcluster west in `dir`, announcing to `console` every `interval`
/// seconds; waits for its listening line and returns it with the key fingerprint.
async fn ecconfigd(dir: &Path, console: &Path, interval: u32) -> (Ecconfigd, String) {
    let state = dir.join("ecconfigd");
    if !state.exists() {
        let mut users = Users::default();
        users.set("admin", PASSWORD).expect("a user");
        fs::create_dir_all(&state).expect("state dir");
        users.save(&state.join("users")).expect("users file");
    }
    let log = dir.join(format!("ecconfigd-{interval}.log"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecconfigd"))
        .arg("--state-dir").arg(&state)
        .args(["--listen", LISTEN, "--subcluster", "west", "--log-level", "6", "--announce-interval", &interval.to_string()])
        .arg("--announce").arg(console)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(fs::File::create(&log).expect("log")))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ecconfigd");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .ok()
        .and_then(|l| l.ok().flatten())
        .unwrap_or_else(|| panic!("ecconfigd did not start:\n{}", fs::read_to_string(&log).unwrap_or_default()));
    let fingerprint = line.split(" key ").nth(1).expect("a key in the listening line").trim().to_owned();
    (Ecconfigd { child, log }, fingerprint)
}

/// The manager's `json show cluster config`, if it answers.
async fn config_view(c: &Cluster) -> Option<Value> {
    let reply = c.ask("mgr", "json show cluster config").await.ok()?;
    serde_json::from_str(&reply.body).ok()
}

/// Waits until the manager knows revision `rev` of west as the newest and both nodes have
/// reported to it.
async fn manager_shows(c: &Cluster, rev: u64, what: &str) -> Value {
    eventually(what, Duration::from_secs(30), || async {
        let view = config_view(c).await?;
        let reported = view["nodes"].as_array()?.iter().filter(|n| !n["reported_seconds"].is_null()).count();
        (view["newest"]["west"] == rev && reported == 2).then_some(view)
    })
    .await
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecconfigd_announces_every_commit_to_eccmgr_and_again_after_eccmgr_restarts() {
    let mut c = Cluster::new(&topology(42, 4803, &[("west", 2)]));
    c.start_all();
    converged(&c, 3, Duration::from_secs(30)).await;
    let before = config_view(&c).await.expect("the manager answers");
    assert_eq!(before["newest"], serde_json::json!({}), "{before}");

    // Announcing every minute: within the test's deadlines only a commit makes ecconfigd
    // announce (at start it has nothing to announce yet).
    let (server, fingerprint) = ecconfigd(c.dir.path(), &c.console("mgr"), 60).await;
    let password_file = c.dir.path().join("admin.password");
    fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file");
    let conn = Connection {
        credentials: Credentials { user: "admin".into(), password: PASSWORD.into() },
        timeout: Duration::from_secs(10),
    };
    let root = c.dir.path().join("conf");
    let (host, port) = LISTEN.split_once(':').expect("host:port");
    let opts = BootstrapOptions {
        server: Endpoint { host: host.into(), port: port.parse().expect("port") },
        clustername: "west".into(),
        node: None,
        wc: root.clone(),
        trust: TrustChoice::Fingerprint(fingerprint),
        password_file: Some(password_file),
    };
    wc::bootstrap(&opts, &conn).await.expect("bootstrap");
    let commit = |n: u32| {
        let root = root.clone();
        let conn = &conn;
        async move {
            fs::write(root.join("default/ecelerity.conf"), format!("Log_Level = {n}\n")).expect("edit");
            let done = wc::commit(&root, conn, &format!("change {n}"), None).await.expect("commit");
            done.committed.iter().find(|h| h.repo == "west").expect("a west revision").revision
        }
    };

    // A commit reaches the manager, which tells both nodes; they report what they run.
    let first = commit(1).await;
    let view = manager_shows(&c, first, "the manager to show the first commit").await;
    let names: Vec<&str> = view["nodes"].as_array().expect("nodes").iter().filter_map(|n| n["name"].as_str()).collect();
    assert_eq!(names, ["west1", "west2"], "{view}");
    let text = c.ask("mgr", "show cluster config").await.expect("text form").body;
    assert!(text.starts_with(&format!("Newest: west {first}\nNode ")), "{text}");
    // The other `cluster` words are still node commands on the manager; a node refuses the
    // manager's commands.
    let refused = c.ask("mgr", "cluster membership").await.expect("an answer");
    assert!(!refused.is_ok() && refused.body.contains("is a node command"), "{}", refused.body);
    let refused = c.ask("west1", "cluster config announce west 99").await.expect("an answer");
    assert!(!refused.is_ok() && refused.body.contains("not available on a node"), "{}", refused.body);

    // Announcing every second from now on: the manager is killed, commits go on (ecconfigd does not wait for it), and the one made
    // while it was down supersedes the earlier; the restarted manager, which remembers no
    // revision, learns the newest from the periodic announcement.
    server.stop().await;
    let (server, _) = ecconfigd(c.dir.path(), &c.console("mgr"), 1).await;
    manager_shows(&c, first, "the manager to be told again at ecconfigd's start").await;
    c.kill9("mgr");
    let second = commit(2).await;
    let third = commit(3).await;
    assert!(third > second && second > first);
    c.start("mgr");
    converged(&c, 3, Duration::from_secs(30)).await;
    manager_shows(&c, third, "the restarted manager to learn the newest revision").await;

    // One line when the announcements started failing, one when the manager answered again,
    // however many attempts failed in between.
    let log = fs::read_to_string(&server.log).expect("ecconfigd log");
    assert_eq!(count(&log, "cannot announce configuration revisions to the manager"), 1, "{log}");
    assert_eq!(count(&log, "the manager answers again"), 1, "{log}");
    drop(server);
}
