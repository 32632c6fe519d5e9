//! HashiCorp Serf side of the side-by-side membership benchmark.
//!
//! Runs real `serf agent` processes (Debian package `serf`) on loopback addresses with Serf's
//! default LAN timing and reads every agent's membership view through Serf's msgpack RPC
//! protocol, spoken directly over TCP (no `serf members` child processes, which would load
//! the machine while it is being measured).
//!
//! RPC framing, as Serf documents it: a request is a msgpack map `{"Command": .., "Seq": ..}`,
//! optionally followed by a body map; a response is a map `{"Seq": .., "Error": ..}`, followed by
//! a body for commands that return one (`members`: `{"Members": [{"Name", "Status", ..}, ..]}`,
//! `handshake`: none). The first command on a connection must be `handshake` with body
//! `{"Version": 1}`. Values are streamed back to back, so a reader must buffer and decode only
//! complete values.
//!
//! Queries ([`SerfCluster::query`]): the `query` command's body is `{"FilterNodes": [..],
//! "FilterTags": {..}, "RequestAck": bool, "RelayFactor": u8, "Timeout": ns (Go Duration; 0 =
//! Serf's default), "Name": str, "Payload": bin}`. The agent answers with a bare header and then,
//! on the same Seq, streams records, each a header followed by `{"Type": "ack" | "response" |
//! "done", "From": node, "Payload": bin}`; "done" comes only when the query's timeout expires,
//! however early every node has answered.
//!
//! Query handlers ([`SerfCluster::start_with_query_handler`]), as Serf's agent runs them: for
//! each query whose name matches `-event-handler=query:NAME=SCRIPT`, `/bin/sh -c SCRIPT` with
//! `SERF_EVENT=query`, `SERF_SELF_NAME`, `SERF_SELF_ROLE`, `SERF_TAG_*`, `SERF_QUERY_NAME` and
//! `SERF_QUERY_LTIME` in the environment and the payload (newline appended) on stdin. Its
//! stdout *and* stderr (one buffer, at most 8 KiB kept) become the response, sent only if the
//! script exits 0 and wrote something; Serf drops responses over 1024 bytes
//! (`QueryResponseSizeLimit`).
//!
//! What shapes Serf's query latency (read it before comparing figures): the query is not sent
//! to the members directly but queued as a gossip broadcast, piggybacked on memberlist's gossip
//! (every `GossipInterval` = 200 ms on the LAN profile, to 3 random members, each node
//! retransmitting it a bounded number of times), so reaching every node takes a few gossip
//! rounds; responses go straight back to the originator by UDP, unacknowledged. Queries are
//! never coalesced (the agent's 3 s coalescing applies to member events and to user events sent
//! with `Coalesce`), nor rate-limited, but every agent handles all its events on one goroutine,
//! running each handler script to completion (a fork/exec of `/bin/sh` plus the script) before
//! the next: handler invocations on one agent are serialised, and since Serf hands events over
//! with blocking channel sends, a large enough backlog stalls that agent's message handling.
//! The originating agent answers its own query too. Two consequences for measurements: each
//! node passes a query on at most 4 x ceil(log10(N + 1)) times, so at small N a node now and
//! then never hears of it (measured: ~4-8 % of queries at N = 8 lacked one response, well
//! under 1 % at N = 32), and such a query stays open until its timeout; and queries issued
//! one after another at a fixed cadence phase-lock to the originator's 200 ms gossip ticker
//! (N = 8 median: 204 ms back to back, 103 ms at a fixed 500 ms spacing, 186 ms at random
//! spacing), so space them randomly.
#![allow(dead_code)]

use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rmpv::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

#[path = "serf_rpc.rs"]
mod rpc;
use rpc::*;

