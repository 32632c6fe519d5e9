//! Logins of the cluster page: sessions (a random token in an `HttpOnly; Secure;
//! SameSite=Strict` cookie, bounded in number, expiring when idle and at an absolute age) and
//! the throttle on failed logins per source address. Holds no passwords: a login is checked
//! against the users file by the server ([`super::server`]), which only then opens a session.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

/// Most sessions open at once; the least recently used goes when a login needs room.
pub const MAX_SESSIONS: usize = 256;
/// A session unused this long is closed.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session is closed this long after its login, used or not.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The cookie's name.
pub const COOKIE: &str = "ecpage";

/// Failed logins a source may make at once ...
pub const FAILURE_BURST: u32 = 5;
/// ... and then one per this long.
pub const FAILURE_REFILL: Duration = Duration::from_secs(10);
/// Sources whose failures are remembered (the oldest forgotten first).
pub const MAX_SOURCES: usize = 4096;

struct Session {
    user: String,
    created: Instant,
    used: Instant,
}

/// The open sessions.
pub struct Sessions {
    random: SystemRandom,
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// No session open.
    pub fn new() -> Sessions {
        Sessions { random: SystemRandom::new(), open: Mutex::new(HashMap::new()) }
    }

    /// Opens a session for `user`; its token, or `None` if the system random source failed.
    pub fn open(&self, user: &str, now: Instant) -> Option<String> {
        let mut bytes = [0u8; 32];
        self.random.fill(&mut bytes).ok()?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.len() >= MAX_SESSIONS {
            open.retain(|_, s| live(s, now));
            if open.len() >= MAX_SESSIONS {
                let oldest = open.iter().min_by_key(|(_, s)| s.used).map(|(t, _)| t.clone());
                if let Some(oldest) = oldest {
                    open.remove(&oldest);
                }
            }
        }
        open.insert(token.clone(), Session { user: user.to_owned(), created: now, used: now });
        Some(token)
    }

    /// The user of the session `token`, if it is open (and marks it used).
    pub fn user(&self, token: &str, now: Instant) -> Option<String> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let session = open.get_mut(token)?;
        if !live(session, now) {
            open.remove(token);
            return None;
        }
        session.used = now;
        Some(session.user.clone())
    }

    /// Closes the session `token`.
    pub fn close(&self, token: &str) {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).remove(token);
    }

    /// How many sessions are open (expired ones included until next looked at).
    pub fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// True if none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new()
    }
}

fn live(s: &Session, now: Instant) -> bool {
    now.saturating_duration_since(s.used) < IDLE && now.saturating_duration_since(s.created) < LIFETIME
}

/// The session token in a `Cookie` header, if there is one.
pub fn token_of(cookie_header: &str) -> Option<&str> {
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value of a new session.
pub fn set_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}", LIFETIME.as_secs())
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Failed logins per source address: a token bucket each ([`FAILURE_BURST`], one more every
/// [`FAILURE_REFILL`]). A source with no token left is refused before its password is checked.
pub struct Throttle {
    sources: Mutex<HashMap<IpAddr, Bucket>>,
}

impl Throttle {
    /// Nothing remembered.
    pub fn new() -> Throttle {
        Throttle { sources: Mutex::new(HashMap::new()) }
    }

    fn refill(bucket: &mut Bucket, now: Instant) {
        let earned = now.saturating_duration_since(bucket.at).as_secs_f64() / FAILURE_REFILL.as_secs_f64();
        bucket.tokens = (bucket.tokens + earned).min(f64::from(FAILURE_BURST));
        bucket.at = now;
    }

    /// `Err(wait)` if `source` has used up its failures; it may try again after `wait`.
    pub fn check(&self, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(bucket) = sources.get_mut(&source) else { return Ok(()) };
        Self::refill(bucket, now);
        if bucket.tokens >= 1.0 {
            return Ok(());
        }
        Err(FAILURE_REFILL.mul_f64(1.0 - bucket.tokens))
    }

    /// Counts a failed login of `source`.
    pub fn failed(&self, source: IpAddr, now: Instant) {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        if sources.len() >= MAX_SOURCES && !sources.contains_key(&source) {
            let oldest = sources.iter().min_by_key(|(_, b)| b.at).map(|(ip, _)| *ip);
            if let Some(oldest) = oldest {
                sources.remove(&oldest);
            }
        }
        let bucket = sources.entry(source).or_insert(Bucket { tokens: f64::from(FAILURE_BURST), at: now });
        Self::refill(bucket, now);
        bucket.tokens = (bucket.tokens - 1.0).max(0.0);
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_or_old_and_stay_bounded() {
        let sessions = Sessions::new();
        let t0 = Instant::now();
        let a = sessions.open("admin", t0).unwrap();
        assert_eq!(a.len(), 43);
        assert_eq!(sessions.user(&a, t0 + IDLE / 2).as_deref(), Some("admin"));
        assert_eq!(sessions.user(&a, t0 + IDLE / 2 + IDLE).as_deref(), None, "idle too long");
        let b = sessions.open("admin", t0).unwrap();
        let mut t = t0;
        while t < t0 + LIFETIME {
            assert!(sessions.user(&b, t).is_some());
            t += IDLE / 2;
        }
        assert!(sessions.user(&b, t0 + LIFETIME).is_none(), "too old");
        for i in 0..MAX_SESSIONS + 10 {
            sessions.open("admin", t0 + Duration::from_millis(i as u64)).unwrap();
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert_eq!(token_of("a=b; ecpage=xyz; c=d"), Some("xyz"));
        assert_eq!(token_of("ecpage="), None);
    }

    #[test]
    fn a_source_is_refused_after_its_burst_of_failures_and_earns_tries_back() {
        let throttle = Throttle::new();
        let (ip, other): (IpAddr, IpAddr) = ("127.48.0.9".parse().unwrap(), "127.48.0.10".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..FAILURE_BURST {
            assert!(throttle.check(ip, t0).is_ok());
            throttle.failed(ip, t0);
        }
        let wait = throttle.check(ip, t0).unwrap_err();
        assert_eq!(wait, FAILURE_REFILL);
        assert!(throttle.check(other, t0).is_ok());
        assert!(throttle.check(ip, t0 + FAILURE_REFILL).is_ok());
    }
}
