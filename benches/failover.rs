//! Address failover on real interfaces, measured from a client in its own network namespace
//! that connects over TCP to a service address every few milliseconds and reads which node
//! answered: eccluster's DuraVIP (kill -9 of the owner → the address answers from a survivor;
//! a planned `broadcast cluster duravip move` → it answers from the new owner) beside
//! keepalived failing a VRRP address over in the same topology, in the same run.
//!
//! Run as root (network namespaces): `cargo bench --bench failover` (FAILOVER_ROUNDS=N, default
//! 5). keepalived comes from Debian's package (`apt-get install keepalived`); without it only
//! eccluster's figures are printed.

#[path = "../tests/it/netns.rs"]
#[allow(dead_code)]
mod netns;
#[path = "../tests/it/support.rs"]
#[allow(dead_code)]
mod support;

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netns::{who_answers, Lab};
use support::{converged, eventually, Cluster};

const PORT: u16 = 2525;
const NODES: [&str; 3] = ["n1", "n2", "n3"];

/// How long after `start` a connection to `addr` from the client first answers with a name
/// that `done` accepts (probing every 10 ms with 50 ms connect timeouts).
fn time_until(lab: &Lab, addr: IpAddr, start: Instant, limit: Duration, done: impl Fn(&str) -> bool + Send + 'static) -> Option<Duration> {
    lab.run_in("client", move || {
        while start.elapsed() < limit {
            if let Some(name) = who_answers(SocketAddr::new(addr, PORT), Duration::from_millis(50)) {
                if done(&name) {
                    return Some(start.elapsed());
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    })
}

fn who(lab: &Lab, addr: IpAddr) -> Option<String> {
    lab.run_in("client", move || who_answers(SocketAddr::new(addr, PORT), Duration::from_millis(300)))
}

fn summary(label: &str, samples: &mut [Duration]) {
    samples.sort_unstable();
    if samples.is_empty() {
        println!("{label:<44} no samples");
        return;
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:<44} n={:<3} min {:>7.0} ms   p50 {:>7.0} ms   max {:>7.0} ms",
        samples.len(),
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1])
    );
}

fn segments(lab: &Lab) -> String {
    let mut s = format!("# Subcluster: dc = mgr\nSpread_Segment {}:4803 {{\n", lab.addr("mgr").to_string().replace(".0.10", ".0.255"));
    for h in ["mgr", "n1", "n2", "n3"] {
        s.push_str(&format!("    {h} {}\n", lab.addr(h)));
    }
    s.push_str("}\n");
    s
}

async fn duravip_rounds(rounds: usize) -> (Vec<Duration>, Vec<Duration>) {
    let lab = Lab::new("bd", 71, &["mgr", "n1", "n2", "n3", "client"]);
    let vip = IpAddr::V4(lab.service_addr(1));
    let net = lab.addr("mgr").to_string().replace(".0.10", ".0.0");
    let mut c = Cluster::new(&segments(&lab));
    for h in ["mgr", "n1", "n2", "n3"] {
        c.netns.insert(h.to_owned(), lab.ns(h));
    }
    c.set_node_config(&format!(
        "cluster {{\n  duravip_actuator = \"netlink\"\n  Topology \"{net}/24\" {{ interface = \"eth0\" }}\n}}\n\
         Binding \"vip\" {{\n  Enable_Duravip = true\n  Bind_Address = \"{vip}\"\n}}\n"
    ));
    c.start_all();
    converged(&c, 4, Duration::from_secs(30)).await;
    let _services: Vec<_> = NODES.iter().map(|n| lab.name_service(n, PORT)).collect();
    let (mut kills, mut moves) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let owner = eventually("the address answering", Duration::from_secs(30), || async { who(&lab, vip) }).await;
        // kill -9 of the owner.
        let killed = Instant::now();
        c.kill9(&owner);
        let dead = owner.clone();
        match time_until(&lab, vip, killed, Duration::from_secs(20), move |n| n != dead) {
            Some(t) => kills.push(t),
            None => eprintln!("round {round}: no failover within 20 s"),
        }
        c.start(&owner);
        converged(&c, 4, Duration::from_secs(30)).await;
        // Let the view settle and the address come to rest before the move.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let current = eventually("the address answering", Duration::from_secs(30), || async { who(&lab, vip) }).await;
        let target = NODES.iter().find(|n| **n != current).expect("another node").to_string();
        let start = Instant::now();
        let reply = c.ask("mgr", &format!("broadcast cluster duravip move {vip} to {target}")).await.expect("move");
        assert!(reply.is_ok(), "{}", reply.body);
        let wanted = target.clone();
        match time_until(&lab, vip, start, Duration::from_secs(10), move |n| n == wanted) {
            Some(t) => moves.push(t),
            None => eprintln!("round {round}: the move did not take effect within 10 s"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    (kills, moves)
}

fn keepalived_conf(host: &str, priority: u8, vip: IpAddr) -> String {
    format!(
        "global_defs {{\n  router_id {host}\n  script_user root\n  enable_script_security\n}}\n\
         vrrp_instance vip {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {priority}\n  \
         advert_int 1\n  virtual_ipaddress {{\n    {vip}/32 dev eth0\n  }}\n}}\n"
    )
}

fn keepalived(lab: &Lab, dir: &std::path::Path, host: &str, priority: u8, vip: IpAddr) -> Child {
    let conf = dir.join(format!("{host}.conf"));
    std::fs::write(&conf, keepalived_conf(host, priority, vip)).expect("write keepalived.conf");
    let pid = |what: &str| dir.join(format!("{host}.{what}.pid"));
    Command::new("ip")
        .args(["netns", "exec", &lab.ns(host), "keepalived", "-n", "-l", "-P", "-f"])
        .arg(&conf)
        .arg("-p")
        .arg(pid("main"))
        .arg("-r")
        .arg(pid("vrrp"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("keepalived starts")
}

/// kill -9 of keepalived on `host` (its main process and its VRRP child).
fn kill_keepalived(dir: &std::path::Path, host: &str, child: &mut Child) {
    for what in ["vrrp", "main"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(format!("{host}.{what}.pid"))) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                if let Err(e) = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL) {
                    eprintln!("kill -9 {pid}: {e}");
                }
            }
        }
    }
    if let Err(e) = child.kill() {
        eprintln!("kill -9 keepalived on {host}: {e}");
    }
    if let Err(e) = child.wait() {
        eprintln!("reaping keepalived on {host}: {e}");
    }
}

