//! The cluster's certificate authority and the mutual-TLS configuration of every QUIC
//! connection: `eccluster ca init` / `ca issue`, loading a member's identity from a TLS
//! directory, and reading the authenticated name off a peer's certificate.
//!
//! Layout of a TLS directory: `ca.pem`, `ca.key` (only where certificates are issued),
//! `NAME.pem` and `NAME.key` for each member. Keys are written owner-only.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// ALPN protocol of eccluster QUIC connections.
pub const ALPN: &[u8] = b"eccluster/1";

/// How long issued member certificates are valid.
const MEMBER_VALIDITY: Duration = Duration::from_secs(825 * 24 * 3600);
/// How long the CA certificate is valid.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

fn ca_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("ca.pem"), dir.join("ca.key"))
}

pub(crate) fn write_private(path: &Path, contents: &str) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

fn validity(params: &mut CertificateParams, lifetime: Duration) {
    let now = time_now();
    params.not_before = now - Duration::from_secs(3600);
    params.not_after = now + lifetime;
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Creates the cluster CA in `dir` (`ca.pem`, `ca.key`). Refuses to overwrite an existing one.
pub fn ca_init(dir: &Path, cluster: &str) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (cert_path, key_path) = ca_paths(dir);
    if cert_path.exists() || key_path.exists() {
        bail!("{} already holds a CA (ca.pem / ca.key); remove them to start over", dir.display());
    }
    let key = KeyPair::generate().context("generating CA key")?;
    let mut params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("eccluster CA {cluster}"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, CA_VALIDITY);
    let cert = params.self_signed(&key).context("signing CA certificate")?;
    write_private(&key_path, &key.serialize_pem())?;
    fs::write(&cert_path, cert.pem()).with_context(|| format!("writing {}", cert_path.display()))?;
    Ok(())
}

/// True if `dir` holds a CA that can issue certificates.
pub fn ca_exists(dir: &Path) -> bool {
    let (c, k) = ca_paths(dir);
    c.exists() && k.exists()
}

/// Issues `NAME.pem` / `NAME.key` in `dir` for each name, signed by the CA in `dir`.
pub fn ca_issue(dir: &Path, names: &[String]) -> Result<()> {
    let (cert_path, key_path) = ca_paths(dir);
    let ca_pem = fs::read_to_string(&cert_path)
        .with_context(|| format!("reading {} (run `eccluster ca init` first)", cert_path.display()))?;
    let ca_key_pem = fs::read_to_string(&key_path)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem)
        .with_context(|| format!("{}: not a private key", key_path.display()))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)
        .with_context(|| format!("{}: not a CA certificate", cert_path.display()))?;
    for name in names {
        check_member_name(name)?;
        let key = KeyPair::generate().context("generating member key")?;
        let mut params = CertificateParams::new(vec![name.clone()])
            .with_context(|| format!("certificate parameters for {name}"))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name.clone());
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, MEMBER_VALIDITY);
        let cert = params
            .signed_by(&key, &issuer)
            .with_context(|| format!("signing certificate for {name}"))?;
        write_private(&dir.join(format!("{name}.key")), &key.serialize_pem())?;
        let path = dir.join(format!("{name}.pem"));
        fs::write(&path, cert.pem()).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn check_member_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-');
    if !ok {
        bail!("{name:?} is not a valid member name (letters, digits and '-', at most 63)");
    }
    Ok(())
}

/// A member's TLS identity: the CA to trust and its own certificate and key.
pub struct TlsIdentity {
    /// The member name the certificate was issued to.
    pub name: String,
    roots: Arc<rustls::RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

pub(crate) fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let text = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut text.as_slice())
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: bad PEM", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no certificate in it", path.display());
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1 PEM) in `path`.
pub fn read_pem_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let text = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    rustls_pemfile::private_key(&mut text.as_slice())
        .with_context(|| format!("{}: bad PEM", path.display()))?
        .with_context(|| format!("{}: no private key in it", path.display()))
}

/// The certificates in `path` as trusted roots.
pub fn read_roots(path: &Path) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_pem_certs(path)? {
        roots.add(cert).with_context(|| format!("{}: unusable CA certificate", path.display()))?;
    }
    Ok(roots)
}

