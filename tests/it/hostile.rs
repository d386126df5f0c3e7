//! Hostile and careless input through the real handler: what the sender is answered, and that
//! nothing it chose is echoed or reaches Attio. (What the logs hold is checked under
//! `cargo lambda watch`, in cargo_lambda_watch.rs.)

use serde_json::{Value, json};

use crate::support::*;

/// A text no answer or log may repeat.
const MARKER: &str = "HOSTILE-MARKER-7f3a";

#[tokio::test]
async fn a_field_of_the_wrong_type_is_400_naming_the_field_never_its_value() {
    let t = TestApp::spawn().await;
    let mut body = clerk_user("user.created", "user_1", "ada@example.com", "Ada", "L");
    // 200,000 characters where Clerk sends Unix milliseconds.
    body["data"]["created_at"] = json!(format!("{MARKER}{}", "x".repeat(200_000)));

    let answer = t
        .send(&with_body("clerk-user-created.json", &body, CLERK_SECRET))
        .await;

    assert_eq!((answer.status, answer.code()), (400, "invalid_payload"));
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        "the body is not a Clerk webhook payload: data.created_at: expected i64, found string"
    );
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn payload_errors_never_quote_what_the_sender_wrote() {
    let t = TestApp::spawn().await;
    let user = |patch: &dyn Fn(&mut Value)| {
        let mut body = clerk_user("user.updated", "user_1", "ada@example.com", "Ada", "L");
        patch(&mut body);
        with_body("clerk-user-created.json", &body, CLERK_SECRET)
    };
    let cases = [
        user(&|b| b["data"]["id"] = json!({ MARKER: MARKER })),
        user(&|b| b["data"]["first_name"] = json!([MARKER])),
        user(&|b| b["data"]["email_addresses"][0]["email_address"] = json!(7)),
        user(&|b| b["data"]["updated_at"] = json!(format!("{MARKER}@example.com"))),
        user(&|b| b["type"] = json!({ "nested": MARKER })),
        // Not JSON at all, and JSON with trailing text.
        with_raw_body(&format!("{{\"type\":\"{MARKER}")),
        with_raw_body(&format!(
            "{{\"type\":\"user.deleted\",\"data\":{{\"id\":\"u\"}}}} {MARKER}"
        )),
    ];
    for event in cases {
        let answer = t.send(&event).await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "invalid_payload"),
            "{}",
            answer.body
        );
        let text = answer.body.to_string();
        assert!(
            !text.contains(MARKER),
            "the answer quotes the input: {text}"
        );
        assert!(!text.contains("example.com"), "{text}");
    }
    assert!(t.attio.requests().is_empty());
}

fn with_raw_body(body: &str) -> Value {
    let mut event = event_file("clerk-user-created.json");
    event["body"] = json!(body);
    resign(event, CLERK_SECRET)
}

#[tokio::test]
async fn impossible_and_deceptive_addresses_are_422_invalid_email_and_never_reach_attio() {
    let t = TestApp::spawn().await;
    for address in [
        "<ada@example.com>",
        "Ada Lovelace <ada@example.com>",
        "mailto:ada@example.com",
        "ada\u{200B}@example.com",
        "ada@exam\u{00AD}ple.com",
        "ada@example.com\u{202E}",
        "ada\u{0000}@example.com",
        "\u{0430}da@example.com",
        "ada@p\u{0430}ypal.com",
        "ada@[192.0.2.1]",
        "ada@exa_mple.com",
    ] {
        let answer = t
            .send(&clerk_event("user.created", "user_1", address, "Ada", "L"))
            .await;

        assert_eq!(
            (answer.status, answer.code()),
            (422, "invalid_email"),
            "{address:?}: {}",
            answer.body
        );
        let message = answer.body["error"]["message"].as_str().unwrap();
        assert!(!message.contains("ada"), "{message}");
    }
    assert!(t.attio.requests().is_empty(), "nothing was sent to Attio");
}

#[tokio::test]
async fn one_mailbox_is_one_person_whether_its_domain_comes_in_unicode_or_punycode() {
    let t = TestApp::spawn().await;

    let first = t
        .send(&clerk_event(
            "user.created",
            "user_1",
            "ada@bücher.example",
            "Ada",
            "L",
        ))
        .await;
    let second = t
        .send(&clerk_event(
            "user.updated",
            "user_1",
            "ada@xn--bcher-kva.example",
            "Ada",
            "Lovelace",
        ))
        .await;

    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(
        first.body["person_record_id"],
        second.body["person_record_id"]
    );
    let [person] = t.attio.records("people").try_into().expect("one person");
    assert_eq!(
        person.values["email_addresses"],
        json!(["ada@xn--bcher-kva.example"])
    );
    assert_eq!(t.attio.records("users").len(), 1);
}

/// Okta's verification `GET`, with `authorization` as the hook would send it (or none).
fn okta_verification(authorization: Option<&str>, challenge: &str) -> Value {
    let mut event = event_file("okta-verification.json");
    match authorization {
        Some(value) => event["headers"]["authorization"] = json!(value),
        None => {
            event["headers"]
                .as_object_mut()
                .unwrap()
                .remove("authorization");
        }
    }
    event["headers"]["x-okta-verification-challenge"] = json!(challenge);
    event
}

#[tokio::test]
async fn okta_verification_is_answered_only_with_the_hooks_authorization() {
    let t = TestApp::spawn().await;

    let genuine = t
        .send(&okta_verification(
            Some(OKTA_SECRET),
            "Me_rShK8JHsTnbyYrWXCEoMGbM_zsZ6k0hLPZ_Pg",
        ))
        .await;
    let missing = t.send(&okta_verification(None, "anything")).await;
    let wrong = t.send(&okta_verification(Some("guess"), "anything")).await;

    assert_eq!(genuine.status, 200);
    assert_eq!(
        genuine.body,
        json!({"verification": "Me_rShK8JHsTnbyYrWXCEoMGbM_zsZ6k0hLPZ_Pg"})
    );
    assert_eq!((missing.status, missing.code()), (401, "missing_signature"));
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_signature"));
    for refused in [&missing, &wrong] {
        assert!(!refused.body.to_string().contains("anything"));
    }
}

#[tokio::test]
async fn okta_verification_echoes_only_short_url_safe_challenges() {
    let t = TestApp::spawn().await;
    let long = "a".repeat(60_000);

    for challenge in ["<img src=x onerror=alert(1)>", "a\"b", long.as_str()] {
        let answer = t
            .send(&okta_verification(Some(OKTA_SECRET), challenge))
            .await;

        assert_eq!(
            (answer.status, answer.code()),
            (400, "invalid_payload"),
            "{}",
            answer.body
        );
        assert!(!answer.body.to_string().contains(challenge));
    }
}

#[tokio::test]
async fn okta_verification_without_a_configured_secret_is_refused_not_echoed() {
    let mut secret = default_secret();
    secret["webhook_secrets"]
        .as_object_mut()
        .unwrap()
        .remove("okta");
    let t = TestApp::spawn_with(&secret, &[]).await;

    let answer = t
        .send(&okta_verification(
            Some("anything"),
            "In4ZtV8DoJmVuHzKp0kdkzg0i9xp0bIu",
        ))
        .await;

    assert_eq!(
        (answer.status, answer.code()),
        (500, "signing_secret_missing")
    );
    assert!(answer.body.get("verification").is_none());
}
