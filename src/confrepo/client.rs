//! The HTTPS client of ecconfigd (reqwest over rustls with the verifier of [`super::cert`]).
//! Every failure becomes a [`ClientError`] that says what went wrong in the operator's terms:
//! a server that cannot be reached (with a timeout, never a hang), a certificate that is not
//! trusted (with its key fingerprint), an unknown user, a wrong password, a conflicting commit,
//! a configuration file that does not parse.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::cert::{Seen, Trust, Verifier};
use super::server::DEFAULT_PORT;
use super::wire::{
    conflict_message, CommitRequest, CommitResponse, ConflictDetail, ErrorBody, ErrorKind, InvalidDetail, LogEntry,
    RepoHead, RollbackRequest, Snapshot, MAX_RESPONSE_BYTES,
};

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole request may take, by default.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where ecconfigd is: `HOST[:PORT]` (port 2027 by default; `[v6]:port` for IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// Parses `HOST[:PORT]`.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let text = text.trim();
        let text = text.strip_prefix("https://").unwrap_or(text).trim_end_matches('/');
        let bad = || format!("'{text}' is not HOST[:PORT]");
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if after.is_empty() => DEFAULT_PORT,
                None => return Err(bad()),
            };
            (host, port)
        } else {
            match text.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, p.parse().map_err(|_| bad())?),
                _ => (text, DEFAULT_PORT),
            }
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '[' | ']' | '@' | '?' | '#')) {
            return Err(bad());
        }
        Ok(Endpoint { host: host.to_owned(), port })
    }

    fn url(&self) -> String {
        if self.host.contains(':') {
            format!("https://[{}]:{}", self.host, self.port)
        } else {
            format!("https://{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A user and password.
#[derive(Clone)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).finish_non_exhaustive()
    }
}

/// Why a request to ecconfigd failed. None of these changed anything on the server, except
/// [`ClientError::Unreachable`] after the request was sent (the server may or may not have
/// acted on it; the message says so).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection, or no answer in time.
    #[error("cannot reach ecconfigd at {server}: {why}")]
    Unreachable {
        /// The endpoint.
        server: String,
        /// What happened.
        why: String,
    },
    /// The server's certificate is not trusted.
    #[error("{}", untrusted_message(.server, .fingerprint.as_deref(), .why))]
    Untrusted {
        /// The endpoint.
        server: String,
        /// The key fingerprint it presented, if it got that far.
        fingerprint: Option<String>,
        /// Why it was refused.
        why: String,
    },
    /// The user is not known to the server.
    #[error("authentication failed: ecconfigd at {server} has no user '{user}' (ask its administrator: ecconfigd user add {user})")]
    UnknownUser {
        /// The endpoint.
        server: String,
        /// The user.
        user: String,
    },
    /// The password is wrong.
    #[error("authentication failed: wrong password for user '{user}' at ecconfigd {server}")]
    WrongPassword {
        /// The endpoint.
        server: String,
        /// The user.
        user: String,
    },
    /// The commit was made on a revision that is no longer the newest.
    #[error("{}", conflict_message(.0))]
    Conflict(ConflictDetail),
    /// A configuration file does not parse; nothing was committed.
    #[error("commit refused, nothing was committed: {}", .0.message)]
    Invalid(InvalidDetail),
    /// Any other refusal (bad request, no such repository or revision, a server failure).
    #[error("ecconfigd at {server} refused: {message}")]
    Refused {
        /// The endpoint.
        server: String,
        /// Its message.
        message: String,
    },
}

fn untrusted_message(server: &str, fingerprint: Option<&str>, why: &str) -> String {
    let mut text = format!("the certificate of ecconfigd at {server} is not trusted: {why}");
    if let Some(fp) = fingerprint {
        text.push_str(&format!(
            "\n  its key fingerprint is {fp}\n  compare it with the one ecconfigd prints (`ecconfigd fingerprint` on the manager); \
             if they match, trust it with --trust {fp} (or give its certificate with --ca FILE)"
        ));
    }
    text
}

/// A client of one ecconfigd.
pub struct Client {
    http: reqwest::Client,
    endpoint: Endpoint,
    credentials: Credentials,
    seen: Arc<Mutex<Seen>>,
}

