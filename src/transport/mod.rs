//! The QUIC transport of a member: one quinn endpoint per process, mutually authenticated
//! connections to peers, SWIM packets carried as QUIC datagrams and operations messages framed
//! on one long-lived unidirectional QUIC stream per connection and direction (reliable while
//! the connection lasts; what is lost with it the cores send again, and put in order).
//!
//! [`Transport`] is owned by the driver task and never blocks it: connecting, accepting and
//! reading run in tracked tasks that report back as [`TransportEvent`]s over a bounded channel.
//! One connection per pair of members is kept; when both sides dial at once, the connection
//! dialled by the member with the smaller name wins on both sides.
//!
//! Incoming connections pass [`admission`] first (member addresses only, a rate per source,
//! QUIC Retry for address validation, a bound on handshakes in progress, a handshake timeout),
//! so that Initials from anyone who can send UDP to the port cost a bounded amount of memory
//! and a bounded number of log lines.
//!
//! # Layout
//!
//! - this file — the endpoint, dialling, connections per peer, reading and writing.
//! - `accept.rs` — the accept loop: admission, handshakes, the aggregated log.
//! - `admission.rs` — the decisions and the per-source table (no I/O).
//! - `stream.rs` — the stream of messages to a peer: framing, its writer, bounded reading.

mod accept;
pub mod admission;
pub mod stream;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn, Instrument};

use self::accept::AcceptLoop;
pub use self::admission::Limits;
use self::stream::{MessageReader, Outbox};
use crate::tls::{self, TlsIdentity};

/// Datagrams kept for a peer while its connection is being set up.
const PENDING_LIMIT: usize = 64;

/// Bytes quinn buffers for one Initial waiting for the accept loop's decision (the datagrams
/// that follow it in the same flight).
const INCOMING_BUFFER: u64 = 16 * 1024;

/// Unidirectional streams a peer may have open towards us at once (see [`transport_config`]).
const MAX_STREAMS: u32 = 128;

/// What the transport's tasks report to the driver.
#[derive(Debug)]
pub enum TransportEvent {
    /// A datagram from an authenticated peer.
    Datagram {
        /// The name on the peer's certificate.
        peer: String,
        /// The datagram.
        bytes: Bytes,
    },
    /// A whole message read from a stream of an authenticated peer.
    Message {
        /// The name on the peer's certificate.
        peer: String,
        /// The message.
        bytes: Bytes,
    },
    /// A connection was established and authenticated.
    Connected {
        /// The name on the peer's certificate.
        peer: String,
        /// The connection.
        conn: quinn::Connection,
        /// Whether the peer dialled us.
        inbound: bool,
    },
    /// Dialling a peer failed.
    ConnectFailed {
        /// The peer we dialled.
        peer: String,
    },
    /// A connection ended.
    Closed {
        /// The name on the peer's certificate.
        peer: String,
        /// quinn's stable id of the connection.
        id: usize,
    },
}

/// What a peer sent us, as the driver sees it.
#[derive(Debug)]
pub enum Received {
    /// A datagram (SWIM).
    Datagram(String, Bytes),
    /// A stream message (operations).
    Message(String, Bytes),
}

enum Peer {
    Connecting { datagrams: VecDeque<Bytes>, messages: Vec<Bytes> },
    Ready { conn: quinn::Connection, dialler: String, since: std::time::Instant, outbox: Outbox },
}

/// Read buffer of an incoming stream: many small frames in one read of the stream.
const READ_BUFFER: usize = 32 * 1024;

/// The code a receiver stops a stream with when it cannot read it.
const STREAM_REFUSED: quinn::VarInt = quinn::VarInt::from_u32(1);

/// Two connections to one peer established within this window are a simultaneous dial, to
/// be settled by the tie-break; a later one replaces the old (the peer restarted or lost it).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(2);

