//! Prometheus metrics over HTTP: `GET /metrics` in the Prometheus text exposition format
//! (version 0.0.4), encoded by `prometheus-client`. Every daemon can serve one: eccmgr and
//! ecnode from their node core's counters (`Node::stats`, taken by the daemon's loop when a
//! scrape asks, see [`member`]), ecconfigd from its repositories ([`configd`]).
//!
//! What a scraper can cost is bounded: one scrape is served at a time (another gets 503 at
//! once), a snapshot that takes longer than [`SCRAPE_TIMEOUT`] is answered 503, a connection
//! that sends no request within [`HEADER_TIMEOUT`] is closed, and only `GET /metrics` exists.
//! Serving never blocks the daemon's loop: the loop hands out a copy of its counters and the
//! text is made here.

pub mod configd;
pub mod member;
pub mod process;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How long one scrape may take to gather its figures.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may take to send its request headers before it is closed.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Gathers the figures of one scrape into a registry, or says why it cannot.
pub type Scrape = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Registry, String>> + Send>> + Send + Sync>;

/// A metrics listener bound at start, so that a port in use stops the start.
pub struct MetricsListener {
    listener: std::net::TcpListener,
    addr: SocketAddr,
}

impl MetricsListener {
    /// Binds `addr`; `place` says where it was configured (`FILE:LINE:COLUMN`, `--metrics`), for
    /// the error.
    pub async fn bind(addr: SocketAddr, place: &str) -> Result<MetricsListener> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("{place}: cannot serve metrics on {addr}"))?;
        let addr = listener.local_addr().context("reading the metrics listener's address")?;
        let listener = listener.into_std().context("taking the metrics listener")?;
        Ok(MetricsListener { listener, addr })
    }

    /// The address bound (with the port chosen, when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `GET /metrics` until `shutdown` is cancelled.
    pub async fn serve(self, scrape: Scrape, shutdown: CancellationToken) -> Result<()> {
        let addr = self.addr;
        let app = Router::new()
            .route("/metrics", get(metrics))
            .fallback(|| async { (StatusCode::NOT_FOUND, "only GET /metrics is served here\n") })
            .with_state(Arc::new(Served { scrape, one: Semaphore::new(1) }));
        let handle = axum_server::Handle::new();
        let mut server = axum_server::from_tcp(self.listener).context("serving metrics")?.handle(handle.clone());
        server.http_builder().http1().header_read_timeout(Some(HEADER_TIMEOUT));
        let server = server.serve(app.into_make_service());
        tracing::info!(%addr, "serving metrics on http://{addr}/metrics");
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => return result.with_context(|| format!("serving metrics on {addr}")),
            () = shutdown.cancelled() => handle.graceful_shutdown(Some(Duration::from_secs(1))),
        }
        server.await.with_context(|| format!("serving metrics on {addr}"))
    }
}

struct Served {
    scrape: Scrape,
    /// One scrape at a time.
    one: Semaphore,
}

async fn metrics(State(served): State<Arc<Served>>) -> Response {
    let Ok(_permit) = served.one.try_acquire() else {
        return unavailable("another scrape is being served; try again".to_owned());
    };
    match tokio::time::timeout(SCRAPE_TIMEOUT, (served.scrape)()).await {
        Ok(Ok(registry)) => {
            let mut text = String::new();
            match prometheus_text::encode(&mut text, &registry) {
                Ok(()) => ([(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], text).into_response(),
                Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "the metrics could not be encoded\n").into_response(),
            }
        }
        Ok(Err(why)) => unavailable(why),
        Err(_) => unavailable(format!("the figures took longer than {} s", SCRAPE_TIMEOUT.as_secs())),
    }
}

fn unavailable(why: String) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], format!("{why}\n")).into_response()
}

/// A registry whose metrics are named `eccluster_…` and carry `labels`.
pub fn registry(labels: &[(&'static str, String)]) -> Registry {
    Registry::with_prefix_and_labels("eccluster", labels.iter().map(|(k, v)| ((*k).into(), v.clone().into())))
}
