//! `Cluster_Page { }` in the manager's configuration, read into [`PageConfig`]:
//!
//! ```text
//! Cluster_Page {
//!   Listen = "127.0.0.1:2081"                        # HTTPS only
//!   TLS_Certificate = "/etc/eccluster/page.pem"      # optional, with TLS_Key: else the
//!   TLS_Key = "/etc/eccluster/page.key"              #   manager's cluster certificate
//!   AuthLoginParameters = [ uri = "file:///etc/eccluster/users" ]
//! }
//! ```
//!
//! The users (`NAME:$argon2id$…` lines, [`crate::confrepo::users`]) are those of the console:
//! without `AuthLoginParameters` here, the users file of the first `AuthLoginParameters` in
//! `Control_Listener` (the scope itself or one of its `Listen` scopes) is used; with neither
//! the configuration is refused, as there is no page without a login. Absent scope: no page.
//!
//! eccluster owns this scope: an unknown option is an error. Reads the syntax tree only.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::{ConfigError, ConfigOption, Scope};

/// The scope's name.
pub const SCOPE: &str = "Cluster_Page";

/// Options of `Cluster_Page { }`.
const OPTIONS: &[&str] = &["Listen", "TLS_Certificate", "TLS_Key", "AuthLoginParameters"];

/// Where and how the cluster page is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageConfig {
    /// The HTTPS address.
    pub listen: SocketAddr,
    /// `TLS_Certificate` and `TLS_Key`; `None`: the manager's cluster certificate.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The users file logins are checked against.
    pub users: PathBuf,
    /// Where the users file was named (`FILE:LINE:COLUMN`), for errors about it.
    pub users_from: String,
}

fn invalid(option: &ConfigOption, message: String) -> ConfigError {
    ConfigError::Invalid { span: option.span.clone(), message }
}

/// The users file of an `AuthLoginParameters = [ uri = "file:///PATH" ]`, read as the console
/// reads it.
fn users_uri(option: &ConfigOption) -> Result<PathBuf, ConfigError> {
    crate::console::remote::uri_path(option, "file")
}

/// The users file of the first `AuthLoginParameters` in `Control_Listener` (the scope, then
/// its `Listen` scopes), with where it was written.
fn console_users(root: &Scope) -> Result<Option<(PathBuf, String)>, ConfigError> {
    for listener in root.scopes("Control_Listener") {
        let scopes = std::iter::once(listener).chain(listener.scopes("Listen"));
        for scope in scopes {
            if let Some(option) = scope.options.iter().find(|o| o.name.eq_ignore_ascii_case("AuthLoginParameters")) {
                return Ok(Some((users_uri(option)?, option.span.to_string())));
            }
        }
    }
    Ok(None)
}

