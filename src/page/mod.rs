//! The cluster page: a live status page of the cluster served by `eccmgr` over HTTPS
//! (`Cluster_Page { }`, [`config`]). Operators log in with the console's users; the page shows
//! membership by subcluster, the DuraVIP bindings, the latest ordered operations with each
//! node's answer and the configuration revisions, pushed to the browser as server-sent events
//! when they change and every few seconds besides, with charts drawn on the server.
//!
//! # Layout
//! - [`config`]: reading `Cluster_Page { }`.
//! - [`snapshot`]: the data, taken from the node core by the daemon loop ([`Publisher`]).
//! - [`chart`]: the history of snapshots and its SVG charts (plotters).
//! - [`session`]: sessions and the throttle on failed logins.
//! - [`server`]: HTTPS (axum on axum-server with rustls), login, the event stream; its HTML,
//!   CSS and script are in `assets/`, compiled into the binary.
//!
//! The daemon loop only builds snapshots; the server never touches the node core.

pub mod chart;
pub mod config;
pub mod server;
pub mod session;
pub mod snapshot;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::PrivateKeyDer;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::config::PageConfig;
pub use self::snapshot::{Publisher, Snapshot};
use crate::confrepo::users::Users;
use crate::tls::TlsIdentity;

/// The HTTPS configuration of the page and the SHA-256 of its certificate's public key: the
/// files of `TLS_Certificate`/`TLS_Key`, else the manager's cluster certificate.
pub fn tls(config: &PageConfig, identity: &TlsIdentity) -> Result<(rustls::ServerConfig, String)> {
    match &config.tls {
        None => Ok((identity.https_server_config()?, identity.spki_sha256()?)),
        Some((cert, key)) => {
            let chain = crate::tls::read_pem_certs(cert)?;
            let key = read_key(key)?;
            let spki = crate::tls::spki_sha256(&chain[0]).with_context(|| cert.display().to_string())?;
            let tls = crate::tls::https_server_config(chain, key)
                .with_context(|| format!("{} and {}", cert.display(), config::SCOPE))?;
            Ok((tls, spki))
        }
    }
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let text = crate::config::read_regular_file(path, 1 << 20).with_context(|| format!("reading {}", path.display()))?;
    rustls_pemfile::private_key(&mut text.as_slice())
        .with_context(|| format!("{}: bad PEM", path.display()))?
        .with_context(|| format!("{}: no private key in it", path.display()))
}

/// Starts the page of the manager whose identity is `identity`: checks the users file (it must
/// exist; an empty one is only warned about), binds
/// the address (an error names it), and serves until `shutdown`, in tasks of `tracker`. The
/// returned publisher is the daemon loop's end.
pub fn start(
    config: &PageConfig,
    identity: &TlsIdentity,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<Publisher> {
    if !config.users.exists() {
        anyhow::bail!(
            "{}: no such users file (the cluster page's users, named at {}); add one with `ecconfigd user add`",
            config.users.display(),
            config.users_from
        );
    }
    match Users::load(&config.users) {
        Ok(users) if users.names().next().is_none() => tracing::warn!(
            path = %config.users.display(), named = %config.users_from,
            "the cluster page's users file has no users yet: nobody can log in"
        ),
        Ok(_) => {}
        Err(error) => anyhow::bail!("{error} (the cluster page's users, named at {})", config.users_from),
    }
    let (tls, spki) = tls(config, identity)?;
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {} for the cluster page ({})", config.listen, config::SCOPE))?;
    listener.set_nonblocking(true).context("making the page's listener non-blocking")?;
    let addr = listener.local_addr().context("reading the page's address")?;
    let (publisher, snapshots) = Publisher::new();
    server::spawn(
        server::Serve { listener, tls: Arc::new(tls), users: config.users.clone(), snapshots },
        tracker,
        shutdown,
    )?;
    tracing::info!(url = %format!("https://{addr}/"), key_sha256 = %spki, "cluster page listening");
    Ok(publisher)
}

/// Completes when the page's publisher is due to look at the core; never without a page.
pub async fn tick(publisher: &mut Option<Publisher>) {
    match publisher {
        Some(p) => p.tick().await,
        None => std::future::pending().await,
    }
}
