//! ecconfigd under `eccluster local up`: its state in `DIR/ecconfigd/`, its log in
//! `DIR/ecconfigd.log`, the users `admin` and `ecuser` (passwords made at random the first
//! time, in `DIR/admin.password` and `DIR/ecuser.password`, owner-only), and the operator's
//! working copy of the first subcluster in `DIR/conf` (`DIR/conf-NAME` for the others), seeded
//! at revision 1 with `default/ecelerity.conf` (the `--config` file, when given). Every node
//! follows the repository: its `cluster.boot` is `DIR/boot/NAME.boot`, its working copy
//! `DIR/wc/NAME`. ecconfigd announces every new revision to the manager's console
//! (`DIR/console`), which tells the nodes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::Engine;
use eccluster_proto::segments::Segments;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::client::{Credentials, Endpoint};
use super::server::users_path;
use super::users::{read_password_file, Users};
use super::wc::{self, BootstrapOptions, Connection, Resolve, TrustChoice, WorkingCopy};

/// A started ecconfigd.
pub struct LocalRepo {
    /// The process.
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its log.
    pub log: PathBuf,
    /// The key fingerprint of its certificate (what nodes trust).
    pub fingerprint: String,
}

fn random_password() -> Result<String> {
    let mut bytes = [0u8; 18];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Makes sure `user` exists with the password in `file` (made at random when absent).
fn ensure_user(users: &mut Users, user: &str, file: &Path) -> Result<bool> {
    if file.exists() && users.contains(user) {
        read_password_file(file)?;
        return Ok(false);
    }
    let password = random_password()?;
    crate::tls::write_private(file, &format!("{password}\n"))?;
    users.set(user, &password)?;
    Ok(true)
}

/// The working copy of subcluster number `index`.
pub fn working_copy(dir: &Path, index: usize, name: &str) -> PathBuf {
    if index == 0 {
        dir.join("conf")
    } else {
        dir.join(format!("conf-{name}"))
    }
}

/// Starts ecconfigd (`binary`) on `listen` for the subclusters of `segments`, announcing new
/// revisions to the manager consoles `announce`, serving metrics on `metrics`, and makes and
/// seeds the operator's working copies.
pub async fn start(
    dir: &Path,
    binary: &Path,
    listen: SocketAddr,
    segments: (&Segments, &Path),
    config: Option<&Path>,
    announce: &[PathBuf],
    metrics: Option<SocketAddr>,
) -> Result<LocalRepo> {
    let state = dir.join("ecconfigd");
    std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
    let admin_file = dir.join("admin.password");
    let mut users = Users::load(&users_path(&state))?;
    let made_admin = ensure_user(&mut users, "admin", &admin_file)?;
    let made_ecuser = ensure_user(&mut users, "ecuser", &dir.join("ecuser.password"))?;
    if made_admin || made_ecuser {
        users.save(&users_path(&state))?;
    }
    let log = dir.join("ecconfigd.log");
    let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log).with_context(|| format!("opening {}", log.display()))?;
    let mut child = Command::new(binary)
        .arg("--state-dir").arg(&state)
        .arg("--listen").arg(listen.to_string())
        .arg("--segments").arg(segments.1)
        .args(["--log-level", "6"])
        .args(announce.iter().flat_map(|socket| [std::ffi::OsStr::new("--announce"), socket.as_os_str()]))
        .args(metrics.iter().flat_map(|addr| ["--metrics".to_owned(), addr.to_string()]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("ecconfigd's standard output")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = match tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await {
        Ok(Ok(Some(line))) => line,
        _ => bail!("ecconfigd did not start; see {}", log.display()),
    };
    // The rest of its standard output is not used; keep draining it so it never blocks.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let fingerprint = line.split(" key ").nth(1).context("ecconfigd's listening line has no key")?.trim().to_owned();
    let password = read_password_file(&admin_file)?;
    let conn = Connection { credentials: Credentials { user: "admin".into(), password }, timeout: Duration::from_secs(30) };
    let (segments, _) = segments;
    for (index, sc) in segments.subclusters.iter().enumerate() {
        let root = working_copy(dir, index, &sc.name);
        if !root.exists() {
            let opts = BootstrapOptions {
                server: Endpoint { host: listen.ip().to_string(), port: listen.port() },
                clustername: sc.name.clone(),
                node: None,
                wc: root.clone(),
                trust: TrustChoice::Fingerprint(fingerprint.clone()),
                password_file: Some(admin_file.clone()),
            };
            wc::bootstrap(&opts, &conn).await.with_context(|| format!("making the working copy {}", root.display()))?;
        } else {
            wc::pull(&root, &conn, Resolve::Refuse).await.with_context(|| format!("updating {}", root.display()))?;
        }
        if WorkingCopy::open(&root)?.meta().bases.get(&sc.name) == Some(&0) {
            let default = match config {
                Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
                None => format!("# default configuration of subcluster {}\n", sc.name).into_bytes(),
            };
            std::fs::write(root.join("default/ecelerity.conf"), default).context("seeding default/ecelerity.conf")?;
            wc::commit(&root, &conn, "initial configuration (eccluster local up)", None)
                .await
                .with_context(|| format!("committing the initial configuration of {}", sc.name))?;
        }
    }
    Ok(LocalRepo { child, addr: listen, log, fingerprint })
}

/// Writes the `cluster.boot` of node `name` of subcluster `subcluster` (in `DIR/boot/`): it
/// follows ecconfigd at `repo` (trusting `fingerprint`) as `ecuser`, with its working copy in `DIR/wc/NAME`.
pub fn write_boot(dir: &Path, repo: SocketAddr, fingerprint: &str, name: &str, subcluster: &str) -> Result<PathBuf> {
    let boot_dir = dir.join("boot");
    std::fs::create_dir_all(&boot_dir).with_context(|| format!("creating {}", boot_dir.display()))?;
    let path = boot_dir.join(format!("{name}.boot"));
    let text = format!(
        "# cluster.boot of {name}, written by eccluster local up\n\
         cluster_name={subcluster}\n\
         repo={addr}\n\
         autoupdate=true\n\
         reload_config_on_update=true\n\
         wc={wc}\n\
         username=ecuser\n\
         password_file={password}\n\
         fingerprint={fingerprint}\n\
         poll_interval=60\n",
        addr = repo,
        wc = dir.join("wc").join(name).display(),
        password = dir.join("ecuser.password").display(),
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