/// Serf's gossip (memberlist) port, TCP and UDP; every agent has its own loopback IP.
pub const GOSSIP_PORT: u16 = 7946;
/// Serf's RPC port, on the agent's own IP.
pub const RPC_PORT: u16 = 7373;
/// Upper bound for one RPC exchange (connect + handshake + members).
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `start` waits for the seed agent's RPC listener before giving up.
const SEED_READY_TIMEOUT: Duration = Duration::from_secs(15);
/// A reply larger than this is treated as a protocol error rather than buffered forever.
const MAX_RPC_BUFFER: usize = 16 << 20;
/// How long [`SerfCluster::query`] keeps reading past the query's own timeout before it gives
/// up on the agent's "done" record.
pub const QUERY_GRACE: Duration = Duration::from_secs(1);
/// File name of the handler script [`SerfCluster::start_with_query_handler`] writes into `dir`.
pub const QUERY_HANDLER_SCRIPT: &str = "serf-query-handler.sh";
/// Serf reserves query names with this prefix; its agent refuses them over RPC.
const SERF_INTERNAL_QUERY_PREFIX: &str = "_serf_";
/// Serf's defaults for a query sent with `Timeout` 0: `GossipInterval` (LAN profile) times
/// `QueryTimeoutMult`, times ceil(log10(members + 1)).
const SERF_GOSSIP_INTERVAL: Duration = Duration::from_millis(200);
const SERF_QUERY_TIMEOUT_MULT: u32 = 16;
/// Distinct responders [`SerfCluster::query`] will track before calling the stream hostile.
const MAX_QUERY_RESPONDERS: usize = 1 << 16;
/// The handler script. Serf runs it through `/bin/sh -c`; it drains the payload with a shell
/// builtin (no extra process, and Serf's payload writer never meets a closed pipe) and answers
/// with the node name and the query's Lamport time. Nothing may go to stderr: Serf would send
/// that as part of the response.
const QUERY_HANDLER_BODY: &str = r#"#!/bin/sh
# Serf query handler written by eccluster's membership benchmark (benches/support/serf.rs).
while read -r line; do :; done
printf '%s %s\n' "$SERF_SELF_NAME" "$SERF_QUERY_LTIME"
exit 0
"#;
/// Nesting limit for decoded replies. Serf's deepest is 4 (body, Members, member, Tags); rmpv's
/// default (1024) would let a hostile peer overflow a 2 MiB thread stack in a debug build.
const MAX_MSGPACK_DEPTH: usize = 32;

/// Returns the path of the `serf` binary: the one on `PATH`, else installs the Debian package
/// (`apt-get update -qq`, then `apt-get install -y -qq serf`, non-interactive) and looks again.
/// Blocking; call it before the measurement starts.
pub fn ensure_installed() -> Result<PathBuf> {
    if let Some(path) = find_on_path("serf") {
        return Ok(path);
    }
    let apt = find_on_path("apt-get").ok_or_else(|| {
        anyhow!("`serf` is not on PATH and there is no apt-get to install it: install HashiCorp Serf by hand")
    })?;
    for args in [
        &["update", "-qq"][..],
        &["install", "-y", "-qq", "serf"][..],
    ] {
        let out = Command::new(&apt)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running `apt-get {}`", args.join(" ")))?;
        if !out.status.success() {
            bail!(
                "`serf` is not on PATH and `apt-get {}` failed ({}; root and a reachable Debian mirror are needed): {}",
                args.join(" "),
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr), 1500)
            );
        }
    }
    find_on_path("serf")
        .ok_or_else(|| anyhow!("`apt-get install serf` succeeded but no `serf` binary is on PATH"))
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

