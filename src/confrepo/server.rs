//! `ecconfigd`: the repository store served over HTTPS (axum on axum-server with rustls),
//! every request authenticated with HTTP basic auth against the users file.
//!
//! A login is checked against the users file, read again for every request (so adding a user
//! needs no restart); one that verified lately is taken from [`LoginCache`] instead of paying
//! the Argon2id check again.
//!
//! Bounds: request bodies up to [`MAX_REQUEST_BYTES`], files up to [`MAX_FILE_BYTES`], at most
//! [`MAX_JOBS`] blocking jobs (git, Argon2) at once — further requests wait for a place rather
//! than start threads without limit — a TLS handshake must finish within 10 s and a request's
//! headers within [`HEADER_TIMEOUT`].
//!
//! With `--announce`, the managers are told the newest revision of every repository at start,
//! after every commit and rollback, and periodically (`announce.rs`); a commit never waits
//! for it.
//!
//! State, all under one directory: `repos/NAME.git`, `users`, `tls/ecconfigd.{pem,key}`, and
//! `ecconfigd.lock`, held while the server runs so that two servers never share a store. When
//! `cluster.boot` is in that directory (the node is part of a cluster that boots together),
//! start-up retries for up to a minute while the address cannot be bound (the port busy, the
//! address not up yet).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::metrics::configd::{ConfigdCounters, ConfigdSource};
use crate::metrics::MetricsListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::announce::{AnnounceConfig, Heads};
use super::cert;
use super::login::{LoginCache, LOGIN_TTL, MAX_LOGINS};
use super::store::{Store, StoreError};
use super::users::{Users, Verdict};
use super::wire::{
    CommitRequest, ErrorBody, ErrorKind, RollbackRequest, MAX_FILE_BYTES, MAX_REQUEST_BYTES,
};

/// Default port of ecconfigd.
pub const DEFAULT_PORT: u16 = 2027;
/// Most blocking jobs (git operations, password checks) running at once.
pub const MAX_JOBS: usize = 8;
/// How long start-up retries when `cluster.boot` exists.
pub const BOOT_RETRY: Duration = Duration::from_secs(60);
/// How long a client may take to send a request's headers (also bounds idle connections).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// The basic-auth realm.
pub const REALM: &str = "ecconfigd repo";

/// What `ecconfigd` serves and where.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The state directory.
    pub state_dir: PathBuf,
    /// Names for the certificate made at first start (besides the listen address and loopback).
    pub hostnames: Vec<String>,
    /// Repositories to create if missing (besides `global` and `default`).
    pub subclusters: Vec<String>,
    /// The managers told of every new revision (`--announce`).
    pub announce: AnnounceConfig,
    /// Where to serve Prometheus metrics (`--metrics`), if anywhere.
    pub metrics: Option<SocketAddr>,
}

/// The users file of a state directory.
pub fn users_path(state_dir: &Path) -> PathBuf {
    state_dir.join("users")
}

/// The names the certificate is made for.
pub fn certificate_names(config: &ServerConfig) -> Vec<String> {
    let mut names = config.hostnames.clone();
    if let Ok(host) = nix::unistd::gethostname() {
        if let Some(host) = host.to_str().filter(|h| !h.is_empty()) {
            names.push(host.to_owned());
        }
    }
    names.push("localhost".into());
    if !config.listen.ip().is_unspecified() {
        names.push(config.listen.ip().to_string());
    }
    names.push("127.0.0.1".into());
    names.push("::1".into());
    let mut unique = Vec::new();
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    unique
}

struct App {
    store: Store,
    users_path: PathBuf,
    jobs: Semaphore,
    /// Logins that verified lately (see `login.rs`).
    logins: LoginCache,
    /// The newest revisions, raised after each commit and rollback for the announcers.
    heads: Heads,
    /// Commits, rollbacks, refusals, failed logins (for the metrics).
    counters: Arc<ConfigdCounters>,
}

type Shared = Arc<App>;

/// An error answer (boxed: it travels in every handler's `Result`).
struct Refusal(StatusCode, Box<ErrorBody>);

