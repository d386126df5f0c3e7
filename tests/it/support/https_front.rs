//! An HTTPS front for a local plain-HTTP server (the Attio stand-in, moto), with a `localhost`
//! certificate from the test CA in `tests/it/fixtures`: TLS as in production, on loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A file in `tests/it/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name)
}

/// The test CA's certificate, for `SSL_CERT_FILE`.
pub fn test_ca_bundle() -> String {
    fixture("tls-test-ca.pem").display().to_string()
}

/// Serves TLS on a free loopback port and forwards each connection to `backend`
/// (`http://127.0.0.1:port`); returns the front's `https://localhost:port` URL.
pub async fn https_front(backend: &str) -> String {
    let backend: SocketAddr = backend
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("a loopback http://address:port");
    let certs = CertificateDer::pem_file_iter(fixture("tls-test-server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("tls-test-server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake ends here, as it would at Attio.
                // Without TCP_NODELAY, Nagle's algorithm and delayed ACKs hold small TLS records
                // back for 40 ms at a time: a delay of this harness, not of the client.
                socket.set_nodelay(true).unwrap();
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut plain = tokio::net::TcpStream::connect(backend).await.unwrap();
                plain.set_nodelay(true).unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    format!("https://localhost:{port}")
}