fn tail(s: &str, max: usize) -> &str {
    let s = s.trim_end();
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Loopback address of the agent with 0-based index `i` (`s{i+1}`): `127.{net}.{i/250}.{i%250+1}`.
pub fn agent_ip(net: u8, i: usize) -> Result<Ipv4Addr> {
    let hi = u8::try_from(i / 250).map_err(|_| anyhow!("agent index {i} too large"))?;
    // i % 250 + 1 is in 1..=250.
    let lo = u8::try_from(i % 250 + 1).map_err(|_| anyhow!("agent index {i} too large"))?;
    Ok(Ipv4Addr::new(127, net, hi, lo))
}

struct Agent {
    name: String,
    ip: Ipv4Addr,
    pid: u32,
    /// `None` once killed (and reaped).
    child: Option<Child>,
    log: PathBuf,
    rpc: Mutex<Option<RpcConn>>,
}

/// A set of `serf agent` processes; every agent still running is killed (SIGKILL) on drop.
pub struct SerfCluster {
    agents: Vec<Agent>,
    binary: PathBuf,
}

impl SerfCluster {
    /// Starts `n` agents as separate processes: node names `s1..sN`, agent `s{i+1}` (0-based
    /// `i`) binding gossip to `127.{net}.{i/250}.{i%250+1}:7946` and RPC to the same IP on
    /// port 7373; `s2..sN` join `s1` (`-join`). Default LAN timing, `-log-level=info`,
    /// stdout+stderr of agent `sK` to `dir/sK.log`.
    ///
    /// `serf agent -join` exits if the join fails, so `s1` is started first and its RPC
    /// listener (opened after its gossip listener) is awaited, which takes some tens of
    /// milliseconds; the other agents are then spawned back to back. Returns once every
    /// process is spawned, not when the cluster has converged.
    pub async fn start(n: usize, net: u8, dir: &Path) -> Result<SerfCluster> {
        Self::start_inner(n, net, dir, None).await
    }

    /// Like [`start`](Self::start), but every agent also answers queries named `query`: the
    /// function writes the executable script `dir/`[`QUERY_HANDLER_SCRIPT`] and passes each
    /// agent `-event-handler=query:QUERY=SCRIPT`. The script drains the payload and answers
    /// `"{node name} {query Lamport time}\n"` (e.g. `"s3 7\n"`). Use [`query`](Self::query) to ask.
    ///
    /// `query` must be non-empty, must not contain `=`, `,` or control characters (Serf's
    /// handler syntax) and must not start with Serf's reserved `_serf_`.
    pub async fn start_with_query_handler(
        n: usize,
        net: u8,
        dir: &Path,
        query: &str,
    ) -> Result<SerfCluster> {
        check_query_name(query)?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let script = write_query_handler(dir)?;
        let script = script
            .to_str()
            .ok_or_else(|| anyhow!("handler script path {} is not UTF-8", script.display()))?;
        // Serf hands SCRIPT to `/bin/sh -c`, so the path is quoted for the shell.
        let handler = format!("query:{query}={}", shell_quote(script));
        Self::start_inner(n, net, dir, Some(&handler)).await
    }

    async fn start_inner(
        n: usize,
        net: u8,
        dir: &Path,
        event_handler: Option<&str>,
    ) -> Result<SerfCluster> {
        if n == 0 {
            bail!("a Serf cluster needs at least one agent");
        }
        let binary = ensure_installed()?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ips = (0..n)
            .map(|i| agent_ip(net, i))
            .collect::<Result<Vec<_>>>()?;
        for ip in &ips {
            check_ports_free(*ip)?;
        }
        let mut cluster = SerfCluster {
            agents: Vec::with_capacity(n),
            binary,
        };
        let seed = SocketAddr::from((ips[0], GOSSIP_PORT));
        for (i, ip) in ips.iter().enumerate() {
            let name = format!("s{}", i + 1);
            let join = if i == 0 { None } else { Some(seed) };
            let agent = cluster.spawn_agent(name, *ip, join, dir, event_handler)?;
            cluster.agents.push(agent);
            if i == 0 {
                cluster.wait_seed_ready().await?;
            }
        }
        Ok(cluster)
    }

    fn spawn_agent(
        &self,
        name: String,
        ip: Ipv4Addr,
        join: Option<SocketAddr>,
        dir: &Path,
        event_handler: Option<&str>,
    ) -> Result<Agent> {
        let log = dir.join(format!("{name}.log"));
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().context("duplicating the log file handle")?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("agent")
            .arg(format!("-node={name}"))
            .arg(format!("-bind={ip}:{GOSSIP_PORT}"))
            .arg(format!("-rpc-addr={ip}:{RPC_PORT}"))
            .arg("-log-level=info");
        if let Some(seed) = join {
            cmd.arg(format!("-join={seed}"));
        }
        if let Some(handler) = event_handler {
            cmd.arg(format!("-event-handler={handler}"));
        }
        let child = cmd
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("spawning {} agent for {name}", self.binary.display()))?;
        Ok(Agent {
            name,
            ip,
            pid: child.id(),
            child: Some(child),
            log,
            rpc: Mutex::new(None),
        })
    }

    /// Waits until `s1` answers an RPC handshake; keeps that connection for later `members`.
    async fn wait_seed_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + SEED_READY_TIMEOUT;
        let agent = self
            .agents
            .first_mut()
            .ok_or_else(|| anyhow!("no seed agent"))?;
        let addr = SocketAddr::from((agent.ip, RPC_PORT));
        loop {
            if let Some(child) = agent.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    agent.child = None;
                    bail!(
                        "serf agent {} exited during startup ({status}); log {}:\n{}",
                        agent.name,
                        agent.log.display(),
                        read_log_tail(&agent.log)
                    );
                }
            }
            if let Ok(Ok(conn)) = tokio::time::timeout(RPC_TIMEOUT, RpcConn::connect(addr)).await {
                *agent.rpc.get_mut() = Some(conn);
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "serf agent {} did not open its RPC port {addr} within {:?}; log {}:\n{}",
                    agent.name,
                    SEED_READY_TIMEOUT,
                    agent.log.display(),
                    read_log_tail(&agent.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Process ids of all agents, in the order of [`names`](Self::names) (killed ones included).
    pub fn pids(&self) -> Vec<u32> {
        self.agents.iter().map(|a| a.pid).collect()
    }

    /// Node names `s1..sN`, killed ones included.
    pub fn names(&self) -> Vec<String> {
        self.agents.iter().map(|a| a.name.clone()).collect()
    }

    /// Names of the agents not killed through [`kill9`](Self::kill9).
    pub fn running_names(&self) -> Vec<String> {
        self.agents
            .iter()
            .filter(|a| a.child.is_some())
            .map(|a| a.name.clone())
            .collect()
    }

    /// Log file of agent `name`.
    pub fn log_path(&self, name: &str) -> Option<PathBuf> {
        self.agents
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.log.clone())
    }

    /// SIGKILLs agent `name` (no graceful leave) and reaps it.
    pub fn kill9(&mut self, name: &str) -> Result<()> {
        let agent = self
            .agents
            .iter_mut()
            .find(|a| a.name == name)
            .ok_or_else(|| anyhow!("no serf agent named {name}"))?;
        let mut child = agent
            .child
            .take()
            .ok_or_else(|| anyhow!("serf agent {name} was already killed"))?;
        *agent.rpc.get_mut() = None;
        // Child::kill sends SIGKILL on Unix; it fails only if the child was already reaped.
        child
            .kill()
            .with_context(|| format!("sending SIGKILL to serf agent {name} (pid {})", agent.pid))?;
        child
            .wait()
            .with_context(|| format!("reaping serf agent {name}"))?;
        Ok(())
    }

    /// The view of agent `name`: `(member name, status)` for every member it knows, status as
    /// Serf reports it ("alive", "leaving", "left", "failed"). Serf's RPC does not expose
    /// memberlist's internal "suspect" state; see [`scan_logs`](Self::scan_logs) for that.
    ///
    /// One connection per agent, opened lazily and reused; a failed exchange on a reused
    /// connection is retried once on a fresh one, and a broken connection is dropped so the
    /// next call reconnects. Each attempt is bounded by [`RPC_TIMEOUT`].
    pub async fn members(&self, name: &str) -> Result<Vec<(String, String)>> {
        let agent = self
            .agents
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| anyhow!("no serf agent named {name}"))?;
        let addr = SocketAddr::from((agent.ip, RPC_PORT));
        let mut slot = agent.rpc.lock().await;
        let reused = slot.is_some();
        match members_once(&mut slot, addr).await {
            Ok(members) => Ok(members),
            Err(_) if reused => members_once(&mut slot, addr)
                .await
                .with_context(|| format!("serf RPC members on {name} ({addr})")),
            Err(e) => Err(e.context(format!("serf RPC members on {name} ({addr})"))),
        }
    }

    /// Runs the Serf query `name` with `payload` through agent `via`'s RPC, on a connection of
    /// its own (connect and handshake happen before the clock starts), so queries may run
    /// concurrently with each other and with [`members`](Self::members). No filters, no acks, no
    /// relays; `timeout` is the query's own timeout (0: Serf's default, 3.2 s per started decade
    /// of members on the LAN profile).
    ///
    /// Reads the streamed records until `expect` distinct nodes have responded (then drops the
    /// connection; Serf just logs that it could not stream the rest), until the agent's "done"
    /// (which Serf sends only when `timeout` expires), or until `timeout` + [`QUERY_GRACE`]. With
    /// `expect` 0 it never stops early and counts every response. A response from a node that
    /// already responded is not counted again. Errors if the connection cannot be set up, if
    /// the agent refuses the query (Serf's reason included), or if the stream breaks or is not
    /// Serf's protocol; running out of time is not an error but shows in the outcome.
    pub async fn query(
        &self,
        via: &str,
        name: &str,
        payload: &[u8],
        timeout: Duration,
        expect: usize,
    ) -> Result<QueryOutcome> {
        let agent = self
            .agents
            .iter()
            .find(|a| a.name == via)
            .ok_or_else(|| anyhow!("no serf agent named {via}"))?;
        if agent.child.is_none() {
            bail!("serf agent {via} was killed");
        }
        let addr = SocketAddr::from((agent.ip, RPC_PORT));
        let timeout_ns = i64::try_from(timeout.as_nanos())
            .map_err(|_| anyhow!("query timeout {timeout:?} does not fit Go's time.Duration"))?;
        let effective_timeout = if timeout.is_zero() {
            default_query_timeout(self.agents.len())
        } else {
            timeout
        };
        let mut conn = tokio::time::timeout(RPC_TIMEOUT, RpcConn::connect(addr))
            .await
            .map_err(|_| anyhow!("timed out after {RPC_TIMEOUT:?}"))
            .and_then(|r| r)
            .with_context(|| format!("serf RPC connection to {via} ({addr}) for a query"))?;
        let body = Value::Map(vec![
            (Value::from("FilterNodes"), Value::Array(Vec::new())),
            (Value::from("FilterTags"), Value::Map(Vec::new())),
            (Value::from("RequestAck"), Value::from(false)),
            (Value::from("RelayFactor"), Value::from(0u8)),
            (Value::from("Timeout"), Value::from(timeout_ns)),
            (Value::from("Name"), Value::from(name)),
            (Value::from("Payload"), Value::Binary(payload.to_vec())),
        ]);
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + effective_timeout + QUERY_GRACE);
        let context = || format!("serf RPC query {name:?} via {via} ({addr})");

        let seq = conn
            .send("query", Some(&body))
            .await
            .with_context(context)?;
        match tokio::time::timeout_at(deadline, conn.read_header("query", seq)).await {
            Ok(header) => header.with_context(context)?,
            Err(_) => bail!("{}: no reply before the query's deadline", context()),
        }

        let mut responders: HashSet<String> = HashSet::new();
        let mut to_last = None;
        loop {
            let record = match tokio::time::timeout_at(deadline, conn.read_record(seq)).await {
                Ok(record) => record.with_context(context)?,
                Err(_) => break, // timeout + grace, and still no "done"
            };
            match map_get(&record, "Type").and_then(as_text).as_deref() {
                Some("response") => {
                    let from = map_get(&record, "From")
                        .and_then(as_text)
                        .ok_or_else(|| anyhow!("{}: response record without From", context()))?;
                    if responders.len() >= MAX_QUERY_RESPONDERS {
                        bail!("{}: more than {MAX_QUERY_RESPONDERS} responders", context());
                    }
                    responders.insert(from);
                    if expect > 0 && responders.len() >= expect {
                        to_last = Some(started.elapsed());
                        break;
                    }
                }
                Some("done") => break,
                // "ack" (not requested, so not expected) or a record type newer than this code.
                _ => {}
            }
        }
        Ok(QueryOutcome {
            responses: responders.len(),
            to_last,
            elapsed: started.elapsed(),
        })
    }

    /// Membership-relevant lines from every agent's log so far (INFO level): suspicions raised
    /// by memberlist and members Serf declared failed. Use it to spot false downs, which the
    /// RPC view alone cannot show for suspicions that were refuted in time.
    pub fn scan_logs(&self) -> Result<Vec<LogEvent>> {
        let mut events = Vec::new();
        for agent in &self.agents {
            let text = match std::fs::read(&agent.log) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("reading {}", agent.log.display()))
                }
            };
            for line in text.lines() {
                if let Some((kind, target)) = parse_log_line(line) {
                    events.push(LogEvent {
                        observer: agent.name.clone(),
                        kind,
                        target,
                        line: line.to_string(),
                    });
                }
            }
        }
        Ok(events)
    }
}

