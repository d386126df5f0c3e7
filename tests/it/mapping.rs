//! The attribute mapping (`ATTIO_ATTRIBUTE_MAP`) through the real handler and the stand-in's
//! typed custom attributes: values converted to the attribute's type, and an optional field
//! that cannot be written never blocking the user's sync.

use serde_json::{Value, json};

use crate::support::*;

async fn mapped_app(map: Value) -> TestApp {
    TestApp::spawn_with(
        &default_secret(),
        &[("ATTIO_ATTRIBUTE_MAP", map.to_string().as_str())],
    )
    .await
}

/// A Clerk `user.created` for `user_1` with these extra fields in `data`.
fn clerk_with(extra: Value) -> Value {
    let mut body = clerk_user("user.created", "user_1", "ada@example.com", "Ada", "L");
    for (k, v) in extra.as_object().expect("an object") {
        body["data"][k] = v.clone();
    }
    with_body("clerk-user-created.json", &body, CLERK_SECRET)
}

fn the_user(t: &TestApp) -> Record {
    let [user] = t.attio.records("users").try_into().expect("one user");
    user
}

#[tokio::test]
async fn a_clerk_public_metadata_plan_lands_in_a_users_select_attribute() {
    let t = mapped_app(json!({"users": {"plan": "/public_metadata/plan"}})).await;

    let answer = t
        .send(&clerk_with(json!({"public_metadata": {"plan": "Pro"}})))
        .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.get("warnings").is_none(), "{}", answer.body);
    assert_eq!(the_user(&t).values["plan"], json!(["Pro"]));
}

#[tokio::test]
async fn a_millisecond_created_at_lands_in_a_timestamp_attribute() {
    let t =
        mapped_app(json!({"users": {"signed_up_at": "/created_at", "last_seen": "created_at"}}))
            .await;

    // clerk_user's created_at is 1_795_770_000_000 (Unix milliseconds).
    let answer = t.send(&clerk_with(json!({}))).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    let user = the_user(&t);
    assert_eq!(
        user.values["signed_up_at"],
        json!(["2026-11-27T09:00:00.000000000Z"])
    );
    assert_eq!(
        user.values["last_seen"],
        json!(["2026-11-27T09:00:00.000000000Z"])
    );
}

#[tokio::test]
async fn values_are_converted_to_each_attribute_type() {
    let t = mapped_app(json!({
        "users": {"seats": "/public_metadata/seats", "beta_tester": "/public_metadata/beta",
                  "birthday": "/public_metadata/born", "mobile": "phone",
                  "company_domain": "/public_metadata/site", "signed_up_with": "provider",
                  "work_email": "email"},
        "people": {"phone_numbers": "phone"}
    }))
    .await;

    let answer = t
        .send(&clerk_with(json!({
            "public_metadata": {"seats": "12", "beta": "true", "born": 1_654_012_591, "site": "https://www.acme.example/about"},
            "phone_numbers": [{"id": "idn_phone", "phone_number": "+1 (555) 867-5309"}],
            "primary_phone_number_id": "idn_phone"
        })))
        .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.get("warnings").is_none(), "{}", answer.body);
    let user = the_user(&t);
    assert_eq!(user.values["seats"], json!([12.0]));
    assert_eq!(user.values["beta_tester"], json!([true]));
    assert_eq!(user.values["birthday"], json!(["2022-05-31"]));
    assert_eq!(user.values["mobile"], json!(["+15558675309"]));
    assert_eq!(user.values["company_domain"], json!(["www.acme.example"]));
    assert_eq!(user.values["signed_up_with"], json!(["clerk"]));
    assert_eq!(user.values["work_email"], json!(["ada@example.com"]));
    let [person] = t.attio.records("people").try_into().expect("one person");
    assert_eq!(person.values["phone_numbers"], json!(["+15558675309"]));
}

