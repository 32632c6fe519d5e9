//! The remote console as configured: the TCP `Listen` scopes of `Control_Listener`, their TLS,
//! login and authorization settings, the users and groups files and the audit log, read and
//! checked into an [`AccessConfig`]; and [`AccessConfig::build`], which loads what the files
//! hold into the [`Gate`]s of the listeners.
//!
//! ```text
//! Control_Listener {
//!   AuthLoginParameters = [ uri = "file:///etc/eccluster/console.users" ]
//!   AuthorizationParameters = [ uri = "groups:///etc/eccluster/console.groups" ]
//!   Enable_Authorization = true
//!   Audit_Log = "/var/log/eccluster/console.audit"
//!   Listen "/tmp/2025" { }                       # the unix socket: user = the peer's OS user
//!   Listen "10.0.0.5:2025" {                     # TLS 1.3 with the member's certificate
//!     Client_Certificates = true                 # a client certificate of the cluster CA logs in
//!   }
//!   Listen "[2001:db8::5]:2025" { TLS_Certificate = "/etc/x.pem" TLS_Key = "/etc/x.key" }
//!   Listen "127.0.0.1:2026" { TLS = false }      # plain TCP: loopback only
//! }
//! ```
//!
//! Options are read from the `Listen` scope, else from the `Control_Listener` around it:
//! `Enable_Authentication` (default true for TCP, false for the unix socket),
//! `Enable_Authorization` (default false), `TLS` (default true), `TLS_Certificate` and `TLS_Key`
//! (default: the member's cluster certificate, whose DNS name is the member name),
//! `Client_Certificates` (default false), `TLS_Client_CA` (default: the cluster CA). The bounds
//! (`Concurrency`, `Timeout`, ...) are those of `limits.rs`. Every error stops the start with
//! FILE:LINE:COLUMN. Reading only here; the files are opened by [`AccessConfig::build`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use super::access::{Gate, Logins};
use super::audit::Audit;
use super::authz::{Authorization, RolesConfig};
use super::listener::ListenerConfig;
use crate::config::{ConfigError, ConfigOption, Scope, Span};

/// Whether a listener asks for a login and checks commands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// `Enable_Authentication`.
    pub authenticate: bool,
    /// `Enable_Authorization`.
    pub authorize: bool,
}

/// The TLS of one TCP listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// `TLS_Certificate` and `TLS_Key`; `None`: the member's cluster certificate.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// `Client_Certificates = true`: a client certificate from the client CA logs in.
    pub client_certs: bool,
    /// `TLS_Client_CA`; `None`: the cluster CA.
    pub client_ca: Option<PathBuf>,
}

/// One TCP `Listen` of the Control_Listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its bounds (`path` holds the `Listen` name and means nothing else here).
    pub bounds: ListenerConfig,
    /// Login and authorization.
    pub policy: Policy,
    /// `None` for plain TCP (`TLS = false`, loopback only).
    pub tls: Option<TlsConfig>,
}

/// Everything the console's access control is configured with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessConfig {
    /// `AuthLoginParameters = [ uri = "file:///PATH" ]`.
    pub users_file: Option<PathBuf>,
    /// `AuthorizationParameters = [ uri = "groups:///PATH" ]`.
    pub groups_file: Option<PathBuf>,
    /// `Authorization { Role ... }`.
    pub roles: RolesConfig,
    /// `Audit_Log`.
    pub audit_log: Option<PathBuf>,
    /// The unix socket's policy.
    pub unix: Policy,
    /// The TCP listeners.
    pub tcp: Vec<TcpConfig>,
}

/// The gates of one daemon's listeners, sharing the users file, the roles and the audit log.
#[derive(Debug, Clone)]
pub struct Gates {
    logins: Option<Arc<Logins>>,
    authorization: Arc<Authorization>,
    audit: Arc<Audit>,
}

impl Gates {
    /// The gate of a listener with `policy`.
    pub fn gate(&self, policy: Policy) -> Gate {
        Gate {
            authenticate: policy.authenticate,
            logins: self.logins.clone(),
            authorization: policy.authorize.then(|| self.authorization.clone()),
            audit: self.audit.clone(),
        }
    }
}