/// The QUIC endpoint of one member and its connections.
pub struct Transport {
    me: String,
    endpoint: quinn::Endpoint,
    roster: Arc<BTreeMap<String, SocketAddr>>,
    peers: BTreeMap<String, Peer>,
    events: mpsc::Sender<TransportEvent>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

/// Reports an event to the driver. The driver only goes away at shutdown, when there is
/// nobody left to tell.
async fn report(events: &mpsc::Sender<TransportEvent>, event: TransportEvent) {
    if events.send(event).await.is_err() {
        debug!("driver gone; transport event dropped");
    }
}

fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    // SWIM traffic keeps busy connections alive and detects dead peers itself; keep-alives
    // only stop idle connections from timing out, so they can be rare (idle CPU matters on
    // a host that runs an MTA).
    t.max_idle_timeout(Some(quinn::IdleTimeout::from(quinn::VarInt::from_u32(30_000))));
    t.keep_alive_interval(Some(Duration::from_secs(10)));
    t.datagram_receive_buffer_size(Some(1 << 20));
    t.datagram_send_buffer_size(1 << 20);
    // quinn keeps a table entry for every stream id the peer may open, from the handshake on,
    // so the stream limits are memory held by every connection: 1024 unidirectional and quinn's
    // default 100 bidirectional streams cost about 50 KiB per connection, 1.5 MiB of an idle
    // member of 32. Stream messages travel on one long-lived unidirectional stream per
    // connection and direction (`stream.rs`; a new one only after a failed write), so one or
    // two are open at once; past the limit a sender waits for the peer to read one (it reads
    // each at once), nothing is dropped. Bidirectional streams are not used at all.
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(MAX_STREAMS));
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(0));
    // SWIM packets are answered by SWIM packets, so QUIC acknowledgements of each datagram are
    // mostly overhead: ask peers to acknowledge every 8th ack-eliciting packet or after 100 ms,
    // which removes most ack-only packets (idle CPU) without hurting streams.
    let mut ack = quinn::AckFrequencyConfig::default();
    ack.ack_eliciting_threshold(quinn::VarInt::from_u32(8)).max_ack_delay(Some(Duration::from_millis(100)));
    t.ack_frequency_config(Some(ack));
    t
}

impl Transport {
    /// Binds the endpoint at `addr` and starts accepting connections from members of
    /// `roster` (name → address) that present a certificate from the cluster CA, within
    /// `limits`.
    pub fn bind(
        addr: SocketAddr,
        identity: &TlsIdentity,
        roster: BTreeMap<String, SocketAddr>,
        limits: Limits,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<(Transport, mpsc::Receiver<TransportEvent>)> {
        let transport = Arc::new(transport_config());
        let server_crypto = quinn::crypto::rustls::QuicServerConfig::try_from(identity.server_config()?)
            .context("QUIC server crypto")?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        server.transport_config(transport.clone());
        // Initials wait in quinn's queue only until the accept loop decides (at once), so the
        // queue and the datagrams buffered per waiting Initial can be small.
        server
            .max_incoming(limits.backlog)
            .incoming_buffer_size(INCOMING_BUFFER)
            .incoming_buffer_size_total(INCOMING_BUFFER * limits.backlog as u64)
            .retry_token_lifetime(limits.retry_token_lifetime);
        let client_crypto = quinn::crypto::rustls::QuicClientConfig::try_from(identity.client_config()?)
            .context("QUIC client crypto")?;
        let mut client = quinn::ClientConfig::new(Arc::new(client_crypto));
        client.transport_config(transport);
        let reset_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &identity.reset_secret());
        let endpoint_config = quinn::EndpointConfig::new(Arc::new(reset_key));
        let socket = std::net::UdpSocket::bind(addr).with_context(|| format!("binding QUIC endpoint on {addr}"))?;
        let mut endpoint = quinn::Endpoint::new(endpoint_config, Some(server), socket, Arc::new(quinn::TokioRuntime))
            .with_context(|| format!("starting QUIC endpoint on {addr}"))?;
        endpoint.set_default_client_config(client);
        info!(%addr, "QUIC endpoint listening");
        let (tx, rx) = mpsc::channel(4096);
        let t = Transport {
            me: identity.name.clone(),
            endpoint,
            roster: Arc::new(roster),
            peers: BTreeMap::new(),
            events: tx,
            tracker,
            shutdown,
        };
        t.spawn_accept_loop(limits);
        Ok((t, rx))
    }

