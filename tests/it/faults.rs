//! Attio and Secrets Manager misbehaving, and hostile input: each case checks the answer, the
//! Attio calls made and the records left behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use attio_user_sync::attio::RetryPolicy;
use aws_sdk_secretsmanager::primitives::{DateTime, DateTimeFormat};
use base64::Engine as _;
use serde_json::json;

use crate::support::*;

fn ada() -> serde_json::Value {
    ada_event("user.created", "Lovelace")
}

#[tokio::test]
async fn partial_progress_converges_when_the_sender_retries() {
    let t = TestApp::spawn().await;
    fail_every_attempt(&t.attio, Some("users"), attio_error(500, "internal_error"));

    let failed = t.send(&ada()).await;
    assert_eq!((failed.status, failed.code()), (502, "attio_unavailable"));
    let [person] = t
        .attio
        .records("people")
        .try_into()
        .expect("the person was written");
    assert!(t.attio.records("users").is_empty());

    let retried = t.send(&ada()).await;

    assert_eq!(retried.status, 200, "{:?}", retried.body);
    assert_eq!(retried.body["person_record_id"], person.id);
    assert_eq!(t.attio.records("people").len(), 1);
    let [user] = t.attio.records("users").try_into().expect("one user");
    assert_eq!(user.text("person"), Some(person.id.as_str()));
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let t = TestApp::spawn().await;
    let next_second = DateTime::from(SystemTime::now() + Duration::from_secs(1));
    t.attio.inject(Fault::Status {
        status: 429,
        code: "rate_limit_exceeded",
        retry_after: Some(next_second.fmt(DateTimeFormat::HttpDate).unwrap()),
    });

    let answer = t.send(&ada()).await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let statuses: Vec<u16> = t.attio.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [429, 200, 200, 200],
        "the read, again, then both writes"
    );
}

#[tokio::test]
async fn retry_after_beyond_the_budget_is_503_passing_it_on() {
    let t = TestApp::spawn_with(&default_secret(), &[("ATTIO_MAX_ELAPSED_MS", "2000")]).await;
    t.attio.inject(Fault::Status {
        status: 429,
        code: "rate_limit_exceeded",
        retry_after: Some("30".into()),
    });

    let answer = t.send(&ada()).await;

    assert_eq!((answer.status, answer.code()), (503, "attio_rate_limited"));
    assert_eq!(answer.headers["retry-after"], "30");
    assert_eq!(
        t.attio.requests().len(),
        1,
        "no retry that could not finish in time"
    );
}

#[tokio::test]
async fn concurrent_write_conflict_is_retried() {
    let t = TestApp::spawn().await;
    t.attio
        .inject_for("users", attio_error(409, "concurrent_write_conflict"));

    let answer = t.send(&ada()).await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(t.attio.records("users").len(), 1);
}

#[tokio::test]
async fn invalid_requests_are_not_retried() {
    let t = TestApp::spawn().await;
    t.attio.inject(attio_error(400, "validation_type"));

    let answer = t.send(&ada()).await;

    assert_eq!((answer.status, answer.code()), (422, "attio_rejected"));
    assert_eq!(t.attio.requests().len(), 1);
}

#[tokio::test]
async fn slow_attio_is_abandoned_when_the_budget_runs_out() {
    let t = TestApp::spawn_with(&default_secret(), &[("ATTIO_MAX_ELAPSED_MS", "1500")]).await;
    let stall = Duration::from_secs(20);
    t.attio.inject(Fault::Slow(stall));
    let started = Instant::now();

    let answer = t.send(&ada()).await;

    // The budget ran out while Attio stalled: a retryable answer naming the time budget.
    assert_eq!(
        (answer.status, answer.code()),
        (503, "time_budget_exhausted"),
        "{:?}",
        answer.body
    );
    // Behaviour, not speed: the function gave up instead of waiting for the stalled answer.
    assert!(started.elapsed() < stall, "waited for the stalled call");
}

#[tokio::test]
async fn dropped_connections_are_retried_then_502() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicU32::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket); // closed before any answer
        }
    });
    let t = TestApp::spawn_with(&default_secret(), &[("ATTIO_API_URL", &url)]).await;

    let answer = t.send(&ada()).await;

    assert_eq!(
        (answer.status, answer.code()),
        (502, "attio_unreachable"),
        "{:?}",
        answer.body
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        RetryPolicy::default().max_attempts
    );
}

#[tokio::test]
async fn stale_secret_keeps_serving_when_secrets_manager_fails() {
    let t = TestApp::spawn_with(&default_secret(), &[("SECRET_CACHE_TTL_SECONDS", "0")]).await;
    assert_eq!(t.send(&ada()).await.status, 200);
    secrets_client()
        .await
        .delete_secret()
        .secret_id(&t.secret_id)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();

    let answer = t.send(&ada_event("user.updated", "King")).await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let [person] = t.attio.records("people").try_into().unwrap();
    assert_eq!(person.first("name").unwrap()["last_name"], "King");
}

/// A cold function whose Secrets Manager is `endpoint` handles one delivery: its status and
/// body, and the Attio stand-in it would have written to.
async fn with_secrets_manager_at(endpoint: &str) -> (u16, serde_json::Value, AttioStandIn) {
    let attio = AttioStandIn::start(TOKEN).await;
    let app = app_with_secrets_endpoint("attio-user-sync/faulty", &attio.url(), endpoint).await;
    let response = app
        .handle(lambda_http::request::from_str(&ada().to_string()).unwrap())
        .await;
    let body = serde_json::from_slice(response.body().as_ref()).unwrap();
    (response.status().as_u16(), body, attio)
}

