//! The remote console: `ec_console` over TLS to a manager's TCP Control_Listener, logins by
//! password and by client certificate, authorization by role, the audit log, and the
//! configurations that stop a start. Real processes on 127.45.x.x.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use eccluster::console::frame::{read_reply, write_request, Status};
use serde_json::Value;

use crate::support::{console_users, converged, ec_console, topology, Cluster};

/// A manager and one node; the manager's console listens with TLS on `127.45.1.10:PORT+1`
/// (logins, client certificates, authorization) and in plain TCP on `127.45.1.10:PORT+2`.
struct Remote {
    c: Cluster,
    tls: String,
    plain: String,
    audit: PathBuf,
}

impl Remote {
    async fn start(port: u16) -> Remote {
        let mut c = Cluster::new(&topology(45, port, &[("east", 1)]));
        let dir = c.dir.path().to_owned();
        let users = dir.join("console.users");
        console_users(&users, &[("alice", "alice-secret"), ("bob", "bob-secret"), ("carol", "carol-secret")]);
        std::fs::write(dir.join("console.groups"), "# console groups\nadmin:alice,bob\nroot:carol\n").expect("groups");
        let (tls, plain) = (format!("127.45.1.10:{}", port + 1), format!("127.45.1.10:{}", port + 2));
        let audit = dir.join("audit.log");
        let config = format!(
            "Control_Listener {{\n\
             \x20 AuthLoginParameters = [ uri = \"file://{users}\" ]\n\
             \x20 AuthorizationParameters = [ uri = \"groups://{groups}\" ]\n\
             \x20 Audit_Log = \"{audit}\"\n\
             \x20 Listen \"{tls}\" {{ Enable_Authorization = true Client_Certificates = true }}\n\
             \x20 Listen \"{plain}\" {{ TLS = false }}\n\
             }}\n\
             Authorization {{\n\
             \x20 Role \"admin\" {{ allow = ( \"^show\" \"^broadcast\" \"^summary$\" \"^version$\" ) }}\n\
             \x20 Role \"root\" {{ allow = ( \".*\" ) }}\n\
             }}\n",
            users = users.display(),
            groups = dir.join("console.groups").display(),
            audit = audit.display(),
        );
        c.set_member_config("mgr", &config);
        c.start_all();
        converged(&c, 2, Duration::from_secs(60)).await;
        Remote { c, tls, plain, audit }
    }

    fn ca(&self) -> PathBuf {
        self.c.tls.join("ca.pem")
    }

    fn password_file(&self, user: &str) -> PathBuf {
        self.c.dir.path().join(format!("{user}.password"))
    }

    /// `ec_console USER@TLS-ADDRESS --ca CA --password-file FILE COMMAND`.
    fn run_as(&self, user: &str, password_file: &Path, command: &str) -> (Option<i32>, String, String) {
        let endpoint = format!("{user}@{}", self.tls);
        let ca = self.ca();
        ec_console(&[endpoint.as_ref(), "--ca".as_ref(), ca.as_os_str(), "--password-file".as_ref(), password_file.as_os_str(), command.as_ref()])
    }

