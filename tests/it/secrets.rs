//! The secret's cache and rotation, against moto's Secrets Manager.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn rotated_attio_token_is_picked_up_on_attio_401() {
    let t = TestApp::spawn().await;
    let warm = t.send(&new_user_event()).await;
    assert_eq!(warm.status, 200);

    t.attio.rotate_token("attio-rotated-token");
    let mut rotated = default_secret();
    rotated["attio_access_token"] = json!("attio-rotated-token");
    put_secret(&t.secret_id, &rotated).await;
    let answer = t
        .send(&clerk_event(
            "user.updated",
            "user_1",
            "a@example.com",
            "A",
            "C",
        ))
        .await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let statuses: Vec<u16> = t.attio.requests().iter().map(|r| r.status).collect();
    // The first event: a read and two writes. The change is the person's name: the user
    // record's values are what this container wrote a moment ago, so only the read before the
    // person's write and the person are sent again.
    assert_eq!(
        statuses,
        [200, 200, 200, 401, 200, 200],
        "one refused call, then the read and the person's assert again with the new token"
    );
}

#[tokio::test]
async fn token_attio_refuses_even_after_refetch_is_500() {
    let t = TestApp::spawn().await;
    t.attio.rotate_token("a-token-nobody-has");

    let answer = t.send(&new_user_event()).await;

    assert_eq!((answer.status, answer.code()), (500, "attio_unauthorized"));
}

#[tokio::test]
async fn rotated_signing_secret_is_picked_up_but_refetches_are_rate_limited() {
    let t = TestApp::spawn().await;
    let first = t
        .send(&resign(event_file("clerk-user-created.json"), CLERK_SECRET))
        .await;
    assert_eq!(first.status, 200);

    // The secret is rotated in Secrets Manager: the cached copy does not match, one refetch does.
    let second_secret = "whsec_cm90YXRlZCBjbGVyayBzZWNyZXQgbnVtYmVyIDI=";
    let mut rotated = default_secret();
    rotated["webhook_secrets"]["clerk"] = json!(second_secret);
    put_secret(&t.secret_id, &rotated).await;
    let after_rotation = t
        .send(&resign(
            event_file("clerk-user-updated.json"),
            second_secret,
        ))
        .await;
    assert_eq!(after_rotation.status, 200, "{:?}", after_rotation.body);

    // Rotated again at once: no second refetch within 30 s, so forged traffic cannot flood
    // Secrets Manager; the sender's retry after the window will pass.
    let third_secret = "whsec_cm90YXRlZCBjbGVyayBzZWNyZXQgbnVtYmVyIDM=";
    rotated["webhook_secrets"]["clerk"] = json!(third_secret);
    put_secret(&t.secret_id, &rotated).await;
    let too_soon = t
        .send(&resign(event_file("clerk-user-updated.json"), third_secret))
        .await;
    assert_eq!(
        (too_soon.status, too_soon.code()),
        (401, "invalid_signature")
    );
}

#[tokio::test]
async fn missing_secret_is_500_secret_unavailable() {
    let attio = AttioStandIn::start(TOKEN).await;
    let app = app_for("attio-user-sync/test/does-not-exist", &attio.url(), &[]).await;
    let request = lambda_http::request::from_str(
        &resign(event_file("clerk-user-created.json"), CLERK_SECRET).to_string(),
    )
    .unwrap();

    let response = app.handle(request).await;

    assert_eq!(response.status(), 500);
    let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(body["error"]["code"], "secret_unavailable");
    assert!(attio.requests().is_empty());
}

#[tokio::test]
async fn secret_that_is_not_json_is_500_without_echoing_it() {
    let t = TestApp::spawn_with(&json!("sk_live_not_json"), &[]).await;

    let answer = t
        .send(&resign(event_file("clerk-user-created.json"), CLERK_SECRET))
        .await;

    assert_eq!((answer.status, answer.code()), (500, "secret_malformed"));
    assert!(!answer.body.to_string().contains("sk_live"));
}
