//! Provider timestamps: the sign-up time written to a configured attribute, and late
//! redeliveries of older changes kept from overwriting newer data.

use attio_user_sync::domain::Timestamp;

use crate::support::*;

const T1: i64 = 1_795_770_000_000;
const T2: i64 = T1 + 60_000;
const T3: i64 = T2 + 60_000;

fn last_name(t: &TestApp) -> String {
    let [person] = t.attio.records("people").try_into().expect("one person");
    person.first("name").unwrap()["last_name"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn sign_up_time_is_written_when_an_attribute_is_configured() {
    let t = TestApp::spawn_with(
        &default_secret(),
        &[("ATTIO_USER_CREATED_AT_ATTRIBUTE", "signed_up_at")],
    )
    .await;

    let answer = t.send(&ada_event("user.created", "L")).await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let [user] = t.attio.records("users").try_into().unwrap();
    // clerk_user() says created_at 1795770000000 ms.
    // Attio answers in UTC with nanoseconds: the same moment.
    assert_eq!(
        user.text("signed_up_at"),
        Some("2026-11-27T09:00:00.000000000Z")
    );
    assert_eq!(
        user.text("signed_up_at").and_then(Timestamp::parse),
        Timestamp::from_unix_millis(1_795_770_000_000)
    );
}

#[tokio::test]
async fn sign_up_time_is_not_written_by_default() {
    let t = TestApp::spawn().await;

    t.send(&ada_event("user.created", "L")).await;

    let [user] = t.attio.records("users").try_into().unwrap();
    assert_eq!(user.text("signed_up_at"), None);
}

#[tokio::test]
async fn a_late_older_update_does_not_overwrite_a_newer_one() {
    let t = TestApp::spawn_with(
        &default_secret(),
        &[("ATTIO_USER_EVENT_TIME_ATTRIBUTE", "last_event_at")],
    )
    .await;
    let newer = t
        .send(&clerk_event_at("user.updated", "user_ada", "Newer", T2))
        .await;
    assert_eq!(newer.status, 200);

    let late = t
        .send(&clerk_event_at("user.updated", "user_ada", "Older", T1))
        .await;

    assert_eq!(
        late.status, 200,
        "an outdated event is answered 2xx so the sender stops retrying"
    );
    assert_eq!(late.body["status"], "outdated");
    assert_eq!(late.body["record_id"], newer.body["record_id"]);
    assert_eq!(last_name(&t), "Newer");

    let newest = t
        .send(&clerk_event_at("user.updated", "user_ada", "Newest", T3))
        .await;
    assert_eq!(newest.body["status"], "synced");
    assert_eq!(last_name(&t), "Newest");
    let [user] = t.attio.records("users").try_into().unwrap();
    assert_eq!(
        user.text("last_event_at").and_then(Timestamp::parse),
        Timestamp::from_unix_millis(T3)
    );
}

#[tokio::test]
async fn without_the_attribute_the_last_delivered_change_wins() {
    let t = TestApp::spawn().await;
    t.send(&clerk_event_at("user.updated", "user_ada", "Newer", T2))
        .await;

    let late = t
        .send(&clerk_event_at("user.updated", "user_ada", "Older", T1))
        .await;

    assert_eq!(late.body["status"], "synced");
    assert_eq!(last_name(&t), "Older");
}

#[tokio::test]
async fn a_name_changed_back_on_another_container_is_written_again() {
    // Two containers with event-time ordering: the first remembers having sent "Lovelace" for
    // this person, the second writes "Byron" since, then the first gets the change back.
    let vars = [("ATTIO_USER_EVENT_TIME_ATTRIBUTE", "last_event_at")];
    let t = TestApp::spawn_with(&default_secret(), &vars).await;
    let other = app_for(&t.secret_id, &t.attio.url(), &vars).await;

    t.send(&clerk_event_at("user.updated", "user_ada", "Lovelace", T1))
        .await;
    let request = lambda_http::request::from_str(
        &clerk_event_at("user.updated", "user_ada", "Byron", T2).to_string(),
    )
    .unwrap();
    assert_eq!(other.handle(request).await.status(), 200);
    let back = t
        .send(&clerk_event_at("user.updated", "user_ada", "Lovelace", T3))
        .await;

    assert_eq!(back.status, 200, "{:?}", back.body);
    let [user] = t.attio.records("users").try_into().unwrap();
    assert_eq!(
        user.text("last_event_at").and_then(Timestamp::parse),
        Timestamp::from_unix_millis(T3)
    );
    assert_eq!(
        last_name(&t),
        "Lovelace",
        "the newest version's name, not Byron"
    );
}

#[tokio::test]
async fn a_change_of_the_same_time_is_applied_again_and_never_over_a_newer_one() {
    let t = TestApp::spawn_with(
        &default_secret(),
        &[("ATTIO_USER_EVENT_TIME_ATTRIBUTE", "last_event_at")],
    )
    .await;
    t.send(&clerk_event_at("user.updated", "user_ada", "First", T2))
        .await;

    // The same version again (a redelivery; here with what the sender sends now): applied.
    let again = t
        .send(&clerk_event_at("user.updated", "user_ada", "Second", T2))
        .await;
    assert_eq!(again.body["status"], "synced", "{:?}", again.body);
    assert_eq!(last_name(&t), "Second");

    // After a newer one, that time is older: not applied. (Another body: a byte-for-byte
    // redelivery is answered from what this container did with it, without calling Attio.)
    t.send(&clerk_event_at("user.updated", "user_ada", "Newer", T3))
        .await;
    let late = t
        .send(&clerk_event_at("user.updated", "user_ada", "Late", T2))
        .await;
    assert_eq!(late.body["status"], "outdated");
    assert_eq!(last_name(&t), "Newer");
}
