//! Network-namespace harness for the actuator tests: two namespaces joined by a veth pair,
//! removed when dropped; running async code inside namespace A on its own thread; reading
//! addresses and neighbours with `ip -j`. Needs root and iproute2.

use std::fs::File;
use std::future::Future;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use serde_json::Value;

/// The interface in namespace A, where the actuator runs.
pub const A_IF: &str = "eca0";
/// Its peer in namespace B.
pub const B_IF: &str = "ecb0";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Fails with a clear message when iproute2 is missing.
fn require_ip() {
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => {}
        other => {
            panic!("these tests need iproute2's `ip` in PATH and root (apt-get install iproute2): {other:?}")
        }
    }
}

/// Runs `ip ARGS`, panicking with its stderr if it fails; returns stdout.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap_or_else(|e| panic!("running ip {args:?}: {e}"));
    assert!(out.status.success(), "ip {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ip ARGS` without blocking the runtime; returns stdout.
pub async fn ip_async(args: &[&str]) -> String {
    let out = tokio::process::Command::new("ip")
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("running ip {args:?}: {e}"));
    assert!(out.status.success(), "ip {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    fn new(role: &str) -> Netns {
        let name = format!("eca-{}-{}-{role}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        ip(&["netns", "add", &name]);
        Netns { name }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        match Command::new("ip").args(["netns", "del", &self.name]).status() {
            Ok(status) if status.success() => {}
            other => eprintln!("removing network namespace {}: {other:?}", self.name),
        }
    }
}

/// Namespaces A and B joined by a veth pair: A has 10.77.0.1/24 and fd77::1/64 on
/// [`A_IF`], B has 10.77.0.2/24 and fd77::2/64 on [`B_IF`].
pub struct Pair {
    pub a: Netns,
    pub b: Netns,
    /// The Ethernet address of [`A_IF`], as `ip` prints it.
    pub a_mac: String,
}

impl Pair {
    pub fn new() -> Pair {
        require_ip();
        let a = Netns::new("a");
        let b = Netns::new("b");
        ip(&["-n", &a.name, "link", "add", A_IF, "type", "veth", "peer", "name", B_IF, "netns", &b.name]);
        for (ns, dev, v4, v6) in
            [(&a, A_IF, "10.77.0.1/24", "fd77::1/64"), (&b, B_IF, "10.77.0.2/24", "fd77::2/64")]
        {
            ip(&["-n", &ns.name, "addr", "add", v4, "dev", dev]);
            ip(&["-n", &ns.name, "addr", "add", v6, "dev", dev, "nodad"]);
            ip(&["-n", &ns.name, "link", "set", dev, "up"]);
        }
        // Frames sent before the kernel marks the link operationally up are dropped: wait for
        // both ends (link watch may take a second when both ends have the same index).
        let deadline = Instant::now() + Duration::from_secs(10);
        for (ns, dev) in [(&a, A_IF), (&b, B_IF)] {
            while link(&ns.name, dev)["operstate"] != "UP" {
                assert!(Instant::now() < deadline, "{dev} in {} not up within 10 s", ns.name);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let a_mac = link(&a.name, A_IF)["address"].as_str().expect("veth has an ethernet address").to_owned();
        Pair { a, b, a_mac }
    }

    /// Runs `body` on a fresh thread moved into namespace A, on a current-thread runtime
    /// built there: sockets it opens (netlink, raw, the worker's) live in A.
    pub fn in_a<F, Fut>(&self, body: F) -> Fut::Output
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future,
        Fut::Output: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.a.name);
        std::thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
            setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("entering {path}: {e}"));
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(body())
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

/// `ip -j link show dev DEV` in namespace `ns`.
fn link(ns: &str, dev: &str) -> Value {
    let links: Value =
        serde_json::from_str(&ip(&["-n", ns, "-j", "link", "show", "dev", dev])).expect("ip -j link");
    links[0].clone()
}

/// The `addr_info` entry of `addr` in namespace `ns`, if it is configured there.
pub async fn addr_info(ns: &str, addr: &str) -> Option<Value> {
    let links: Value =
        serde_json::from_str(&ip_async(&["-n", ns, "-j", "addr", "show"]).await).expect("ip -j addr");
    links
        .as_array()?
        .iter()
        .flat_map(|link| link["addr_info"].as_array().cloned().unwrap_or_default())
        .find(|info| info["local"] == addr)
}

/// The link-layer address namespace `ns` has for neighbour `addr` on `dev`, if any.
pub async fn neighbour(ns: &str, dev: &str, addr: &str) -> Option<String> {
    let out = ip_async(&["-n", ns, "-j", "neigh", "show", addr, "dev", dev]).await;
    let entries: Value = serde_json::from_str(&out).expect("ip -j neigh");
    entries.as_array()?.iter().find_map(|entry| entry["lladdr"].as_str().map(str::to_owned))
}

/// Polls `probe` every 100 ms until it holds; panics naming `what` after `within`.
/// Returns when it first held.
pub async fn wait_for<F, Fut>(what: &str, within: Duration, mut probe: F) -> Instant
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if probe().await {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
