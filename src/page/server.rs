//! The cluster page's HTTPS server: axum on axum-server with rustls. Serves the login form,
//! the page, its stylesheet and script (compiled in: nothing is fetched from elsewhere), the
//! data as JSON (`/data`) and as server-sent events (`/events`).
//!
//! Logins are checked against the users file, read again at each login (adding a user needs
//! no restart), with Argon2id on a blocking thread, at most [`MAX_CHECKS`] at once; an unknown
//! user costs the same check as a wrong password and gets the same answer. A failed login is
//! logged with the peer's address, and a source that fails too often is refused for a while
//! ([`super::session::Throttle`]). The password travels only in a POST body.
//!
//! Bounds: request bodies of [`MAX_BODY`], request headers within [`HEADER_TIMEOUT`],
//! [`MAX_STREAMS`] event streams at once, [`super::session::MAX_SESSIONS`] sessions. Events are
//! rendered once by one task ([`hub`]) and shared by every stream: a browser costs a copy.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::chart::History;
use super::session::{self, Sessions, Throttle};
use super::snapshot::Snapshot;
use crate::confrepo::users::{Users, Verdict};

/// Largest request body (the login form).
pub const MAX_BODY: usize = 8 * 1024;
/// Event streams open at once; one more is refused (503).
pub const MAX_STREAMS: usize = 32;
/// Password checks (Argon2id, about 55 ms of a core each) running at once; more wait.
pub const MAX_CHECKS: usize = 2;
/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// An event is sent at least this often, changed or not (charts move on, clients see life).
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How often the history behind the charts is sampled.
pub const SAMPLE: Duration = Duration::from_secs(1);

const LOGIN_HTML: &str = include_str!("assets/login.html");
const PAGE_HTML: &str = include_str!("assets/page.html");
const PAGE_CSS: &str = include_str!("assets/page.css");
const PAGE_JS: &str = include_str!("assets/page.js");

/// What the server is handed at start.
pub struct Serve {
    /// The bound listener.
    pub listener: std::net::TcpListener,
    /// HTTPS.
    pub tls: Arc<rustls::ServerConfig>,
    /// The users file.
    pub users: PathBuf,
    /// Snapshots from the daemon loop.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
}

struct App {
    users: PathBuf,
    sessions: Sessions,
    throttle: Throttle,
    checks: Semaphore,
    streams: Arc<Semaphore>,
    /// The latest event (JSON), from [`hub`].
    events: watch::Receiver<Arc<str>>,
    /// A hash the password of an unknown user is checked against, so that it costs the same
    /// time as a wrong password.
    decoy: Users,
    shutdown: CancellationToken,
}

type Shared = Arc<App>;

/// Serves the page in tasks of `tracker` until `shutdown`.
pub fn spawn(serve: Serve, tracker: &TaskTracker, shutdown: CancellationToken) -> Result<()> {
    let Serve { listener, tls, users, snapshots } = serve;
    let mut decoy = Users::default();
    decoy.set("decoy", &random_text()?).context("making the decoy password hash")?;
    let (events_tx, events) = watch::channel::<Arc<str>>(Arc::from(render(&Snapshot::default(), &History::default())));
    tracker.spawn(hub(snapshots, events_tx, shutdown.clone()));
    let app = Arc::new(App {
        users,
        sessions: Sessions::new(),
        throttle: Throttle::new(),
        checks: Semaphore::new(MAX_CHECKS),
        streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        events,
        decoy,
        shutdown: shutdown.clone(),
    });
    let handle = axum_server::Handle::new();
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(tls);
    let mut server = axum_server::from_tcp_rustls(listener, tls).context("serving the page's listener")?.handle(handle.clone());
    server.http_builder().http1().header_read_timeout(Some(HEADER_TIMEOUT));
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    tracker.spawn(async move {
        let served = server.serve(service);
        tokio::pin!(served);
        tokio::select! {
            result = &mut served => {
                if let Err(error) = result {
                    tracing::error!(%error, "the cluster page stopped serving");
                }
                return;
            }
            () = shutdown.cancelled() => handle.graceful_shutdown(Some(Duration::from_secs(1))),
        }
        if let Err(error) = served.await {
            tracing::warn!(%error, "the cluster page's server ended with an error");
        }
    });
    Ok(())
}

