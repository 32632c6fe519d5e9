//! Who may use a console and what they may run: the [`Gate`] a listener puts in front of its
//! sessions (login, authorization, audit) and the [`Peer`] a session comes from.
//!
//! - Authentication: a session's user is known from the start when its listener does not ask
//!   for a login (the unix socket: the peer's OS user name from `SO_PEERCRED`) or when its
//!   TLS client certificate names it; otherwise the session logs in with a login frame
//!   (`frame.rs`), checked by [`Logins`] against the users file of `AuthLoginParameters`
//!   (`NAME:$argon2id$…` lines, the format of `eccluster console-user add`), read at every
//!   login so a change needs no restart. An unknown user and a wrong password get the same
//!   answer and cost the same time; repeated failures from one source are answered more and
//!   more slowly ([`Throttle`]).
//! - Authorization (`authz.rs`) and the audit log (`audit.rs`).
//!
//! No sockets here: the listener hands each request to [`Gate`] methods.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::Argon2;
use rustls::pki_types::CertificateDer;
use tracing::{info, warn};

use super::audit::{Audit, Outcome};
use super::authz::Authorization;
use super::frame::Reply;
use crate::confrepo::users::{Users, Verdict};

/// Where a session comes from and who it is.
#[derive(Debug, Clone)]
pub struct Peer {
    /// For logs and the audit log: `127.0.0.1:50312`, or `unix:/tmp/2025 uid=1000`.
    pub from: String,
    /// The source address of a TCP session (what login failures are throttled by).
    pub ip: Option<IpAddr>,
    /// The session's user, once known.
    pub user: Option<String>,
}

impl Peer {
    /// A peer known only by `from`.
    pub fn unknown(from: impl Into<String>) -> Peer {
        Peer { from: from.into(), ip: None, user: None }
    }
}

/// The checks one listener applies to its sessions. [`Gate::open`] checks nothing.
#[derive(Debug, Clone)]
pub struct Gate {
    /// A session must have a user (a login, or a client certificate) before any command.
    pub authenticate: bool,
    /// Passwords for logins; `None`: this listener takes no password logins.
    pub logins: Option<Arc<Logins>>,
    /// Which commands a user may run; `None`: every command.
    pub authorization: Option<Arc<Authorization>>,
    /// Where commands are recorded.
    pub audit: Arc<Audit>,
}

impl Gate {
    /// No login, no authorization; commands recorded to the `audit` tracing target only.
    pub fn open() -> Gate {
        Gate { authenticate: false, logins: None, authorization: None, audit: Arc::new(Audit::tracing_only()) }
    }

    /// Answers a login frame for `user` with `password`, setting `peer.user` on success.
    pub async fn login(&self, peer: &mut Peer, user: &str, password: &str) -> Reply {
        let started = Instant::now();
        if let Some(current) = &peer.user {
            return Reply::failed(format!("already logged in as {current}"));
        }
        let Some(logins) = self.logins.as_ref().filter(|_| self.authenticate) else {
            return if self.authenticate {
                Reply::failed("this console takes no password logins (no AuthLoginParameters); use a client certificate")
            } else {
                Reply::ok("this console needs no login")
            };
        };
        let shown = user.escape_debug().to_string();
        if logins.check(user, password, peer.ip).await {
            info!(user = %shown, from = %peer.from, "console login");
            self.audit.record(Some(user), &peer.from, "login", Outcome::Ok, started.elapsed());
            peer.user = Some(user.to_owned());
            Reply::ok(format!("logged in as {shown}"))
        } else {
            warn!(user = %shown, from = %peer.from, "console login failed");
            self.audit.record(Some(&shown), &peer.from, "login", Outcome::Denied, started.elapsed());
            Reply::failed(format!("login failed for user {shown}"))
        }
    }

    /// Whether the session's user may run `line`; the refusal, logged and audited, if not.
    pub fn authorize(&self, peer: &Peer, line: &str, words: &[String]) -> Result<(), Reply> {
        let Some(authorization) = &self.authorization else { return Ok(()) };
        let user = peer.user.as_deref().unwrap_or("-");
        authorization.check(user, line, words).map_err(|refusal| {
            warn!(user, from = %peer.from, command = line, "console command denied");
            self.audit.record(Some(user), &peer.from, line, Outcome::Denied, Duration::ZERO);
            Reply::failed(refusal)
        })
    }
}

/// The password check of one daemon: the users file and the throttle of failures.
#[derive(Debug)]
pub struct Logins {
    users_file: PathBuf,
    /// A hash no password was made for, checked for unknown users so that they cost the same
    /// time as a wrong password.
    decoy: String,
    throttle: Throttle,
}

impl Logins {
    /// Checks that `users_file` reads, and makes the decoy hash.
    pub fn new(users_file: PathBuf) -> anyhow::Result<Logins> {
        Users::load(&users_file)?;
        let salt = SaltString::generate(&mut OsRng);
        let decoy = Argon2::default()
            .hash_password(b"no user has this password", &salt)
            .map_err(|error| anyhow::anyhow!("making the decoy password hash: {error}"))?
            .to_string();
        Ok(Logins { users_file, decoy, throttle: Throttle::default() })
    }