#[tokio::test]
async fn a_per_route_pointer_reads_each_providers_own_object() {
    let t = mapped_app(json!({"people": {"job_title": {
        "clerk": "/unsafe_metadata/title", "workos": "/metadata/title"}}}))
    .await;
    let clerk = clerk_with(json!({"unsafe_metadata": {"title": "Analyst"}}));
    let workos = with_body(
        "workos-user-created.json",
        &json!({"id": "event_1", "event": "user.created", "created_at": "2026-11-27T09:00:00.000Z",
                "data": {"object": "user", "id": "user_workos_1", "email": "grace@example.com",
                         "first_name": "Grace", "last_name": "Hopper", "metadata": {"title": "Admiral"}}}),
        WORKOS_SECRET,
    );

    let answers = [t.send(&clerk).await, t.send(&workos).await];

    for answer in &answers {
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let people = t.attio.records("people");
    let title = |email: &str| {
        people
            .iter()
            .find(|p| p.values["email_addresses"] == json!([email]))
            .map(|p| p.values["job_title"].clone())
    };
    assert_eq!(title("ada@example.com"), Some(json!(["Analyst"])));
    assert_eq!(title("grace@example.com"), Some(json!(["Admiral"])));
}

#[tokio::test]
async fn a_mapped_attribute_attio_does_not_have_is_a_warning_and_the_user_is_synced() {
    let t = mapped_app(
        json!({"users": {"favourite_colour": "/public_metadata/colour",
                                        "legacy_plan": "/public_metadata/plan"}}),
    )
    .await;

    let answer = t
        .send(&clerk_with(
            json!({"public_metadata": {"colour": "teal", "plan": "Pro"}}),
        ))
        .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "synced");
    let warnings = answer.body["warnings"].as_array().expect("warnings");
    let named: Vec<&str> = warnings
        .iter()
        .map(|w| w["attribute"].as_str().unwrap())
        .collect();
    assert_eq!(
        named,
        ["favourite_colour", "legacy_plan"],
        "{}",
        answer.body
    );
    assert!(warnings.iter().all(|w| w["object"] == "users"));
    let reason = |i: usize| warnings[i]["reason"].as_str().unwrap().to_owned();
    assert!(reason(0).contains("no attribute"), "{}", reason(0));
    assert!(
        reason(1).contains("archived: unarchive it in Attio"),
        "an archived attribute is told apart from a missing one: {}",
        reason(1)
    );
    assert!(
        !answer.body.to_string().contains("teal"),
        "no value in warnings"
    );
    let user = the_user(&t);
    assert_eq!(user.text("user_id"), Some("user_1"));
    assert!(user.values.get("legacy_plan").is_none());
    assert_eq!(t.attio.records("people").len(), 1);
}

