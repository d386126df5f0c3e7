//! Big batches against Attio's write limit: a sender's retry of a delivery that was cut short
//! writes only what earlier attempts did not, so every retry makes progress.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::support::*;

/// Attio's documented limits, enforced by the stand-in.
const WRITES_PER_SECOND: usize = 25;
const READS_PER_SECOND: usize = 100;

/// An Auth0 Log Streams delivery (JSON array) of `n` sign-up logs.
fn auth0_signups(n: usize) -> Value {
    let logs: Vec<Value> = (0..n)
        .map(|i| {
            json!({"log_id": format!("9002026112709{i:06}"), "data": {
                "date": "2026-11-27T09:00:00.000Z", "type": "ss", "user_id": format!("auth0|batch{i:04}"),
                "user_name": format!("signup{i:04}@example.com"), "strategy": "auth0",
                "details": {"body": {"email": format!("signup{i:04}@example.com"), "password": "*****"}}}})
        })
        .collect();
    let mut event = event_file("auth0-log-stream.json");
    event["body"] = json!(Value::Array(logs).to_string());
    resign(event, AUTH0_SECRET)
}

/// An Okta event hook delivery of `n` user creations.
pub(crate) fn okta_creations(n: usize) -> Value {
    let events: Vec<Value> = (0..n)
        .map(|i| {
            json!({"uuid": format!("7c2a9f1e-ac17-11ee-b5b7-{i:012}"), "published": "2026-11-27T09:00:00.000Z",
                   "eventType": "user.lifecycle.create",
                   "target": [{"id": format!("00uBatch{i:04}"), "type": "User",
                               "alternateId": format!("okta{i:04}@example.com"), "displayName": "Okta User"}]})
        })
        .collect();
    let body = json!({"eventType": "com.okta.event_hook", "eventId": "b5a188b9-5ece-4636-b041-482ffda96399",
                      "data": {"events": events}});
    let mut event = event_file("okta-users-created.json");
    event["body"] = json!(body.to_string());
    resign(event, OKTA_SECRET)
}

/// Sends `event` the way a retrying sender does, at most `attempts` times, until it is
/// answered 2xx; returns every answer and, per attempt, the records Attio accepted writes of.
async fn deliver_until_accepted(
    t: &TestApp,
    event: &Value,
    attempts: usize,
) -> (Vec<Answer>, Vec<Vec<(String, String)>>) {
    let mut answers = Vec::new();
    let mut writes = Vec::new();
    for _ in 0..attempts {
        let before = t.attio.request_count();
        let answer = t.send(event).await;
        writes.push(
            t.attio.requests()[before..]
                .iter()
                // Writes only: GETs and queries (POST …/records/query) are reads.
                .filter(|r| r.method != "GET" && r.method != "POST" && r.status == 200)
                .map(|r| (r.object.clone(), written_key(&r.body)))
                .collect(),
        );
        let done = answer.status == 200;
        answers.push(answer);
        if done {
            break;
        }
    }
    (answers, writes)
}

