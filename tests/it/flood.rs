//! The QUIC port under attack: floods of Initials against a running `ecnode`, sent over plain
//! UDP sockets from addresses on loopback, as anyone who can reach the port could.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::initials::{garbage_initial, Hello};
use crate::support::{converged, eventually, topology, Cluster};

/// The member's resident set in KiB: now (`VmRSS`) and its peak so far (`VmHWM`).
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).expect("field in /proc status");
        line.split_whitespace().nth(1).expect("value").parse().expect("KiB")
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Sends `packets` from `sockets` in turn, pacing to about 20,000 a second so that what is
/// measured is the member, not the kernel's receive buffer dropping the excess.
fn send_paced(sockets: &[UdpSocket], to: SocketAddr, packets: &[Vec<u8>]) {
    for (i, packet) in packets.iter().enumerate() {
        sockets[i % sockets.len()].send_to(packet, to).expect("send Initial");
        if i % 200 == 199 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn sockets(ip: &str, count: usize) -> Vec<UdpSocket> {
    (0..count).map(|_| UdpSocket::bind((ip, 0)).expect("bind flood socket")).collect()
}

/// What the probe found: 12,500 Initials with a genuine ClientHello took a node from 9 MB to
/// 1.1 GB. Each now costs a lookup; the node stays small while a member joins and the cluster
/// works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initial_flood_leaves_memory_bounded_and_members_joining() {
    let mut c = Cluster::new(&topology(87, 4803, &[("east", 2)]));
    c.start("mgr");
    c.start("east1");
    converged(&c, 2, Duration::from_secs(30)).await;
    let pid = c.procs["east1"].child.id();
    let (idle, _) = rss_kib(pid);

    let target: SocketAddr = "127.87.1.11:4803".parse().expect("address");
    let hello = Hello::new().expect("client");
    let packets: Vec<Vec<u8>> = (0..12_500).map(|_| hello.initial(target, "east1").expect("Initial")).collect();
    let garbage: Vec<Vec<u8>> = (0..2_500u64)
        .map(|i| garbage_initial(&i.to_be_bytes(), &[7; 8], &[0xAB; 300]).expect("garbage Initial"))
        .collect();
    let flood = std::thread::spawn(move || {
        send_paced(&sockets("127.87.1.200", 250), target, &packets);
        send_paced(&sockets("127.87.1.201", 50), target, &garbage);
    });
    // A member joins during the flood.
    c.start("east2");
    tokio::task::spawn_blocking(move || flood.join().expect("flood thread")).await.expect("join");
    converged(&c, 3, Duration::from_secs(30)).await;

    // Bound: the idle size plus 32 MiB (README, "The QUIC port"); the old transport kept
    // ~88 KB per Initial for the idle timeout, a gigabyte for this flood.
    let (now, peak) = rss_kib(pid);
    assert!(peak <= idle + 32 * 1024, "RSS peaked at {peak} KiB from {idle} KiB idle (now {now} KiB)");

    // The flood was received and turned away (and said so, naming the source).
    let log = eventually("east1 to summarise the flood", Duration::from_secs(30), || async {
        let log = c.log_text("east1");
        log.contains("Initials from 127.87.1.200 in").then_some(log)
    })
    .await;
    assert!(!log.contains("handshake failed"), "no flood Initial reached TLS:\n{log}");

    // The cluster still works: an operation reaches both nodes and both answer.
    let sent = c.ask("mgr", "json broadcast version").await.expect("broadcast");
    let sent: serde_json::Value = serde_json::from_str(&sent.body).expect("json");
    assert_eq!(sent["count"], 2, "{sent}");
    eventually("both nodes to answer the broadcast", Duration::from_secs(15), || async {
        let reply = c.ask("mgr", "json retrieve version").await.ok()?;
        let rows: Vec<serde_json::Value> = serde_json::from_str(&reply.body).ok()?;
        (rows.len() == 2 && rows.iter().all(|r| r["status"] == "ok")).then_some(())
    })
    .await;
}

/// Garbage where the ClientHello should be, 5,000 times from one address: a handful of lines,
/// each naming the source, instead of one unattributed warning per packet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_initials_give_a_few_lines_naming_their_source() {
    let mut c = Cluster::new(&topology(88, 4803, &[("east", 1)]));
    c.set_node_config("ECCluster_Listener {\n  Log_Interval = 1\n}\n");
    c.start("mgr");
    c.start("east1");
    converged(&c, 2, Duration::from_secs(30)).await;
    let before = c.log_text("east1").lines().count();

    let target: SocketAddr = "127.88.1.11:4803".parse().expect("address");
    let packets: Vec<Vec<u8>> = (0..5_000u64)
        .map(|i| garbage_initial(&i.to_be_bytes(), &[9; 8], &[0x5A; 200]).expect("garbage Initial"))
        .collect();
    let flood = std::thread::spawn(move || {
        send_paced(&sockets("127.88.1.201", 40), target, &packets);
        // Two more from another source after the flood: their summary comes in the same
        // interval as the last of the flood's, or later, so once it is in the log so is the
        // flood's account.
        let marker: Vec<Vec<u8>> =
            (1..=2u8).map(|i| garbage_initial(&[i; 8], &[i; 8], &[0x5A; 200]).expect("marker")).collect();
        send_paced(&sockets("127.88.1.202", 1), target, &marker);
    });
    tokio::task::spawn_blocking(move || flood.join().expect("flood thread")).await.expect("join");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let log = loop {
        let log = c.log_text("east1");
        if log.contains("ignored 2 Initials from 127.88.1.202 in") {
            break log;
        }
        assert!(tokio::time::Instant::now() < deadline, "no summary of the marker's Initials in 30 s:\n{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let new: Vec<&str> = log.lines().skip(before).collect();
    let naming: Vec<&&str> = new.iter().filter(|l| l.contains("127.88.1.201")).collect();
    assert!(!naming.is_empty() && naming.len() <= 4, "lines naming the source:\n{naming:#?}");
    assert!(naming[0].contains("WARN") && naming[0].contains("from 127.88.1.201:"), "{}", naming[0]);
    let counted: u64 = naming
        .iter()
        .filter_map(|l| l.split_once(" Initials from 127.88.1.201 in")?.0.rsplit_once("ignored ").map(|(_, n)| n))
        .map(|n| n.replace(',', "").parse::<u64>().expect("count"))
        .sum();
    assert!((1..=5_000).contains(&counted), "counted {counted} of 5,000:\n{naming:#?}");
    let warnings = new.iter().filter(|l| l.contains("WARN")).count();
    assert!(warnings <= 8, "{warnings} warnings for 5,000 garbage Initials:\n{}", new.join("\n"));
}

/// Someone who holds a member's address (the member is down) can answer Retries, so its
/// attempts are validated; it then never finishes a handshake. The node runs at most
/// `Concurrency` of them, each for at most `Handshake_Timeout`, refuses the rest, holds the
/// address to its rate, says so naming it, and the member joins once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validated_attempts_that_never_finish_are_capped_refused_and_timed_out() {
    let mut c = Cluster::new(&topology(89, 4803, &[("east", 2)]));
    c.set_node_config(
        "ECCluster_Listener {\n  Concurrency = 4\n  Handshake_Timeout = 1\n  Initial_Rate = 20\n  Initial_Burst = 100\n  Log_Interval = 1\n}\n",
    );
    c.start("mgr");
    c.start("east1");
    converged(&c, 2, Duration::from_secs(30)).await;

    let target: SocketAddr = "127.89.1.11:4803".parse().expect("address");
    let hello = Hello::new().expect("client");
    let attack = std::thread::spawn(move || {
        let socket = UdpSocket::bind("127.89.1.12:4803").expect("east2's address");
        socket.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
        let mut dialler = hello.dialler();
        let (mut retries, mut buf) = (0, [0u8; 2048]);
        // 40 attempts, then 100 more a second later; Retries answered throughout.
        for (round, attempts) in [40, 100].into_iter().enumerate() {
            for _ in 0..attempts {
                let initial = dialler.start(target, "east1").expect("Initial");
                socket.send_to(&initial, target).expect("send");
            }
            let until = std::time::Instant::now() + Duration::from_secs(1 + round as u64);
            while std::time::Instant::now() < until {
                if let Ok((len, from)) = socket.recv_from(&mut buf) {
                    if let Some(echo) = dialler.handle_retry(from, &buf[..len]) {
                        socket.send_to(&echo, target).expect("send");
                        retries += 1;
                    }
                }
            }
        }
        retries
    });
    let retries = tokio::task::spawn_blocking(move || attack.join().expect("attack thread")).await.expect("join");
    // The first 40 attempts and their echoes fit the burst of 100; of the next 100 only what
    // the bucket regained (20 a second) gets a Retry.
    assert!((40..=120).contains(&retries), "{retries} Retries answered");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let wanted = [
        "(too many handshakes in progress)",
        "(rate limit)",
        "handshake timed out",
    ];
    loop {
        let log = c.log_text("east1");
        let naming: Vec<&str> = log.lines().filter(|l| l.contains("127.89.1.12")).collect();
        if wanted.iter().all(|w| naming.iter().any(|l| l.contains(w))) {
            assert!(naming.len() <= 20, "{} lines name the address:\n{}", naming.len(), naming.join("\n"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "wanted {wanted:?} naming 127.89.1.12:\n{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    c.start("east2");
    converged(&c, 3, Duration::from_secs(30)).await;
}
