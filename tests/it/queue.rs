//! The durable queue: the webhook queues what Attio cannot take (moto's SQS FIFO queue), and
//! the worker, fed what the queue holds the way Lambda's SQS event source feeds it, applies it.
//! Each test checks what the sender was answered, what the queue and dead-letter queue hold,
//! and the records Attio ends with.

use std::time::Duration;

use attio_user_sync::cognito_trigger as cognito;
use serde_json::{Value, json};

use crate::support::queue::Queues;
use crate::support::*;

/// A webhook app and a worker sharing one Attio stand-in, one secret and one pair of queues.
struct Pipeline {
    t: TestApp,
    worker: attio_user_sync::worker::Worker,
    queues: Queues,
}

impl Pipeline {
    async fn start(extra: &[(&str, &str)]) -> Self {
        Self::start_with(Duration::from_secs(1), 3, extra).await
    }

    async fn start_with(visibility: Duration, max_receives: u32, extra: &[(&str, &str)]) -> Self {
        let queues = Queues::create(visibility, max_receives).await;
        let env = queues.env();
        let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        vars.extend_from_slice(extra);
        let t = TestApp::spawn_with(&default_secret(), &vars).await;
        let worker = worker_for(&t.secret_id, &t.attio.url(), &vars).await;
        Self { t, worker, queues }
    }

    async fn drain(&self) -> usize {
        self.queues
            .drain(&self.worker, 10, Duration::from_secs(30))
            .await
    }
}

fn clerk(event_type: &str, user: &str, last: &str) -> Value {
    clerk_event(
        event_type,
        user,
        &format!("{user}@example.com"),
        "Ada",
        last,
    )
}