impl Client {
    /// A client for `endpoint` trusting `trust`, with a `timeout` per request.
    pub fn new(endpoint: Endpoint, trust: &Trust, credentials: Credentials, timeout: Duration) -> anyhow::Result<Client> {
        let (verifier, seen) = Verifier::new(trust)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(verifier.client_config()?)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .no_proxy()
            .build()
            .map_err(|e| anyhow::anyhow!("building the HTTPS client: {e}"))?;
        Ok(Client { http, endpoint, credentials, seen })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The key fingerprint of the server's certificate, once a handshake got that far.
    pub fn seen_fingerprint(&self) -> Option<String> {
        self.seen.lock().ok().and_then(|s| s.fingerprint.clone())
    }

    fn transport_error(&self, error: reqwest::Error, sent: bool) -> ClientError {
        let server = self.endpoint.to_string();
        if let Some(refusal) = self.seen.lock().ok().and_then(|s| s.refusal.clone()) {
            return ClientError::Untrusted { server, fingerprint: self.seen_fingerprint(), why: refusal };
        }
        let mut chain = Vec::new();
        let mut source: Option<&dyn std::error::Error> = Some(&error);
        while let Some(e) = source {
            let text = e.to_string();
            if !chain.iter().any(|c: &String| c.contains(&text)) {
                chain.push(text);
            }
            source = e.source();
        }
        let mut why = if error.is_timeout() {
            "no answer in time (timed out)".to_owned()
        } else {
            chain.join(": ")
        };
        if sent && !error.is_connect() {
            why.push_str(" (the request was sent: the server may or may not have acted on it)");
        }
        ClientError::Unreachable { server, why }
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder, sent: bool) -> Result<T, ClientError> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.refusal = None;
        }
        let request = request.basic_auth(&self.credentials.user, Some(&self.credentials.password));
        let mut response = request.send().await.map_err(|e| self.transport_error(e, sent))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(e, sent))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ClientError::Refused {
                    server: self.endpoint.to_string(),
                    message: format!("its answer is larger than {} MiB", MAX_RESPONSE_BYTES >> 20),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| ClientError::Refused {
                server: self.endpoint.to_string(),
                message: format!("unreadable answer: {e}"),
            });
        }
        Err(self.refusal(status, &body))
    }

    fn refusal(&self, status: reqwest::StatusCode, body: &[u8]) -> ClientError {
        let server = self.endpoint.to_string();
        let user = self.credentials.user.clone();
        let Ok(error) = serde_json::from_slice::<ErrorBody>(body) else {
            let text = String::from_utf8_lossy(body.get(..200).unwrap_or(body)).trim().to_owned();
            return ClientError::Refused { server, message: format!("HTTP {status}: {text}") };
        };
        match (error.kind, error.conflict, error.invalid) {
            (ErrorKind::UnknownUser, ..) => ClientError::UnknownUser { server, user },
            (ErrorKind::WrongPassword, ..) => ClientError::WrongPassword { server, user },
            (ErrorKind::Conflict, Some(detail), _) => ClientError::Conflict(detail),
            (ErrorKind::InvalidConfig, _, Some(detail)) => ClientError::Invalid(detail),
            _ => ClientError::Refused { server, message: error.error },
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.endpoint.url()))
    }

    fn post<B: Serialize>(&self, path: &str, body: &B) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.endpoint.url())).json(body)
    }

    /// The newest revision of every repository.
    pub async fn heads(&self) -> Result<Vec<RepoHead>, ClientError> {
        self.send(self.get("/v1/repos"), false).await
    }

    /// The files of `revision` (newest when `None`) of `repo`, only under `dirs` when given.
    pub async fn snapshot(&self, repo: &str, revision: Option<u64>, dirs: Option<&[String]>) -> Result<Snapshot, ClientError> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(rev) = revision {
            query.push(("rev", rev.to_string()));
        }
        if let Some(dirs) = dirs {
            query.push(("dirs", dirs.join(",")));
        }
        self.send(self.get(&format!("/v1/repos/{repo}/snapshot")).query(&query), false).await
    }

    /// The newest `limit` log entries of `repo`.
    pub async fn log(&self, repo: &str, limit: usize) -> Result<Vec<LogEntry>, ClientError> {
        self.send(self.get(&format!("/v1/repos/{repo}/log")).query(&[("limit", limit)]), false).await
    }

    /// Sends a commit.
    pub async fn commit(&self, request: &CommitRequest) -> Result<CommitResponse, ClientError> {
        self.send(self.post("/v1/commit", request), true).await
    }

    /// Sends a rollback.
    pub async fn rollback(&self, repo: &str, request: &RollbackRequest) -> Result<CommitResponse, ClientError> {
        self.send(self.post(&format!("/v1/repos/{repo}/rollback"), request), true).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_default_to_port_2027() {
        assert_eq!(Endpoint::parse("mgr").unwrap(), Endpoint { host: "mgr".into(), port: 2027 });
        assert_eq!(Endpoint::parse("127.40.0.1:3000").unwrap().port, 3000);
        assert_eq!(Endpoint::parse("[::1]:3000").unwrap(), Endpoint { host: "::1".into(), port: 3000 });
        assert_eq!(Endpoint::parse("::1").unwrap().port, 2027);
        assert_eq!(Endpoint::parse("https://mgr:4000/").unwrap().to_string(), "mgr:4000");
        assert!(Endpoint::parse("mgr:http").is_err());
        assert!(Endpoint::parse("").is_err());
    }
}