/// What an assert wrote: the user's id, or the person's email address.
fn written_key(body: &Value) -> String {
    let values = &body["data"]["values"];
    values["user_id"]
        .as_str()
        .or_else(|| values["email_addresses"][0]["email_address"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// An attempt that Attio's write limit cut short: a retryable answer saying how far it got.
/// When the time runs out waiting on a `429` the answer is `503 attio_rate_limited`; when the
/// writes paced to Attio's limit run out of time, `503 time_budget_exhausted`, never that
/// Attio could not be reached (it could).
fn assert_cut_short(answer: &Answer, users: u64) {
    assert!(
        matches!(
            (answer.status, answer.code()),
            (503, "attio_rate_limited") | (503, "time_budget_exhausted")
        ),
        "{}",
        answer.body
    );
    assert!(
        answer.headers.contains_key("retry-after"),
        "a retryable answer says when: {:?}",
        answer.headers
    );
    let applied = answer.body["error"]["applied"].as_u64().expect("applied");
    assert!(applied < users, "{}", answer.body);
    assert_eq!(answer.body["error"]["remaining"], users - applied);
}

/// Every user's person and user asserted, and each attempt writing only what earlier attempts
/// did not, but for the event in flight when the previous attempt's time ran out (the function
/// stops waiting for Attio's answer, which may still land): at most its person and its user.
fn assert_each_record_written_once(writes: &[Vec<(String, String)>], users: usize) {
    let mut written: HashSet<&(String, String)> = HashSet::new();
    for (attempt, this) in writes.iter().enumerate() {
        let again: Vec<_> = this.iter().filter(|w| written.contains(w)).collect();
        assert!(
            again.len() <= 2,
            "attempt {attempt} wrote again what earlier attempts wrote: {again:?}"
        );
        let mut within = HashSet::new();
        assert!(
            this.iter().all(|w| within.insert(w)),
            "attempt {attempt} wrote a record twice"
        );
        written.extend(this);
    }
    assert_eq!(
        written.len(),
        2 * users,
        "one person and one user assert per user"
    );
}

#[tokio::test]
async fn a_redelivered_message_is_answered_from_what_it_did_without_calling_attio() {
    let t = TestApp::spawn().await;
    let event = new_user_event();
    let first = t.send(&event).await;
    let calls = t.attio.request_count();

    let redelivered = t.send(&event).await;

    assert_eq!((first.status, redelivered.status), (200, 200));
    assert_eq!(redelivered.body, first.body);
    assert_eq!(
        t.attio.request_count(),
        calls,
        "no Attio call for a redelivery"
    );
}

#[tokio::test]
async fn an_auth0_batch_of_200_users_completes_across_retries_each_user_written_once() {
    let t = TestApp::spawn().await;
    t.attio.limit_rates(WRITES_PER_SECOND, READS_PER_SECOND);
    let delivery = auth0_signups(200);

    // Auth0 retries a failed delivery up to three times.
    let (answers, writes) = deliver_until_accepted(&t, &delivery, 4).await;

    let first = &answers[0];
    assert_cut_short(first, 200);
    assert!(
        first.body["error"]["applied"].as_u64() > Some(0),
        "{}",
        first.body
    );
    let last = answers.last().unwrap();
    assert_eq!(
        last.status,
        200,
        "completed in {} attempts: {}",
        answers.len(),
        last.body
    );
    assert_eq!(last.body["records"].as_array().map(Vec::len), Some(200));
    assert_each_record_written_once(&writes, 200);
    assert!(
        writes.iter().all(|w| !w.is_empty()),
        "every attempt made progress"
    );
    assert_eq!(t.attio.records("users").len(), 200);
    assert_eq!(t.attio.records("people").len(), 200);
}

#[tokio::test]
async fn an_okta_batch_of_60_users_completes_within_oktas_one_retry() {
    let t = TestApp::spawn().await;
    t.attio.limit_rates(WRITES_PER_SECOND, READS_PER_SECOND);
    // 120 writes: the stand-in counts writes per calendar second, so a 2.5 s attempt touches
    // 3 or 4 such seconds and can write 75 to 100: never all, always all in two attempts.
    let delivery = okta_creations(60);

    // Okta waits 3 s and retries once.
    let (answers, writes) = deliver_until_accepted(&t, &delivery, 2).await;

    // 120 writes do not fit one 2.5 s attempt.
    assert_cut_short(&answers[0], 60);
    let last = answers.last().unwrap();
    assert_eq!(last.status, 200, "{}", last.body);
    assert_each_record_written_once(&writes, 60);
    assert_eq!(t.attio.records("users").len(), 60);
}

#[tokio::test]
async fn an_okta_batch_over_a_real_network_is_cut_short_by_time_not_by_attio() {
    let t = TestApp::spawn().await;
    t.attio.limit_rates(WRITES_PER_SECOND, READS_PER_SECOND);
    // A Lambda region to a SaaS API: every answer 150 ms after its request.
    t.attio.set_latency(std::time::Duration::from_millis(150));
    let delivery = okta_creations(60);

    // Okta waits 3 s and retries once.
    let (answers, writes) = deliver_until_accepted(&t, &delivery, 2).await;

    for answer in answers.iter().filter(|a| a.status != 200) {
        assert_cut_short(answer, 60);
        assert!(
            answer.body["error"]["applied"].as_u64() > Some(0),
            "{}",
            answer.body
        );
    }
    assert!(
        t.attio.most_at_once() > 1,
        "different users are written at the same time"
    );
    assert_each_record_written_once_or_left(&writes);
}

/// No record written twice across attempts but those of the users in flight when the time ran
/// out (the function stops waiting for their answers, which may still land): two writes each.
fn assert_each_record_written_once_or_left(writes: &[Vec<(String, String)>]) {
    let in_flight = attio_user_sync::app::USERS_AT_ONCE;
    let mut written: HashSet<&(String, String)> = HashSet::new();
    for this in writes {
        let again = this.iter().filter(|w| written.contains(w)).count();
        assert!(
            again <= 2 * in_flight,
            "an attempt wrote again what another wrote: {again}"
        );
        written.extend(this);
    }
}