/// The users' `PUT` asserts Attio received for `user_id`, in order: their last names.
fn user_writes(attio: &AttioStandIn, user_id: &str) -> Vec<String> {
    attio
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.object == "people" && r.status == 200)
        .filter(|r| {
            r.body
                .pointer("/data/values/email_addresses/0/email_address")
                .and_then(Value::as_str)
                .is_some_and(|e| e.starts_with(user_id))
        })
        .map(|r| {
            r.body
                .pointer("/data/values/name/0/last_name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn attio_down_answers_202_queued_and_the_worker_writes_every_user_once_after_recovery() {
    let p = Pipeline::start(&[]).await;
    p.t.attio.set_down(true);
    let events: Vec<Value> = (1..=3)
        .map(|n| clerk("user.created", &format!("user_{n}"), "Lovelace"))
        .collect();

    for event in &events {
        let answer = p.t.send(event).await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        assert_eq!(answer.body["status"], "queued");
        assert_eq!(answer.body["queued"], 1);
        assert_eq!(answer.body["provider"], "clerk");
        assert_eq!(answer.body["event_type"], "user.created");
    }
    // The sender redelivers the first one (same svix-id): SQS keeps one copy.
    let redelivered = p.t.send(&events[0]).await;
    assert_eq!(redelivered.status, 202);
    assert_eq!(p.queues.depth().await, 3);
    assert!(p.t.attio.records("users").is_empty());

    p.t.attio.set_down(false);
    let handed = p.drain().await;

    assert_eq!(handed, 3);
    let users = p.t.attio.records("users");
    assert_eq!(users.len(), 3);
    for n in 1..=3 {
        let id = format!("user_{n}");
        assert!(users.iter().any(|u| u.text("user_id") == Some(id.as_str())));
        assert_eq!(user_writes(&p.t.attio, &id).len(), 1, "{id} written once");
    }
    assert_eq!(p.queues.depth().await, 0);
    assert!(p.queues.dead_letters().await.is_empty());
}

#[tokio::test]
async fn one_users_updates_are_applied_in_queue_order_even_when_the_first_attempt_fails() {
    let p = Pipeline::start(&[]).await;
    p.t.attio.set_down(true);
    for (event_type, last) in [
        ("user.created", "One"),
        ("user.updated", "Two"),
        ("user.updated", "Three"),
    ] {
        let answer = p.t.send(&clerk(event_type, "user_9", last)).await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
    }
    // Another user's event in the same batch, to show only this user waits.
    assert_eq!(
        p.t.send(&clerk("user.created", "user_8", "Other"))
            .await
            .status,
        202
    );
    p.t.attio.set_down(false);
    // The worker's first write for user_9 fails (on every attempt the retry policy allows):
    // its later updates must wait for it rather than be applied before it.
    fail_every_attempt(
        &p.t.attio,
        Some("people"),
        attio_error(503, "service_unavailable"),
    );

    p.drain().await;

    assert_eq!(user_writes(&p.t.attio, "user_9"), ["One", "Two", "Three"]);
    let users = p.t.attio.records("users");
    assert_eq!(users.len(), 2);
    let people = p.t.attio.records("people");
    let nine = people
        .iter()
        .find(|r| {
            r.first("email_addresses")
                .and_then(Value::as_str)
                .is_some_and(|e| e.starts_with("user_9"))
        })
        .expect("user_9's person");
    assert_eq!(
        nine.first("name").and_then(|n| n["last_name"].as_str()),
        Some("Three")
    );
}

#[tokio::test]
async fn a_poison_message_reaches_the_dead_letter_queue_with_its_reason_and_the_rest_succeed() {
    let p = Pipeline::start(&[]).await;
    p.t.attio.set_down(true);
    for user in ["user_a", "user_b"] {
        assert_eq!(
            p.t.send(&clerk("user.created", user, "Ok")).await.status,
            202
        );
    }
    // A message no worker can read (written by hand, not by the function).
    p.queues
        .client
        .send_message()
        .queue_url(&p.queues.url)
        .message_body(json!({"version": 1, "route": "clerk", "event": "?"}).to_string())
        .message_group_id("clerk:hand-written")
        .message_deduplication_id("hand-written-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        p.t.send(&clerk("user.created", "user_c", "Ok"))
            .await
            .status,
        202
    );
    p.t.attio.set_down(false);
    // Attio refuses user_b's values as invalid: retrying cannot help.
    let rejected = Fault::Status {
        status: 400,
        code: "validation_type",
        retry_after: None,
    };

    // user_a is first in the queue: let it through, then reject the next person write (user_b).
    let (handed, failed) = p.queues.poll_once(&p.worker, 1).await;
    assert_eq!((handed, failed), (1, 0));
    p.t.attio.inject_for("people", rejected);
    p.drain().await;

    let users: Vec<String> =
        p.t.attio
            .records("users")
            .iter()
            .filter_map(|u| u.text("user_id").map(str::to_owned))
            .collect();
    assert!(users.contains(&"user_a".to_owned()) && users.contains(&"user_c".to_owned()));
    assert!(!users.contains(&"user_b".to_owned()));
    let letters = p.queues.dead_letters().await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    let reasons: Vec<&str> = letters
        .iter()
        .map(|l| l.attributes["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"attio_rejected"), "{reasons:?}");
    assert!(reasons.contains(&"unreadable_message"), "{reasons:?}");
    let invalid = letters
        .iter()
        .find(|l| l.attributes["reason"] == "attio_rejected")
        .unwrap();
    assert_eq!(invalid.body["event"]["user"]["user_id"], "user_b");
    assert!(!invalid.attributes["detail"].contains("user_b@example.com"));
    assert_eq!(p.queues.depth().await, 0);
}

#[tokio::test]
async fn messages_that_keep_failing_reach_the_dead_letter_queue_through_the_redrive_policy() {
    let p = Pipeline::start_with(Duration::from_secs(1), 2, &[]).await;
    p.t.attio.set_down(true);
    assert_eq!(
        p.t.send(&clerk("user.created", "user_r", "R")).await.status,
        202
    );

    // Attio stays down: every attempt fails, and SQS moves the message after two receives.
    p.drain().await;

    let letters = p.queues.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].body["event"]["user"]["user_id"], "user_r");
    assert!(p.t.attio.records("users").is_empty());
}

#[tokio::test]
async fn queued_mode_answers_202_at_once_without_calling_attio() {
    let p = Pipeline::start(&[("DELIVERY_MODE", "queued")]).await;

    let answer = p.t.send(&clerk("user.created", "user_q", "Q")).await;

    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert_eq!(answer.body["queued"], 1);
    assert_eq!(p.t.attio.request_count(), 0);
    let [message] = p.queues.take_all().await.try_into().expect("one message");
    assert_eq!(message["version"], 1);
    assert_eq!(message["route"], "clerk");
    assert_eq!(message["event_type"], "user.created");
    assert_eq!(message["event"]["kind"], "upserted");
    assert_eq!(message["event"]["user"]["user_id"], "user_q");
    // No signature headers, no raw body: only the parsed event.
    let text = message.to_string();
    assert!(
        !text.contains("svix") && !text.contains("instance_id"),
        "{text}"
    );
}

#[tokio::test]
async fn sqs_refusing_gives_the_retryable_status_not_202() {
    let missing = "http://127.0.0.1:1/123456789012/does-not-exist.fifo";
    let t = TestApp::spawn_with(&default_secret(), &[("SYNC_QUEUE_URL", missing)]).await;
    t.attio.set_down(true);

    let answer = t.send(&clerk("user.created", "user_x", "X")).await;

    assert_eq!((answer.status, answer.code()), (502, "attio_unavailable"));

    let queued_mode = TestApp::spawn_with(
        &default_secret(),
        &[("SYNC_QUEUE_URL", missing), ("DELIVERY_MODE", "queued")],
    )
    .await;
    let answer = queued_mode
        .send(&clerk("user.created", "user_y", "Y"))
        .await;
    assert_eq!((answer.status, answer.code()), (503, "queue_unavailable"));
    assert!(answer.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn cognito_with_attio_down_queues_the_user_instead_of_dropping_it() {
    let p = Pipeline::start(&[]).await;
    p.t.attio.set_down(true);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events/cognito/post-confirmation-sign-up.json");
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();

    let returned = cognito::post_confirmation(&p.t.app, event.clone())
        .await
        .expect("the sign-up goes on");

    assert_eq!(returned, event);
    assert_eq!(p.queues.depth().await, 1);
    p.t.attio.set_down(false);
    p.drain().await;
    let [user] = p.t.attio.records("users").try_into().expect("one user");
    assert_eq!(
        user.text("user_id"),
        Some("a1b2c3d4-5678-90ab-cdef-EXAMPLE11111")
    );
}

#[tokio::test]
async fn a_new_event_joins_the_queue_while_it_holds_a_backlog_instead_of_overtaking_it() {
    let p = Pipeline::start(&[]).await;
    p.t.attio.set_down(true);
    assert_eq!(
        p.t.send(&clerk("user.created", "user_b", "Queued"))
            .await
            .status,
        202
    );
    p.t.attio.set_down(false);
    // Attio is back, but the user's older event still waits in the queue: writing the newer one
    // now would let the worker overwrite it with the older one later.
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let answer = p.t.send(&clerk("user.updated", "user_b", "Newer")).await;

    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "queued");
    p.drain().await;
    assert_eq!(user_writes(&p.t.attio, "user_b"), ["Queued", "Newer"]);
    // With the queue empty, events go straight to Attio again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let direct = p.t.send(&clerk("user.updated", "user_b", "Direct")).await;
    assert_eq!(direct.status, 200, "{:?}", direct.body);
    assert_eq!(direct.body["status"], "synced");
}

#[tokio::test]
async fn a_membership_waiting_for_its_user_holds_back_only_what_must_follow_it() {
    use attio_user_sync::domain::{UserEvent, UserRef, Workspace};
    use attio_user_sync::mapping::AttributeMap;
    use attio_user_sync::queue::{DeliveryIdentity, Outgoing, SyncQueue};

    let p = Pipeline::start(&[]).await;
    // Queued as the webhook would: user_w joins an organisation before Attio has the user (id
    // only), then user_w's own update, which creates it; user_x joins an organisation and
    // leaves it before Attio has user_x; another user's update in between.
    let sqs = attio_user_sync::queue::client_from_lookup(p.t.app.http_client(), |n| {
        std::env::var(n).ok()
    });
    let queue = SyncQueue::new(sqs, p.queues.url.clone());
    let joined = |user: &str| UserEvent::JoinedWorkspace {
        user: UserRef::Id(user.into()),
        workspace: Workspace::new("org_1".into(), Some("Acme".into())),
    };
    let left = UserEvent::LeftWorkspace {
        user_id: "user_x".into(),
        workspace_id: "org_1".into(),
    };
    // The update as Clerk's parser reads it.
    let update = |user: &str, last: &str| -> UserEvent {
        let body = clerk_user(
            "user.updated",
            user,
            &format!("{user}@example.com"),
            "Ada",
            last,
        );
        let provider = attio_user_sync::providers::provider_for_route("clerk").unwrap();
        provider
            .parse(body.to_string().as_bytes())
            .unwrap()
            .events
            .remove(0)
    };
    for (i, event) in [
        joined("user_w"),
        joined("user_x"),
        update("user_v", "Other"),
        left,
        update("user_w", "Later"),
    ]
    .into_iter()
    .enumerate()
    {
        let outgoing = Outgoing::new(
            "clerk",
            "test",
            DeliveryIdentity {
                id: Some("d"),
                body: &[i as u8],
            },
            i,
            &[event],
            &AttributeMap::default(),
        );
        queue.send(&outgoing).await.unwrap();
    }

    let (handed, failed) = p.queues.poll_once(&p.worker, 10).await;

    assert_eq!(
        (handed, failed),
        (5, 2),
        "user_x's membership waits, and its leaving waits behind it"
    );
    assert_eq!(user_writes(&p.t.attio, "user_v"), ["Other"]);
    assert_eq!(user_writes(&p.t.attio, "user_w"), ["Later"]);
    assert_eq!(
        linked_workspaces(&p.t.attio, "user_w"),
        ["org_1"],
        "user_w's membership stepped aside for its creation and then linked"
    );
    assert!(
        p.t.attio
            .records("users")
            .iter()
            .all(|u| u.text("user_id") != Some("user_x"))
    );
}

#[tokio::test]
async fn a_rate_limited_message_comes_back_after_retry_after_not_the_whole_visibility_timeout() {
    // The harness's queue hides a received message for 600 s: only the worker can bring it back
    // sooner.
    let p = Pipeline::start(&[("DELIVERY_MODE", "queued")]).await;
    assert_eq!(
        p.t.send(&clerk("user.created", "user_l", "L")).await.status,
        202
    );
    rate_limit_every_attempt(&p.t.attio);
    let received = p.queues.receive(&p.queues.url, 10).await;

    let answer = hand_to_worker(&p, &received).await;

    assert_eq!(answer.batch_item_failures.len(), 1);
    assert!(
        p.queues.receive(&p.queues.url, 10).await.is_empty(),
        "hidden for now"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let back = p.queues.receive(&p.queues.url, 10).await;
    assert_eq!(back.len(), 1, "back after Attio's Retry-After");
}

#[tokio::test]
async fn a_message_failing_again_backs_off_beyond_retry_after() {
    // Ten receives at Attio's one-second Retry-After would dead-letter a user within a
    // minute of rate limiting; from its second receive a message waits at least 30 s.
    let p = Pipeline::start(&[("DELIVERY_MODE", "queued")]).await;
    assert_eq!(
        p.t.send(&clerk("user.created", "user_b", "B")).await.status,
        202
    );
    let mut receives = Vec::new();
    for _ in 0..2 {
        rate_limit_every_attempt(&p.t.attio);
        let received = p.queues.receive(&p.queues.url, 10).await;
        assert_eq!(received.len(), 1, "back after Attio's Retry-After");
        receives.push(
            received[0]
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                })
                .cloned(),
        );
        let answer = hand_to_worker(&p, &received).await;
        assert_eq!(answer.batch_item_failures.len(), 1);
        tokio::time::sleep(Duration::from_millis(1600)).await;
    }

    assert_eq!(receives, [Some("1".to_owned()), Some("2".to_owned())]);
    assert!(
        p.queues.receive(&p.queues.url, 10).await.is_empty(),
        "at its second failure the message waits longer than Attio's Retry-After"
    );
}

/// Attio answers every attempt of the next call `429` with `Retry-After: 1`.
fn rate_limit_every_attempt(attio: &AttioStandIn) {
    fail_every_attempt(
        attio,
        None,
        Fault::Status {
            status: 429,
            code: "rate_limit_exceeded",
            retry_after: Some("1".into()),
        },
    );
}

/// `received` handed to the pipeline's worker as one SQS event, as Lambda's event source would,
/// with the invocation's deadline a minute away.
async fn hand_to_worker(
    p: &Pipeline,
    received: &[aws_sdk_sqs::types::Message],
) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    let records: Vec<Value> = received.iter().map(|m| p.queues.record(m)).collect();
    let event = serde_json::from_value(json!({ "Records": records })).unwrap();
    p.worker
        .handle(
            event,
            Some(std::time::SystemTime::now() + Duration::from_secs(60)),
        )
        .await
}

/// A Clerk membership naming its user by id only (a user who signed up with a username, so
/// the membership's identifier is no email address).
fn clerk_membership_by_id(user: &str, org: &str) -> Value {
    clerk_membership(
        "organizationMembership.created",
        user,
        &format!("{user}_username"),
        org,
        "Acme",
    )
}

/// A signed WorkOS `organization_membership.created` (WorkOS names the user by id only).
fn workos_membership(user: &str, org: &str) -> Value {
    let body = json!({
        "id": format!("event_om_{user}_{org}"), "event": "organization_membership.created",
        "data": {"object": "organization_membership", "id": format!("om_{user}_{org}"),
                 "user_id": user, "organization_id": org, "status": "active",
                 "role": {"slug": "member"}, "created_at": "2026-11-27T09:00:00.000Z",
                 "updated_at": "2026-11-27T09:00:00.000Z"},
        "created_at": "2026-11-27T09:00:00.000Z"
    });
    with_body("workos-user-created.json", &body, WORKOS_SECRET)
}

/// A signed WorkOS `user.created`.
fn workos_user(user: &str) -> Value {
    let body = json!({
        "id": format!("event_user_{user}"), "event": "user.created",
        "data": {"object": "user", "id": user, "email": format!("{user}@example.com"),
                 "first_name": "Margaret", "last_name": "Hamilton", "email_verified": true,
                 "profile_picture_url": null, "created_at": "2026-11-27T09:00:00.000Z",
                 "updated_at": "2026-11-27T09:00:00.000Z"},
        "created_at": "2026-11-27T09:00:00.000Z"
    });
    with_body("workos-user-created.json", &body, WORKOS_SECRET)
}

#[tokio::test]
async fn a_clerk_membership_queued_before_its_user_is_linked_once_the_user_arrives() {
    let p = Pipeline::start_with(Duration::from_secs(1), 10, &[("DELIVERY_MODE", "queued")]).await;
    let joined = p.t.send(&clerk_membership_by_id("user_m", "org_m")).await;
    assert_eq!(joined.status, 202, "{:?}", joined.body);

    // The worker takes the membership alone: its user is not in Attio yet.
    let (handed, failed) = p.queues.poll_once(&p.worker, 10).await;
    assert_eq!(
        (handed, failed),
        (1, 1),
        "the membership waits for its user"
    );
    // Clerk delivers the user's own creation afterwards: it queues behind the membership.
    let created = p.t.send(&clerk("user.created", "user_m", "Lovelace")).await;
    assert_eq!(created.status, 202, "{:?}", created.body);
    p.drain().await;

    assert_eq!(user_writes(&p.t.attio, "user_m"), ["Lovelace"]);
    assert_eq!(linked_workspaces(&p.t.attio, "user_m"), ["org_m"]);
    assert_eq!(p.queues.depth().await, 0);
    assert!(p.queues.dead_letters().await.is_empty());
}

#[tokio::test]
async fn a_workos_membership_before_its_user_is_linked_whatever_batch_they_arrive_in() {
    // Direct mode with a queue: the membership is queued because its user is not in Attio;
    // the user's creation then joins the queue behind it instead of overtaking it.
    let p = Pipeline::start_with(Duration::from_secs(1), 10, &[]).await;

    let joined = p.t.send(&workos_membership("user_wm", "org_w")).await;
    let created = p.t.send(&workos_user("user_wm")).await;

    assert_eq!(joined.status, 202, "{:?}", joined.body);
    assert_eq!(created.status, 202, "joins the queue: {:?}", created.body);
    let (handed, failed) = p.queues.poll_once(&p.worker, 10).await;
    assert_eq!(
        (handed, failed),
        (2, 0),
        "the creation is applied past the membership, which then links"
    );
    let [user] = p.t.attio.records("users").try_into().expect("one user");
    assert_eq!(user.text("user_id"), Some("user_wm"));
    assert_eq!(linked_workspaces(&p.t.attio, "user_wm"), ["org_w"]);
    assert_eq!(p.queues.depth().await, 0);
    assert!(p.queues.dead_letters().await.is_empty());
}

#[tokio::test]
async fn a_membership_before_its_user_with_an_attio_outage_in_between_loses_nothing() {
    let p = Pipeline::start_with(
        Duration::from_secs(1),
        10,
        &[
            ("DELIVERY_MODE", "queued"),
            ("ATTIO_MAX_ELAPSED_MS", "1500"),
        ],
    )
    .await;
    for (route, membership) in [
        ("clerk", clerk_membership_by_id("user_o", "org_o")),
        ("workos", workos_membership("user_ow", "org_ow")),
    ] {
        let answer = p.t.send(&membership).await;
        assert_eq!(answer.status, 202, "{route}: {:?}", answer.body);
    }
    p.t.attio.set_down(true);
    // Attio is down while the worker takes the memberships, and while the users arrive.
    p.queues.poll_once(&p.worker, 10).await;
    for user in [
        clerk("user.created", "user_o", "Outage"),
        workos_user("user_ow"),
    ] {
        assert_eq!(p.t.send(&user).await.status, 202);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    p.queues.poll_once(&p.worker, 10).await;
    p.t.attio.set_down(false);

    p.drain().await;

    assert_eq!(linked_workspaces(&p.t.attio, "user_o"), ["org_o"]);
    assert_eq!(linked_workspaces(&p.t.attio, "user_ow"), ["org_ow"]);
    assert_eq!(p.t.attio.records("users").len(), 2);
    assert_eq!(p.queues.depth().await, 0);
    assert!(p.queues.dead_letters().await.is_empty());
}

#[tokio::test]
async fn a_membership_whose_user_does_not_come_is_parked_then_dead_lettered_after_the_bound() {
    let p = Pipeline::start_with(Duration::from_secs(1), 3, &[("DELIVERY_MODE", "queued")]).await;
    assert_eq!(
        p.t.send(&clerk_membership_by_id("user_late", "org_l"))
            .await
            .status,
        202
    );

    // Received twice without its user: parked at its group's tail, a new message.
    assert_eq!(p.queues.poll_once(&p.worker, 10).await, (1, 1));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(p.queues.poll_once(&p.worker, 10).await, (1, 0));
    let parked = p.queues.receive(&p.queues.url, 10).await;
    assert_eq!(parked.len(), 1, "the parked copy waits in the queue");
    let attributes = parked[0].message_attributes().expect("attributes");
    assert_eq!(attributes["parked"].string_value(), Some("1"));
    assert!(attributes.contains_key("waiting_since"));
    assert!(p.queues.dead_letters().await.is_empty());

    // The user arrives well after, past three receives of the original: linked all the same.
    p.queues
        .client
        .change_message_visibility()
        .queue_url(&p.queues.url)
        .receipt_handle(parked[0].receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    assert_eq!(
        p.t.send(&clerk("user.created", "user_late", "Late"))
            .await
            .status,
        202
    );
    p.drain().await;
    assert_eq!(linked_workspaces(&p.t.attio, "user_late"), ["org_l"]);
    assert!(p.queues.dead_letters().await.is_empty());

    // A membership that has waited past the bound (an hour) goes to the dead-letter queue.
    assert_eq!(
        p.t.send(&clerk_membership_by_id("user_never", "org_n"))
            .await
            .status,
        202
    );
    let [queued] = p.queues.take_all().await.try_into().expect("one message");
    let two_hours_ago = ((now() - 2 * 3600) * 1000).to_string();
    p.queues
        .client
        .send_message()
        .queue_url(&p.queues.url)
        .message_body(queued.to_string())
        .message_group_id("clerk:never")
        .message_deduplication_id("never-parked-1")
        .message_attributes(
            "waiting_since",
            aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(two_hours_ago)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    p.drain().await;
    let letters = p.queues.dead_letters().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].attributes["reason"], "user_never_synced");
    assert_eq!(letters[0].body["event"]["user"]["id"], "user_never");
    assert!(linked_workspaces(&p.t.attio, "user_never").is_empty());
}

#[tokio::test]
async fn a_queued_change_to_an_address_another_user_holds_is_dead_lettered_without_a_write() {
    let p = Pipeline::start(&[("DELIVERY_MODE", "queued")]).await;
    for (id, email, first) in [
        ("user_a", "a@example.com", "Ada"),
        ("user_b", "b@example.com", "Grace"),
    ] {
        let answer =
            p.t.send(&clerk_event("user.created", id, email, first, "Original"))
                .await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
    }
    p.drain().await;
    let before = p.t.attio.requests().len();
    let changed = p.t.send(&clerk_address_taken_from_user_a()).await;
    assert_eq!(changed.status, 202);

    p.drain().await;

    let letters = p.queues.dead_letters().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].attributes["reason"], "attio_uniqueness_conflict");
    let detail = &letters[0].attributes["detail"];
    assert!(detail.contains("primary_email_address"), "{detail}");
    assert!(!detail.contains("a@example.com"), "{detail}");
    let writes = writes_since(&p.t.attio, before);
    assert!(writes.is_empty(), "the poison message wrote {writes:?}");
    let ada =
        p.t.attio
            .records("people")
            .into_iter()
            .find(|r| r.text("email_addresses") == Some("a@example.com"))
            .unwrap();
    assert_eq!(
        ada.first("name").and_then(|n| n["full_name"].as_str()),
        Some("Ada Original")
    );
    assert_eq!(p.queues.depth().await, 0);
}