    /// The local address of the endpoint.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.endpoint.local_addr()?)
    }

    fn spawn_accept_loop(&self, limits: Limits) {
        let accept = AcceptLoop {
            endpoint: self.endpoint.clone(),
            roster: self.roster.clone(),
            members: self.roster.values().copied().collect(),
            events: self.events.clone(),
            tracker: self.tracker.clone(),
            shutdown: self.shutdown.clone(),
            limits,
        };
        self.tracker.spawn(accept.run());
    }

    /// Sends one datagram to the member `to` at `addr`, dialling it first if needed.
    pub fn send(&mut self, to: &str, addr: SocketAddr, payload: Bytes) {
        match self.peers.get_mut(to) {
            Some(Peer::Ready { conn, .. }) => {
                if let Err(error) = conn.send_datagram(payload) {
                    debug!(peer = to, %error, "datagram not sent");
                }
            }
            Some(Peer::Connecting { datagrams, .. }) => {
                if datagrams.len() >= PENDING_LIMIT {
                    datagrams.pop_front();
                }
                datagrams.push_back(payload);
            }
            None => {
                let pending = Peer::Connecting { datagrams: VecDeque::from([payload]), messages: Vec::new() };
                self.peers.insert(to.to_owned(), pending);
                self.dial(to.to_owned(), addr);
            }
        }
    }

    /// Sends one message to the member `to` at `addr` on the connection's stream, dialling
    /// first if needed. Delivery is reliable while the connection lives; a message lost with a
    /// connection is the cores' to retransmit.
    pub fn send_message(&mut self, to: &str, addr: SocketAddr, message: Bytes) {
        match self.peers.get_mut(to) {
            Some(Peer::Ready { outbox, .. }) => outbox.send(to, message),
            Some(Peer::Connecting { messages, .. }) => messages.push(message),
            None => {
                let pending = Peer::Connecting { datagrams: VecDeque::new(), messages: vec![message] };
                self.peers.insert(to.to_owned(), pending);
                self.dial(to.to_owned(), addr);
            }
        }
    }

    /// Closes every connection (peers redial on their next send). For operators and tests
    /// that want to see the protocols survive lost connections.
    pub fn drop_connections(&mut self) -> usize {
        let mut n = 0;
        for (_, p) in std::mem::take(&mut self.peers) {
            if let Peer::Ready { conn, .. } = p {
                conn.close(2u32.into(), b"dropped by operator");
                n += 1;
            }
        }
        n
    }

    fn dial(&self, peer: String, addr: SocketAddr) {
        let connecting = match self.endpoint.connect(addr, &peer) {
            Ok(c) => c,
            Err(error) => {
                warn!(%peer, %addr, %error, "cannot dial");
                let events = self.events.clone();
                self.tracker.spawn(async move {
                    report(&events, TransportEvent::ConnectFailed { peer }).await;
                });
                return;
            }
        };
        let events = self.events.clone();
        self.tracker.spawn(
            async move {
                let event = match connecting.await {
                    Ok(conn) => match tls::peer_name(&conn) {
                        Ok(name) if name == peer => TransportEvent::Connected { peer, conn, inbound: false },
                        Ok(name) => {
                            warn!(%peer, certificate = %name, "refused connection: peer certificate names someone else");
                            conn.close(1u32.into(), b"wrong certificate");
                            TransportEvent::ConnectFailed { peer }
                        }
                        Err(error) => {
                            warn!(%peer, %error, "refused connection: no usable certificate");
                            TransportEvent::ConnectFailed { peer }
                        }
                    },
                    Err(quinn::ConnectionError::TimedOut) => {
                        debug!(%peer, "dial timed out");
                        TransportEvent::ConnectFailed { peer }
                    }
                    Err(error) => {
                        warn!(%peer, %error, "dial failed");
                        TransportEvent::ConnectFailed { peer }
                    }
                };
                report(&events, event).await;
            }
            .instrument(tracing::debug_span!("peer", %addr)),
        );
    }

    fn spawn_reader(&self, peer: String, conn: quinn::Connection) {
        self.spawn_stream_reader(peer.clone(), conn.clone());
        let events = self.events.clone();
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            let id = conn.stable_id();
            loop {
                let read = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = conn.read_datagram() => r,
                };
                match read {
                    Ok(bytes) => {
                        if events.send(TransportEvent::Datagram { peer: peer.clone(), bytes }).await.is_err() {
                            break;
                        }
                    }
                    Err(error) => {
                        debug!(%peer, %error, "connection ended");
                        report(&events, TransportEvent::Closed { peer, id }).await;
                        break;
                    }
                }
            }
        });
    }

    fn spawn_stream_reader(&self, peer: String, conn: quinn::Connection) {
        let events = self.events.clone();
        let shutdown = self.shutdown.clone();
        let tracker = self.tracker.clone();
        self.tracker.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    a = conn.accept_uni() => a,
                };
                let stream = match accepted {
                    Ok(s) => s,
                    Err(_) => break, // the datagram reader reports the closed connection
                };
                let events = events.clone();
                let peer = peer.clone();
                tracker.spawn(async move {
                    // Buffered: a frame's header and body in one read of the stream, and the
                    // frames of one write of the sender together.
                    let stream = tokio::io::BufReader::with_capacity(READ_BUFFER, stream);
                    let mut reader = MessageReader::new(stream, eccluster_proto::wire::MAX_MESSAGE);
                    loop {
                        match reader.next().await {
                            Ok(Some(bytes)) => {
                                let event = TransportEvent::Message { peer: peer.clone(), bytes };
                                if events.send(event).await.is_err() {
                                    debug!("driver gone; dropping message");
                                    break;
                                }
                            }
                            Ok(None) => break,
                            Err(error) => {
                                warn!(%peer, %error, "dropping unreadable stream");
                                // The sender learns of it and opens another stream.
                                if let Err(error) = reader.get_mut().get_mut().stop(STREAM_REFUSED) {
                                    debug!(%peer, %error, "stream already closed");
                                }
                                break;
                            }
                        }
                    }
                });
            }
        });
    }

    /// Updates connection state from an event. Returns the datagram for the driver to
    /// process, if the event was one.
    pub fn handle(&mut self, event: TransportEvent) -> Option<Received> {
        match event {
            TransportEvent::Datagram { peer, bytes } => return Some(Received::Datagram(peer, bytes)),
            TransportEvent::Message { peer, bytes } => return Some(Received::Message(peer, bytes)),
            TransportEvent::Connected { peer, conn, inbound } => {
                let dialler = if inbound { peer.clone() } else { self.me.clone() };
                let preferred = std::cmp::min(&self.me, &peer).clone();
                let mut queued = Vec::new();
                match self.peers.remove(&peer) {
                    Some(Peer::Connecting { datagrams, messages }) => {
                        for payload in datagrams {
                            if let Err(error) = conn.send_datagram(payload) {
                                debug!(%peer, %error, "queued datagram not sent");
                            }
                        }
                        queued = messages;
                    }
                    Some(Peer::Ready { conn: old, dialler: old_dialler, since, outbox }) => {
                        let simultaneous = since.elapsed() < DUPLICATE_WINDOW;
                        if simultaneous && old_dialler == preferred && dialler != preferred {
                            conn.close(0u32.into(), b"duplicate");
                            self.peers.insert(peer, Peer::Ready { conn: old, dialler: old_dialler, since, outbox });
                            return None;
                        }
                        old.close(0u32.into(), b"duplicate");
                    }
                    None => {}
                }
                self.spawn_reader(peer.clone(), conn.clone());
                let outbox = Outbox::start(peer.clone(), conn.clone(), &self.tracker, self.shutdown.clone());
                for message in queued {
                    outbox.send(&peer, message);
                }
                self.peers.insert(peer, Peer::Ready { conn, dialler, since: std::time::Instant::now(), outbox });
            }
            TransportEvent::ConnectFailed { peer } => {
                if matches!(self.peers.get(&peer), Some(Peer::Connecting { .. })) {
                    self.peers.remove(&peer);
                }
            }
            TransportEvent::Closed { peer, id } => {
                if matches!(self.peers.get(&peer), Some(Peer::Ready { conn, .. }) if conn.stable_id() == id) {
                    self.peers.remove(&peer);
                }
            }
        }
        None
    }

    /// Number of peers with an established connection.
    pub fn connected(&self) -> usize {
        self.peers.values().filter(|p| matches!(p, Peer::Ready { .. })).count()
    }

    /// Closes every connection and waits (bounded) for the endpoint to go idle.
    pub async fn close(self) {
        self.endpoint.close(0u32.into(), b"leaving");
        if tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await.is_err() {
            debug!("endpoint did not go idle within 2 s");
        }
    }
}
