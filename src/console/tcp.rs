//! The TCP side of the Control_Listener: one [`TcpConsole`] per TCP `Listen`, serving the
//! frames of the unix socket inside TLS 1.3 (rustls with its ring provider), or in plain TCP
//! on a loopback address with `TLS = false`.
//!
//! The first byte a client sends tells a TLS client (a handshake record, 0x16) from a plain
//! one: a plain client of a TLS console is answered, in a plain frame, that the console speaks
//! TLS, and closed; a TLS client of a plain console is closed at once (its TLS library reports
//! the handshake cut short). The bounds are those of the unix socket (`listener.rs`): the
//! connections over `Concurrency` are told "console busy", and the TLS handshake has
//! [`HANDSHAKE_TIMEOUT`]. With `Client_Certificates = true` a client may present a certificate
//! of the client CA; its DNS name (else its common name) is the session's user, with no login.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, debug_span, info, warn, Instrument as _};

use super::access::{certificate_user, Gate, Peer};
use super::frame::{write_reply, Reply};
use super::listener::{drain, refuse, serve_session, ConnectionLimits, Job, Stop, MAX_REFUSING};
use super::remote::{TcpConfig, TlsConfig};
use crate::tls::{read_pem_certs, read_pem_key, read_roots, TlsIdentity};

/// How long a client has for the TLS handshake (and to send its first byte).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// What a plain TCP client of a TLS console is told.
pub const TLS_ONLY: &str = "this console speaks TLS: connect with ec_console HOST:PORT --ca CA.pem \
                            (a plain TCP client is not served)";