impl Drop for SerfCluster {
    fn drop(&mut self) {
        for agent in &mut self.agents {
            if let Some(mut child) = agent.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Result of one [`SerfCluster::query`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryOutcome {
    /// Distinct nodes that responded before the query stopped being read.
    pub responses: usize,
    /// From sending the query request to receiving the `expect`-th response; `None` if fewer
    /// arrived (or `expect` was 0).
    pub to_last: Option<Duration>,
    /// From sending the query request until reading stopped.
    pub elapsed: Duration,
}

/// What an agent's log says it concluded about another member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEventKind {
    /// memberlist: "Suspect X has failed, no acks received" (this agent raised a suspicion).
    Suspect,
    /// memberlist: "Marking X as failed, suspect timeout reached" (this agent's timer fired).
    MarkedFailed,
    /// serf: "EventMemberFailed: X" (X is "failed" in this agent's view from then on).
    MemberFailed,
}

#[derive(Debug, Clone)]
pub struct LogEvent {
    pub observer: String,
    pub kind: LogEventKind,
    pub target: String,
    pub line: String,
}

fn parse_log_line(line: &str) -> Option<(LogEventKind, String)> {
    let first_word = |s: &str| s.split_whitespace().next().map(str::to_string);
    if let Some(rest) = line.split_once("memberlist: Suspect ").map(|(_, r)| r) {
        return Some((LogEventKind::Suspect, first_word(rest)?));
    }
    if let Some(rest) = line.split_once("memberlist: Marking ").map(|(_, r)| r) {
        if rest.contains(" as failed") {
            return Some((LogEventKind::MarkedFailed, first_word(rest)?));
        }
    }
    if let Some(rest) = line.split_once("serf: EventMemberFailed: ").map(|(_, r)| r) {
        return Some((LogEventKind::MemberFailed, first_word(rest)?));
    }
    None
}

fn read_log_tail(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => tail(&String::from_utf8_lossy(&bytes), 2000).to_string(),
        Err(e) => format!("(cannot read log: {e})"),
    }
}

/// Rejects query names Serf's `-event-handler=query:NAME=SCRIPT` syntax or its RPC would
/// mangle or refuse.
fn check_query_name(query: &str) -> Result<()> {
    if query.is_empty() {
        bail!("a Serf query name must not be empty");
    }
    if query.starts_with(SERF_INTERNAL_QUERY_PREFIX) {
        bail!("Serf reserves query names starting with {SERF_INTERNAL_QUERY_PREFIX:?}: {query:?}");
    }
    if let Some(c) = query
        .chars()
        .find(|&c| c == '=' || c == ',' || c.is_control())
    {
        bail!("query name {query:?} contains {c:?}, which Serf's handler syntax does not allow");
    }
    Ok(())
}

/// Writes the query handler script into `dir` (mode 0755) and returns its absolute path.
fn write_query_handler(dir: &Path) -> Result<PathBuf> {
    let path = dir.join(QUERY_HANDLER_SCRIPT);
    std::fs::write(&path, QUERY_HANDLER_BODY)
        .with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))?;
    std::fs::canonicalize(&path).with_context(|| format!("resolving {}", path.display()))
}