    fn audit_lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.audit).expect("audit log");
        text.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_console_serves_logged_in_users_over_tls_and_refuses_clearly_otherwise() {
    let r = Remote::start(4851).await;

    // An allowed user's command works end to end.
    let (code, out, err) = r.run_as("alice", &r.password_file("alice"), "show cluster membership");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("east1") && out.contains("mgr"), "{out}");

    // A wrong password and an unknown user get the same refusal, logged with the peer.
    let (code, _, err) = r.run_as("bob", &r.password_file("alice"), "show cluster membership");
    assert_eq!((code, err.as_str()), (Some(1), "ec_console: login failed for user bob\n"));
    let (code, _, err) = r.run_as("mallory", &r.password_file("alice"), "show cluster membership");
    assert_eq!((code, err.as_str()), (Some(1), "ec_console: login failed for user mallory\n"));
    let log = r.c.log_text("mgr");
    assert!(log.contains("console login failed") && log.contains("user=mallory from=127."), "{log}");

    // The CA of another cluster does not trust this console.
    let other = tempfile::tempdir().expect("tempdir");
    eccluster::tls::ca_init(other.path(), "other").expect("other CA");
    let endpoint = format!("alice@{}", r.tls);
    let alice = r.password_file("alice");
    let (code, _, err) = ec_console(&[
        endpoint.as_ref(),
        "--ca".as_ref(),
        other.path().join("ca.pem").as_os_str(),
        "--password-file".as_ref(),
        alice.as_os_str(),
        "version".as_ref(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("the console's certificate is not signed by the CA in"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // A client without TLS gets a plain answer saying why; ec_console --no-tls shows it.
    let mut plain = tokio::net::TcpStream::connect(&r.tls).await.expect("connect");
    write_request(&mut plain, "show cluster membership").await.expect("write");
    let reply = read_reply(&mut plain).await.expect("read").expect("a reply");
    assert_eq!(reply.status, Status::Failed);
    assert!(reply.body.starts_with("this console speaks TLS"), "{}", reply.body);
    let (code, _, err) = ec_console(&["--no-tls", r.tls.as_str(), "version"]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("this console speaks TLS"), "{err}");

    // A TLS client of a console without TLS is told so in one line.
    let ca = r.ca();
    let (code, _, err) = ec_console(&[r.plain.as_ref(), "--ca".as_ref(), ca.as_os_str(), "version".as_ref()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("closed the connection during the TLS handshake"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // ... which serves a plain client that logs in.
    let endpoint = format!("bob@{}", r.plain);
    let bob = r.password_file("bob");
    let (code, out, err) =
        ec_console(&["--no-tls".as_ref(), endpoint.as_ref(), "--password-file".as_ref(), bob.as_os_str(), "version".as_ref()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.is_empty());

    // A client certificate of the cluster CA logs in as the name it carries, with no password:
    // carol has the root role, so she may run what alice may not.
    eccluster::tls::ca_issue(&r.c.tls, &["carol".to_owned()]).expect("carol's certificate");
    let (cert, key) = (r.c.tls.join("carol.pem"), r.c.tls.join("carol.key"));
    let run_with_cert = |command: &str| {
        ec_console(&[
            r.tls.as_ref(),
            "--ca".as_ref(),
            ca.as_os_str(),
            "--cert".as_ref(),
            cert.as_os_str(),
            "--key".as_ref(),
            key.as_os_str(),
            command.as_ref(),
        ])
    };
    let (code, out, err) = run_with_cert("info");
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.is_empty());
    let carol = r.audit_lines().into_iter().find(|l| l["user"] == "carol").expect("carol's command audited");
    assert_eq!((carol["command"].as_str(), carol["result"].as_str()), (Some("info"), Some("ok")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_commands_are_refused_sent_nowhere_and_audited() {
    let r = Remote::start(4861).await;
    let alice = r.password_file("alice");

    let (code, _, err) = r.run_as("alice", &alice, "shutdown");
    assert_eq!((code, err.as_str()), (Some(1), "command \"shutdown\" not allowed for user alice\n"));
    // `broadcast` is allowed to alice, `shutdown` inside it is not: nothing is sent.
    let (code, _, err) = r.run_as("alice", &alice, "broadcast shutdown");
    assert_eq!(
        (code, err.as_str()),
        (Some(1), "command \"shutdown\" (inside \"broadcast shutdown\") not allowed for user alice\n")
    );
    // `unicast` itself is not among alice's roles.
    let (code, _, err) = r.run_as("alice", &alice, "unicast east1 shutdown");
    assert_eq!((code, err.as_str()), (Some(1), "command \"unicast east1 shutdown\" not allowed for user alice\n"));
    let (code, out, err) = r.run_as("alice", &alice, "show cluster membership");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("east1"));

    // The manager sequenced nothing and the node applied nothing; both still run.
    let retrieve = r.c.ask("mgr", "retrieve shutdown").await.expect("retrieve");
    assert!(!retrieve.is_ok() && retrieve.body.contains("no broadcast of 'shutdown'"), "{}", retrieve.body);
    assert_eq!(r.c.oplog("east1").await, Vec::<String>::new());
    assert!(r.c.ask("east1", "version").await.expect("east1 answers").is_ok());

    let audit = r.audit_lines();
    let result_of = |command: &str| {
        audit
            .iter()
            .find(|l| l["command"] == command)
            .map(|l| (l["user"].as_str().unwrap_or_default().to_owned(), l["result"].as_str().unwrap_or_default().to_owned()))
    };
    for denied in ["shutdown", "broadcast shutdown", "unicast east1 shutdown"] {
        assert_eq!(result_of(denied), Some(("alice".to_owned(), "denied".to_owned())), "{denied}: {audit:?}");
    }
    assert_eq!(result_of("show cluster membership"), Some(("alice".to_owned(), "ok".to_owned())));
    assert_eq!(result_of("login"), Some(("alice".to_owned(), "ok".to_owned())));
    assert!(audit.iter().all(|l| l["from"].as_str().is_some_and(|f| f.starts_with("127.") || f.starts_with("unix:"))), "{audit:?}");
    let log = r.c.log_text("mgr");
    assert!(log.contains("console command denied"), "{log}");
}

/// `eccmgr --check-config` with the configuration `text`: its exit code and standard error.
fn check_config(c: &Cluster, text: &str) -> (Option<i32>, String, PathBuf) {
    let path = c.dir.path().join("mgr.conf");
    std::fs::write(&path, text).expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_eccmgr"))
        .arg("--check-config")
        .arg("-c")
        .arg(&path)
        .arg("--name")
        .arg("mgr")
        .arg("--segments")
        .arg(&c.segments)
        .arg("--tls-dir")
        .arg(&c.tls)
        .output()
        .expect("eccmgr --check-config");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), path)
}

#[test]
fn plain_tcp_off_loopback_and_a_bad_role_pattern_stop_the_start_with_file_line_column() {
    let c = Cluster::new(&topology(45, 4871, &[("east", 1)]));
    let (code, err, path) = check_config(&c, "Control_Listener {\n  Listen \"10.45.0.1:2025\" {\n    TLS = false\n  }\n}\n");
    assert_eq!(code, Some(2), "{err}");
    let place = format!("{}:3:5: Listen \"10.45.0.1:2025\": TLS = false is allowed only on a loopback address", path.display());
    assert!(err.contains(&place), "{err}");

    let (code, err, path) = check_config(
        &c,
        "Control_Listener { Enable_Authorization = true }\nAuthorization {\n  Role \"admin\" {\n    allow = ( \"^show\" \"[\" )\n  }\n}\n",
    );
    assert_eq!(code, Some(2), "{err}");
    let place = format!("{}:4:5: Role \"admin\": allow pattern \"[\" is not a regular expression", path.display());
    assert!(err.contains(&place), "{err}");

    let (code, err, path) = check_config(&c, "Control_Listener {\n  Listen \"127.45.3.1:2025\" { }\n}\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("{}:2:3: Listen \"127.45.3.1:2025\" asks for a login", path.display())), "{err}");
}
