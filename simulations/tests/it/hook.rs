//! The hook for cores beside membership: a small test core plugged in through
//! `CoreFactory` gets its datagrams (by envelope kind), its timers and its node's cluster
//! events, and its observations are checked by the ordered-operations and DuraVIP
//! invariants. (A test fixture for the plumbing, not a model of either real core.)

use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use eccluster_proto::membership::ClusterEvent;
use eccluster_simulations::node::{CoreFactory, CoreOutput, NodeCore, Observation};
use eccluster_simulations::sim::{Finished, SimOptions, Simulation};
use eccluster_simulations::topology::Host;
use eccluster_simulations::world::Channel;
use eccluster_simulations::Scenario;

const KIND: u8 = 0x7e;

/// Every second, sends a numbered message to `peer` (if any); applies each received number
/// as an operation id (backwards when `backwards`, which the order invariant must catch).
struct Ticker {
    peer: Option<String>,
    next: u64,
    backwards: bool,
    vip: Option<IpAddr>,
    started: bool,
    out: VecDeque<CoreOutput>,
}

impl NodeCore for Ticker {
    fn name(&self) -> &'static str {
        "ticker"
    }
    fn accepts(&self, kind: u8) -> bool {
        kind == KIND
    }
    fn handle_datagram(&mut self, _now: Instant, _from: &str, payload: &[u8]) -> Result<(), String> {
        let bytes: [u8; 8] = payload.get(2..10).and_then(|b| b.try_into().ok()).ok_or("short")?;
        let n = u64::from_le_bytes(bytes);
        let seq = if self.backwards { 1_000 - n } else { n };
        self.out.push_back(CoreOutput::Observe(Observation::Applied { epoch: 1, seq }));
        Ok(())
    }
    fn handle_timer(&mut self, _now: Instant, _token: u64) {
        let Some(peer) = self.peer.clone() else { return };
        self.next += 1;
        let mut payload = vec![1, KIND];
        payload.extend_from_slice(&self.next.to_le_bytes());
        self.out.push_back(CoreOutput::Send { to: peer, channel: Channel::Stream, payload: Bytes::from(payload) });
        self.out.push_back(CoreOutput::SetTimer { after: Duration::from_secs(1), token: 0 });
    }
    fn handle_cluster_event(&mut self, _now: Instant, event: &ClusterEvent) {
        if *event == ClusterEvent::Joined && !self.started {
            self.started = true;
            self.out.push_back(CoreOutput::SetTimer { after: Duration::from_millis(100), token: 0 });
            if let Some(vip) = self.vip {
                self.out.push_back(CoreOutput::Observe(Observation::Holds(vip)));
            }
        }
    }
    fn poll_output(&mut self) -> Option<CoreOutput> {
        self.out.pop_front()
    }
}

struct Tickers {
    backwards: bool,
    vip_holders: Vec<&'static str>,
}

impl CoreFactory for Tickers {
    fn cores(&self, host: &Host, _incarnation: u64, _seed: u64) -> Vec<Box<dyn NodeCore>> {
        let peer = (host.name == "east1").then(|| "mgr".to_string());
        let vip = self.vip_holders.contains(&host.name.as_str()).then(|| "10.99.0.1".parse().expect("ip"));
        vec![Box::new(Ticker { peer, next: 0, backwards: self.backwards, vip, started: false, out: VecDeque::new() })]
    }
}

fn run(factory: Tickers) -> Finished {
    let text = "duration = \"30s\"\n[topology]\nnodes = 6\n[network]\nloss = 0.2\n";
    let scenario = Scenario::parse(Path::new("hook.toml"), text).expect("scenario");
    let options = SimOptions { scenario, seed: 9, nodes: None, trace_text: None, progress: false, cores: Some(Box::new(factory)) };
    Simulation::new(options).expect("simulation").run()
}

#[test]
fn plugged_in_cores_get_messages_timers_and_events_over_lossless_streams() {
    let f = run(Tickers { backwards: false, vip_holders: vec!["east2"] });
    // Streams are not lost even at 20 % loss: east1 ticks to mgr about 29 times.
    assert!((27..=30).contains(&f.ops_applied), "applied {}", f.ops_applied);
    assert!(f.violations.iter().all(|v| v.invariant != "ops-order"), "{:?}", f.violations);
    assert!(f.violations.is_empty(), "one holder is fine: {:?}", f.violations);
}

#[test]
fn operations_applied_out_of_order_are_caught() {
    let f = run(Tickers { backwards: true, vip_holders: vec![] });
    let v = f.violations.iter().find(|v| v.invariant == "ops-order").expect("order violation");
    assert!(v.message.contains("out of id order"), "{}", v.message);
    assert!(v.event.contains("datagram"), "{}", v.event);
}

#[test]
fn two_reachable_holders_of_one_address_are_caught_after_settling() {
    let f = run(Tickers { backwards: false, vip_holders: vec!["east2", "west1"] });
    let v = f.violations.iter().find(|v| v.invariant == "one-owner-per-address").expect("ownership violation");
    assert!(v.message.contains("10.99.0.1 held by east2, west1"), "{}", v.message);
    assert!(v.at.as_duration() >= Duration::from_secs(10), "only after settling: {}", v.at);
}