impl AccessConfig {
    /// Reads the `Control_Listener` scopes of `root`; `unix` is the path of the console socket.
    pub fn read(root: &Scope, unix: &Path) -> Result<AccessConfig, ConfigError> {
        let mut cfg = AccessConfig { roles: RolesConfig::read(root)?, ..AccessConfig::default() };
        let unix_name = unix.to_string_lossy();
        let mut unix_policy = None;
        for listener in root.scopes("Control_Listener") {
            if let Some(option) = listener.option("AuthLoginParameters") {
                cfg.users_file = Some(uri_path(option, "file")?);
            }
            if let Some(option) = listener.option("AuthorizationParameters") {
                cfg.groups_file = Some(uri_path(option, "groups")?);
            }
            if let Some(option) = listener.option("Audit_Log") {
                cfg.audit_log = Some(PathBuf::from(option.as_str()?));
            }
            unix_policy.get_or_insert(policy(listener, None, false)?);
            for listen in listener.scopes("Listen") {
                let Some(name) = listen.name.as_deref() else { continue };
                if name.starts_with('/') {
                    let policy = policy(listener, Some(listen), false)?;
                    if name == unix_name {
                        unix_policy = Some(policy);
                    }
                    continue;
                }
                let addr = tcp_address(listen, name)?;
                let mut bounds = ListenerConfig::new(name);
                super::limits::apply(root, &mut bounds)?;
                let policy = policy(listener, Some(listen), true)?;
                let tls = tls(listener, listen, name, addr)?;
                if policy.authenticate && cfg.users_file.is_none() && !tls.as_ref().is_some_and(|t| t.client_certs) {
                    return Err(invalid(
                        &listen.span,
                        format!(
                            "Listen \"{name}\" asks for a login (Enable_Authentication, the default for TCP) but \
                             there is no AuthLoginParameters = [ uri = \"file:///PATH\" ] and no \
                             Client_Certificates = true; add one, or Enable_Authentication = false"
                        ),
                    ));
                }
                cfg.tcp.push(TcpConfig { addr, bounds, policy, tls });
            }
        }
        cfg.unix = unix_policy.unwrap_or_default();
        if cfg.unix.authenticate && cfg.users_file.is_none() {
            let span = root.scopes("Control_Listener").next().map(|l| l.span.clone()).unwrap_or_else(|| root.span.clone());
            return Err(invalid(
                &span,
                "Enable_Authentication on the unix socket needs AuthLoginParameters = [ uri = \"file:///PATH\" ]".into(),
            ));
        }
        Ok(cfg)
    }

    /// Whether any listener checks commands.
    fn authorizes(&self) -> bool {
        self.unix.authorize || self.tcp.iter().any(|t| t.policy.authorize)
    }

    /// Reads the users and groups files, compiles the roles and opens the audit log.
    pub fn build(&self) -> anyhow::Result<Gates> {
        let logins = match &self.users_file {
            Some(path) => Some(Arc::new(
                Logins::new(path.clone())
                    .with_context(|| format!("the console users file {} (AuthLoginParameters)", path.display()))?,
            )),
            None => None,
        };
        let groups = if self.authorizes() { self.groups_file.clone() } else { None };
        let authorization = Authorization::new(&self.roles, groups).context("console authorization")?;
        let audit = match &self.audit_log {
            Some(path) => Audit::to_file(path)?,
            None => Audit::tracing_only(),
        };
        Ok(Gates { logins, authorization: Arc::new(authorization), audit: Arc::new(audit) })
    }
}

fn invalid(span: &Span, message: String) -> ConfigError {
    ConfigError::Invalid { span: span.clone(), message }
}

/// The path of `[ uri = "SCHEME:///PATH" ]` (also how the cluster page finds the console's
/// users file).
pub(crate) fn uri_path(option: &ConfigOption, scheme: &str) -> Result<PathBuf, ConfigError> {
    let usage = || {
        invalid(
            &option.span,
            format!("{} must be [ uri = \"{scheme}:///ABSOLUTE/PATH\" ] (an absolute path)", option.name),
        )
    };
    let uri = option.as_dict()?.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case("uri")).map(|(_, v)| v);
    let path = uri.and_then(|uri| uri.strip_prefix(scheme)).and_then(|rest| rest.strip_prefix("://")).ok_or_else(usage)?;
    if !path.starts_with('/') {
        return Err(usage());
    }
    Ok(PathBuf::from(path))
}

/// An option of `listen`, else of `listener`.
fn lookup<'a>(listener: &'a Scope, listen: Option<&'a Scope>, name: &str) -> Option<&'a ConfigOption> {
    listen.and_then(|l| l.option(name)).or_else(|| listener.option(name))
}

fn policy(listener: &Scope, listen: Option<&Scope>, tcp: bool) -> Result<Policy, ConfigError> {
    let flag = |name, default| lookup(listener, listen, name).map(ConfigOption::as_bool).transpose().map(|v| v.unwrap_or(default));
    Ok(Policy { authenticate: flag("Enable_Authentication", tcp)?, authorize: flag("Enable_Authorization", false)? })
}

