//! The HTTP contract: every status the function can answer, and what Attio received.

use attio_user_sync::attio::RetryPolicy;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn clerk_user_created_asserts_person_then_user_and_returns_both_ids() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&resign(event_file("clerk-user-created.json"), CLERK_SECRET))
        .await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "synced");
    assert_eq!(answer.body["provider"], "clerk");
    assert_eq!(answer.body["event_type"], "user.created");
    let requests = t.attio.requests();
    assert_eq!(requests.len(), 3);
    // First a read: no other user's record holds the address (else nothing is written).
    assert_eq!(
        (requests[0].method.as_str(), requests[0].object.as_str()),
        ("POST", "users")
    );
    assert!(
        requests[0].body["filter"]
            .get("primary_email_address")
            .is_some(),
        "{}",
        requests[0].body
    );
    assert_eq!(
        (
            requests[1].object.as_str(),
            requests[1].matching_attribute.as_deref()
        ),
        ("people", Some("email_addresses"))
    );
    assert_eq!(
        (
            requests[2].object.as_str(),
            requests[2].matching_attribute.as_deref()
        ),
        ("users", Some("user_id"))
    );

    let [person] = t.attio.records("people").try_into().expect("one person");
    let [user] = t.attio.records("users").try_into().expect("one user");
    assert_eq!(answer.body["record_id"], user.id);
    assert_eq!(answer.body["person_record_id"], person.id);
    assert_eq!(
        person.text("email_addresses"),
        Some("ada.lovelace@example.com")
    );
    assert_eq!(
        person.first("name"),
        Some(&json!({"first_name": "Ada", "last_name": "Lovelace", "full_name": "Ada Lovelace"}))
    );
    assert_eq!(user.text("user_id"), Some("user_2adaLovelace0001"));
    assert_eq!(
        user.text("primary_email_address"),
        Some("ada.lovelace@example.com")
    );
    assert_eq!(user.text("person"), Some(person.id.as_str()));
}

#[tokio::test]
async fn clerk_user_updated_updates_the_same_records() {
    let t = TestApp::spawn().await;
    let created = t
        .send(&resign(event_file("clerk-user-created.json"), CLERK_SECRET))
        .await;

    let updated = t
        .send(&resign(event_file("clerk-user-updated.json"), CLERK_SECRET))
        .await;

    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["event_type"], "user.updated");
    assert_eq!(updated.body["record_id"], created.body["record_id"]);
    assert_eq!(
        updated.body["person_record_id"],
        created.body["person_record_id"]
    );
    let [person] = t
        .attio
        .records("people")
        .try_into()
        .expect("still one person");
    assert_eq!(person.first("name").unwrap()["last_name"], "King-Lovelace");
    assert_eq!(t.attio.records("users").len(), 1);
}

#[tokio::test]
async fn events_other_than_user_changes_are_ignored_without_calling_attio() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&resign(
            event_file("clerk-session-created.json"),
            CLERK_SECRET,
        ))
        .await;

    assert_eq!(answer.status, 200);
    assert_eq!(
        (&answer.body["status"], &answer.body["event_type"]),
        (&json!("ignored"), &json!("session.created")),
        "a sign-in, with last_sign_in_at mapped nowhere: {}",
        answer.body
    );
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn standard_webhooks_accepts_either_secret_during_rotation() {
    let t = TestApp::spawn().await;

    let old = t
        .send(&resign(
            event_file("standard-user-created.json"),
            STANDARD_OLD,
        ))
        .await;
    let new = t
        .send(&resign(
            event_file("standard-user-created.json"),
            STANDARD_NEW,
        ))
        .await;

    assert_eq!(
        (old.status, new.status),
        (200, 200),
        "{:?} {:?}",
        old.body,
        new.body
    );
    assert_eq!(old.body["record_id"], new.body["record_id"]);
    let [user] = t.attio.records("users").try_into().expect("one user");
    assert_eq!(user.text("user_id"), Some("usr_grace_hopper"));
    assert_eq!(
        user.text("primary_email_address"),
        Some("grace.hopper@example.com")
    );
}

