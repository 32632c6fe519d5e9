//! The client side of the remote console: TLS to a console's TCP listener and the login.
//!
//! `ec_console [USER@]HOST:PORT` connects over TLS 1.3 and checks the server's certificate
//! against the cluster CA (`--ca`, else `$EC_CONSOLE_CA`, else `ca.pem` in `--tls-dir` /
//! `$EC_CONSOLE_TLS_DIR`) for the member name (`--server-name`; by default the host, when it is
//! a name). Given an address and no `--server-name`, any member certificate of the CA is
//! taken (the CA issues certificates to members only), checked for the name it carries. A client certificate (`--cert` / `--key`) logs in by itself where the console takes
//! them. Otherwise, with a user (`USER@` or `--user`) the client logs in at once; without one
//! it logs in as `$USER` when the console asks. The password comes from `--password-file` or
//! a prompt on the terminal, never from the command line.
//!
//! Each failure here is one line: an untrusted certificate, a console without TLS, a plain
//! console's refusal, a login refused.

use std::io::{self, IsTerminal as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::DigitallySignedStruct;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::confrepo::users::read_password_file;
use crate::tls::{read_pem_certs, read_pem_key, read_roots, TlsIdentity};

/// How to reach and log in to a remote console.
#[derive(Debug, Clone, Default)]
pub struct RemoteOptions {
    /// The user to log in as (`USER@` or `--user`).
    pub user: Option<String>,
    /// `--password-file`.
    pub password_file: Option<PathBuf>,
    /// The CA to verify the server with.
    pub ca: Option<PathBuf>,
    /// `--server-name`.
    pub server_name: Option<String>,
    /// `--cert` and `--key`.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// `--no-tls`: plain TCP, for a loopback console with `TLS = false`.
    pub plain: bool,
}

impl RemoteOptions {
    /// The rustls client configuration: TLS 1.3, the CA as the only root, the client
    /// certificate if given; `any_member` takes any member certificate of the CA.
    pub fn client_config(&self, any_member: bool) -> anyhow::Result<rustls::ClientConfig> {
        let Some(ca) = &self.ca else {
            bail!(
                "no CA to verify the console with: give --ca CA.pem (or set EC_CONSOLE_CA, or --tls-dir DIR / \
                 EC_CONSOLE_TLS_DIR holding ca.pem)"
            );
        };
        let roots = Arc::new(read_roots(ca)?);
        let builder = rustls::ClientConfig::builder_with_provider(TlsIdentity::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .context("TLS 1.3")?;
        let builder = if any_member {
            let inner = WebPkiServerVerifier::builder_with_provider(roots, TlsIdentity::provider())
                .build()
                .context("building the certificate verifier")?;
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyMember { inner }))
        } else {
            builder.with_root_certificates(roots)
        };
        Ok(match &self.client_cert {
            Some((cert, key)) => builder
                .with_client_auth_cert(read_pem_certs(cert)?, read_pem_key(key)?)
                .with_context(|| format!("{} and {} do not match", cert.display(), key.display()))?,
            None => builder.with_no_client_auth(),
        })
    }

    /// The name the server's certificate must carry; an address when any member will do.
    fn server_name(&self, host: &str) -> anyhow::Result<ServerName<'static>> {
        if let (None, Ok(addr)) = (&self.server_name, host.parse::<std::net::IpAddr>()) {
            return Ok(ServerName::IpAddress(addr.into()));
        }
        let name = self.server_name.clone().unwrap_or_else(|| host.to_owned());
        ServerName::try_from(name.clone()).map_err(|_| anyhow::anyhow!("server name {name:?} is not a DNS name"))
    }

    /// The TLS session over `tcp` to `host`, or why not, in one line.
    pub async fn handshake(&self, tcp: TcpStream, host: &str) -> anyhow::Result<TlsStream<TcpStream>> {
        let name = self.server_name(host)?;
        let any_member = matches!(name, ServerName::IpAddress(_));
        let connector = TlsConnector::from(Arc::new(self.client_config(any_member)?));
        let shown = match &name {
            ServerName::DnsName(dns) => dns.as_ref().to_owned(),
            _ => host.to_owned(),
        };
        connector.connect(name, tcp).await.map_err(|error| anyhow::anyhow!(explain(&error, self.ca.as_deref(), &shown)))
    }

    /// The password for `user`: the password file's first line, or asked on the terminal.
    pub fn password(&self, user: &str) -> anyhow::Result<String> {
        if let Some(file) = &self.password_file {
            return Ok(read_password_file(file)?);
        }
        if !io::stdin().is_terminal() && std::fs::metadata("/dev/tty").is_err() {
            bail!("no terminal to ask for the password of {user} on: give --password-file FILE");
        }
        rpassword::prompt_password("Password: ").with_context(|| format!("reading the password of {user}"))
    }

    /// The user to log in as when the console asks and none was given: `$USER`.
    pub fn user_or_default(&self) -> anyhow::Result<String> {
        if let Some(user) = &self.user {
            return Ok(user.clone());
        }
        std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .map_err(|_| anyhow::anyhow!("the console asks for a login: give the user as USER@HOST:PORT or --user NAME"))
    }
}

/// Takes any certificate the CA issued to a member, checked (chain, validity, signatures) for
/// the member name it carries: for a console reached by address, without `--server-name`.
#[derive(Debug)]
struct AnyMember {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyMember {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let not_a_member = || rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        let name = crate::tls::certificate_name(end_entity).map_err(|_| not_a_member())?;
        let name = ServerName::try_from(name).map_err(|_| not_a_member())?;
        self.inner.verify_server_cert(end_entity, intermediates, &name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A handshake failure in words an operator can act on.
fn explain(error: &io::Error, ca: Option<&Path>, name: &str) -> String {
    let ca = ca.map(|p| p.display().to_string()).unwrap_or_default();
    if let Some(tls) = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return match tls {
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => format!(
                "the console's certificate is not signed by the CA in {ca} (a console of another cluster, or the wrong --ca)"
            ),
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
            | rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. }) => format!(
                "the console's certificate is not issued to {name}: give the member name with --server-name NAME"
            ),
            rustls::Error::InvalidCertificate(other) => format!("the console's certificate is refused: {other:?}"),
            rustls::Error::InvalidMessage(_) => {
                "the console does not answer in TLS (a console with TLS = false? then use --no-tls)".to_owned()
            }
            other => format!("TLS handshake with the console failed: {other}"),
        };
    }
    match error.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
            "the console closed the connection during the TLS handshake (a console with TLS = false? then use --no-tls)"
                .to_owned()
        }
        _ => format!("TLS handshake with the console failed: {error}"),
    }
}