/// `IP:PORT`, `[IPv6]:PORT`, or `:PORT` / `*:PORT` for every IPv4 address.
fn tcp_address(listen: &Scope, name: &str) -> Result<SocketAddr, ConfigError> {
    let any = name.strip_prefix('*').unwrap_or(name).strip_prefix(':').and_then(|port| port.parse::<u16>().ok());
    let addr = match any {
        Some(port) => Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)),
        None => name.parse::<SocketAddr>().ok(),
    };
    match addr {
        Some(addr) if addr.port() != 0 => Ok(addr),
        Some(_) => Err(invalid(&listen.span, format!("Listen \"{name}\": the console needs a port from 1 to 65535"))),
        None => Err(invalid(
            &listen.span,
            format!(
                "Listen \"{name}\": a console address is a path (/tmp/2025), IP:PORT or [IPv6]:PORT \
                 (an address, not a host name)"
            ),
        )),
    }
}

fn tls(listener: &Scope, listen: &Scope, name: &str, addr: SocketAddr) -> Result<Option<TlsConfig>, ConfigError> {
    let get = |option| lookup(listener, Some(listen), option);
    if let Some(option) = get("TLS") {
        if !option.as_bool()? {
            if !addr.ip().is_loopback() {
                return Err(invalid(
                    &option.span,
                    format!(
                        "Listen \"{name}\": TLS = false is allowed only on a loopback address (127.0.0.0/8, ::1): \
                         passwords and commands would cross the network in clear; remove TLS = false"
                    ),
                ));
            }
            return Ok(None);
        }
    }
    let path = |option: &ConfigOption| option.as_str().map(PathBuf::from);
    let cert = match (get("TLS_Certificate"), get("TLS_Key")) {
        (Some(cert), Some(key)) => Some((path(cert)?, path(key)?)),
        (None, None) => None,
        (Some(only), None) | (None, Some(only)) => {
            return Err(invalid(&only.span, format!("Listen \"{name}\": TLS_Certificate and TLS_Key go together")))
        }
    };
    Ok(Some(TlsConfig {
        cert,
        client_certs: get("Client_Certificates").map(ConfigOption::as_bool).transpose()?.unwrap_or(false),
        client_ca: get("TLS_Client_CA").map(path).transpose()?,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<AccessConfig, String> {
        let root = crate::config::parse_str(text, Path::new("e.conf")).map_err(|e| e.to_string())?;
        AccessConfig::read(&root, Path::new("/tmp/2025")).map_err(|e| e.to_string())
    }

    #[test]
    fn tcp_listens_default_to_tls_with_a_login_and_the_unix_socket_to_neither() {
        let cfg = read(
            "Control_Listener {\n AuthLoginParameters = [ uri = \"file:///etc/users\" ]\n Listen \"/tmp/2025\" { }\n \
             Listen \"127.45.0.1:2025\" { Enable_Authorization = true }\n Listen \"[::1]:2026\" { TLS = false }\n}\n",
        )
        .unwrap();
        assert_eq!(cfg.users_file.as_deref(), Some(Path::new("/etc/users")));
        assert_eq!(cfg.unix, Policy { authenticate: false, authorize: false });
        assert_eq!(cfg.tcp.len(), 2);
        assert_eq!(cfg.tcp[0].addr, "127.45.0.1:2025".parse().unwrap());
        assert_eq!(cfg.tcp[0].policy, Policy { authenticate: true, authorize: true });
        assert_eq!(cfg.tcp[0].tls, Some(TlsConfig::default()));
        assert_eq!(cfg.tcp[1].tls, None);
    }

    #[test]
    fn mistakes_name_file_line_and_column() {
        let cases = [
            (
                "Control_Listener {\n  Listen \"10.0.0.1:2025\" {\n    TLS = false\n  }\n}\n",
                "e.conf:3:5: Listen \"10.0.0.1:2025\": TLS = false is allowed only on a loopback address",
            ),
            ("Control_Listener { Listen \"mgr:2025\" { } }", "e.conf:1:20: Listen \"mgr:2025\": a console address is a path"),
            ("Control_Listener { Listen \"127.0.0.1:2025\" { } }", "e.conf:1:20: Listen \"127.0.0.1:2025\" asks for a login"),
            (
                "Control_Listener { AuthLoginParameters = [ uri = \"users\" ] }",
                "e.conf:1:20: AuthLoginParameters must be [ uri = \"file:///ABSOLUTE/PATH\" ]",
            ),
        ];
        for (text, expected) in cases {
            let error = read(text).unwrap_err();
            assert!(error.starts_with(expected), "{text}\n{error}");
        }
    }
}