/// Reads `Cluster_Page { }` (`None` when absent).
pub fn read(root: &Scope) -> Result<Option<PageConfig>, ConfigError> {
    let mut scopes = root.scopes(SCOPE);
    let Some(scope) = scopes.next() else { return Ok(None) };
    if let Some(second) = scopes.next() {
        return Err(ConfigError::Invalid {
            span: second.span.clone(),
            message: format!("{SCOPE} is already declared at {}; merge the two", scope.span),
        });
    }
    if let Some(inner) = scope.scopes.first() {
        return Err(ConfigError::Invalid {
            span: inner.span.clone(),
            message: format!("unknown scope '{}' in {SCOPE} {{ }}", inner.kind),
        });
    }
    let (mut listen, mut cert, mut key, mut users) = (None, None, None, None);
    for option in &scope.options {
        let Some(name) = OPTIONS.iter().find(|known| known.eq_ignore_ascii_case(&option.name)) else {
            return Err(invalid(
                option,
                format!("unknown option '{}' in {SCOPE} {{ }}; known options: {}", option.name, OPTIONS.join(", ")),
            ));
        };
        match *name {
            "Listen" => {
                let text = option.as_str()?;
                let addr: SocketAddr = text.parse().map_err(|_| {
                    invalid(option, format!("Listen = \"{text}\" is not an address and port (e.g. \"127.0.0.1:2081\")"))
                })?;
                listen = Some(addr);
            }
            "TLS_Certificate" => cert = Some((PathBuf::from(option.as_str()?), option)),
            "TLS_Key" => key = Some((PathBuf::from(option.as_str()?), option)),
            _ => users = Some((users_uri(option)?, option.span.to_string())),
        }
    }
    let Some(listen) = listen else {
        return Err(ConfigError::Invalid {
            span: scope.span.clone(),
            message: format!("{SCOPE} needs Listen = \"ADDRESS:PORT\""),
        });
    };
    let tls = match (cert, key) {
        (Some((cert, _)), Some((key, _))) => Some((cert, key)),
        (None, None) => None,
        (Some((_, option)), None) | (None, Some((_, option))) => {
            return Err(invalid(option, "TLS_Certificate and TLS_Key go together; give both or neither".into()))
        }
    };
    let Some((users, users_from)) = users.map_or_else(|| console_users(root), |u| Ok(Some(u)))? else {
        return Err(ConfigError::Invalid {
            span: scope.span.clone(),
            message: format!(
                "{SCOPE} needs users to log in: AuthLoginParameters = [ uri = \"file:///PATH\" ] here or in Control_Listener"
            ),
        });
    };
    Ok(Some(PageConfig { listen, tls, users, users_from }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read_text(text: &str) -> Result<Option<PageConfig>, ConfigError> {
        read(&crate::config::parse_str(text, Path::new("eccluster.conf")).unwrap())
    }

    #[test]
    fn absent_is_off_and_the_users_come_from_the_page_or_the_console() {
        assert_eq!(read_text("cluster { }\n").unwrap(), None);
        let page = read_text("Cluster_Page {\n  Listen = \"127.0.0.1:2081\"\n  AuthLoginParameters = [ uri = \"file:///etc/users\" ]\n}\n")
            .unwrap()
            .unwrap();
        assert_eq!(page.listen, "127.0.0.1:2081".parse().unwrap());
        assert_eq!((page.users.as_path(), page.tls), (Path::new("/etc/users"), None));
        let page = read_text(
            "Control_Listener {\n  Listen \"127.0.0.1:2025\" {\n    AuthLoginParameters = [ uri = \"file:///c/users\" ]\n  }\n}\n\
             cluster_page {\n  listen = \"127.0.0.1:2081\"\n  TLS_Certificate = /p.pem\n  TLS_Key = /p.key\n}\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(page.users, Path::new("/c/users"));
        assert_eq!(page.users_from, "eccluster.conf:3:5");
        assert_eq!(page.tls, Some((PathBuf::from("/p.pem"), PathBuf::from("/p.key"))));
    }

    #[test]
    fn mistakes_name_the_place() {
        let err = read_text("Cluster_Page {\n  Listen = \"127.0.0.1\"\n}\n").unwrap_err();
        assert!(err.to_string().starts_with("eccluster.conf:2:3: Listen = \"127.0.0.1\" is not an address"), "{err}");
        let err = read_text("Cluster_Page {\n  Listen = \"127.0.0.1:2081\"\n}\n").unwrap_err();
        assert!(err.to_string().starts_with("eccluster.conf:1:1: Cluster_Page needs users to log in"), "{err}");
        let err = read_text("Cluster_Page {\n  Listen = \"127.0.0.1:2081\"\n  Colour = red\n}\n").unwrap_err();
        assert!(err.to_string().starts_with("eccluster.conf:3:3: unknown option 'Colour'"), "{err}");
        let err = read_text(
            "Cluster_Page {\n  Listen = \"127.0.0.1:2081\"\n  TLS_Key = /k\n  AuthLoginParameters = [ uri = \"file:///u\" ]\n}\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("eccluster.conf:3:3: TLS_Certificate and TLS_Key go together"), "{err}");
        let err = read_text("Cluster_Page {\n  Listen = \"127.0.0.1:2081\"\n  AuthLoginParameters = [ uri = \"file://u\" ]\n}\n")
            .unwrap_err();
        assert!(err.to_string().contains("absolute path"), "{err}");
    }
}
