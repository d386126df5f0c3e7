//! Providers authenticated by a shared `Authorization` value (Okta, Auth0, Supabase database
//! webhooks), batches, and Okta's verification challenge, through the handler.

use crate::support::*;

#[tokio::test]
async fn okta_batch_syncs_every_user_and_lists_the_records() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&resign(event_file("okta-users-created.json"), OKTA_SECRET))
        .await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "synced");
    let records = answer.body["records"]
        .as_array()
        .expect("one entry per event");
    assert_eq!(records.len(), 2);
    let users = t.attio.records("users");
    for (entry, user_id) in records
        .iter()
        .zip(["00u1s8ir7jCPI3ZSp0g7", "00u1s8ir7jCPI3ZSp0g9"])
    {
        let user = users
            .iter()
            .find(|u| u.text("user_id") == Some(user_id))
            .expect("user in Attio");
        assert_eq!(entry["record_id"], user.id);
    }
}

#[tokio::test]
async fn okta_batch_answers_5xx_unless_every_event_landed() {
    let t = TestApp::spawn().await;
    // The second user's person assert fails on every attempt.
    t.attio
        .inject_for("people", Fault::Slow(std::time::Duration::ZERO));
    fail_every_attempt(&t.attio, Some("people"), attio_error(500, "internal_error"));

    let answer = t
        .send(&resign(event_file("okta-users-created.json"), OKTA_SECRET))
        .await;

    assert_eq!(
        (answer.status, answer.code()),
        (502, "attio_unavailable"),
        "{:?}",
        answer.body
    );
    assert_eq!(
        t.attio.records("users").len(),
        1,
        "the first event landed; Okta's retry re-applies both"
    );
}

#[tokio::test]
async fn okta_verification_challenge_is_echoed() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&resign(event_file("okta-verification.json"), OKTA_SECRET))
        .await;

    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.body,
        serde_json::json!({"verification": "In4ZtV8DoJmVuHzKp0kdkzg0i9xp0bIu"})
    );
}

#[tokio::test]
async fn okta_with_a_wrong_or_missing_authorization_is_401() {
    let t = TestApp::spawn().await;
    let wrong = t
        .send(&resign(event_file("okta-users-created.json"), "okta-guess"))
        .await;
    let mut unsigned = event_file("okta-users-created.json");
    unsigned["headers"]
        .as_object_mut()
        .unwrap()
        .remove("authorization");
    let missing = t.send(&unsigned).await;

    assert_eq!((wrong.status, wrong.code()), (401, "invalid_signature"));
    assert_eq!((missing.status, missing.code()), (401, "missing_signature"));
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn auth0_log_stream_signup_is_synced_and_logins_ignored() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&resign(event_file("auth0-log-stream.json"), AUTH0_SECRET))
        .await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["event_type"], "log_stream");
    let [user] = t.attio.records("users").try_into().expect("one user");
    assert_eq!(user.text("user_id"), Some("auth0|6564a1b2c3d4e5f6a7b8c9d0"));
    let records = answer.body["records"]
        .as_array()
        .expect("one outcome per log");
    assert_eq!(records[0]["record_id"], user.id);
    assert_eq!(
        records[1]["status"], "ignored",
        "the login, with no sign-in mapping"
    );
}

#[tokio::test]
async fn auth0_with_another_routes_secret_is_401() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&resign(event_file("auth0-log-stream.json"), OKTA_SECRET))
        .await;

    assert_eq!((answer.status, answer.code()), (401, "invalid_signature"));
}

#[tokio::test]
async fn supabase_database_insert_is_synced() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&resign(
            event_file("supabase-db-user-inserted.json"),
            SUPABASE_DB_SECRET,
        ))
        .await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["event_type"], "auth.users.insert");
    let [person] = t.attio.records("people").try_into().expect("one person");
    assert_eq!(person.first("name").unwrap()["full_name"], "Mary Jackson");
}

#[tokio::test]
async fn supabase_database_with_a_wrong_secret_is_401() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&resign(
            event_file("supabase-db-user-inserted.json"),
            "Bearer nope",
        ))
        .await;

    assert_eq!((answer.status, answer.code()), (401, "invalid_signature"));
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn okta_gets_an_answer_before_its_three_second_timeout() {
    // With the 15 s budget a stalled call would time out at 5 s and its retry succeed; Okta's
    // own limit cuts the budget to 2.5 s, so the function answers 502 instead of arriving late.
    let t = TestApp::spawn_with(&default_secret(), &[("ATTIO_MAX_ELAPSED_MS", "15000")]).await;
    t.attio
        .inject(Fault::Slow(std::time::Duration::from_secs(20)));

    let answer = t
        .send(&resign(event_file("okta-users-created.json"), OKTA_SECRET))
        .await;

    // Okta's 3 s ran out while Attio stalled: a retryable answer naming the time budget.
    assert_eq!(
        (answer.status, answer.code()),
        (503, "time_budget_exhausted"),
        "{:?}",
        answer.body
    );
}
