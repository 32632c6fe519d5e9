//! The configuration repository: `ecconfigd` (the server on the manager) and `eccfg` (its
//! client, and the working copies of nodes and operators).
//!
//! Configuration lives in versioned git repositories, one per subcluster plus `global`,
//! served over HTTPS with basic authentication. A node's working copy holds `global/` (the
//! global repository), `default/` and `<node>/` (its subcluster's repository); it is brought to
//! the newest revisions by [`wc::pull`], which replaces the copy whole, and changed by
//! [`wc::commit`], which the server accepts only on the newest revision.
//!
//! # Layout
//!
//! - `boot.rs` — `cluster.boot`: how a node follows the repository.
//! - `path.rs` — the naming rules every path and name passes (no traversal).
//! - `wire.rs` — the HTTP API: routes, bodies, bounds.
//! - `store.rs` — the git repositories, revision numbers, the no-lost-commit rule, validation.
//! - `users.rs` — the users file (Argon2id hashes).
//! - `login.rs` — the logins that verified lately, so that a burst of requests pays one
//!   Argon2id check per user, not one per request.
//! - `cert.rs` — the server's self-signed certificate and the client's trust.
//! - `server.rs` — ecconfigd's HTTPS server.
//! - `announce.rs` — telling the managers (their consoles) the newest revisions.
//! - `client.rs` — the HTTPS client and its errors.
//! - `wc/` — working copies: metadata, local changes, merge, atomic swap, the operations.
//! - `ecconfigd.rs`, `eccfg.rs` — the two command lines turned into actions and output.
//! - `local.rs` — ecconfigd, its users and working copies under `eccluster local up`.
//! - `stop_point.rs` — where tests freeze a process to kill it at an exact moment.

pub mod announce;
pub mod boot;
pub mod cert;
pub mod client;
pub mod eccfg;
pub mod ecconfigd;
pub mod local;
pub mod login;
pub mod path;
pub mod server;
pub mod stop_point;
pub mod store;
pub mod users;
pub mod wc;
pub mod wire;
