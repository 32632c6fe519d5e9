//! The accept loop of an endpoint: every `quinn::Incoming` is put to [`Admission`] before
//! quinn keeps any state for it, admitted ones are handshaken in tracked tasks under
//! `Handshake_Timeout`, and what was turned away is logged in aggregate, naming the source.
//!
//! The loop owns the admission table and the count of handshakes in progress; the handshake
//! tasks report back over a channel with room for every one of them, so no lock is shared.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn, Instrument};

use super::admission::{Admission, Limits, Reason, Verdict};
use super::TransportEvent;
use crate::tls;

/// A handshake task's last word: it did not produce a member's connection.
struct Failed {
    from: SocketAddr,
    reason: Reason,
    detail: String,
}

/// Everything the accept loop needs, moved into its task.
pub(super) struct AcceptLoop {
    pub(super) endpoint: quinn::Endpoint,
    pub(super) roster: Arc<BTreeMap<String, SocketAddr>>,
    /// The members' addresses: the only senders admitted.
    pub(super) members: BTreeSet<SocketAddr>,
    pub(super) events: mpsc::Sender<TransportEvent>,
    pub(super) tracker: TaskTracker,
    pub(super) shutdown: CancellationToken,
    pub(super) limits: Limits,
}

impl AcceptLoop {
    pub(super) async fn run(self) {
        let mut admission = Admission::new(self.limits, Instant::now());
        // Every handshake task sends exactly one message (or none), and at most
        // `max_handshakes` run at once: the channel never makes one wait.
        let (ended_tx, mut ended_rx) = mpsc::channel::<Option<Failed>>(self.limits.max_handshakes.max(1));
        let mut handshakes = 0usize;
        let period = self.limits.log_interval;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                Some(ended) = ended_rx.recv() => {
                    handshakes = handshakes.saturating_sub(1);
                    if let Some(Failed { from, reason, detail }) = ended {
                        admission.handshake_ended(Instant::now(), from, reason, detail);
                    }
                }
                _ = tick.tick() => admission.handle_interval(Instant::now()),
                incoming = self.endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    if self.decide(&mut admission, incoming, handshakes, &ended_tx) {
                        handshakes += 1;
                    }
                }
            }
            while let Some(notice) = admission.poll_notice() {
                warn!("{notice}");
            }
        }
    }

    /// Puts one Initial to admission and acts on the verdict. True if a handshake started.
    fn decide(
        &self,
        admission: &mut Admission,
        incoming: quinn::Incoming,
        handshakes: usize,
        ended: &mpsc::Sender<Option<Failed>>,
    ) -> bool {
        let from = incoming.remote_address();
        let member = self.members.contains(&from);
        let validated = incoming.remote_address_validated();
        match admission.admit(Instant::now(), from, member, validated, handshakes) {
            Verdict::Ignore(_) => incoming.ignore(),
            Verdict::Refuse(_) => incoming.refuse(),
            Verdict::Retry => {
                if let Err(error) = incoming.retry() {
                    // Only an Initial that already carried a Retry token cannot be retried,
                    // and such an Initial is validated; nothing to answer.
                    debug!(%from, %error, "no Retry possible; ignoring");
                    error.into_incoming().ignore();
                }
            }
            Verdict::Accept => match incoming.accept() {
                Ok(connecting) => {
                    self.spawn_handshake(from, connecting, ended.clone());
                    return true;
                }
                Err(error) => {
                    admission.handshake_ended(Instant::now(), from, Reason::HandshakeFailed, error.to_string());
                }
            },
        }
        false
    }

    fn spawn_handshake(&self, from: SocketAddr, connecting: quinn::Connecting, ended: mpsc::Sender<Option<Failed>>) {
        let roster = self.roster.clone();
        let events = self.events.clone();
        let timeout = self.limits.handshake_timeout;
        self.tracker.spawn(
            async move {
                let failed = |reason, detail: String| Some(Failed { from, reason, detail });
                // Dropping an unfinished `Connecting` closes the connection.
                let outcome = match tokio::time::timeout(timeout, connecting).await {
                    Err(_) => failed(Reason::HandshakeTimedOut, format!("not finished within {} s", timeout.as_secs())),
                    Ok(Err(error)) => failed(Reason::HandshakeFailed, error.to_string()),
                    Ok(Ok(conn)) => match admit_peer(&roster, from, &conn) {
                        Err(why) => {
                            conn.close(1u32.into(), why.as_bytes());
                            failed(Reason::HandshakeFailed, why)
                        }
                        Ok(peer) => {
                            debug!(%peer, "accepted connection");
                            // The driver may be gone during shutdown; then the connection is moot.
                            if events.send(TransportEvent::Connected { peer, conn, inbound: true }).await.is_err() {
                                debug!("driver gone; dropping accepted connection");
                            }
                            None
                        }
                    },
                };
                // The loop is gone only at shutdown, when nobody counts any more.
                if ended.send(outcome).await.is_err() {
                    debug!("accept loop gone");
                }
            }
            .instrument(tracing::debug_span!("peer", addr = %from)),
        );
    }
}

/// The member name of an authenticated connection from `from`, if its certificate names the
/// member whose address `from` is.
fn admit_peer(roster: &BTreeMap<String, SocketAddr>, from: SocketAddr, conn: &quinn::Connection) -> Result<String, String> {
    let peer = tls::peer_name(conn).map_err(|error| format!("no usable certificate: {error:#}"))?;
    match roster.get(&peer) {
        Some(addr) if *addr == from => Ok(peer),
        Some(addr) => Err(format!("certificate names {peer}, whose address is {addr}")),
        None => Err(format!("certificate names {peer}, not a host of the segment file")),
    }
}