#[tokio::test]
async fn supabase_before_user_created_hook_creates_the_user() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&resign(
            event_file("supabase-before-user-created.json"),
            STANDARD_NEW,
        ))
        .await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["event_type"], "before-user-created");
    let [person] = t.attio.records("people").try_into().expect("one person");
    assert_eq!(
        person.first("name").unwrap()["full_name"],
        "Katherine Johnson"
    );
    let [user] = t.attio.records("users").try_into().expect("one user");
    assert_eq!(
        user.text("user_id"),
        Some("ff7fc9ae-3b1b-4642-9241-64adb9848a03")
    );
}

#[tokio::test]
async fn matching_on_primary_email_address_is_configurable() {
    let t = TestApp::spawn_with(
        &default_secret(),
        &[("ATTIO_USER_MATCHING_ATTRIBUTE", "primary_email_address")],
    )
    .await;

    let answer = t
        .send(&clerk_event(
            "user.created",
            "user_1",
            "lin@example.com",
            "Lin",
            "Ma",
        ))
        .await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let requests = t.attio.requests();
    // The read before the writes asks whether another record holds the user id.
    assert!(requests[0].body["filter"].get("user_id").is_some());
    assert_eq!(
        requests[2].matching_attribute.as_deref(),
        Some("primary_email_address")
    );
}

#[tokio::test]
async fn bad_signature_is_401_and_attio_is_not_called() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&resign(
            event_file("clerk-bad-signature.json"),
            STANDARD_OLD,
        ))
        .await;

    assert_eq!(answer.status, 401);
    assert_eq!(answer.code(), "invalid_signature");
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn missing_signature_headers_are_401() {
    let t = TestApp::spawn().await;
    for header in ["svix-id", "svix-timestamp", "svix-signature"] {
        let mut event = resign(event_file("clerk-user-created.json"), CLERK_SECRET);
        event["headers"].as_object_mut().unwrap().remove(header);

        let answer = t.send(&event).await;

        assert_eq!(
            (answer.status, answer.code()),
            (401, "missing_signature"),
            "{header}"
        );
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(header)
        );
    }
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn timestamps_outside_tolerance_are_401_in_both_directions() {
    let t = TestApp::spawn_with(&default_secret(), &[("WEBHOOK_TOLERANCE_SECONDS", "60")]).await;
    for offset in [-61, 61] {
        let event = resign_at(
            event_file("clerk-user-created.json"),
            CLERK_SECRET,
            now() + offset,
        );

        let answer = t.send(&event).await;

        assert_eq!(
            (answer.status, answer.code()),
            (401, "invalid_timestamp"),
            "offset {offset}"
        );
    }
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn body_that_is_not_json_is_400() {
    let t = TestApp::spawn().await;
    let mut event = event_file("clerk-user-created.json");
    event["body"] = json!("this is not json");

    let answer = t.send(&resign(event, CLERK_SECRET)).await;

    assert_eq!((answer.status, answer.code()), (400, "invalid_payload"));
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn user_event_missing_required_fields_is_400() {
    let t = TestApp::spawn().await;
    let body = json!({"type": "user.created", "data": {"email": "a@example.com"}});

    let answer = t
        .send(&with_body(
            "standard-user-created.json",
            &body,
            STANDARD_NEW,
        ))
        .await;

    assert_eq!((answer.status, answer.code()), (400, "invalid_payload"));
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("id")
    );
}

#[tokio::test]
async fn unknown_route_is_404() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&request_to("POST", "/webhooks/unknown-provider"))
        .await;

    assert_eq!((answer.status, answer.code()), (404, "not_found"));
}

#[tokio::test]
async fn other_methods_are_405_with_allow_header() {
    let t = TestApp::spawn().await;

    let answer = t.send(&request_to("GET", "/webhooks/clerk")).await;

    assert_eq!((answer.status, answer.code()), (405, "method_not_allowed"));
    assert_eq!(answer.headers["allow"], "POST");
}