#[tokio::test]
async fn a_worker_applies_different_users_at_once_and_each_user_in_order() {
    let p = Pipeline::start(&[("DELIVERY_MODE", "queued")]).await;
    p.t.attio.set_latency(Duration::from_millis(100));
    for (event_type, last) in [("user.created", "One"), ("user.updated", "Two")] {
        assert_eq!(
            p.t.send(&clerk(event_type, "user_9", last)).await.status,
            202
        );
    }
    for n in 0..7 {
        let user = format!("user_at_once_{n}");
        assert_eq!(
            p.t.send(&clerk("user.created", &user, "Other"))
                .await
                .status,
            202
        );
    }
    assert_eq!(
        p.t.send(&clerk("user.updated", "user_9", "Three"))
            .await
            .status,
        202
    );

    let (handed, failed) = p.queues.poll_once(&p.worker, 10).await;

    assert_eq!((handed, failed), (10, 0));
    assert_eq!(user_writes(&p.t.attio, "user_9"), ["One", "Two", "Three"]);
    assert_eq!(p.t.attio.records("users").len(), 8);
    assert!(
        p.t.attio.most_at_once() > 1,
        "Attio saw several users' calls at once"
    );
}

#[tokio::test]
async fn an_okta_batch_past_its_time_budget_queues_the_rest_and_every_user_lands() {
    let p = Pipeline::start_with(Duration::from_secs(1), 10, &[]).await;
    p.t.attio.limit_rates(25, 100);
    p.t.attio.set_latency(Duration::from_millis(150));
    let delivery = crate::batches::okta_creations(60);

    let answer = p.t.send(&delivery).await;

    assert_eq!(answer.status, 202, "{}", answer.body);
    let applied = answer.body["applied"]
        .as_u64()
        .expect("some applied at once");
    let queued = answer.body["queued"].as_u64().unwrap();
    assert!(applied > 0, "{}", answer.body);
    assert_eq!(applied + queued, 60, "{}", answer.body);
    p.drain().await;
    assert_eq!(p.t.attio.records("users").len(), 60);
    assert!(p.queues.dead_letters().await.is_empty());
}
