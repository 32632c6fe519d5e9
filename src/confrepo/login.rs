//! Logins that verified lately, so that a burst of requests (every node pulling after a
//! commit) does not pay one Argon2id evaluation each (about 55 ms of a core).
//!
//! An entry is made only for a password that verified against its Argon2id hash, and holds:
//! an HMAC-SHA256 of the user and password under a key made at random for this process (the
//! password itself is never kept, and the tag is useless outside the process), the PHC hash
//! string it verified against, and when. A request is taken from the cache only when its tag
//! matches (compared in constant time), the hash in the users file now is still that one
//! (`ecconfigd user add` makes a new salt, so any change of the password, or removing the
//! user, drops the entry at its next use) and the entry is younger than the time to live. A
//! wrong password never enters, and always costs the full check. The cache is bounded; when
//! full, expired entries go first, then the oldest.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ring::hmac;
use ring::rand::SystemRandom;

use super::users::{Users, Verdict};

/// How long a verified login is taken without checking the password hash again.
pub const LOGIN_TTL: Duration = Duration::from_secs(300);
/// Most logins remembered.
pub const MAX_LOGINS: usize = 1024;

struct Entry {
    tag: hmac::Tag,
    hash: String,
    at: Instant,
}

/// How a login was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// The verdict.
    pub verdict: Verdict,
    /// It came from the cache (no Argon2id evaluation).
    pub cached: bool,
}