impl Refusal {
    fn new(status: StatusCode, kind: ErrorKind, error: impl Into<String>) -> Refusal {
        Refusal(status, Box::new(ErrorBody { kind, error: error.into(), conflict: None, invalid: None }))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(*self.1)).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            if let Ok(value) = format!("Basic realm=\"{REALM}\"").parse() {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Refusal {
        let text = error.to_string();
        match error {
            StoreError::NoSuchRepo(..) | StoreError::NoSuchRevision { .. } => {
                Refusal::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, text)
            }
            StoreError::Conflict(detail) => {
                let mut r = Refusal::new(StatusCode::CONFLICT, ErrorKind::Conflict, text);
                r.1.conflict = Some(detail);
                r
            }
            StoreError::Invalid(detail) => {
                let mut r = Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorKind::InvalidConfig, text);
                r.1.invalid = Some(detail);
                r
            }
            StoreError::BadRequest(_) => Refusal::new(StatusCode::BAD_REQUEST, ErrorKind::BadRequest, text),
            StoreError::Git { .. } | StoreError::Io { .. } => {
                tracing::error!(error = %text, "repository operation failed");
                Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::Internal, text)
            }
        }
    }
}

/// Runs `job` on a blocking thread once one of the [`MAX_JOBS`] places is free.
async fn blocking<T: Send + 'static>(
    app: &Shared,
    job: impl FnOnce(&App) -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    let _place = app
        .jobs
        .acquire()
        .await
        .map_err(|_| Refusal::new(StatusCode::SERVICE_UNAVAILABLE, ErrorKind::Internal, "ecconfigd is shutting down"))?;
    let app = app.clone();
    tokio::task::spawn_blocking(move || job(&app)).await.map_err(|error| {
        Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::Internal, format!("a job failed: {error}"))
    })?
}

/// The authenticated user of a request.
#[derive(Clone)]
struct User(String);

fn credentials(headers: &HeaderMap) -> Result<(String, String), Refusal> {
    let unauthenticated = |why: &str| Refusal::new(StatusCode::UNAUTHORIZED, ErrorKind::Unauthenticated, why);
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthenticated("authentication required (HTTP basic, user and password)"))?;
    let encoded = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(|| unauthenticated("only HTTP basic authentication is accepted"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| unauthenticated("malformed basic authentication header"))?;
    let (user, password) =
        decoded.split_once(':').ok_or_else(|| unauthenticated("malformed basic authentication header"))?;
    Ok((user.to_owned(), password.to_owned()))
}

async fn authenticate(State(app): State<Shared>, mut request: Request, next: Next) -> Response {
    let (user, password) = match credentials(request.headers()) {
        Ok(c) => c,
        Err(refusal) => return refusal.into_response(),
    };
    let name = user.clone();
    let verdict = blocking(&app, move |app| {
        let users = Users::load(&app.users_path).map_err(|error| {
            tracing::error!(%error, "cannot read the users file");
            Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::Internal, format!("cannot read the users file: {error}"))
        })?;
        Ok(app.logins.verify(&users, &name, &password, std::time::Instant::now()))
    })
    .await
    .map(|checked| {
        tracing::debug!(user = %user.escape_debug(), verdict = ?checked.verdict, cached = checked.cached, "login checked");
        checked.verdict
    });
    match verdict {
        Ok(Verdict::Accepted) => {
            request.extensions_mut().insert(User(user));
            next.run(request).await
        }
        Ok(Verdict::UnknownUser) => {
            ConfigdCounters::count(&app.counters.logins_failed);
            tracing::warn!(user = %user.escape_debug(), "refused: unknown user");
            Refusal::new(StatusCode::UNAUTHORIZED, ErrorKind::UnknownUser, format!("unknown user '{}'", user.escape_debug()))
                .into_response()
        }
        Ok(Verdict::WrongPassword) => {
            ConfigdCounters::count(&app.counters.logins_failed);
            tracing::warn!(%user, "refused: wrong password");
            Refusal::new(StatusCode::UNAUTHORIZED, ErrorKind::WrongPassword, format!("wrong password for user '{user}'"))
                .into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
}

fn bad_json(rejection: JsonRejection) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, ErrorKind::BadRequest, format!("malformed request: {}", rejection.body_text()))
}