#[tokio::test]
async fn an_unconvertible_or_refused_value_is_a_warning_and_the_user_is_synced() {
    let t = mapped_app(
        json!({"users": {"seats": "/public_metadata/seats", "plan": "/public_metadata/plan",
                                        "signed_up_with": "provider"}}),
    )
    .await;

    // "a dozen" cannot be a number; "Platinum" is no option of the select, which only Attio knows.
    let answer = t
        .send(&clerk_with(
            json!({"public_metadata": {"seats": "a dozen", "plan": "Platinum"}}),
        ))
        .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    let warnings = answer.body["warnings"].as_array().expect("warnings");
    let reason = |attribute: &str| {
        warnings
            .iter()
            .find(|w| w["attribute"] == attribute)
            .map(|w| w["reason"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        reason("seats").as_deref(),
        Some("expected a number for a number attribute")
    );
    assert_eq!(
        reason("plan").as_deref(),
        Some("Attio refused the value (validation_type)")
    );
    let text = answer.body.to_string();
    assert!(
        !text.contains("dozen") && !text.contains("Platinum"),
        "{text}"
    );
    let user = the_user(&t);
    assert!(user.values.get("plan").is_none());
    assert_eq!(
        user.values["signed_up_with"],
        json!(["clerk"]),
        "the other mapped fields land"
    );
}

#[tokio::test]
async fn an_absent_source_leaves_the_attribute_and_json_null_clears_it() {
    let t = mapped_app(json!({"users": {"plan": "/public_metadata/plan"}})).await;
    t.send(&clerk_with(json!({"public_metadata": {"plan": "Pro"}})))
        .await;

    let absent = t
        .send(&as_new_message(
            clerk_with(json!({"public_metadata": {}, "last_name": "Lovelace"})),
            CLERK_SECRET,
        ))
        .await;
    let kept = the_user(&t).values["plan"].clone();
    let null = t
        .send(&as_new_message(
            clerk_with(json!({"public_metadata": {"plan": null}})),
            CLERK_SECRET,
        ))
        .await;

    assert_eq!((absent.status, null.status), (200, 200));
    assert_eq!(
        kept,
        json!(["Pro"]),
        "an absent source leaves the attribute"
    );
    assert_eq!(the_user(&t).values["plan"], json!([]), "null clears it");
}

#[tokio::test]
async fn attribute_types_are_read_once_per_container_and_not_at_all_without_a_mapping() {
    let mapped = mapped_app(json!({"users": {"plan": "/public_metadata/plan"}})).await;
    let plain = TestApp::spawn().await;
    let listings = |t: &TestApp| {
        t.attio
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.record_id.is_none())
            .count()
    };

    for i in 0..3 {
        let event = clerk_event(
            "user.created",
            &format!("user_{i}"),
            &format!("u{i}@example.com"),
            "A",
            "B",
        );
        let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
        body["data"]["public_metadata"] = json!({"plan": "Free"});
        mapped
            .send(&with_body("clerk-user-created.json", &body, CLERK_SECRET))
            .await;
        plain.send(&event).await;
    }

    assert_eq!(listings(&mapped), 1, "one attribute listing for users");
    assert_eq!(listings(&plain), 0);
    assert_eq!(mapped.attio.records("users").len(), 3);
}

/// A signed Clerk `session.created` for `user_id` at `at_ms` (Unix milliseconds).
fn clerk_sign_in(user_id: &str, at_ms: i64) -> Value {
    let body = json!({"type": "session.created", "object": "event",
                      "data": {"id": format!("sess_{at_ms}"), "object": "session", "user_id": user_id,
                               "status": "active", "created_at": at_ms, "last_active_at": at_ms}});
    with_body("clerk-session-created.json", &body, CLERK_SECRET)
}

#[tokio::test]
async fn a_sign_in_updates_the_mapped_last_seen_of_the_user() {
    let t = mapped_app(json!({"users": {"last_seen": "last_sign_in_at"}})).await;
    let created = t.send(&clerk_with(json!({}))).await;

    let answer = t.send(&clerk_sign_in("user_1", 1_795_773_600_000)).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "signed_in");
    assert_eq!(answer.body["record_id"], created.body["record_id"]);
    let user = the_user(&t);
    assert_eq!(
        user.values["last_seen"],
        json!(["2026-11-27T10:00:00.000000000Z"])
    );
    assert_eq!(user.text("primary_email_address"), Some("ada@example.com"));
}

#[tokio::test]
async fn a_sign_in_costs_no_attio_call_when_last_sign_in_at_is_not_mapped() {
    let t = mapped_app(json!({"users": {"plan": "/public_metadata/plan"}})).await;
    t.send(&clerk_with(json!({"public_metadata": {"plan": "Pro"}})))
        .await;
    let calls = t.attio.request_count();

    let answer = t.send(&clerk_sign_in("user_1", 1_795_773_600_000)).await;

    assert_eq!(
        (answer.status, answer.body["status"].as_str()),
        (200, Some("ignored"))
    );
    assert_eq!(t.attio.request_count(), calls, "no Attio call");
}