/// The cache of verified logins of one process.
pub struct LoginCache {
    key: hmac::Key,
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

impl LoginCache {
    /// An empty cache with a fresh random key. Fails only if the system's random source does.
    pub fn new(ttl: Duration, capacity: usize) -> Result<LoginCache, ring::error::Unspecified> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())?;
        Ok(LoginCache { key, ttl, capacity: capacity.max(1), entries: Mutex::new(HashMap::new()) })
    }

    /// What the tag of a login signs: user and password, the user's length first so that no
    /// two pairs make the same message.
    fn message(user: &str, password: &str) -> Vec<u8> {
        let mut message = Vec::with_capacity(8 + user.len() + password.len());
        message.extend_from_slice(&(user.len() as u64).to_be_bytes());
        message.extend_from_slice(user.as_bytes());
        message.extend_from_slice(password.as_bytes());
        message
    }

    #[cfg(test)]
    fn tag(&self, user: &str, password: &str) -> hmac::Tag {
        hmac::sign(&self.key, &Self::message(user, password))
    }

    /// Checks `password` for `user` against `users` (read from the users file now): from the
    /// cache when this login verified within the time to live against the same hash, else
    /// with Argon2id (slow by design), remembering the login when it verifies.
    pub fn verify(&self, users: &Users, user: &str, password: &str, now: Instant) -> Checked {
        let Some(hash) = users.hash_of(user) else {
            return Checked { verdict: Verdict::UnknownUser, cached: false };
        };
        let message = Self::message(user, password);
        if self.lookup(user, hash, &message, now) {
            return Checked { verdict: Verdict::Accepted, cached: true };
        }
        let verdict = users.verify(user, password);
        if verdict == Verdict::Accepted {
            self.remember(user, hash, hmac::sign(&self.key, &message), now);
        }
        Checked { verdict, cached: false }
    }

    /// True if `user` verified lately with the login `message` makes, against `hash` (the tag
    /// compared in constant time by `hmac::verify`). An entry that expired or whose hash is no
    /// longer the user's is dropped.
    fn lookup(&self, user: &str, hash: &str, message: &[u8], now: Instant) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = entries.get(user) else { return false };
        if entry.hash != hash || now.saturating_duration_since(entry.at) >= self.ttl {
            entries.remove(user);
            return false;
        }
        hmac::verify(&self.key, message, entry.tag.as_ref()).is_ok()
    }

    fn remember(&self, user: &str, hash: &str, tag: hmac::Tag, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(user) {
            entries.retain(|_, e| now.saturating_duration_since(e.at) < self.ttl);
            if entries.len() >= self.capacity {
                let oldest = entries.iter().min_by_key(|(_, e)| e.at).map(|(name, _)| name.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(user.to_owned(), Entry { tag, hash: hash.to_owned(), at: now });
    }

    /// How many logins are remembered.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// True if no login is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn users(pairs: &[(&str, &str)]) -> Users {
        let mut users = Users::default();
        for (name, password) in pairs {
            users.set(name, password).unwrap();
        }
        users
    }

    const ACCEPTED: Verdict = Verdict::Accepted;

    #[test]
    fn a_good_login_is_cached_and_a_wrong_password_after_it_is_still_refused() {
        let cache = LoginCache::new(LOGIN_TTL, MAX_LOGINS).unwrap();
        let users = users(&[("admin", "s3cret")]);
        let now = Instant::now();
        assert_eq!(cache.verify(&users, "admin", "wrong", now), Checked { verdict: Verdict::WrongPassword, cached: false });
        assert!(cache.is_empty(), "a wrong password entered the cache");
        assert_eq!(cache.verify(&users, "admin", "s3cret", now), Checked { verdict: ACCEPTED, cached: false });
        assert_eq!(cache.verify(&users, "admin", "s3cret", now), Checked { verdict: ACCEPTED, cached: true });
        for wrong in ["wrong", "s3cre", "s3cret ", ""] {
            assert_eq!(cache.verify(&users, "admin", wrong, now).verdict, Verdict::WrongPassword, "{wrong:?}");
        }
        assert_eq!(cache.verify(&users, "admin", "s3cret", now), Checked { verdict: ACCEPTED, cached: true });
        assert_eq!(cache.verify(&users, "bob", "s3cret", now).verdict, Verdict::UnknownUser);
    }

    #[test]
    fn a_changed_password_or_a_removed_user_drops_the_entry() {
        let cache = LoginCache::new(LOGIN_TTL, MAX_LOGINS).unwrap();
        let mut users = users(&[("admin", "old"), ("bob", "b")]);
        let now = Instant::now();
        assert!(!cache.verify(&users, "admin", "old", now).cached);
        assert!(cache.verify(&users, "admin", "old", now).cached);
        users.set("admin", "new").unwrap();
        assert_eq!(cache.verify(&users, "admin", "old", now), Checked { verdict: Verdict::WrongPassword, cached: false });
        assert_eq!(cache.verify(&users, "admin", "new", now), Checked { verdict: ACCEPTED, cached: false });
        // The same password set again gets a new salt: a new hash, checked again.
        users.set("admin", "new").unwrap();
        assert_eq!(cache.verify(&users, "admin", "new", now), Checked { verdict: ACCEPTED, cached: false });
        assert!(users.remove("admin"));
        assert_eq!(cache.verify(&users, "admin", "new", now).verdict, Verdict::UnknownUser);
        assert_eq!(cache.verify(&users, "bob", "b", now), Checked { verdict: ACCEPTED, cached: false });
    }

    #[test]
    fn entries_expire_and_the_cache_stays_within_its_bound() {
        let cache = LoginCache::new(Duration::from_secs(60), 2).unwrap();
        let users = users(&[("a", "pa"), ("b", "pb"), ("c", "pc")]);
        let start = Instant::now();
        assert!(!cache.verify(&users, "a", "pa", start).cached);
        assert!(cache.verify(&users, "a", "pa", start + Duration::from_secs(59)).cached);
        assert!(!cache.verify(&users, "a", "pa", start + Duration::from_secs(60)).cached, "an expired entry was taken");
        let later = start + Duration::from_secs(61);
        assert!(!cache.verify(&users, "b", "pb", later).cached);
        assert!(!cache.verify(&users, "c", "pc", later + Duration::from_secs(1)).cached);
        assert_eq!(cache.len(), 2);
        // The oldest (a, remembered at 60 s) made room for c.
        assert!(cache.verify(&users, "c", "pc", later + Duration::from_secs(2)).cached);
        assert!(cache.verify(&users, "b", "pb", later + Duration::from_secs(2)).cached);
        assert!(!cache.verify(&users, "a", "pa", later + Duration::from_secs(2)).cached);
    }

    #[test]
    fn tags_separate_the_user_from_the_password() {
        let cache = LoginCache::new(LOGIN_TTL, MAX_LOGINS).unwrap();
        assert_ne!(cache.tag("ab", "c").as_ref(), cache.tag("a", "bc").as_ref());
        let other = LoginCache::new(LOGIN_TTL, MAX_LOGINS).unwrap();
        assert_ne!(cache.tag("a", "b").as_ref(), other.tag("a", "b").as_ref(), "two processes share a key");
    }
}
