//! TLS with rustls: the certificate and key of `[Server] ssl_cert`/`ssl_key`, or a self-signed
//! certificate generated at start when the operator asks for one explicitly.
//!
//! The original silently switches to a throw-away self-signed certificate whenever `ssl` is set
//! (and reads `ssl = False` as set); browsers then show a warning that users learn to click
//! through. Here `ssl = True` without a certificate is an error unless `--self-signed` says a
//! generated one is wanted. HTTP/2 is offered by ALPN, HTTP/1.1 stays available.

use crate::config::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("[Server] ssl is on but ssl_cert and ssl_key are not both set: set them to a certificate and key in PEM form, or start with --self-signed to generate a throw-away certificate")]
    NoCertificate,
    #[error("cannot read the certificate {path}: {reason}")]
    Cert { path: String, reason: String },
    #[error("cannot read the private key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("the certificate and key cannot be used: {0}")]
    Config(String),
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Cert {
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in it".into()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Key {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// A self-signed certificate for `names` (DNS names or IP addresses), as PEM text
/// `(certificate, private key)`.
pub fn self_signed_pem(names: &[String]) -> Result<(String, String), TlsError> {
    let ck = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok((ck.cert.pem(), ck.signing_key.serialize_pem()))
}

/// The rustls configuration for `[Server]`, `None` when TLS is off.
pub fn server_config(
    cfg: &ServerConfig,
    self_signed: bool,
) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
    if !cfg.ssl {
        return Ok(None);
    }
    let (certs, key) = match (&cfg.ssl_cert, &cfg.ssl_key) {
        (Some(c), Some(k)) => (load_certs(c)?, load_key(k)?),
        _ if self_signed => {
            let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
            if !names.contains(&cfg.host) {
                names.push(cfg.host.clone());
            }
            let (cert, key) = self_signed_pem(&names)?;
            tracing::warn!(
                "TLS with a self-signed certificate generated at start for {names:?} (--self-signed): browsers will warn; configure [Server] ssl_cert/ssl_key for real use"
            );
            let certs = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsError::Generate(e.to_string()))?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|e| TlsError::Generate(e.to_string()))?;
            (certs, key)
        }
        _ => return Err(TlsError::NoCertificate),
    };
    let mut sc = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Config(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| TlsError::Config(e.to_string()))?;
    sc.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Arc::new(sc)))
}