#[tokio::test]
async fn a_sign_in_repeated_within_five_minutes_costs_no_attio_call() {
    let t = mapped_app(json!({"users": {"last_seen": "last_sign_in_at"}})).await;
    t.send(&clerk_with(json!({}))).await;
    let first = t.send(&clerk_sign_in("user_1", 1_795_773_600_000)).await;
    let calls = t.attio.request_count();

    // The same sign-in again, as another message (another sender's copy of it, say).
    let again = t
        .send(&as_new_message(
            clerk_sign_in("user_1", 1_795_773_600_000),
            CLERK_SECRET,
        ))
        .await;

    assert_eq!((first.status, again.status), (200, 200));
    assert_eq!(again.body["record_id"], first.body["record_id"]);
    assert_eq!(t.attio.request_count(), calls, "no Attio call");
}

#[tokio::test]
async fn a_sign_in_of_a_user_attio_does_not_have_is_ignored_and_creates_nothing() {
    let t = mapped_app(json!({"users": {"last_seen": "last_sign_in_at"}})).await;

    let answer = t
        .send(&clerk_sign_in("user_unknown", 1_795_773_600_000))
        .await;

    assert_eq!(
        (answer.status, answer.body["status"].as_str()),
        (200, Some("ignored"))
    );
    assert!(t.attio.records("users").is_empty());
}

#[tokio::test]
async fn okta_and_auth0_sign_ins_update_last_seen() {
    let t = mapped_app(json!({"users": {"last_seen": "last_sign_in_at"}})).await;
    let okta_user = t
        .send(&resign(event_file("okta-users-created.json"), OKTA_SECRET))
        .await;
    let auth0_user = t
        .send(&resign(event_file("auth0-log-stream.json"), AUTH0_SECRET))
        .await;
    assert_eq!((okta_user.status, auth0_user.status), (200, 200));
    let okta_session = json!({"eventType": "com.okta.event_hook", "eventId": "b5a188b9-5ece-4636-b041-482ffda96312",
        "data": {"events": [{"uuid": "1", "published": "2026-11-27T11:00:00.000Z", "eventType": "user.session.start",
                             "actor": {"id": "00u1s8ir7jCPI3ZSp0g7", "type": "User", "alternateId": "annie.easley@example.com"},
                             "target": []}]}});
    let auth0_login = json!([{"log_id": "90020261127110000", "data": {"date": "2026-11-27T12:00:00.000Z", "type": "s",
                              "user_id": "auth0|6564a1b2c3d4e5f6a7b8c9d0", "user_name": "evelyn.boyd@example.com"}}]);

    let okta = t
        .send(&with_body(
            "okta-users-created.json",
            &okta_session,
            OKTA_SECRET,
        ))
        .await;
    let auth0 = t
        .send(&with_body(
            "auth0-log-stream.json",
            &auth0_login,
            AUTH0_SECRET,
        ))
        .await;

    assert_eq!(
        (okta.status, auth0.status),
        (200, 200),
        "{} {}",
        okta.body,
        auth0.body
    );
    let last_seen = |user_id: &str| {
        t.attio
            .records("users")
            .into_iter()
            .find(|u| u.text("user_id") == Some(user_id))
            .map(|u| u.values["last_seen"].clone())
    };
    assert_eq!(
        last_seen("00u1s8ir7jCPI3ZSp0g7"),
        Some(json!(["2026-11-27T11:00:00.000000000Z"]))
    );
    assert_eq!(
        last_seen("auth0|6564a1b2c3d4e5f6a7b8c9d0"),
        Some(json!(["2026-11-27T12:00:00.000000000Z"]))
    );
}

#[tokio::test]
async fn a_sign_in_whose_mapped_attribute_attio_lacks_writes_nothing() {
    let t = mapped_app(json!({"users": {"last_login": "last_sign_in_at"}})).await;
    t.send(&clerk_with(json!({}))).await;
    let before = t.attio.requests().len();

    let answer = t.send(&clerk_sign_in("user_1", 1_795_773_600_000)).await;

    assert_eq!(
        (answer.status, answer.body["status"].as_str()),
        (200, Some("ignored"))
    );
    let writes = t.attio.requests()[before..]
        .iter()
        .filter(|r| r.method != "GET")
        .count();
    assert_eq!(writes, 0, "nothing to write");
}
