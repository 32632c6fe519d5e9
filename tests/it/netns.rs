//! A lab of network namespaces for tests that need real addresses on real interfaces: a
//! switch namespace with a bridge, and one namespace per host joined to the bridge by a veth
//! pair (`eth0` inside the host, 10.NET.0.HOST/24). Links can be taken down and up from the
//! switch side (a cut cable). Everything is removed when the lab is dropped.
//!
//! Code that must run inside a host's namespace (a tiny TCP service, a client) runs on a
//! thread of its own that enters the namespace with setns(2): sockets it creates live there.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sched::{setns, CloneFlags};

/// Runs `ip` with `args`, failing the test with its stderr if it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("iproute2's ip is installed (apt-get install iproute2)");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// The lab.
pub struct Lab {
    prefix: String,
    net: u8,
    hosts: Vec<String>,
    /// Last octet of each host's address, in the order of `hosts`.
    octets: Vec<u8>,
}

impl Lab {
    /// Namespaces for `hosts` on 10.`net`.0.0/24 (host i gets .10+i), tagged `tag` so that
    /// parallel tests never share one.
    pub fn new(tag: &str, net: u8, hosts: &[&str]) -> Lab {
        let numbered: Vec<(&str, u8)> = hosts.iter().enumerate().map(|(i, h)| (*h, 10 + i as u8)).collect();
        Lab::with_octets(tag, net, &numbered)
    }

    /// Namespaces for `hosts` on 10.`net`.0.0/24, each host at 10.`net`.0.OCTET as given (so
    /// that hosts can sit in different segments of the /24).
    pub fn with_octets(tag: &str, net: u8, hosts: &[(&str, u8)]) -> Lab {
        let prefix = format!("ec{}{}", tag, std::process::id() % 100_000);
        let lab = Lab {
            prefix,
            net,
            hosts: hosts.iter().map(|(h, _)| h.to_string()).collect(),
            octets: hosts.iter().map(|(_, o)| *o).collect(),
        };
        let hosts: Vec<&str> = hosts.iter().map(|(h, _)| *h).collect();
        let sw = lab.switch();
        ip(&["netns", "add", &sw]);
        ip(&["-n", &sw, "link", "set", "lo", "up"]);
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        for (i, host) in hosts.iter().enumerate() {
            let ns = lab.ns(host);
            ip(&["netns", "add", &ns]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            let port = format!("p{i}");
            ip(&["-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"]);
            let cidr = format!("{}/24", lab.addr(host));
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", "eth0"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        lab
    }

    fn switch(&self) -> String {
        format!("{}sw", self.prefix)
    }

    /// The namespace of `host`.
    pub fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    fn index(&self, host: &str) -> usize {
        self.hosts.iter().position(|h| h == host).expect("a host of the lab")
    }

    /// The address of `host` on the lab's network.
    pub fn addr(&self, host: &str) -> Ipv4Addr {
        Ipv4Addr::new(10, self.net, 0, self.octets[self.index(host)])
    }

    /// An address of the lab's network for services (10.NET.0.100 + `i`).
    pub fn service_addr(&self, i: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.net, 0, 100 + i)
    }

    /// Takes `host`'s cable out (its switch port down) or puts it back.
    pub fn link(&self, host: &str, up: bool) {
        let port = format!("p{}", self.index(host));
        ip(&["-n", &self.switch(), "link", "set", &port, if up { "up" } else { "down" }]);
    }

    /// The IPv4 addresses configured on `host`'s eth0 (read with `ip -j`).
    pub fn addresses(&self, host: &str) -> Vec<IpAddr> {
        addresses_in(&self.ns(host))
    }

    /// The valid lifetime the kernel reports for `addr` on `host`, in seconds (`None`: not
    /// configured; `u64::MAX`: forever).
    pub fn valid_lifetime(&self, host: &str, addr: IpAddr) -> Option<u64> {
        let out = Command::new("ip").args(["-n", &self.ns(host), "-j", "addr", "show", "dev", "eth0"]).output().expect("ip");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let info = v.as_array()?.iter().flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default()).find(|a| {
            a["local"].as_str().and_then(|s| s.parse::<IpAddr>().ok()) == Some(addr)
        })?;
        info["valid_life_time"].as_u64()
    }

    /// Runs `f` on a thread inside `host`'s namespace and returns its result.
    pub fn run_in<T: Send + 'static>(&self, host: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.ns(host));
        std::thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
            setns(&file, CloneFlags::CLONE_NEWNET).expect("entering the namespace");
            f()
        })
        .join()
        .expect("the thread in the namespace")
    }

    /// A TCP service in `host`'s namespace on every address, port `port`, that answers each
    /// connection with `host`'s name. It stops when the returned guard is dropped.
    pub fn name_service(&self, host: &str, port: u16) -> Service {
        let path = format!("/var/run/netns/{}", self.ns(host));
        let name = host.to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
            setns(&file, CloneFlags::CLONE_NEWNET).expect("entering the namespace");
            let listener = TcpListener::bind(("0.0.0.0", port)).expect("binding the name service");
            listener.set_nonblocking(true).expect("non-blocking");
            ready_tx.send(()).expect("ready");
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        if let Err(e) = conn.write_all(name.as_bytes()) {
                            eprintln!("name service of {name}: {e}");
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        ready_rx.recv().expect("the name service started");
        Service { stop }
    }
}

/// The IPv4 addresses configured on eth0 in namespace `ns` (read with `ip -j`).
pub fn addresses_in(ns: &str) -> Vec<IpAddr> {
    let out = Command::new("ip").args(["-n", ns, "-j", "addr", "show", "dev", "eth0"]).output().expect("ip");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|link| link["addr_info"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["local"].as_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// A running name service; stops on drop.
pub struct Service {
    stop: Arc<AtomicBool>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One connection to `addr` from the current thread's namespace: the name the service
/// answered, or `None` if nobody did within `timeout`.
pub fn who_answers(addr: SocketAddr, timeout: Duration) -> Option<String> {
    let mut conn = TcpStream::connect_timeout(&addr, timeout).ok()?;
    conn.set_read_timeout(Some(timeout)).ok()?;
    let mut name = String::new();
    conn.read_to_string(&mut name).ok()?;
    (!name.is_empty()).then_some(name)
}

impl Drop for Lab {
    fn drop(&mut self) {
        for host in &self.hosts {
            let ns = self.ns(host);
            if let Err(e) = Command::new("ip").args(["netns", "del", &ns]).status() {
                eprintln!("removing namespace {ns}: {e}");
            }
        }
        let sw = self.switch();
        if let Err(e) = Command::new("ip").args(["netns", "del", &sw]).status() {
            eprintln!("removing namespace {sw}: {e}");
        }
    }
}