    /// Whether `password` is `user`'s: after the throttle's delay for `ip`, on a blocking
    /// thread (Argon2id is slow by design).
    pub async fn check(self: &Arc<Self>, user: &str, password: &str, ip: Option<IpAddr>) -> bool {
        let delay = ip.map(|ip| self.throttle.delay(ip, Instant::now())).unwrap_or_default();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let (this, user, password) = (self.clone(), user.to_owned(), password.to_owned());
        let verdict = tokio::task::spawn_blocking(move || this.verify(&user, &password)).await;
        let accepted = matches!(verdict, Ok(Verdict::Accepted));
        if let Some(ip) = ip {
            self.throttle.outcome(ip, accepted, Instant::now());
        }
        accepted
    }

    fn verify(&self, user: &str, password: &str) -> Verdict {
        let users = match Users::load(&self.users_file) {
            Ok(users) => users,
            Err(error) => {
                warn!(%error, "cannot read the console users file; refusing the login");
                return Verdict::WrongPassword;
            }
        };
        match users.verify(user, password) {
            Verdict::UnknownUser => {
                if let Ok(decoy) = PasswordHash::new(&self.decoy) {
                    // Same cost as a wrong password; the result is known to be a refusal.
                    let _same_cost = Argon2::default().verify_password(password.as_bytes(), &decoy).is_ok();
                }
                Verdict::UnknownUser
            }
            verdict => verdict,
        }
    }
}

/// Failed logins per source address: the `n`th consecutive failure makes the next attempt
/// wait `FIRST_DELAY * 2^(n-1)`, at most [`Throttle::MAX_DELAY`]; a success, or
/// [`Throttle::FORGET`] without failures, clears the count. At most [`Throttle::CAPACITY`]
/// sources are remembered (the oldest go first).
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Throttle {
    const FIRST_DELAY: Duration = Duration::from_millis(200);
    /// The longest wait before a login is checked.
    pub const MAX_DELAY: Duration = Duration::from_secs(5);
    const FORGET: Duration = Duration::from_secs(900);
    const CAPACITY: usize = 4096;

    /// How long the next login from `ip` waits.
    pub fn delay(&self, ip: IpAddr, now: Instant) -> Duration {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        match failures.get(&ip) {
            Some(&(count, last)) if count > 0 && now.saturating_duration_since(last) < Self::FORGET => {
                Self::FIRST_DELAY.saturating_mul(1 << (count - 1).min(10)).min(Self::MAX_DELAY)
            }
            _ => Duration::ZERO,
        }
    }

    /// Counts a login from `ip`.
    pub fn outcome(&self, ip: IpAddr, accepted: bool, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if accepted {
            failures.remove(&ip);
            return;
        }
        if failures.len() >= Self::CAPACITY && !failures.contains_key(&ip) {
            failures.retain(|_, (_, last)| now.saturating_duration_since(*last) < Self::FORGET);
            if failures.len() >= Self::CAPACITY {
                if let Some(oldest) = failures.iter().min_by_key(|(_, (_, last))| *last).map(|(ip, _)| *ip) {
                    failures.remove(&oldest);
                }
            }
        }
        let entry = failures.entry(ip).or_insert((0, now));
        *entry = (entry.0.saturating_add(1), now);
    }
}

/// `eccluster console-user add`: sets `name`'s password in the users file `file` (created
/// owner-only if missing), from `password_file` or the terminal.
pub fn add_user(file: &std::path::Path, name: &str, password_file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let mut users = Users::load(file)?;
    let password = crate::confrepo::users::new_password(name, password_file)?;
    let existed = users.contains(name);
    users.set(name, &password)?;
    users.save(file)?;
    crate::say!("{} console user {name} in {}.", if existed { "Updated" } else { "Added" }, file.display())?;
    Ok(())
}

/// The user a client certificate names: its first DNS subject alternative name, else its
/// common name.
pub fn certificate_user(cert: &CertificateDer<'_>) -> Option<String> {
    if let Ok(name) = crate::tls::certificate_name(cert) {
        return Some(name);
    }
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?.as_str().ok()?.to_owned();
    (!cn.is_empty()).then_some(cn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_from_one_source_wait_longer_and_a_success_clears_them() {
        let throttle = Throttle::default();
        let (a, b): (IpAddr, IpAddr) = ([127, 45, 0, 1].into(), [127, 45, 0, 2].into());
        let now = Instant::now();
        assert_eq!(throttle.delay(a, now), Duration::ZERO);
        throttle.outcome(a, false, now);
        assert_eq!(throttle.delay(a, now), Duration::from_millis(200));
        throttle.outcome(a, false, now);
        assert_eq!(throttle.delay(a, now), Duration::from_millis(400));
        for _ in 0..20 {
            throttle.outcome(a, false, now);
        }
        assert_eq!(throttle.delay(a, now), Throttle::MAX_DELAY);
        assert_eq!(throttle.delay(b, now), Duration::ZERO, "another source is not slowed");
        assert_eq!(throttle.delay(a, now + Throttle::FORGET), Duration::ZERO, "forgotten after a while");
        throttle.outcome(a, true, now);
        assert_eq!(throttle.delay(a, now), Duration::ZERO);
    }
}
