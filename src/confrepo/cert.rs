//! TLS of the configuration repository, both sides.
//!
//! Server: a self-signed certificate (rcgen) made at `ecconfigd`'s first start in
//! `STATE/tls/ecconfigd.pem` / `.key`, valid one year, for the names and addresses clients use
//! (`--hostname`, the listen address, `localhost`, the loopback addresses). `ecconfigd renew-cert`
//! makes a new certificate for the same key, so working copies that pinned the key keep
//! trusting the server across renewals.
//!
//! Client: a rustls verifier with one of three kinds of trust: a pinned key (the SHA-256 of the
//! certificate's public key, shown and pinned at `eccfg bootstrap --trust`), a CA file (`--ca`,
//! which may be ecconfigd's own certificate; full WebPKI checks including names and expiry),
//! or none yet (bootstrap's first contact: the verifier records the key fingerprint so that
//! `eccfg` can show it, and refuses). Handshake signatures are always verified.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// How long a certificate made by `ecconfigd` is valid.
pub const VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// ecconfigd warns at start when its certificate expires sooner than this.
pub const RENEW_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Where the server's certificate and key are.
pub fn paths(state_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = state_dir.join("tls");
    (dir.join("ecconfigd.pem"), dir.join("ecconfigd.key"))
}

/// The SHA-256 of a certificate's public key (SubjectPublicKeyInfo), as `SHA256:AB:CD:…`.
pub fn key_fingerprint(cert: &CertificateDer<'_>) -> Result<String> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| anyhow::anyhow!("unparsable certificate: {e}"))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, parsed.tbs_certificate.subject_pki.raw);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    Ok(format!("SHA256:{}", hex.join(":")))
}

/// Normalises a fingerprint typed by an operator (case, optional `SHA256:` prefix, optional colons).
pub fn normalise_fingerprint(text: &str) -> Result<String> {
    let body = text.trim();
    let body = body.strip_prefix("SHA256:").or_else(|| body.strip_prefix("sha256:")).unwrap_or(body);
    let hex: String = body.chars().filter(|c| *c != ':').collect::<String>().to_ascii_uppercase();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("'{text}' is not a key fingerprint (SHA256: and 32 bytes in hex, as ecconfigd prints it)");
    }
    let pairs: Vec<&str> = (0..32).filter_map(|i| hex.get(2 * i..2 * i + 2)).collect();
    Ok(format!("SHA256:{}", pairs.join(":")))
}

fn make_cert(key: &KeyPair, names: &[String]) -> Result<String> {
    let mut params = CertificateParams::new(names.to_vec()).context("certificate names")?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names.first().cloned().unwrap_or_else(|| "ecconfigd".into()));
    dn.push(DnType::OrganizationName, "ecconfigd");
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - Duration::from_secs(3600);
    params.not_after = now + VALIDITY;
    Ok(params.self_signed(key).context("signing the certificate")?.pem())
}