async fn heads(State(app): State<Shared>) -> Result<Response, Refusal> {
    let heads = blocking(&app, |app| Ok(app.store.heads()?)).await?;
    Ok(Json(heads).into_response())
}

#[derive(Deserialize)]
struct SnapshotQuery {
    rev: Option<u64>,
    dirs: Option<String>,
}

async fn snapshot(
    State(app): State<Shared>,
    UrlPath(repo): UrlPath<String>,
    Query(query): Query<SnapshotQuery>,
) -> Result<Response, Refusal> {
    let dirs: Option<Vec<String>> = query.dirs.map(|d| d.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect());
    let snap = blocking(&app, move |app| Ok(app.store.snapshot(&repo, query.rev, dirs.as_deref())?)).await?;
    Ok(Json(snap).into_response())
}

#[derive(Deserialize)]
struct LogQuery {
    limit: Option<usize>,
}

async fn log(
    State(app): State<Shared>,
    UrlPath(repo): UrlPath<String>,
    Query(query): Query<LogQuery>,
) -> Result<Response, Refusal> {
    let entries = blocking(&app, move |app| Ok(app.store.log(&repo, query.limit.unwrap_or(20))?)).await?;
    Ok(Json(entries).into_response())
}

async fn commit(
    State(app): State<Shared>,
    Extension(User(user)): Extension<User>,
    body: Result<Json<CommitRequest>, JsonRejection>,
) -> Result<Response, Refusal> {
    let Json(request) = body.map_err(bad_json)?;
    let done = blocking(&app, move |app| Ok(app.store.commit(&user, &request)?))
        .await
        .inspect_err(|_| ConfigdCounters::count(&app.counters.commits_refused))?;
    if !done.committed.is_empty() {
        ConfigdCounters::count(&app.counters.commits);
    }
    app.heads.raise(&done.committed);
    Ok(Json(done).into_response())
}

async fn rollback(
    State(app): State<Shared>,
    Extension(User(user)): Extension<User>,
    UrlPath(repo): UrlPath<String>,
    body: Result<Json<RollbackRequest>, JsonRejection>,
) -> Result<Response, Refusal> {
    let Json(request) = body.map_err(bad_json)?;
    let done = blocking(&app, move |app| Ok(app.store.rollback(&user, &repo, &request)?))
        .await
        .inspect_err(|_| ConfigdCounters::count(&app.counters.commits_refused))?;
    if !done.committed.is_empty() {
        ConfigdCounters::count(&app.counters.rollbacks);
    }
    app.heads.raise(&done.committed);
    Ok(Json(done).into_response())
}

async fn not_found() -> Refusal {
    Refusal::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, "no such route (ecconfigd serves /v1/…)")
}

fn router(app: Shared) -> Router {
    Router::new()
        .route("/v1/repos", get(heads))
        .route("/v1/repos/{repo}/snapshot", get(snapshot))
        .route("/v1/repos/{repo}/log", get(log))
        .route("/v1/repos/{repo}/rollback", post(rollback))
        .route("/v1/commit", post(commit))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(app)
}

/// Holds `STATE/ecconfigd.lock` while the server runs.
fn lock_state_dir(dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let path = dir.join("ecconfigd.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        anyhow::anyhow!("{} is locked ({errno}): another ecconfigd serves this state directory", path.display())
    })
}

/// Binds `addr`, retrying for [`BOOT_RETRY`] when `retry` (cluster.boot exists).
async fn bind(addr: SocketAddr, retry: bool) -> Result<std::net::TcpListener> {
    let deadline = tokio::time::Instant::now() + BOOT_RETRY;
    loop {
        match std::net::TcpListener::bind(addr) {
            Ok(listener) => {
                listener.set_nonblocking(true).context("making the listener non-blocking")?;
                return Ok(listener);
            }
            Err(error) if retry && tokio::time::Instant::now() < deadline => {
                tracing::warn!(%addr, %error, "cannot listen yet; cluster.boot exists, so retrying for up to a minute");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) if retry => bail!("cannot listen on {addr}: {error} (retried for a minute because cluster.boot exists)"),
            Err(error) => bail!("cannot listen on {addr}: {error}"),
        }
    }
}