fn keepalived_rounds(rounds: usize) -> Vec<Duration> {
    let lab = Lab::new("bk", 72, &["n1", "n2", "n3", "client"]);
    let vip = IpAddr::V4(lab.service_addr(1));
    let dir = tempfile::tempdir().expect("tempdir");
    let priorities = [150u8, 100, 50];
    let mut children: Vec<Child> =
        NODES.iter().zip(priorities).map(|(h, p)| keepalived(&lab, dir.path(), h, p, vip)).collect();
    let _services: Vec<_> = NODES.iter().map(|n| lab.name_service(n, PORT)).collect();
    let mut kills = Vec::new();
    for round in 0..rounds {
        let Some(_) = time_until(&lab, vip, Instant::now(), Duration::from_secs(30), |_| true) else {
            eprintln!("keepalived round {round}: the address never answered");
            break;
        };
        let Some(master) = who(&lab, vip) else { continue };
        let i = NODES.iter().position(|n| *n == master).expect("a node");
        let killed = Instant::now();
        kill_keepalived(dir.path(), &master, &mut children[i]);
        let dead = master.clone();
        match time_until(&lab, vip, killed, Duration::from_secs(20), move |n| n != dead) {
            Some(t) => kills.push(t),
            None => eprintln!("keepalived round {round}: no failover within 20 s"),
        }
        // keepalived leaves the address on a killed master: remove it, then restart it.
        let cidr = format!("{vip}/32");
        let _removed = Command::new("ip").args(["-n", &lab.ns(&master), "addr", "del", &cidr, "dev", "eth0"]).status();
        children[i] = keepalived(&lab, dir.path(), &master, priorities[i], vip);
        std::thread::sleep(Duration::from_secs(5));
    }
    for (h, c) in NODES.iter().zip(children.iter_mut()) {
        kill_keepalived(dir.path(), h, c);
    }
    kills
}

fn main() {
    let rounds: usize = std::env::var("FAILOVER_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    println!("address failover measured from a client, {rounds} rounds each, 3 nodes on one bridge");
    let (mut kills, mut moves) = runtime.block_on(duravip_rounds(rounds));
    summary("eccluster DuraVIP: kill -9 owner -> answers", &mut kills);
    summary("eccluster DuraVIP: planned move -> answers", &mut moves);
    if Command::new("keepalived").arg("--version").output().is_ok() {
        let mut k = keepalived_rounds(rounds);
        summary("keepalived VRRP: kill -9 master -> answers", &mut k);
    } else {
        println!("keepalived is not installed (apt-get install keepalived): no comparison");
    }
}