/// The rustls server side of a console listener: our certificate (the member's, or
/// `TLS_Certificate` / `TLS_Key`), TLS 1.3 only, client certificates asked for (not required)
/// with `Client_Certificates = true`.
pub fn server_config(tls: &TlsConfig, identity: &TlsIdentity) -> anyhow::Result<rustls::ServerConfig> {
    let provider = TlsIdentity::provider();
    let (chain, key) = match &tls.cert {
        Some((cert, key)) => (read_pem_certs(cert)?, read_pem_key(key)?),
        None => identity.certified(),
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3")?;
    let builder = if tls.client_certs {
        let roots = match &tls.client_ca {
            Some(path) => Arc::new(read_roots(path)?),
            None => identity.roots(),
        };
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
            .allow_unauthenticated()
            .build()
            .context("building the client certificate verifier")?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    builder.with_single_cert(chain, key).context("the console's certificate and key do not match")
}

/// A bound TCP console listener, not yet accepting.
pub struct TcpConsole {
    listener: TcpListener,
    addr: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    client_certs: bool,
    gate: Gate,
    limits: ConnectionLimits,
    max_connections: usize,
    close_grace: Duration,
}

impl TcpConsole {
    /// Loads the TLS configuration of `cfg` and binds its address.
    pub async fn bind(cfg: &TcpConfig, identity: &TlsIdentity, gate: Gate) -> anyhow::Result<TcpConsole> {
        let acceptor = match &cfg.tls {
            Some(tls) => Some(TlsAcceptor::from(Arc::new(
                server_config(tls, identity).with_context(|| format!("console TLS on {}", cfg.addr))?,
            ))),
            None => None,
        };
        let listener =
            TcpListener::bind(cfg.addr).await.with_context(|| format!("binding the console on {}", cfg.addr))?;
        let addr = listener.local_addr().with_context(|| format!("the console on {}", cfg.addr))?;
        Ok(TcpConsole {
            listener,
            addr,
            acceptor,
            client_certs: cfg.tls.as_ref().is_some_and(|t| t.client_certs),
            gate,
            limits: ConnectionLimits::of(&cfg.bounds),
            max_connections: cfg.bounds.max_connections.max(1),
            close_grace: cfg.bounds.close_grace,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Accepts connections until `shutdown` is cancelled, then ends as the unix listener does.
    pub async fn run(self, jobs: mpsc::Sender<Job>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let TcpConsole { listener, addr, acceptor, client_certs, gate, limits, max_connections, close_grace } = self;
        info!(%addr, tls = acceptor.is_some(), login = gate.authenticate, "console listening");
        let connections = TaskTracker::new();
        let refusals = TaskTracker::new();
        let abort = CancellationToken::new();
        loop {
            let accepted = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, from) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    warn!(%error, %addr, "accepting a console connection failed; pausing");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            };
            let span = debug_span!("conn", %from);
            if connections.len() >= max_connections {
                if refusals.len() >= MAX_REFUSING {
                    debug!(parent: &span, "console connection over the limit closed at once");
                    continue;
                }
                warn!(parent: &span, open = connections.len(), max_connections, "console busy: connection refused");
                let (acceptor, shutdown) = (acceptor.clone(), shutdown.clone());
                refusals.spawn(
                    async move {
                        match acceptor {
                            Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => refuse(tls, max_connections, shutdown).await,
                                _ => debug!("refused console connection failed its TLS handshake"),
                            },
                            None => refuse(stream, max_connections, shutdown).await,
                        }
                    }
                    .instrument(span),
                );
                continue;
            }
            let (jobs, shutdown, abort, gate, acceptor) =
                (jobs.clone(), shutdown.clone(), abort.clone(), gate.clone(), acceptor.clone());
            connections.spawn(
                async move {
                    debug!("console connection accepted");
                    let stop = Stop { shutdown: &shutdown, abort: &abort };
                    let session = Session { from, acceptor, client_certs, gate: &gate, limits: &limits };
                    match session.serve(stream, &jobs, stop).await {
                        Ok(()) => debug!("console connection closed"),
                        Err(error) => debug!(error = format!("{error:#}"), "console connection ended"),
                    }
                }
                .instrument(span),
            );
        }
        drop(listener);
        drop(jobs);
        drain(connections, refusals, abort, close_grace).await;
        Ok(())
    }
}

/// One TCP connection, before its session starts.
struct Session<'a> {
    from: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    client_certs: bool,
    gate: &'a Gate,
    limits: &'a ConnectionLimits,
}

impl Session<'_> {
    async fn serve(self, mut stream: TcpStream, jobs: &mpsc::Sender<Job>, stop: Stop<'_>) -> anyhow::Result<()> {
        if let Err(error) = stream.set_nodelay(true) {
            debug!(%error, "could not set TCP_NODELAY");
        }
        let mut first = [0u8; 1];
        let peeked = tokio::select! {
            _ = stop.shutdown.cancelled() => return Ok(()),
            peeked = tokio::time::timeout(HANDSHAKE_TIMEOUT.min(self.limits.idle_timeout), stream.peek(&mut first)) => peeked,
        };
        match peeked {
            Err(_) => return Err(anyhow!("the client sent nothing within {} s", HANDSHAKE_TIMEOUT.as_secs())),
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(error).context("reading from the client"),
        }
        let mut peer = Peer { from: self.from.to_string(), ip: Some(self.from.ip()), user: None };
        let Some(acceptor) = self.acceptor else {
            if first[0] == TLS_HANDSHAKE {
                warn!(from = %self.from, "a TLS client on a console without TLS (TLS = false); closing");
                return Ok(());
            }
            return serve_session(stream, jobs, stop, self.limits, self.gate, peer).await;
        };
        if first[0] != TLS_HANDSHAKE {
            warn!(from = %self.from, "a plain TCP client on a TLS console; told so and closed");
            let tell = async {
                // Take what the client sent, so that closing does not reset the connection
                // before it reads the answer.
                let mut scratch = [0u8; 4096];
                let taken = stream.read(&mut scratch).await?;
                debug!(taken, "plain request discarded");
                write_reply(&mut stream, &Reply::failed(TLS_ONLY)).await?;
                stream.shutdown().await
            };
            return match tokio::time::timeout(Duration::from_secs(2), tell).await {
                Ok(result) => result.context("telling a plain client that the console speaks TLS"),
                Err(_) => Ok(()),
            };
        }
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                warn!(from = %self.from, %error, "console TLS handshake failed");
                return Ok(());
            }
            Err(_) => return Err(anyhow!("no TLS handshake within {} s", HANDSHAKE_TIMEOUT.as_secs())),
        };
        if self.client_certs {
            let certs = tls.get_ref().1.peer_certificates();
            peer.user = certs.and_then(|c| c.first()).and_then(certificate_user);
            if let Some(user) = &peer.user {
                info!(user = %user.escape_debug(), from = %self.from, "console login by client certificate");
            }
        }
        serve_session(tls, jobs, stop, self.limits, self.gate, peer).await
    }
}