#[tokio::test]
async fn body_over_256_kib_is_413_before_anything_else() {
    let t = TestApp::spawn().await;
    let mut event = event_file("clerk-user-created.json");
    event["body"] = json!("x".repeat(256 * 1024 + 1));

    let answer = t.send(&event).await;

    assert_eq!((answer.status, answer.code()), (413, "payload_too_large"));
}

#[tokio::test]
async fn user_without_email_is_422() {
    let t = TestApp::spawn().await;
    let body = json!({"type": "user.created", "data": {"id": "u_1", "email": null}});

    let answer = t
        .send(&with_body(
            "standard-user-created.json",
            &body,
            STANDARD_NEW,
        ))
        .await;

    assert_eq!((answer.status, answer.code()), (422, "missing_email"));
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn value_attio_rejects_as_invalid_is_422_with_attio_reason() {
    let t = TestApp::spawn().await;

    // Valid mail syntax (an RFC 6531 local part), refused by Attio's stricter validation
    // (the stand-in takes ASCII local parts only).
    let answer = t
        .send(&clerk_event(
            "user.created",
            "user_1",
            "ада@example.com",
            "Ada",
            "L",
        ))
        .await;

    assert_eq!(
        (answer.status, answer.code()),
        (422, "attio_rejected"),
        "{:?}",
        answer.body
    );
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("validation_type"), "{message}");
    assert!(t.attio.records("users").is_empty());
}

#[tokio::test]
async fn email_already_held_by_another_user_is_409_and_nothing_is_overwritten() {
    let t = TestApp::spawn().await;
    let first = t
        .send(&clerk_event(
            "user.created",
            "user_a",
            "shared@example.com",
            "A",
            "A",
        ))
        .await;
    assert_eq!(first.status, 200);

    let second = t
        .send(&clerk_event(
            "user.created",
            "user_b",
            "shared@example.com",
            "B",
            "B",
        ))
        .await;

    assert_eq!(
        (second.status, second.code()),
        (409, "attio_uniqueness_conflict"),
        "{:?}",
        second.body
    );
    let [user] = t.attio.records("users").try_into().expect("still one user");
    assert_eq!(user.text("user_id"), Some("user_a"));
}

/// The people records' names by email address.
fn person_named(t: &TestApp, email: &str) -> Option<String> {
    t.attio
        .records("people")
        .into_iter()
        .find(|p| p.text("email_addresses") == Some(email))
        .and_then(|p| {
            p.first("name")
                .and_then(|n| n["full_name"].as_str())
                .map(str::to_owned)
        })
}

#[tokio::test]
async fn a_change_to_an_address_another_user_holds_is_409_and_writes_nothing() {
    let t = TestApp::spawn().await;
    for (id, email, first) in [
        ("user_a", "a@example.com", "Ada"),
        ("user_b", "b@example.com", "Grace"),
    ] {
        let answer = t
            .send(&clerk_event("user.created", id, email, first, "Original"))
            .await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    let before = t.attio.requests().len();

    // user_b changes their address to the one user_a's record holds, and their name too.
    let answer = t.send(&clerk_address_taken_from_user_a()).await;

    assert_eq!(
        (answer.status, answer.code()),
        (409, "attio_uniqueness_conflict"),
        "{:?}",
        answer.body
    );
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("primary_email_address"), "{message}");
    assert!(message.contains("nothing was written"), "{message}");
    assert!(
        !message.contains("a@example.com"),
        "no address in the answer: {message}"
    );
    assert_eq!(
        person_named(&t, "a@example.com").as_deref(),
        Some("Ada Original"),
        "user_a's person keeps its name"
    );
    assert_eq!(
        person_named(&t, "b@example.com").as_deref(),
        Some("Grace Original")
    );
    let writes = writes_since(&t.attio, before);
    assert!(writes.is_empty(), "the refused event wrote {writes:?}");
    let b = t
        .attio
        .records("users")
        .into_iter()
        .find(|u| u.text("user_id") == Some("user_b"))
        .unwrap();
    assert_eq!(b.text("primary_email_address"), Some("b@example.com"));
}

