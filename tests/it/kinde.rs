//! Kinde: RS256 JWT bodies verified against a JWKS served by the test, with locally generated
//! RSA keys (tests/it/fixtures, made with `openssl genrsa -traditional 2048`).

use serde_json::json;

use crate::support::*;

async fn kinde_app(jwks: &JwksServer) -> TestApp {
    TestApp::spawn_with(&default_secret(), &[("KINDE_ISSUER_URL", &jwks.url)]).await
}

#[tokio::test]
async fn signed_user_created_syncs_the_user_and_its_organisation() {
    let jwks = JwksServer::start(&[1]).await;
    let t = kinde_app(&jwks).await;
    let token = kinde_token(
        &kinde_user_created("kp_gladys", "gladys@example.com", "org_nasa"),
        1,
    );

    let answer = t.send(&kinde_event(&token)).await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        (
            answer.body["provider"].as_str(),
            answer.body["event_type"].as_str()
        ),
        (Some("kinde"), Some("user.created"))
    );
    let [user] = t.attio.records("users").try_into().expect("one user");
    assert_eq!(user.text("user_id"), Some("kp_gladys"));
    let [workspace] = t
        .attio
        .records("workspaces")
        .try_into()
        .expect("one workspace");
    assert_eq!(workspace.text("workspace_id"), Some("org_nasa"));
    assert_eq!(user.text("workspace"), Some(workspace.id.as_str()));
}

#[tokio::test]
async fn token_from_a_key_kinde_does_not_publish_is_401() {
    let jwks = JwksServer::start(&[1]).await;
    let t = kinde_app(&jwks).await;
    let token = kinde_token(&kinde_user_created("kp_1", "a@example.com", "org_1"), 2);

    let answer = t.send(&kinde_event(&token)).await;

    assert_eq!(
        (answer.status, answer.code()),
        (401, "invalid_signature"),
        "{:?}",
        answer.body
    );
    // The key id is the (unverified) token's own text: not repeated.
    assert!(
        !answer.body.to_string().contains("kinde-test-2"),
        "{}",
        answer.body
    );
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn rotated_key_is_fetched_once_and_accepted() {
    let jwks = JwksServer::start(&[1]).await;
    let t = kinde_app(&jwks).await;
    let first = t
        .send(&kinde_event(&kinde_token(
            &kinde_user_created("kp_1", "a@example.com", "org_1"),
            1,
        )))
        .await;
    assert_eq!(first.status, 200);

    jwks.serve(&[1, 2]);
    let rotated = t
        .send(&kinde_event(&kinde_token(
            &kinde_user_created("kp_2", "b@example.com", "org_1"),
            2,
        )))
        .await;

    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    assert_eq!(
        jwks.fetches(),
        2,
        "fetched at first use and once on the unknown kid"
    );
}

#[tokio::test]
async fn tampered_claims_and_unsigned_tokens_are_401() {
    use base64::Engine as _;
    let jwks = JwksServer::start(&[1]).await;
    let t = kinde_app(&jwks).await;
    let token = kinde_token(&kinde_user_created("kp_1", "a@example.com", "org_1"), 1);
    let parts: Vec<&str> = token.split('.').collect();
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let forged_claims = b64(kinde_user_created("kp_1", "evil@example.com", "org_1"));
    let tampered = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "kid": "kinde-test-1"})),
        parts[1]
    );
    let odd_header = format!(
        "{}.{}.{}",
        b64(json!({"alg": "HOSTILE-ALG-leak@example.com"})),
        parts[1],
        parts[2]
    );

    for token in [tampered, unsigned, odd_header, "not a jwt".to_owned()] {
        let answer = t.send(&kinde_event(&token)).await;
        assert_eq!(
            (answer.status, answer.code()),
            (401, "invalid_signature"),
            "{token}: {:?}",
            answer.body
        );
        assert!(
            !answer.body.to_string().contains("HOSTILE"),
            "{}",
            answer.body
        );
    }
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn kinde_without_an_issuer_url_is_500_naming_the_setting() {
    let t = TestApp::spawn().await;
    let token = kinde_token(&kinde_user_created("kp_1", "a@example.com", "org_1"), 1);

    let answer = t.send(&kinde_event(&token)).await;

    assert_eq!((answer.status, answer.code()), (500, "setting_missing"));
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("KINDE_ISSUER_URL")
    );
}

#[tokio::test]
async fn a_user_in_several_organisations_is_linked_to_each_once() {
    let jwks = JwksServer::start(&[1]).await;
    let t = kinde_app(&jwks).await;
    let mut claims = kinde_user_created("kp_multi", "multi@example.com", "org_a");
    claims["data"]["user"]["organizations"] =
        json!([{"code": "org_a"}, {"code": "org_b"}, {"code": "org_a"}]);

    let answer = t.send(&kinde_event(&kinde_token(&claims, 1))).await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let [user] = t.attio.records("users").try_into().expect("one user");
    let linked = user.values["workspace"].as_array().unwrap();
    assert_eq!(linked.len(), 2, "{linked:?}");
    assert_eq!(t.attio.records("workspaces").len(), 2);
}

#[tokio::test]
async fn a_kinde_sign_in_updates_the_mapped_last_seen() {
    let jwks = JwksServer::start(&[1]).await;
    let t = TestApp::spawn_with(
        &default_secret(),
        &[
            ("KINDE_ISSUER_URL", &jwks.url),
            (
                "ATTIO_ATTRIBUTE_MAP",
                r#"{"users": {"last_seen": "last_sign_in_at"}}"#,
            ),
        ],
    )
    .await;
    let created = t
        .send(&kinde_event(&kinde_token(
            &kinde_user_created("kp_1", "a@example.com", "org_1"),
            1,
        )))
        .await;
    let sign_in = json!({"type": "user.authenticated", "event_id": "event_signin", "source": "user",
                         "timestamp": "2026-11-27T10:30:00Z", "data": {"user": {"id": "kp_1"}}});

    let answer = t.send(&kinde_event(&kinde_token(&sign_in, 1))).await;

    assert_eq!(
        (answer.status, answer.body["status"].as_str()),
        (200, Some("signed_in")),
        "{}",
        answer.body
    );
    assert_eq!(answer.body["record_id"], created.body["record_id"]);
    let [user] = t.attio.records("users").try_into().expect("one user");
    assert_eq!(
        user.values["last_seen"],
        json!(["2026-11-27T10:30:00.000000000Z"])
    );
}
