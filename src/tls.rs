//! Which certificate authorities the function trusts for Attio and Secrets Manager.
//!
//! By default, Mozilla's root programme as compiled into `webpki-roots`: nothing is read or
//! parsed at cold start (reading and parsing the system's CA bundle was the largest part of the
//! function's own init time; see BENCHMARKS.md). Set `SSL_CERT_FILE` to a PEM bundle to trust
//! exactly that bundle instead, e.g. behind a TLS-inspecting egress proxy with a private CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use thiserror::Error;

/// Why the configured CA bundle cannot be used.
#[derive(Debug, Error)]
pub enum TlsError {
    /// The file named by `SSL_CERT_FILE` could not be read or holds no certificate.
    #[error("SSL_CERT_FILE {path}: {reason}")]
    Bundle {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the configuration (no usable protocol version).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The TLS client configuration: `ca_bundle`'s certificates when given, else webpki-roots.
/// HTTP/1.1 only (see Cargo.toml), offered through ALPN.
pub fn client_config(ca_bundle: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    let roots = match ca_bundle {
        None => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
        Some(path) => bundle_roots(path)?,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn bundle_roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let bundle_error = |reason: String| TlsError::Bundle {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bundle_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bundle_error(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(bundle_error("no usable certificate in the file".into()));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/it/fixtures")
            .join(name)
    }

    #[test]
    fn an_unusable_bundle_is_refused_naming_the_variable_and_file() {
        let missing = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("SSL_CERT_FILE /nonexistent/ca.pem:"),
            "{missing}"
        );
        // A private key is PEM, but not a certificate.
        let not_certs = client_config(Some(&fixture("tls-test-server.key"))).unwrap_err();
        assert!(
            not_certs.to_string().contains("no usable certificate"),
            "{not_certs}"
        );
    }
}