#[tokio::test]
async fn attio_server_errors_are_retried_then_502() {
    let t = TestApp::spawn().await;
    let attempts = RetryPolicy::default().max_attempts;
    fail_every_attempt(&t.attio, None, attio_error(500, "internal_error"));

    let answer = t.send(&new_user_event()).await;

    assert_eq!((answer.status, answer.code()), (502, "attio_unavailable"));
    assert_eq!(
        t.attio.requests().len(),
        attempts as usize,
        "the first call and every retry"
    );
    assert!(t.attio.records("users").is_empty());
}

#[tokio::test]
async fn a_short_attio_outage_is_ridden_out() {
    let t = TestApp::spawn().await;
    t.attio.inject(Fault::Status {
        status: 503,
        code: "service_unavailable",
        retry_after: None,
    });

    let answer = t.send(&new_user_event()).await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    // The refused read, it again, the person, the user.
    assert_eq!(t.attio.requests().len(), 4);
    assert_eq!(t.attio.records("users").len(), 1);
}

#[tokio::test]
async fn unreachable_attio_is_502() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let t = TestApp::spawn_with(&default_secret(), &[("ATTIO_API_URL", &url)]).await;

    let answer = t.send(&new_user_event()).await;

    assert_eq!(
        (answer.status, answer.code()),
        (502, "attio_unreachable"),
        "{:?}",
        answer.body
    );
}

#[tokio::test]
async fn attio_still_rate_limiting_is_503_with_retry_after() {
    let t = TestApp::spawn().await;
    let rate_limited = Fault::Status {
        status: 429,
        code: "rate_limit_exceeded",
        retry_after: Some("0".into()),
    };
    fail_every_attempt(&t.attio, None, rate_limited);

    let answer = t.send(&new_user_event()).await;

    assert_eq!((answer.status, answer.code()), (503, "attio_rate_limited"));
    let retry_after: u64 = answer.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
}

#[tokio::test]
async fn users_object_not_activated_is_500_saying_so() {
    let t = TestApp::spawn().await;
    t.attio.disable_object("users");

    let answer = t.send(&new_user_event()).await;

    assert_eq!(
        (answer.status, answer.code()),
        (500, "attio_object_not_activated")
    );
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"users\"") && message.contains("activate"),
        "{message}"
    );
}

#[tokio::test]
async fn secret_without_attio_token_is_500_naming_the_key() {
    let t = TestApp::spawn_with(&json!({"webhook_secrets": {"clerk": CLERK_SECRET}}), &[]).await;

    let answer = t
        .send(&resign(event_file("clerk-user-created.json"), CLERK_SECRET))
        .await;

    assert_eq!((answer.status, answer.code()), (500, "secret_malformed"));
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("attio_access_token")
    );
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn route_without_signing_secret_is_500() {
    let t = TestApp::spawn_with(
        &json!({"attio_access_token": TOKEN, "webhook_secrets": {}}),
        &[],
    )
    .await;

    let answer = t
        .send(&resign(event_file("clerk-user-created.json"), CLERK_SECRET))
        .await;

    assert_eq!(
        (answer.status, answer.code()),
        (500, "signing_secret_missing")
    );
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("webhook_secrets.clerk")
    );
}

#[tokio::test]
async fn api_gateway_rest_stage_prefix_does_not_break_routing() {
    let t = TestApp::spawn().await;
    let signed = resign(event_file("clerk-user-created.json"), CLERK_SECRET);
    let event = json!({
        "resource": "/webhooks/{provider}",
        "path": "/prod/webhooks/clerk",
        "httpMethod": "POST",
        "headers": signed["headers"],
        "multiValueHeaders": {},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": {"provider": "clerk"},
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012", "apiId": "1234567890", "httpMethod": "POST",
            "path": "/prod/webhooks/clerk", "stage": "prod", "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "resourcePath": "/webhooks/{provider}", "identity": {"sourceIp": "203.0.113.10"}
        },
        "body": signed["body"],
        "isBase64Encoded": false
    });

    let answer = t.send(&event).await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "synced");
}

