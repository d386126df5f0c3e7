//! Organisations become Attio workspaces; memberships link and unlink users without touching
//! their other workspaces; deletions follow ON_USER_DELETED.

use serde_json::json;

use crate::support::*;

fn workspace_ids_of_user(t: &TestApp, user_id: &str) -> Vec<String> {
    let users = t.attio.records("users");
    let user = users
        .iter()
        .find(|u| u.text("user_id") == Some(user_id))
        .expect("user in Attio");
    let workspaces = t.attio.records("workspaces");
    user.values["workspace"]
        .as_array()
        .map(|refs| {
            refs.iter()
                .map(|id| {
                    let ws = workspaces
                        .iter()
                        .find(|w| Some(w.id.as_str()) == id.as_str())
                        .expect("linked workspace exists");
                    ws.text("workspace_id").unwrap().to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn membership_links_the_user_to_a_named_workspace() {
    let t = TestApp::spawn().await;

    let answer = t
        .send(&clerk_membership(
            "organizationMembership.created",
            "user_ada",
            "ada@example.com",
            "org_acme",
            "Acme Inc",
        ))
        .await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "linked");
    let [workspace] = t
        .attio
        .records("workspaces")
        .try_into()
        .expect("one workspace");
    assert_eq!(workspace.text("workspace_id"), Some("org_acme"));
    assert_eq!(workspace.text("name"), Some("Acme Inc"));
    assert_eq!(answer.body["workspace_record_id"], workspace.id);
    assert_eq!(workspace_ids_of_user(&t, "user_ada"), ["org_acme"]);
}

#[tokio::test]
async fn a_second_membership_keeps_the_first_and_a_redelivery_links_once() {
    let t = TestApp::spawn().await;
    let join = |org: &str| {
        clerk_membership(
            "organizationMembership.created",
            "user_ada",
            "ada@example.com",
            org,
            org,
        )
    };

    for org in ["org_a", "org_b", "org_a"] {
        let answer = t.send(&join(org)).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }

    assert_eq!(workspace_ids_of_user(&t, "user_ada"), ["org_a", "org_b"]);
}

#[tokio::test]
async fn membership_deleted_unlinks_only_that_workspace() {
    let t = TestApp::spawn().await;
    for org in ["org_a", "org_b"] {
        t.send(&clerk_membership(
            "organizationMembership.created",
            "user_ada",
            "ada@example.com",
            org,
            org,
        ))
        .await;
    }

    let answer = t
        .send(&clerk_membership(
            "organizationMembership.deleted",
            "user_ada",
            "ada@example.com",
            "org_a",
            "org_a",
        ))
        .await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "unlinked");
    assert_eq!(workspace_ids_of_user(&t, "user_ada"), ["org_b"]);
    assert_eq!(
        t.attio.records("workspaces").len(),
        2,
        "the workspace itself stays"
    );
}

#[tokio::test]
async fn membership_of_a_user_attio_lacks_is_503_until_the_user_arrives() {
    let t = TestApp::spawn().await;
    // Signed up with a phone number: the membership carries no email to create the user from.
    let membership = clerk_membership(
        "organizationMembership.created",
        "user_ada",
        "+15555550100",
        "org_acme",
        "Acme",
    );

    let early = t.send(&membership).await;
    assert_eq!(
        (early.status, early.code()),
        (503, "user_not_yet_synced"),
        "{:?}",
        early.body
    );
    assert_eq!(early.headers["retry-after"], "60");

    let created = t.send(&ada_event("user.created", "L")).await;
    assert_eq!(created.status, 200);
    let retried = t.send(&membership).await;

    assert_eq!(retried.status, 200, "{:?}", retried.body);
    assert_eq!(workspace_ids_of_user(&t, "user_ada"), ["org_acme"]);
}

#[tokio::test]
async fn user_updates_do_not_drop_workspaces() {
    let t = TestApp::spawn().await;
    t.send(&clerk_membership(
        "organizationMembership.created",
        "user_ada",
        "ada@example.com",
        "org_a",
        "A",
    ))
    .await;

    let answer = t.send(&ada_event("user.updated", "King")).await;

    assert_eq!(answer.status, 200);
    assert_eq!(workspace_ids_of_user(&t, "user_ada"), ["org_a"]);
}

fn user_deleted() -> serde_json::Value {
    let body = json!({"type": "user.deleted", "object": "event", "data": {"id": "user_ada", "object": "user", "deleted": true}});
    with_body("clerk-user-created.json", &body, CLERK_SECRET)
}

#[tokio::test]
async fn user_deleted_is_ignored_by_default() {
    let t = TestApp::spawn().await;
    t.send(&ada_event("user.created", "L")).await;

    let answer = t.send(&user_deleted()).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["status"], "ignored");
    assert_eq!(t.attio.records("users").len(), 1);
}

#[tokio::test]
async fn user_deleted_with_delete_policy_removes_the_user_and_keeps_the_person() {
    let t = TestApp::spawn_with(&default_secret(), &[("ON_USER_DELETED", "delete")]).await;
    let created = t.send(&ada_event("user.created", "L")).await;

    let answer = t.send(&user_deleted()).await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "deleted");
    assert_eq!(answer.body["record_id"], created.body["record_id"]);
    assert!(t.attio.records("users").is_empty());
    assert_eq!(t.attio.records("people").len(), 1);

    let again = t.send(&as_new_message(user_deleted(), CLERK_SECRET)).await;
    assert_eq!(
        (again.status, again.body["record_id"].clone()),
        (200, json!(null)),
        "already gone is fine"
    );
}

/// An Auth0 Event Streams organisation membership CloudEvent (`added` or `deleted`).
fn auth0_membership(kind: &str, user_id: &str, org: &str, name: &str) -> serde_json::Value {
    with_body(
        "auth0-log-stream.json",
        &json!({"specversion": "1.0", "type": format!("organization.member.{kind}"),
                "source": "urn:auth0:example.auth0app.com", "id": "evt_vjFVP5pVdfvsfRKatshkVV",
                "time": "2026-11-27T09:05:00Z", "a0tenant": "example", "a0stream": "est_vjFVP5pVdfvsfRKatshkVV",
                "data": {"object": {"organization": {"id": org, "name": name},
                                    "user": {"user_id": user_id}}}}),
        AUTH0_SECRET,
    )
}

#[tokio::test]
async fn auth0_member_events_link_and_unlink_the_users_workspace() {
    let t = TestApp::spawn().await;
    let user_id = "auth0|6564a1b2c3d4e5f6a7b8c9d0";
    let signup = t
        .send(&resign(event_file("auth0-log-stream.json"), AUTH0_SECRET))
        .await;
    assert_eq!(signup.status, 200, "{:?}", signup.body);

    let added = t
        .send(&auth0_membership("added", user_id, "org_acme", "acme"))
        .await;
    let other = t
        .send(&auth0_membership("added", user_id, "org_beta", "beta"))
        .await;

    assert_eq!(added.status, 200, "{:?}", added.body);
    assert_eq!(added.body["event_type"], "organization.member.added");
    assert_eq!(added.body["status"], "linked", "{:?}", added.body);
    assert_eq!(other.status, 200, "{:?}", other.body);
    let mut linked = workspace_ids_of_user(&t, user_id);
    linked.sort();
    assert_eq!(linked, ["org_acme", "org_beta"]);
    let acme = t
        .attio
        .records("workspaces")
        .into_iter()
        .find(|w| w.text("workspace_id") == Some("org_acme"))
        .unwrap();
    assert_eq!(acme.text("name"), Some("acme"));

    let deleted = t
        .send(&auth0_membership("deleted", user_id, "org_acme", "acme"))
        .await;

    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    assert_eq!(workspace_ids_of_user(&t, user_id), ["org_beta"]);
}