#[tokio::test]
async fn secrets_manager_throttling_at_cold_start_is_500_for_the_sender_to_retry() {
    let throttling = stub_secrets_manager_throttling().await;

    let (status, body, attio) = with_secrets_manager_at(&throttling).await;

    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "secret_unavailable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Throttling"),
        "{body}"
    );
    assert!(attio.requests().is_empty());
}

#[tokio::test]
async fn secrets_manager_dropping_connections_is_retried_then_500() {
    let (dropping, accepted) = stub_dropping_connections().await;

    let (status, body, attio) = with_secrets_manager_at(&dropping).await;

    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "secret_unavailable");
    // A dropped connection is a transient I/O error to the SDK, which tries again.
    let connections = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(connections >= 2, "{connections} connection(s): no retry");
    assert!(attio.requests().is_empty());
}

#[tokio::test]
async fn an_attio_answer_without_the_record_id_is_502_attio_bad_response() {
    for body in [r#"{"data":{"values":{}}}"#, "<html>gateway</html>", ""] {
        let t = TestApp::spawn().await;
        t.attio.inject(Fault::Garbled(body));

        let answer = t.send(&ada()).await;

        assert_eq!(answer.status, 502, "{body}: {}", answer.body);
        assert_eq!(answer.code(), "attio_bad_response", "{body}");
        // Not retried: the call succeeded, and sending it again would not mend the answer.
        assert_eq!(t.attio.request_count(), 1, "{body}");
    }
}

#[tokio::test]
async fn non_utf8_body_is_400_and_not_sent_to_attio() {
    let t = TestApp::spawn().await;
    let raw: &[u8] = b"{\"type\":\"user.created\",\"data\":{\"id\":\"\xff\xfe\"}}";
    let mut event = event_file("clerk-user-created.json");
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(raw));
    event["isBase64Encoded"] = json!(true);
    let event = resign(event, CLERK_SECRET);

    let answer = t.send(&event).await;

    assert_eq!(
        (answer.status, answer.code()),
        (400, "invalid_payload"),
        "{:?}",
        answer.body
    );
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn json_nesting_bomb_is_400() {
    let t = TestApp::spawn().await;
    let bomb = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut event = event_file("clerk-user-created.json");
    event["body"] = json!(bomb);

    let answer = t.send(&resign(event, CLERK_SECRET)).await;

    assert_eq!((answer.status, answer.code()), (400, "invalid_payload"));
}

#[tokio::test]
async fn huge_signature_list_is_401_without_checking_each() {
    let t = TestApp::spawn().await;
    let mut event = resign(ada(), CLERK_SECRET);
    let valid = event["headers"]["svix-signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let decoys = vec!["v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU="; 5_000].join(" ");
    event["headers"]["svix-signature"] = json!(format!("{decoys} {valid}"));

    let answer = t.send(&event).await;

    assert_eq!((answer.status, answer.code()), (401, "invalid_signature"));
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn overflowing_timestamp_is_401() {
    let t = TestApp::spawn().await;
    let mut event = resign(ada(), CLERK_SECRET);
    event["headers"]["svix-timestamp"] = json!("99999999999999999999999999");

    let answer = t.send(&event).await;

    assert_eq!((answer.status, answer.code()), (401, "invalid_timestamp"));
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let t = TestApp::spawn().await;
    let mut body = clerk_user("user.created", "user_ada", "ada@example.com", "Ada", "L");
    body["data"]["a_field_clerk_adds_next_year"] = json!({"nested": [1, 2, 3]});
    body["another_top_level_field"] = json!(true);

    let answer = t
        .send(&with_body("clerk-user-created.json", &body, CLERK_SECRET))
        .await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

#[tokio::test]
async fn the_lambda_deadline_cuts_the_attio_budget_short() {
    let t = TestApp::spawn_with(&default_secret(), &[("ATTIO_MAX_ELAPSED_MS", "600000")]).await;
    let stall = Duration::from_secs(20);
    t.attio.inject(Fault::Slow(stall));
    let started = Instant::now();

    let answer = t
        .send_with_deadline(&ada(), SystemTime::now() + Duration::from_secs(2))
        .await;

    // The budget ran out while Attio stalled: a retryable answer naming the time budget.
    assert_eq!(
        (answer.status, answer.code()),
        (503, "time_budget_exhausted"),
        "{:?}",
        answer.body
    );
    assert!(started.elapsed() < stall, "waited for the stalled call");
}

#[tokio::test]
async fn repeated_id_header_joined_by_the_http_api_is_401() {
    // Function URLs and HTTP APIs join a repeated header's values with commas; REST APIs keep
    // the last. Either way the signed id no longer matches.
    let t = TestApp::spawn().await;
    let mut event = resign(ada(), CLERK_SECRET);
    let id = event["headers"]["svix-id"].as_str().unwrap().to_owned();
    event["headers"]["svix-id"] = json!(format!("{id},msg_injected"));

    let answer = t.send(&event).await;

    assert_eq!((answer.status, answer.code()), (401, "invalid_signature"));
    assert!(t.attio.requests().is_empty());
}
