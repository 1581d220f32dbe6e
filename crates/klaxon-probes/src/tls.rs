//! TLS certificate expiry: handshake with `address`, read the server's
//! certificate, and count the days left (fewer than `warn_days` → degraded,
//! fewer than `critical_days` or expired → down). With `tls_verify` (the
//! default) the chain is also verified against the Mozilla roots (and
//! `ca_file`) at the clock's time.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::spec::CheckSpec;
use crate::{Found, Outcome};

const DEFAULT_WARN_DAYS: u32 = 14;
const DEFAULT_CRITICAL_DAYS: u32 = 3;

/// Accepts any certificate during the handshake: the probe looks at it
/// afterwards (expiry always, the chain when `tls_verify`). Handshake
/// signatures are still checked.
#[derive(Debug)]
struct LookLater(Arc<CryptoProvider>);

impl ServerCertVerifier for LookLater {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn roots(spec: &CheckSpec) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(f) = &spec.ca_file {
        for c in CertificateDer::pem_file_iter(f).map_err(|e| format!("ca_file {f}: {e}"))? {
            let c = c.map_err(|e| format!("ca_file {f}: {e}"))?;
            roots.add(c).map_err(|e| format!("ca_file {f}: {e}"))?;
        }
    }
    Ok(roots)
}

pub(crate) async fn probe(spec: &CheckSpec, now: Timestamp) -> Found {
    let (host, port) = spec.host_port().ok_or("address is not host:port")?;
    let sni = spec.server_name.clone().unwrap_or_else(|| host.to_string());
    let server_name = ServerName::try_from(sni.clone()).map_err(|e| format!("server name {sni:?}: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS config: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(LookLater(provider.clone())))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name.clone(), tcp)
        .await
        .map_err(|e| format!("TLS handshake with {host}:{port}: {e}"))?;
    let chain: Vec<CertificateDer<'static>> = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
        .unwrap_or_default();
    let leaf = chain.first().ok_or("the server sent no certificate")?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| format!("server certificate: {e}"))?;
    let not_after = cert.validity().not_after.timestamp();
    let expires = Timestamp::from_second(not_after).map_err(|e| format!("certificate notAfter: {e}"))?;
    if spec.tls_verify != Some(false) {
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots(spec)?), provider)
            .build()
            .map_err(|e| format!("TLS verifier: {e}"))?;
        let at = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now.as_second()).unwrap_or(0)));
        verifier
            .verify_server_cert(leaf, &chain[1..], &server_name, &[], at)
            .map_err(|e| format!("certificate of {sni} is not valid: {e}"))?;
    }
    let left = expires.as_second() - now.as_second();
    let days = left.div_euclid(86_400);
    let warn = i64::from(spec.warn_days.unwrap_or(DEFAULT_WARN_DAYS));
    let critical = i64::from(spec.critical_days.unwrap_or(DEFAULT_CRITICAL_DAYS));
    let what = format!("certificate of {sni} ({})", cert.subject());
    if left <= 0 {
        return Err(format!("{what} expired at {expires}"));
    }
    if days < critical {
        return Err(format!(
            "{what} expires in {days} days ({expires}), fewer than {critical}"
        ));
    }
    if days < warn {
        return Ok((
            Outcome::Degraded,
            format!("{what} expires in {days} days ({expires}), fewer than {warn}"),
        ));
    }
    Ok((Outcome::Ok, format!("{what} expires in {days} days ({expires})")))
}