fn random_text() -> Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| anyhow::anyhow!("the system random source failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/data", get(data))
        .route("/events", get(events))
        .route("/page.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], PAGE_CSS) }))
        .route("/page.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], PAGE_JS) }))
        .layer(axum::middleware::map_response(secure_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

/// Headers on every answer: only this origin's scripts, styles and images (charts come as
/// data: URLs), never in a frame, no caching of pages that show the cluster.
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The session's user, if the request carries an open session's cookie.
fn session_user(app: &App, headers: &HeaderMap) -> Option<String> {
    let token = cookie_token(headers)?;
    app.sessions.user(token, Instant::now())
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(session::token_of)
}

fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

fn refused() -> Response {
    (StatusCode::UNAUTHORIZED, "log in first: https://this address/login\n").into_response()
}

/// The login form with `message` (one of ours, never the client's text) shown above it.
fn login_page(status: StatusCode, message: &str) -> Response {
    let body = LOGIN_HTML.replace("<!--message-->", &format!("<p class=\"message\" id=\"message\">{message}</p>"));
    (status, Html(body)).into_response()
}

async fn index(State(app): State<Shared>, headers: HeaderMap) -> Response {
    match session_user(&app, &headers) {
        Some(_) => Html(PAGE_HTML).into_response(),
        None => see_other("/login"),
    }
}

async fn login_form() -> Response {
    login_page(StatusCode::OK, "")
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    password: String,
}

async fn login(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<LoginForm>,
) -> Response {
    let shown: String = form.user.chars().take(64).collect();
    if let Err(wait) = app.throttle.check(peer.ip(), Instant::now()) {
        tracing::warn!(%peer, user = ?shown, "cluster page login refused: too many failed logins from this address");
        let message = format!("Too many failed logins from your address; try again in {} s.", wait.as_secs().max(1));
        return login_page(StatusCode::TOO_MANY_REQUESTS, &message);
    }
    let Ok(_permit) = app.checks.acquire().await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response();
    };
    let (path, decoy) = (app.users.clone(), app.decoy.clone());
    let LoginForm { user, password } = form;
    let checked = tokio::task::spawn_blocking(move || {
        let users = Users::load(&path)?;
        let verdict = match users.verify(&user, &password) {
            // The same work as a wrong password, so that the time tells nothing.
            Verdict::UnknownUser => {
                decoy.verify("decoy", &password);
                Verdict::UnknownUser
            }
            verdict => verdict,
        };
        Ok::<_, crate::confrepo::users::UsersError>((user, verdict))
    })
    .await;
    let (user, verdict) = match checked {
        Ok(Ok(checked)) => checked,
        Ok(Err(error)) => {
            tracing::error!(%error, "the cluster page cannot read its users file");
            return login_page(StatusCode::INTERNAL_SERVER_ERROR, "The users file cannot be read; see the manager's log.");
        }
        Err(error) => {
            tracing::error!(%error, "a password check failed");
            return login_page(StatusCode::INTERNAL_SERVER_ERROR, "The login could not be checked; see the manager's log.");
        }
    };
    if verdict != Verdict::Accepted {
        app.throttle.failed(peer.ip(), Instant::now());
        let why = if verdict == Verdict::UnknownUser { "unknown user" } else { "wrong password" };
        tracing::warn!(%peer, user = ?shown, why, "cluster page login failed");
        return login_page(StatusCode::UNAUTHORIZED, "Wrong user name or password.");
    }
    let Some(token) = app.sessions.open(&user, Instant::now()) else {
        tracing::error!("the system random source failed; no session opened");
        return login_page(StatusCode::INTERNAL_SERVER_ERROR, "No session could be opened; see the manager's log.");
    };
    tracing::info!(%peer, %user, sessions = app.sessions.len(), "cluster page login");
    let mut response = see_other("/");
    if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(&token)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn logout(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie_token(&headers) {
        app.sessions.close(token);
    }
    let mut response = see_other("/login");
    if let Ok(cookie) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn data(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if session_user(&app, &headers).is_none() {
        return refused();
    }
    let body = app.events.borrow().clone();
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// What one event stream holds: the events, its place among [`MAX_STREAMS`], its session.
struct Stream {
    events: watch::Receiver<Arc<str>>,
    _permit: OwnedSemaphorePermit,
    token: String,
    app: Shared,
    first: bool,
}

async fn events(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if session_user(&app, &headers).is_none() {
        return refused();
    }
    let Some(token) = cookie_token(&headers).map(str::to_owned) else { return refused() };
    let Ok(permit) = app.streams.clone().try_acquire_owned() else {
        tracing::warn!(streams = MAX_STREAMS, "cluster page: an event stream refused, as many are open");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many live streams; try again later\n").into_response();
    };
    let mut events = app.events.clone();
    events.mark_changed();
    let state = Stream { events, _permit: permit, token, app: app.clone(), first: true };
    // Each change is one event; the stream ends when the manager stops or the session closes.
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        if !s.first {
            tokio::select! {
                changed = s.events.changed() => changed.ok()?,
                () = s.app.shutdown.cancelled() => return None,
            }
        }
        s.first = false;
        s.app.sessions.user(&s.token, Instant::now())?;
        let data = s.events.borrow_and_update().clone();
        Some((Ok::<_, Infallible>(Event::default().event("state").data(&*data)), s))
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// Renders an event from each new snapshot and every [`HEARTBEAT`], sampling the history
/// behind the charts every [`SAMPLE`], until `shutdown`.
async fn hub(mut snapshots: watch::Receiver<Arc<Snapshot>>, events: watch::Sender<Arc<str>>, shutdown: CancellationToken) {
    let mut history = History::default();
    let mut sample = tokio::time::interval(SAMPLE);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = snapshots.changed() => if changed.is_err() { return },
            _ = sample.tick() => {
                let latest = snapshots.borrow().clone();
                history.sample(&latest, Instant::now());
                continue;
            }
            _ = heartbeat.tick() => {}
        }
        let latest = snapshots.borrow_and_update().clone();
        events.send_replace(Arc::from(render(&latest, &history)));
    }
}

/// One event: the snapshot, the charts and the time it was made.
fn render(snapshot: &Snapshot, history: &History) -> String {
    let now = Instant::now();
    let at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let event = serde_json::json!({
        "at": at,
        "snapshot": snapshot,
        "charts": { "members": history.members_svg(now), "operations": history.operations_svg(now) },
    });
    event.to_string()
}