#[tokio::test]
async fn http_api_stage_prefix_and_base64_body_are_handled() {
    use base64::Engine as _;
    let t = TestApp::spawn().await;
    let mut event = resign(event_file("clerk-user-created.json"), CLERK_SECRET);
    let body = event["body"].as_str().unwrap().to_owned();
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
    event["isBase64Encoded"] = json!(true);
    event["rawPath"] = json!("/v1/webhooks/clerk");
    event["requestContext"]["http"]["path"] = json!("/v1/webhooks/clerk");
    event["requestContext"]["stage"] = json!("v1");

    let answer = t.send(&event).await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

#[tokio::test]
async fn workos_user_created_is_synced() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&resign(
            event_file("workos-user-created.json"),
            WORKOS_SECRET,
        ))
        .await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["provider"], "workos");
    let [user] = t.attio.records("users").try_into().expect("one user");
    assert_eq!(user.text("user_id"), Some("user_01JDEMOMARGARETHAMILTON"));
    assert_eq!(
        user.text("primary_email_address"),
        Some("margaret.hamilton@example.com")
    );
}

#[tokio::test]
async fn workos_event_signed_with_another_secret_is_401() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&resign(
            event_file("workos-user-created.json"),
            "not_the_workos_secret",
        ))
        .await;

    assert_eq!((answer.status, answer.code()), (401, "invalid_signature"));
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn stytch_user_create_is_synced() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&resign(
            event_file("stytch-user-created.json"),
            STYTCH_SECRET,
        ))
        .await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        (
            answer.body["provider"].as_str(),
            answer.body["event_type"].as_str()
        ),
        (Some("stytch"), Some("direct.user.create"))
    );
    let [user] = t.attio.records("users").try_into().expect("one user");
    assert_eq!(
        user.text("primary_email_address"),
        Some("dorothy.vaughan@example.com")
    );
}

#[tokio::test]
async fn stytch_event_signed_with_clerks_secret_is_401() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&resign(
            event_file("stytch-user-created.json"),
            CLERK_SECRET,
        ))
        .await;

    assert_eq!((answer.status, answer.code()), (401, "invalid_signature"));
}

#[tokio::test]
async fn an_event_that_changes_nothing_the_container_wrote_makes_no_attio_call() {
    let t = TestApp::spawn().await;
    let first = t
        .send(&resign(event_file("clerk-user-created.json"), CLERK_SECRET))
        .await;

    let again = t
        .send(&as_new_message(
            event_file("clerk-user-created.json"),
            CLERK_SECRET,
        ))
        .await;

    assert_eq!(again.status, 200);
    assert_eq!(
        again.body["person_record_id"],
        first.body["person_record_id"]
    );
    let objects: Vec<String> = t
        .attio
        .requests()
        .iter()
        .map(|r| r.object.clone())
        .collect();
    assert_eq!(
        objects,
        ["users", "people", "users"],
        "the first event's read and writes; the unchanged person and user are not asserted (nor read) again within five minutes"
    );
    assert_eq!(again.body["record_id"], first.body["record_id"]);
}

#[tokio::test]
async fn a_person_deleted_in_attio_meanwhile_is_asserted_again() {
    // A later change of the user (its event time) with the person's values unchanged: the
    // person is not asserted again until Attio refuses the user's reference to it.
    let t = TestApp::spawn_with(
        &default_secret(),
        &[("ATTIO_USER_EVENT_TIME_ATTRIBUTE", "last_event_at")],
    )
    .await;
    let first = t
        .send(&clerk_event_at(
            "user.created",
            "user_ada",
            "Lovelace",
            1_795_770_000_000,
        ))
        .await;
    t.attio
        .remove_record("people", first.body["person_record_id"].as_str().unwrap());

    let again = t
        .send(&clerk_event_at(
            "user.updated",
            "user_ada",
            "Lovelace",
            1_795_770_060_000,
        ))
        .await;

    assert_eq!(again.status, 200, "{:?}", again.body);
    let [person] = t
        .attio
        .records("people")
        .try_into()
        .expect("the person exists again");
    let [user] = t.attio.records("users").try_into().expect("one user");
    assert_eq!(user.text("person"), Some(person.id.as_str()));
    assert_eq!(again.body["person_record_id"], person.id);
}