/// `s` as one single-quoted `/bin/sh` word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The timeout Serf gives a query sent with `Timeout` 0 in a cluster of `members` (LAN
/// profile): 200 ms x 16 x ceil(log10(members + 1)), the last factor being the number of
/// decimal digits of `members`.
fn default_query_timeout(members: usize) -> Duration {
    let mut digits = 0u32;
    let mut rest = members;
    while rest > 0 {
        digits += 1;
        rest /= 10;
    }
    SERF_GOSSIP_INTERVAL * SERF_QUERY_TIMEOUT_MULT * digits.max(1)
}

/// Fails early, with a clear message, if a stale agent (or anything else) still holds one of
/// the ports this agent needs on its IP.
fn check_ports_free(ip: Ipv4Addr) -> Result<()> {
    let in_use = |what: &str, port: u16, e: std::io::Error| {
        anyhow!("{what} {ip}:{port} is not free ({e}); is a serf agent from an earlier run still alive (`pgrep -a serf`)?")
    };
    drop(UdpSocket::bind((ip, GOSSIP_PORT)).map_err(|e| in_use("UDP", GOSSIP_PORT, e))?);
    drop(StdTcpListener::bind((ip, GOSSIP_PORT)).map_err(|e| in_use("TCP", GOSSIP_PORT, e))?);
    drop(StdTcpListener::bind((ip, RPC_PORT)).map_err(|e| in_use("TCP", RPC_PORT, e))?);
    Ok(())
}

async fn members_once(
    slot: &mut Option<RpcConn>,
    addr: SocketAddr,
) -> Result<Vec<(String, String)>> {
    let result = tokio::time::timeout(RPC_TIMEOUT, async {
        if slot.is_none() {
            *slot = Some(RpcConn::connect(addr).await?);
        }
        let conn = slot.as_mut().ok_or_else(|| anyhow!("no RPC connection"))?;
        let body = conn.call("members", None, true).await?;
        parse_members(&body.unwrap_or(Value::Nil))
    })
    .await
    .map_err(|_| anyhow!("timed out after {RPC_TIMEOUT:?}"))
    .and_then(|r| r);
    if result.is_err() {
        // The stream may be mid-message or closed: never reuse it.
        *slot = None;
    }
    result
}

