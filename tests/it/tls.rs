//! TLS as in production: Attio behind HTTPS, reached when its certificate authority is trusted
//! (`SSL_CERT_FILE`) and refused when it is not one of the compiled-in public roots.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::support::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name)
}

/// An HTTPS front for `backend` (a plain-HTTP server) with the test CA's `localhost`
/// certificate; returns its base URL.
async fn https_front(backend: &str) -> String {
    let backend: SocketAddr = backend
        .trim_start_matches("http://")
        .parse()
        .expect("the stand-in's address");
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
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut plain = tokio::net::TcpStream::connect(backend).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    format!("https://localhost:{port}")
}

async fn app_behind_tls(env: &[(&str, &str)]) -> TestApp {
    let attio = AttioStandIn::start(TOKEN).await;
    let secret_id = create_secret(&default_secret()).await;
    let app = app_for(&secret_id, &https_front(&attio.url()).await, env).await;
    TestApp {
        app,
        attio,
        secret_id,
    }
}

#[tokio::test]
async fn attio_over_https_is_reached_when_ssl_cert_file_trusts_its_authority() {
    let ca = fixture("tls-test-ca.pem");
    let t = app_behind_tls(&[("SSL_CERT_FILE", ca.to_str().unwrap())]).await;

    let answer = t.send(&new_user_event()).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(t.attio.records("users").len(), 1);
    assert_eq!(answer.body["record_id"], t.attio.records("users")[0].id);
}

#[tokio::test]
async fn an_authority_outside_the_compiled_in_roots_is_refused() {
    let t = app_behind_tls(&[]).await;

    let answer = t.send(&new_user_event()).await;

    assert_eq!(answer.status, 502, "{}", answer.body);
    assert_eq!(answer.code(), "attio_unreachable");
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("certificate"), "{message}");
    assert!(t.attio.requests().is_empty(), "nothing reached Attio");
}