impl TlsIdentity {
    /// Loads `ca.pem`, `NAME.pem` and `NAME.key` from `dir`.
    pub fn load(dir: &Path, name: &str) -> Result<TlsIdentity> {
        let mut roots = rustls::RootCertStore::empty();
        for ca in read_pem_certs(&dir.join("ca.pem"))? {
            roots.add(ca).with_context(|| format!("{}/ca.pem: unusable CA", dir.display()))?;
        }
        let chain = read_pem_certs(&dir.join(format!("{name}.pem")))?;
        let key_path = dir.join(format!("{name}.key"));
        let key_pem = fs::read_to_string(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?;
        let key = KeyPair::from_pem(&key_pem)
            .with_context(|| format!("{}: not a private key", key_path.display()))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let cert_name = certificate_name(&chain[0])
            .with_context(|| format!("{}/{name}.pem", dir.display()))?;
        if cert_name != name {
            bail!("{}/{name}.pem was issued to {cert_name:?}, not {name:?}", dir.display());
        }
        Ok(TlsIdentity { name: name.to_owned(), roots: Arc::new(roots), chain, key })
    }

    /// A secret derived from this member's private key, stable across restarts: the key of
    /// QUIC stateless resets, so that after a restart peers still holding a connection to the
    /// previous run are told at once that it is gone.
    pub fn reset_secret(&self) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"eccluster stateless reset v1");
        ctx.update(self.key.secret_der());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// The crypto provider of every TLS configuration of the cluster: rustls's ring provider.
    pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// The cluster CA, as trusted roots.
    pub fn roots(&self) -> Arc<rustls::RootCertStore> {
        self.roots.clone()
    }

    /// Our certificate chain and its private key.
    pub fn certified(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (self.chain.clone(), self.key.clone_key())
    }

    /// The member's certificate chain and key, for the cluster page's HTTPS.
    pub fn https_server_config(&self) -> Result<rustls::ServerConfig> {
        https_server_config(self.chain.clone(), self.key.clone_key())
    }

    /// [`spki_sha256`] of the member's certificate.
    pub fn spki_sha256(&self) -> Result<String> {
        let first = self.chain.first().context("an empty certificate chain")?;
        spki_sha256(first)
    }

    /// rustls server side: present our certificate, require a client certificate from the CA.
    pub fn server_config(&self) -> Result<rustls::ServerConfig> {
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(self.roots.clone(), Self::provider())
                .build()
                .context("building client certificate verifier")?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .context("TLS 1.3")?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .context("our certificate and key do not match")?;
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        Ok(cfg)
    }

    /// rustls client side: trust only the CA, present our certificate.
    pub fn client_config(&self) -> Result<rustls::ClientConfig> {
        let mut cfg = rustls::ClientConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .context("TLS 1.3")?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .context("our certificate and key do not match")?;
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        Ok(cfg)
    }
}

/// A plain HTTPS server configuration (HTTP/1.1, no client certificate) presenting `chain` and
/// `key`: the cluster page's, with the member's own certificate or one given for the page.
pub fn https_server_config(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<rustls::ServerConfig> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(TlsIdentity::provider())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and key do not match")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The SHA-256 of a certificate's public key (SubjectPublicKeyInfo), base64: what browsers
/// take to trust one key (chromium's `--ignore-certificate-errors-spki-list`) and what an
/// operator compares when pinning.
pub fn spki_sha256(cert: &CertificateDer<'_>) -> Result<String> {
    use base64::Engine;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| anyhow::anyhow!("unparsable certificate: {e}"))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, parsed.tbs_certificate.subject_pki.raw);
    Ok(base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
}

/// The member name a certificate was issued to: its first DNS subject alternative name.
pub fn certificate_name(cert: &CertificateDer<'_>) -> Result<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| anyhow::anyhow!("unparsable certificate: {e}"))?;
    let san = parsed
        .subject_alternative_name()
        .map_err(|e| anyhow::anyhow!("bad subjectAltName: {e}"))?;
    if let Some(san) = san {
        for gn in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(n) = gn {
                return Ok(n.to_ascii_lowercase());
            }
        }
    }
    bail!("certificate has no DNS subject alternative name")
}

/// The authenticated name of the peer of a QUIC connection.
pub fn peer_name(conn: &quinn::Connection) -> Result<String> {
    let identity = conn.peer_identity().context("peer presented no certificate")?;
    let certs = identity
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| anyhow::anyhow!("peer identity is not a certificate chain"))?;
    let first = certs.first().context("peer presented an empty certificate chain")?;
    certificate_name(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_carry_the_member_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        ca_init(dir.path(), "test").expect("ca init");
        assert!(ca_init(dir.path(), "test").is_err(), "must not overwrite a CA");
        ca_issue(dir.path(), &["east1".into(), "mgr".into()]).expect("issue");
        let id = TlsIdentity::load(dir.path(), "east1").expect("load");
        assert_eq!(certificate_name(&id.chain[0]).expect("name"), "east1");
        id.server_config().expect("server config");
        id.client_config().expect("client config");
        let mode = fs::metadata(dir.path().join("east1.key")).expect("key").permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
        let err = ca_issue(dir.path(), &["bad name".into()]).expect_err("bad name");
        assert!(err.to_string().contains("not a valid member name"), "{err}");
    }
}
