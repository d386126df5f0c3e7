//! TLS as in production: Attio behind HTTPS, reached when its certificate authority is trusted
//! (`SSL_CERT_FILE`) and refused when it is not one of the compiled-in public roots.

use crate::support::https_front::{https_front, test_ca_bundle};
use crate::support::*;

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
    let t = app_behind_tls(&[("SSL_CERT_FILE", &test_ca_bundle())]).await;

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
