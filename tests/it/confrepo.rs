//! The configuration repository end to end: real `ecconfigd` processes serving HTTPS on
//! loopback with the certificate they generate, real `eccfg` processes, real working copies,
//! and the server's git repositories read with `git`. Each test has its own address
//! 127.40.N.1 on port 2027, so tests run in parallel without colliding.
//!
//! Processes are killed at exact moments through stop points (`ECCFG_STOP_AT`): the process
//! stops itself with SIGSTOP there, the test sees the stop (`waitpid` with `WUNTRACED`) and kills
//! it with SIGKILL.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::repo_support::kill_when_stopped;

const ECCONFIGD: &str = env!("CARGO_BIN_EXE_ecconfigd");
const ECCFG: &str = env!("CARGO_BIN_EXE_eccfg");
const PASSWORD: &str = "correct horse battery staple";

/// A test's directory, its server's address and state, and the admin's password file.
struct Site {
    dir: tempfile::TempDir,
    addr: String,
    state: PathBuf,
    password: PathBuf,
}

/// A running ecconfigd.
struct Server {
    child: Child,
    fingerprint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Site {
    /// A site whose server listens on 127.40.`net`.1:2027, with users admin and bob.
    fn new(net: u8) -> Site {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let password = dir.path().join("admin.password");
        fs::write(&password, format!("{PASSWORD}\n")).expect("password file");
        let site = Site { addr: format!("127.40.{net}.1:2027"), state, password, dir };
        for user in ["admin", "bob"] {
            let out = Command::new(ECCONFIGD)
                .args(["user", "add", user, "--password-file"])
                .arg(&site.password)
                .arg("--state-dir")
                .arg(&site.state)
                .output()
                .expect("ecconfigd user add");
            assert!(out.status.success(), "user add: {}", text(&out.stderr));
        }
        site
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self) -> PathBuf {
        self.path("ecconfigd.log")
    }

    /// Starts ecconfigd (serving subcluster `east`) and waits for its `listening` line.
    fn start_with(&self, env: &[(&str, &str)]) -> Server {
        let log = fs::OpenOptions::new().create(true).append(true).open(self.log()).expect("log");
        let mut cmd = Command::new(ECCONFIGD);
        cmd.args(["--listen", &self.addr, "--subcluster", "east", "--log-level", "6", "--state-dir"])
            .arg(&self.state)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ecconfigd");
        let stdout = child.stdout.take().expect("stdout");
        let line = first_line(stdout, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("ecconfigd did not start:\n{}", fs::read_to_string(self.log()).unwrap_or_default()));
        let fingerprint = line.split(" key ").nth(1).expect("fingerprint in the listening line").trim().to_owned();
        assert!(line.starts_with(&format!("ecconfigd listening on {}", self.addr)), "{line}");
        Server { child, fingerprint }
    }

    fn start(&self) -> Server {
        self.start_with(&[])
    }

    /// Runs eccfg on working copy `wc` as admin.
    fn eccfg(&self, wc: &str, args: &[&str]) -> Output {
        self.eccfg_env(wc, args, &[])
    }

    fn eccfg_env(&self, wc: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.eccfg_command(wc, args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run eccfg")
    }

    fn eccfg_command(&self, wc: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(ECCFG);
        cmd.arg("--wc").arg(self.path(wc)).args(["--username", "admin", "--timeout", "10", "--password-file"]);
        cmd.arg(&self.password).args(args).stdin(Stdio::null()).env_remove("ECCFG_PASSWORD");
        cmd
    }

    /// eccfg that must succeed; its stdout.
    fn ok(&self, wc: &str, args: &[&str]) -> String {
        let out = self.eccfg(wc, args);
        assert!(out.status.success(), "eccfg {args:?} failed: {}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    /// eccfg that must fail with exit code 1; its stderr.
    fn fails(&self, wc: &str, args: &[&str]) -> String {
        let out = self.eccfg(wc, args);
        assert_eq!(out.status.code(), Some(1), "eccfg {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stderr)
    }

    /// Bootstraps `wc` (for `node`, or the whole subcluster) pinning the server's key.
    fn bootstrap(&self, server: &Server, wc: &str, node: Option<&str>) {
        let mut args = vec!["bootstrap", "--server", &self.addr, "--clustername", "east", "--trust", &server.fingerprint];
        if let Some(node) = node {
            args.extend(["--node", node]);
        }
        self.ok(wc, &args);
    }

    fn write(&self, wc: &str, path: &str, contents: &str) {
        let full = self.path(wc).join(path);
        fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        fs::write(full, contents).expect("write");
    }

    fn read(&self, wc: &str, path: &str) -> Option<String> {
        fs::read_to_string(self.path(wc).join(path)).ok()
    }

    /// `git log` of a repository of the server.
    fn git_log(&self, repo: &str) -> String {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(self.state.join("repos").join(format!("{repo}.git")))
            .args(["log", "--format=%an%n%B"])
            .output()
            .expect("git log");
        assert!(out.status.success(), "git log: {}", text(&out.stderr));
        text(&out.stdout)
    }

    /// Entries beside the working copies left by interrupted pulls.
    fn strays(&self, wc: &str) -> Vec<String> {
        fs::read_dir(self.dir.path())
            .expect("list")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&format!(".{wc}.eccfg-tmp-")))
            .collect()
    }
}

/// The first line a process writes on `stdout`, or `None` if it closes it or `limit` passes.
pub(crate) fn first_line(stdout: std::process::ChildStdout, limit: Duration) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let read = reader.read_line(&mut line).ok().filter(|n| *n > 0).map(|_| line);
        let _ = tx.send(read);
        // Keep reading so that the process never blocks on a full pipe.
        let mut sink = String::new();
        while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    rx.recv_timeout(limit).ok().flatten()
}

#[test]
fn commit_reaches_a_second_working_copy_and_the_server_git_log() {
    let site = Site::new(1);
    let server = site.start();
    site.bootstrap(&server, "ops", None);
    // A node's copy that trusts the server through its certificate file instead.
    let cert = site.state.join("tls/ecconfigd.pem");
    site.ok("east1", &["bootstrap", "--server", &site.addr, "--clustername", "east", "--node", "east1", "--ca", cert.to_str().expect("utf-8")]);
    site.bootstrap(&server, "east2", Some("east2"));
    for dir in ["global", "default", "east1"] {
        assert!(site.path("east1").join(dir).is_dir(), "{dir}/ missing in a fresh working copy");
    }

    site.write("ops", "default/ecelerity.conf", "Log_Level = 4\n");
    site.write("ops", "east1/ecelerity.conf", "Node_Name = east1\n");
    site.write("ops", "global/msgc.conf", "msgc { }\n");
    let out = site.ok("ops", &["commit", "-m", "first configuration"]);
    assert!(out.contains("Committed revision 1."), "{out}");
    assert!(out.contains("Committed global revision 1."), "{out}");
    assert!(out.contains("default/ecelerity.conf"), "{out}");
    assert!(site.ok("ops", &["commit", "-m", "again"]).contains("Nothing to commit"));

    let out = site.ok("east1", &["pull"]);
    assert!(out.contains("Files changed."), "{out}");
    assert_eq!(site.read("east1", "default/ecelerity.conf").as_deref(), Some("Log_Level = 4\n"));
    assert_eq!(site.read("east1", "east1/ecelerity.conf").as_deref(), Some("Node_Name = east1\n"));
    assert_eq!(site.read("east1", "global/msgc.conf").as_deref(), Some("msgc { }\n"));
    assert!(site.ok("east1", &["pull"]).contains("No files changed."));
    // Another node's copy holds default/ but not east1/.
    site.ok("east2", &["pull"]);
    assert!(site.read("east2", "default/ecelerity.conf").is_some());
    assert!(site.read("east2", "east1/ecelerity.conf").is_none());

    let log = site.git_log("east");
    assert!(log.contains("admin\nfirst configuration\n\nRevision: 1\nAuthor: admin"), "{log}");
    assert!(site.git_log("global").contains("Revision: 1"));

    // A commit of global/ alone, and a deletion, both reach the nodes.
    site.write("ops", "global/msgc.conf", "msgc { peers = ( a b ) }\n");
    fs::remove_file(site.path("ops").join("east1/ecelerity.conf")).expect("rm");
    let out = site.ok("ops", &["commit", "-m", "global and a deletion"]);
    assert!(out.contains("Deleting       east1/ecelerity.conf"), "{out}");
    assert!(out.contains("Committed global revision 2."), "{out}");
    let out = site.ok("east1", &["pull"]);
    assert!(out.contains("D    east1/ecelerity.conf"), "{out}");
    assert!(site.read("east1", "east1/ecelerity.conf").is_none());
    assert_eq!(site.read("east1", "global/msgc.conf").as_deref(), Some("msgc { peers = ( a b ) }\n"));
    assert!(site.path("east1").join("east1").is_dir(), "the node's directory stays");
}

#[test]
fn a_commit_on_a_stale_base_is_refused_also_after_a_restart() {
    let site = Site::new(2);
    let mut server = site.start();
    site.bootstrap(&server, "a", None);
    site.bootstrap(&server, "b", None);
    site.write("a", "default/ecelerity.conf", "a = 1\n");
    assert!(site.ok("a", &["commit", "-m", "from a"]).contains("Committed revision 1."));
    site.write("b", "default/ecelerity.conf", "a = 2\n");
    let error = site.fails("b", &["commit", "-m", "from b"]);
    assert!(
        error.contains("conflict: your working copy is at revision 0, east is at 1: run eccfg pull, resolve, commit again"),
        "{error}"
    );

    // The refusal holds across a restart of the server: all state is the repository on disk.
    site.write("a", "east1/x.conf", "x = 1\n");
    site.ok("a", &["commit", "-m", "second"]);
    kill(Pid::from_raw(server.child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    assert!(server.child.wait().expect("wait").success());
    drop(server);
    server = site.start();
    site.write("b", "default/ecelerity.conf", "a = 2\n");
    let error = site.fails("b", &["commit", "-m", "still stale"]);
    assert!(error.contains("your working copy is at revision 0, east is at 2"), "{error}");
    // Pull: the same line changed on both sides conflicts; taking ours and committing works.
    let error = site.fails("b", &["pull"]);
    assert!(error.contains("C default/ecelerity.conf") && error.contains("--mine"), "{error}");
    site.ok("b", &["pull", "--mine"]);
    assert!(site.ok("b", &["commit", "-m", "b wins"]).contains("Committed revision 3."));
    site.ok("a", &["pull"]);
    assert_eq!(site.read("a", "default/ecelerity.conf").as_deref(), Some("a = 2\n"));
    let log = site.git_log("east");
    for n in 1..=3 {
        assert!(log.contains(&format!("Revision: {n}\n")), "{log}");
    }
    drop(server);
}

#[test]
fn killing_ecconfigd_mid_pull_or_mid_commit_loses_nothing_and_working_copies_converge() {
    let site = Site::new(3);
    let server = site.start();
    site.bootstrap(&server, "ops", None);
    site.bootstrap(&server, "node", Some("east1"));
    site.write("ops", "default/ecelerity.conf", "v = 1\n");
    site.ok("ops", &["commit", "-m", "v1"]);
    site.ok("node", &["pull"]);
    site.write("ops", "default/ecelerity.conf", "v = 2\n");
    site.ok("ops", &["commit", "-m", "v2"]);
    drop(server);

    // Mid-pull: the server freezes while answering the snapshot and is killed.
    let mut server = site.start_with(&[("ECCFG_STOP_AT", "ecconfigd-before-snapshot")]);
    let pull = site.eccfg_command("node", &["pull"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("pull");
    kill_when_stopped(&mut server.child);
    let out = pull.wait_with_output().expect("pull result");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot reach ecconfigd"), "{}", text(&out.stderr));
    assert_eq!(site.read("node", "default/ecelerity.conf").as_deref(), Some("v = 1\n"));
    assert!(site.ok("node", &["status"]).contains("east at revision 1"));
    drop(server);
    let server = site.start();
    site.ok("node", &["pull"]);
    assert_eq!(site.read("node", "default/ecelerity.conf").as_deref(), Some("v = 2\n"));
    drop(server);

    // Mid-commit, before the ref moves: nothing was committed; committing again works.
    let mut server = site.start_with(&[("ECCFG_STOP_AT", "ecconfigd-before-ref-update")]);
    site.write("ops", "default/ecelerity.conf", "v = 3\n");
    let commit = site.eccfg_command("ops", &["commit", "-m", "v3"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("commit");
    kill_when_stopped(&mut server.child);
    let out = commit.wait_with_output().expect("commit result");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("may or may not have acted"), "{}", text(&out.stderr));
    assert!(site.ok("ops", &["status"]).contains("M       default/ecelerity.conf"));
    drop(server);

    // Mid-commit, after the ref moved: the commit is durable though never acknowledged.
    let mut server = site.start_with(&[("ECCFG_STOP_AT", "ecconfigd-after-ref-update")]);
    let commit = site.eccfg_command("ops", &["commit", "-m", "v3"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("commit");
    kill_when_stopped(&mut server.child);
    assert_eq!(commit.wait_with_output().expect("commit result").status.code(), Some(1));
    drop(server);
    let server = site.start();
    let error = site.fails("ops", &["commit", "-m", "v3 again"]);
    assert!(error.contains("your working copy is at revision 2, east is at 3"), "{error}");
    // The working copy converges: its change and the server's are the same, so no conflict.
    site.ok("ops", &["pull"]);
    assert!(site.ok("ops", &["commit", "-m", "nothing left"]).contains("Nothing to commit"));
    site.ok("node", &["pull"]);
    assert_eq!(site.read("node", "default/ecelerity.conf").as_deref(), Some("v = 3\n"));
    assert_eq!(site.git_log("east").matches("Revision: ").count(), 3);
    drop(server);
}

#[test]
fn a_pull_killed_during_its_swap_leaves_a_complete_working_copy() {
    let site = Site::new(4);
    let server = site.start();
    site.bootstrap(&server, "ops", None);
    site.bootstrap(&server, "node", Some("east1"));
    site.write("node", "notes.txt", "kept: not managed\n");
    site.write("ops", "default/a.conf", "a = 1\n");
    site.write("ops", "east1/b.conf", "b = 1\n");
    site.ok("ops", &["commit", "-m", "r1"]);
    site.ok("node", &["pull"]);
    site.write("ops", "default/a.conf", "a = 2\n");
    site.write("ops", "east1/b.conf", "b = 2\n");
    site.ok("ops", &["commit", "-m", "r2"]);

    // Killed just before the exchange: the old revision, whole.
    let mut pull = site.eccfg_command("node", &["pull"]).env("ECCFG_STOP_AT", "eccfg-before-swap").spawn().expect("pull");
    kill_when_stopped(&mut pull);
    assert_eq!(site.read("node", "default/a.conf").as_deref(), Some("a = 1\n"));
    assert_eq!(site.read("node", "east1/b.conf").as_deref(), Some("b = 1\n"));
    assert!(site.ok("node", &["status"]).contains("east at revision 1"));
    assert_eq!(site.strays("node").len(), 1, "the new tree stays beside, for the next pull to remove");
    let out = site.ok("node", &["pull"]);
    assert!(out.contains("Removed 1 temporary directory"), "{out}");
    assert_eq!(site.read("node", "east1/b.conf").as_deref(), Some("b = 2\n"));
    assert!(site.strays("node").is_empty());

    // Killed just after the exchange: the new revision, whole, with its metadata.
    site.write("ops", "default/a.conf", "a = 3\n");
    site.write("ops", "east1/b.conf", "b = 3\n");
    site.ok("ops", &["commit", "-m", "r3"]);
    let mut pull = site.eccfg_command("node", &["pull"]).env("ECCFG_STOP_AT", "eccfg-after-swap").spawn().expect("pull");
    kill_when_stopped(&mut pull);
    assert_eq!(site.read("node", "default/a.conf").as_deref(), Some("a = 3\n"));
    assert_eq!(site.read("node", "east1/b.conf").as_deref(), Some("b = 3\n"));
    let status = site.ok("node", &["status"]);
    assert!(status.contains("east at revision 3") && !status.contains("M  "), "{status}");
    let out = site.ok("node", &["pull"]);
    assert!(out.contains("Removed 1 temporary directory") && out.contains("No files changed."), "{out}");
    assert_eq!(site.read("node", "notes.txt").as_deref(), Some("kept: not managed\n"));
    drop(server);
}

#[test]
fn wrong_password_unknown_user_untrusted_certificate_and_unreachable_server_are_refused_clearly() {
    let site = Site::new(5);
    let server = site.start();
    let boot = |wc: &str, extra: &[&str]| {
        let mut args = vec!["bootstrap", "--server", &site.addr, "--clustername", "east"];
        args.extend_from_slice(extra);
        site.eccfg(wc, &args)
    };
    // No trust given: refused, showing the key fingerprint to check.
    let out = boot("w1", &[]);
    assert_eq!(out.status.code(), Some(1));
    let error = text(&out.stderr);
    assert!(error.contains("is not trusted") && error.contains(&server.fingerprint), "{error}");
    assert!(!site.path("w1").exists(), "nothing is created when refused");
    // A pinned fingerprint that is not the server's.
    let other = format!("SHA256:{}", vec!["00"; 32].join(":"));
    let error = text(&boot("w1", &["--trust", &other]).stderr);
    assert!(error.contains("is not trusted") && error.contains(&other), "{error}");
    // A CA that did not issue the server's certificate.
    let foreign = site.path("foreign");
    let out = Command::new(ECCONFIGD).args(["fingerprint", "--state-dir"]).arg(&foreign).output().expect("fingerprint");
    assert!(out.status.success());
    let error = text(&boot("w1", &["--ca", foreign.join("tls/ecconfigd.pem").to_str().expect("utf-8")]).stderr);
    assert!(error.contains("is not trusted"), "{error}");
    // --trust without a value pins what the server shows.
    let out = boot("w1", &["--trust"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&server.fingerprint));

    // Wrong password, unknown user.
    let wrong = site.path("wrong.password");
    fs::write(&wrong, "not it\n").expect("write");
    let out = Command::new(ECCFG).arg("--wc").arg(site.path("w1")).arg("--password-file").arg(&wrong).arg("pull").output().expect("eccfg");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("wrong password for user 'admin'"), "{}", text(&out.stderr));
    let out = Command::new(ECCFG)
        .arg("--wc").arg(site.path("w1"))
        .args(["--username", "mallory"])
        .env("ECCFG_PASSWORD", PASSWORD)
        .arg("pull")
        .output()
        .expect("eccfg");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("has no user 'mallory'"), "{}", text(&out.stderr));

    // Nothing listening: refused at once.
    let out = Command::new(ECCFG)
        .arg("--wc").arg(site.path("w2"))
        .args(["--username", "admin", "bootstrap", "--server", "127.40.5.9:2027", "--clustername", "east", "--trust"])
        .env("ECCFG_PASSWORD", PASSWORD)
        .output()
        .expect("eccfg");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot reach ecconfigd at 127.40.5.9:2027"), "{}", text(&out.stderr));
    // Listening but never answering: refused after the timeout, no hang.
    let silent = std::net::TcpListener::bind("127.40.5.10:2027").expect("bind");
    let started = std::time::Instant::now();
    let out = Command::new(ECCFG)
        .arg("--wc").arg(site.path("w2"))
        .args(["--username", "admin", "--timeout", "2", "bootstrap", "--server", "127.40.5.10:2027", "--clustername", "east", "--trust"])
        .env("ECCFG_PASSWORD", PASSWORD)
        .output()
        .expect("eccfg");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot reach ecconfigd") && text(&out.stderr).contains("timed out"), "{}", text(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(silent);
    drop(server);
}

#[test]
fn a_login_cached_after_a_good_password_refuses_a_wrong_one_and_the_old_one_once_changed() {
    let mut site = Site::new(12);
    site.addr = "127.42.12.1:2027".into();
    let server = site.start_with(&[("RUST_LOG", "info,eccluster::confrepo::server=debug")]);
    site.bootstrap(&server, "w1", None);
    site.ok("w1", &["pull"]);
    let wrong = site.path("wrong.password");
    fs::write(&wrong, "not it\n").expect("write");
    let pull_with = |password: &std::path::Path| {
        Command::new(ECCFG).arg("--wc").arg(site.path("w1")).arg("--password-file").arg(password).arg("pull").output().expect("eccfg")
    };
    let out = pull_with(&wrong);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("wrong password for user 'admin'"), "{}", text(&out.stderr));
    site.ok("w1", &["pull"]);
    let log = fs::read_to_string(site.log()).expect("log");
    assert!(log.contains("verdict=Accepted cached=true"), "the good password was never taken from the cache:\n{log}");
    assert!(log.contains("verdict=WrongPassword cached=false"), "{log}");

    // The password changed with `ecconfigd user add` while the server runs: the old one, cached
    // a moment ago, is refused; the new one is taken.
    let new = site.path("new.password");
    fs::write(&new, "a new password\n").expect("write");
    let out = Command::new(ECCONFIGD).args(["user", "add", "admin", "--password-file"]).arg(&new).arg("--state-dir").arg(&site.state).output().expect("user add");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = pull_with(&site.password);
    assert_eq!(out.status.code(), Some(1), "the old password still works: {}", text(&out.stdout));
    assert!(text(&out.stderr).contains("wrong password for user 'admin'"), "{}", text(&out.stderr));
    let out = pull_with(&new);
    assert!(out.status.success(), "{}", text(&out.stderr));
    drop(server);
}

#[test]
fn a_malformed_conf_file_is_refused_at_commit_with_file_line_and_column() {
    let site = Site::new(6);
    let server = site.start();
    site.bootstrap(&server, "ops", None);
    site.write("ops", "default/ok.txt", "not a .conf file: not parsed\n");
    site.write("ops", "default/ecelerity.conf", "Log_Level = 4\nESMTP_Listener {\n  Listen \":25\" {\n}\n");
    let error = site.fails("ops", &["commit", "-m", "broken"]);
    assert!(error.contains("nothing was committed"), "{error}");
    let at = error.find("default/ecelerity.conf:").expect("the file is named");
    let place: Vec<&str> = error[at..].splitn(4, ':').collect();
    assert!(place[1].parse::<u32>().is_ok() && place[2].parse::<u32>().is_ok(), "no line:column in {error}");
    assert!(!site.state.join("repos/east.git/refs/heads/main").exists(), "nothing may be committed");
    let status = site.ok("ops", &["status"]);
    assert!(status.contains("A       default/ecelerity.conf") && status.contains("A       default/ok.txt"), "{status}");
    site.write("ops", "default/ecelerity.conf", "Log_Level = 4\nESMTP_Listener {\n  Listen \":25\" { }\n}\n");
    assert!(site.ok("ops", &["commit", "-m", "fixed"]).contains("Committed revision 1."));
    drop(server);
}

#[test]
fn rollback_put_diff_status_and_log_show_and_restore_history() {
    let site = Site::new(7);
    let server = site.start();
    site.bootstrap(&server, "ops", None);
    site.write("ops", "default/ecelerity.conf", "a = 1\nb = 1\n");
    site.ok("ops", &["commit", "-m", "one"]);
    site.write("ops", "default/ecelerity.conf", "a = 2\nb = 1\n");
    site.ok("ops", &["commit", "-m", "two"]);
    assert!(!site.ok("ops", &["status"]).contains("M "));

    site.write("ops", "default/ecelerity.conf", "a = 3\nb = 1\n");
    assert!(site.ok("ops", &["status"]).contains("M       default/ecelerity.conf"));
    let diff = site.ok("ops", &["diff"]);
    assert!(diff.contains("--- default/ecelerity.conf\t(revision 2)") && diff.contains("-a = 2\n+a = 3\n"), "{diff}");
    site.write("ops", "default/ecelerity.conf", "a = 2\nb = 1\n");
    assert_eq!(site.ok("ops", &["diff"]), "");

    let out = site.ok("ops", &["rollback", "1"]);
    assert!(out.contains("Committed revision 3 (the files of revision 1 of east)."), "{out}");
    assert_eq!(site.read("ops", "default/ecelerity.conf").as_deref(), Some("a = 1\nb = 1\n"));

    let source = site.path("new.conf");
    fs::write(&source, "c = 1\n").expect("write");
    let src = source.to_str().expect("utf-8");
    assert!(site.ok("ops", &["put", src, "default/new.conf"]).contains("Committed revision 4."));
    assert!(site.ok("ops", &["put", src, "default/new.conf"]).contains("Nothing to commit"));

    let log = site.ok("ops", &["log"]);
    let order: Vec<usize> = ["r4 | admin", "r3 | admin", "r2 | admin", "r1 | admin"].iter().map(|r| log.find(r).expect(r)).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{log}");
    assert!(log.contains("Rollback to revision 1") && log.contains("put default/new.conf"), "{log}");

    // `eccfg log | head -1`: the reader is gone before anything is written; eccfg ends as
    // having succeeded, with no panic about standard output.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = site.eccfg_command("ops", &["log"]).stdout(writer).stderr(Stdio::piped()).output().expect("run eccfg");
    assert!(out.status.success() && !text(&out.stderr).contains("panicked"), "{:?}: {}", out.status, text(&out.stderr));
    drop(server);
}

#[test]
fn pull_merges_separate_changes_and_refuses_conflicts_until_mine_or_theirs() {
    let site = Site::new(8);
    let server = site.start();
    site.bootstrap(&server, "a", None);
    site.bootstrap(&server, "b", None);
    site.write("a", "default/e.conf", "one = 1\ntwo = 2\nthree = 3\nfour = 4\n");
    site.ok("a", &["commit", "-m", "base"]);
    site.ok("b", &["pull"]);
    site.write("a", "default/e.conf", "one = 10\ntwo = 2\nthree = 3\nfour = 4\n");
    site.ok("a", &["commit", "-m", "first line"]);
    site.write("b", "default/e.conf", "one = 1\ntwo = 2\nthree = 3\nfour = 40\n");
    let out = site.ok("b", &["pull"]);
    assert!(out.contains("G    default/e.conf"), "{out}");
    assert_eq!(site.read("b", "default/e.conf").as_deref(), Some("one = 10\ntwo = 2\nthree = 3\nfour = 40\n"));
    assert!(site.ok("b", &["status"]).contains("M       default/e.conf"), "the local change is still local");

    site.write("a", "default/e.conf", "one = 11\ntwo = 2\nthree = 3\nfour = 4\n");
    site.ok("a", &["commit", "-m", "conflicting"]);
    site.write("b", "default/e.conf", "one = 12\ntwo = 2\nthree = 3\nfour = 40\n");
    let error = site.fails("b", &["pull"]);
    assert!(error.contains("C default/e.conf") && error.contains("--theirs") && error.contains("nothing was changed"), "{error}");
    assert_eq!(site.read("b", "default/e.conf").as_deref(), Some("one = 12\ntwo = 2\nthree = 3\nfour = 40\n"));
    site.ok("b", &["pull", "--theirs"]);
    assert_eq!(site.read("b", "default/e.conf").as_deref(), Some("one = 11\ntwo = 2\nthree = 3\nfour = 4\n"));
    drop(server);
}

#[test]
fn with_cluster_boot_start_up_waits_for_a_busy_port() {
    let site = Site::new(9);
    let busy = std::net::TcpListener::bind(&site.addr).expect("occupy the port");
    // Without cluster.boot: refused at once.
    let out = Command::new(ECCONFIGD)
        .args(["--listen", &site.addr, "--state-dir"])
        .arg(&site.state)
        .output()
        .expect("ecconfigd");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot listen on"), "{}", text(&out.stderr));

    fs::write(site.state.join("cluster.boot"), "cluster_name=east\n").expect("cluster.boot");
    let mut child = Command::new(ECCONFIGD)
        .args(["--listen", &site.addr, "--state-dir"])
        .arg(&site.state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ecconfigd");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let retrying = lines.by_ref().map_while(Result::ok).find(|l| l.contains("retrying for up to a minute"));
    assert!(retrying.is_some(), "ecconfigd did not say it retries");
    drop(busy);
    let line = first_line(child.stdout.take().expect("stdout"), Duration::from_secs(30)).expect("listening line");
    assert!(line.starts_with("ecconfigd listening on"), "{line}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn paths_outside_the_repository_rules_never_reach_the_server() {
    let site = Site::new(10);
    let server = site.start();
    site.bootstrap(&server, "ops", None);
    site.write("ops", "top.conf", "x = 1\n");
    site.write("ops", "default/.hidden", "x\n");
    assert!(site.ok("ops", &["commit", "-m", "nothing managed"]).contains("Nothing to commit"));
    let out = site.eccfg("ops", &["put", site.path("ops/top.conf").to_str().expect("utf-8"), "../escape.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is not a path of this working copy"), "{}", text(&out.stderr));
    assert!(!site.path("escape.conf").exists());
    drop(server);
}

#[test]
fn check_config_names_a_malformed_users_file_and_exits_2() {
    let site = Site::new(11);
    let check = || {
        Command::new(ECCONFIGD).args(["--check-config", "--subcluster", "east", "--state-dir"]).arg(&site.state).output().expect("ecconfigd")
    };
    let out = check();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("2 user(s)"), "{}", text(&out.stdout));
    let users = site.state.join("users");
    let mut text_of_users = fs::read_to_string(&users).expect("users");
    text_of_users.push_str("eve:plain-text-password\n");
    fs::write(&users, text_of_users).expect("write users");
    let out = check();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("users:4: the hash of 'eve' is not a PHC string"), "{}", text(&out.stderr));
}