/// Runs ecconfigd until `shutdown` completes. `ready` is called with the bound address and the
/// key fingerprint once it accepts connections.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(SocketAddr, &str),
) -> Result<()> {
    let state = &config.state_dir;
    std::fs::create_dir_all(state).with_context(|| format!("creating {}", state.display()))?;
    let _lock = lock_state_dir(state)?;
    let repos = state.join("repos");
    let subclusters = config.subclusters.clone();
    let (store, heads) = tokio::task::spawn_blocking(move || {
        let store = Store::open(&repos, &subclusters)?;
        let heads = store.heads()?;
        Ok::<_, StoreError>((store, heads))
    })
    .await
    .context("opening the repositories")??;
    if cert::ensure(state, &certificate_names(&config))? {
        tracing::warn!(path = %cert::paths(state).0.display(), "made a self-signed certificate, valid one year");
    }
    let identity = cert::load_server(state)?;
    let left = identity.not_after - time::OffsetDateTime::now_utc();
    if left.is_negative() {
        tracing::error!(expired = %identity.not_after, "the certificate has expired: run `ecconfigd renew-cert`");
    } else if left < cert::RENEW_WARNING {
        tracing::warn!(expires = %identity.not_after, "the certificate expires within 30 days: run `ecconfigd renew-cert`");
    }
    let users = users_path(state);
    match Users::load(&users) {
        Ok(u) if u.names().next().is_none() => {
            tracing::warn!(path = %users.display(), "no users yet: add one with `ecconfigd user add NAME`")
        }
        Ok(_) => {}
        Err(error) => bail!("{error}"),
    }
    let retry = state.join("cluster.boot").exists();
    let listener = bind(config.listen, retry).await?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let logins = LoginCache::new(LOGIN_TTL, MAX_LOGINS).map_err(|_| anyhow::anyhow!("the system random source failed"))?;
    let heads = Heads::new(&heads);
    // The announcers stop when this function returns, however it returns.
    let announcers = TaskTracker::new();
    let stop_announcing = CancellationToken::new();
    let _stop_announcing = stop_announcing.clone().drop_guard();
    heads.announce(&config.announce, &announcers, &stop_announcing);
    let counters = Arc::new(ConfigdCounters::default());
    if let Some(listen) = config.metrics {
        let metrics = MetricsListener::bind(listen, "--metrics").await?;
        let source = ConfigdSource { counters: counters.clone(), heads: heads.subscribe(), started: std::time::Instant::now() };
        let scrape: crate::metrics::Scrape = Arc::new(move || {
            let registry = source.registry();
            Box::pin(async move { Ok(registry) })
        });
        let stop = stop_announcing.clone();
        announcers.spawn(async move {
            if let Err(error) = metrics.serve(scrape, stop).await {
                tracing::error!(error = %format!("{error:#}"), "metrics listener failed");
            }
        });
    }
    announcers.close();
    let app = Arc::new(App { store, users_path: users, jobs: Semaphore::new(MAX_JOBS), logins, heads, counters });
    let handle = axum_server::Handle::new();
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(identity.config));
    let mut server = axum_server::from_tcp_rustls(listener, tls).context("serving the listener")?.handle(handle.clone());
    // A client that connects and then sends no request is disconnected (idle or slow clients
    // cannot hold connections open forever).
    server.http_builder().http1().header_read_timeout(Some(HEADER_TIMEOUT));
    let server = server.serve(router(app).into_make_service());
    tracing::info!(%addr, fingerprint = %identity.fingerprint, max_file_kib = MAX_FILE_BYTES >> 10, "ecconfigd listening");
    for socket in &config.announce.sockets {
        tracing::info!(socket = %socket.display(), every_secs = config.announce.interval.as_secs_f64(), "announcing new revisions to a manager");
    }
    ready(addr, &identity.fingerprint);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.context("serving"),
        () = shutdown => {
            tracing::info!("shutting down: finishing the requests under way (up to 5 s)");
            handle.graceful_shutdown(Some(Duration::from_secs(5)));
            stop_announcing.cancel();
        }
    }
    let served = server.await.context("serving");
    if tokio::time::timeout(Duration::from_secs(1), announcers.wait()).await.is_err() {
        tracing::warn!("an announcement did not stop in time; leaving it");
    }
    served
}
