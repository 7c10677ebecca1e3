//! TLS towards targets with `ssl` (rustls with the ring provider and the webpki root store).
//!
//! Two client configs are built once: one that verifies certificates against the Mozilla roots
//! shipped in `webpki-roots`, and one for targets marked `insecure` that accepts any certificate
//! (signatures on the handshake are still checked, so the peer must hold the key of the
//! certificate it presents; only the chain and the name are not verified).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// The two TLS client configurations.
#[derive(Clone, Debug)]
pub struct TlsConfigs {
    verified: Arc<ClientConfig>,
    insecure: Arc<ClientConfig>,
}

/// Why the TLS configuration could not be built (only with a broken crypto provider).
#[derive(Debug, thiserror::Error)]
#[error("cannot build TLS client configuration: {0}")]
pub struct TlsConfigError(#[from] rustls::Error);

impl TlsConfigs {
    /// Builds both configurations.
    pub fn new() -> Result<Self, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let mut verified = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        verified.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut insecure = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::new(&provider)))
            .with_no_client_auth();
        insecure.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            verified: Arc::new(verified),
            insecure: Arc::new(insecure),
        })
    }

    /// The configuration for a target.
    pub fn for_target(&self, insecure: bool) -> Arc<ClientConfig> {
        if insecure {
            self.insecure.clone()
        } else {
            self.verified.clone()
        }
    }
}

/// Verifier for `insecure` targets: any chain, any name.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AcceptAnyCertificate {
    fn new(provider: &CryptoProvider) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for AcceptAnyCertificate {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_configs_build() {
        let configs = TlsConfigs::new().unwrap();
        assert!(!Arc::ptr_eq(
            &configs.for_target(true),
            &configs.for_target(false)
        ));
        assert_eq!(
            configs.for_target(false).alpn_protocols,
            vec![b"http/1.1".to_vec()]
        );
    }
}
