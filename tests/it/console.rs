//! The console of real daemons through the real `ec_console` binary.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{converged, topology, Cluster};

fn ec_console(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ec_console"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ec_console");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("ec_console output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_batch_mode_errors_and_structured_output() {
    let mut c = Cluster::new(&topology(24, 4803, &[("east", 1), ("west", 1)]));
    c.start_all();
    converged(&c, 3, Duration::from_secs(30)).await;
    let mgr = c.console("mgr");
    let mgr = mgr.to_str().expect("utf-8 path");

    // One command on the command line.
    let (code, out, _) = ec_console(&[mgr, "version"], "");
    assert_eq!(code, 0);
    assert!(out.contains("# eccmgr version: "), "{out}");

    // A script on stdin: one reply per line, in order.
    let (code, out, err) = ec_console(&[mgr], "version\njson show cluster membership\ninfo\n");
    assert_eq!(code, 0, "{err}");
    let v = out.find("# eccmgr version").expect("version first");
    let j = out.find("\"name\": \"east1\"").expect("membership second");
    let i = out.find("Cluster Group: ec_cluster").expect("info third");
    assert!(v < j && j < i, "{out}");

    // A bad command: clear error, non-zero exit, later commands still run.
    let (code, out, err) = ec_console(&[mgr], "frobnicate the cluster\nversion\n");
    assert_eq!(code, 1);
    assert!(err.contains("unknown command 'frobnicate the cluster'"), "{err}");
    assert!(out.contains("# eccmgr version"), "{out}");

    // A bare `xml` is an error, not a crash; the daemon keeps answering.
    let (code, _, err) = ec_console(&[mgr, "xml"], "");
    assert_ne!(code, 0);
    assert!(err.contains("xml: a command must follow"), "{err}");
    let (code, out, _) = ec_console(&[mgr, "xml", "show", "cluster", "membership"], "");
    assert_eq!(code, 0);
    assert!(out.starts_with("<ClusterMembership>"), "{out}");
    assert_eq!(out.matches("<Member>").count(), 3, "{out}");

    // An oversize request line is refused; the session and the daemon carry on.
    let long = format!("version {}\nversion\n", "x".repeat(100 * 1024));
    let (code, out, err) = ec_console(&[mgr], &long);
    assert_ne!(code, 0);
    assert!(err.contains("exceeds the limit of 65536 bytes"), "{err}");
    assert!(out.contains("# eccmgr version"), "{out}");

    // Node console commands.
    let node = c.console("west1");
    let node = node.to_str().expect("utf-8 path");
    let (code, out, _) = ec_console(&[node], "cluster nodename\ncluster nodeaddr\njson cluster info\n");
    assert_eq!(code, 0);
    assert!(out.starts_with("west1\n127.24.2.11:4803\n"), "{out}");
    assert!(out.contains("\"node_name\": \"west1\""), "{out}");
    // A node command on the manager is refused with a hint.
    let (code, _, err) = ec_console(&[mgr, "cluster", "membership"], "");
    assert_eq!(code, 1);
    assert!(err.contains("is a node command"), "{err}");

    // The console socket is owner-only.
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(c.console("mgr")).expect("socket").permissions());
    assert_eq!(mode & 0o777, 0o600);

    // `shutdown` stops the daemon cleanly.
    let (code, out, _) = ec_console(&[node, "shutdown"], "");
    assert_eq!(code, 0, "{out}");
    let mut p = c.procs.remove("west1").expect("west1");
    let status = p.child.wait().expect("wait");
    assert!(status.success(), "{status}");
}