/// Makes the certificate and key when they do not exist yet; true if it made them.
pub fn ensure(state_dir: &Path, names: &[String]) -> Result<bool> {
    let (cert_path, key_path) = paths(state_dir);
    if cert_path.exists() && key_path.exists() {
        return Ok(false);
    }
    let dir = cert_path.parent().context("certificate path has no directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = KeyPair::generate().context("generating the key")?;
    crate::tls::write_private(&key_path, &key.serialize_pem())?;
    fs::write(&cert_path, make_cert(&key, names)?).with_context(|| format!("writing {}", cert_path.display()))?;
    Ok(true)
}

/// Makes a new certificate, valid one year from now, for the existing key (or a new key when
/// `new_key`, which breaks the trust of working copies that pinned the old one).
pub fn renew(state_dir: &Path, names: &[String], new_key: bool) -> Result<()> {
    let (cert_path, key_path) = paths(state_dir);
    let key = if new_key || !key_path.exists() {
        let key = KeyPair::generate().context("generating the key")?;
        if let Some(dir) = key_path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        crate::tls::write_private(&key_path, &key.serialize_pem())?;
        key
    } else {
        let pem = fs::read_to_string(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
        KeyPair::from_pem(&pem).with_context(|| format!("{}: not a private key", key_path.display()))?
    };
    let tmp = cert_path.with_extension("pem.tmp");
    fs::write(&tmp, make_cert(&key, names)?).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &cert_path).with_context(|| format!("replacing {}", cert_path.display()))
}

/// The server's identity, loaded.
pub struct ServerIdentity {
    /// rustls configuration (HTTP/1.1).
    pub config: rustls::ServerConfig,
    /// Key fingerprint clients pin.
    pub fingerprint: String,
    /// When the certificate expires.
    pub not_after: time::OffsetDateTime,
}

/// Loads the server's certificate and key.
pub fn load_server(state_dir: &Path) -> Result<ServerIdentity> {
    let (cert_path, key_path) = paths(state_dir);
    let chain = crate::tls::read_pem_certs(&cert_path)?;
    let key_pem = fs::read_to_string(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
    let key = KeyPair::from_pem(&key_pem).with_context(|| format!("{}: not a private key", key_path.display()))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let first = chain.first().context("no certificate")?;
    let fingerprint = key_fingerprint(first)?;
    let (_, parsed) = x509_parser::parse_x509_certificate(first.as_ref())
        .map_err(|e| anyhow::anyhow!("{}: unparsable certificate: {e}", cert_path.display()))?;
    let not_after = parsed.validity().not_after.to_datetime();
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .with_context(|| format!("{} and {} do not match", cert_path.display(), key_path.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServerIdentity { config, fingerprint, not_after })
}

/// What a working copy trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// A key fingerprint (`SHA256:…`).
    Pinned(String),
    /// A PEM file of CA certificates (or of the server's own certificate).
    Ca(PathBuf),
    /// Nothing yet: record the server's key and refuse.
    Discover,
}

/// What the verifier saw in the last handshake.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Key fingerprint of the server's certificate.
    pub fingerprint: Option<String>,
    /// Why it was refused, when it was.
    pub refusal: Option<String>,
}

/// The client's certificate verifier; see the module documentation.
#[derive(Debug)]
pub struct Verifier {
    trust: Trust,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    seen: Arc<Mutex<Seen>>,
}

impl Verifier {
    /// A verifier for `trust`, and where it reports what it saw.
    pub fn new(trust: &Trust) -> Result<(Verifier, Arc<Mutex<Seen>>)> {
        let provider = provider();
        let webpki = match trust {
            Trust::Ca(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in crate::tls::read_pem_certs(path)? {
                    roots.add(cert).with_context(|| format!("{}: unusable CA certificate", path.display()))?;
                }
                Some(
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .context("building the certificate verifier")?,
                )
            }
            Trust::Pinned(_) | Trust::Discover => None,
        };
        let seen = Arc::new(Mutex::new(Seen::default()));
        Ok((Verifier { trust: trust.clone(), webpki, provider, seen: seen.clone() }, seen))
    }

    fn record(&self, fingerprint: Option<String>, refusal: Option<String>) {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Seen { fingerprint, refusal };
        }
    }

    /// A rustls client configuration using this verifier.
    pub fn client_config(self) -> Result<rustls::ClientConfig> {
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(self))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = key_fingerprint(end_entity).ok();
        let refuse = |why: String| {
            self.record(fingerprint.clone(), Some(why));
            Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
        };
        match (&self.trust, &self.webpki) {
            (Trust::Pinned(pinned), _) => match &fingerprint {
                Some(fp) if fp == pinned => {
                    self.record(fingerprint.clone(), None);
                    Ok(ServerCertVerified::assertion())
                }
                Some(fp) => refuse(format!("its key fingerprint is {fp}, but this working copy trusts {pinned}")),
                None => refuse("its certificate cannot be parsed".into()),
            },
            (Trust::Ca(path), Some(webpki)) => {
                match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
                    Ok(verified) => {
                        self.record(fingerprint.clone(), None);
                        Ok(verified)
                    }
                    Err(error) => refuse(format!("it is not valid under the CA in {}: {error}", path.display())),
                }
            }
            _ => refuse("no trust is configured for it yet".into()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renewal_keeps_the_key_and_so_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ensure(dir.path(), &["localhost".into(), "127.0.0.1".into()]).unwrap());
        assert!(!ensure(dir.path(), &["localhost".into()]).unwrap());
        let first = load_server(dir.path()).unwrap();
        renew(dir.path(), &["localhost".into()], false).unwrap();
        let second = load_server(dir.path()).unwrap();
        assert_eq!(first.fingerprint, second.fingerprint);
        renew(dir.path(), &["localhost".into()], true).unwrap();
        assert_ne!(load_server(dir.path()).unwrap().fingerprint, first.fingerprint);
        let days = (first.not_after - time::OffsetDateTime::now_utc()).whole_days();
        assert!((364..=366).contains(&days), "{days}");
    }

    #[test]
    fn fingerprints_typed_in_any_form_normalise() {
        let canonical = format!("SHA256:{}", vec!["AB"; 32].join(":"));
        assert_eq!(normalise_fingerprint(&"ab".repeat(32)).unwrap(), canonical);
        assert_eq!(normalise_fingerprint(&canonical.to_lowercase()).unwrap(), canonical);
        assert!(normalise_fingerprint("SHA256:AB").is_err());
    }
}
