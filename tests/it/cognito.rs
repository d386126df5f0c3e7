//! The Cognito Post Confirmation trigger: the event comes back unchanged, the user lands in
//! Attio, and an Attio outage does not block the sign-up unless configured to.

use attio_user_sync::cognito_trigger as cognito;
use serde_json::Value;

use crate::support::*;

fn sign_up() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events/cognito/post-confirmation-sign-up.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn attio_down(t: &TestApp) {
    fail_every_attempt(&t.attio, None, attio_error(503, "service_unavailable"));
}

#[tokio::test]
async fn confirmed_sign_up_is_synced_and_the_event_returned_unchanged() {
    let t = TestApp::spawn().await;
    let event = sign_up();

    let returned = cognito::post_confirmation(&t.app, event.clone())
        .await
        .expect("never blocks");

    assert_eq!(returned, event);
    let [user] = t.attio.records("users").try_into().expect("one user");
    assert_eq!(
        user.text("user_id"),
        Some("a1b2c3d4-5678-90ab-cdef-EXAMPLE11111")
    );
    assert_eq!(
        user.text("primary_email_address"),
        Some("mae.jemison@example.com")
    );
}

#[tokio::test]
async fn other_triggers_pass_through_without_calling_attio() {
    let t = TestApp::spawn().await;
    let mut event = sign_up();
    event["triggerSource"] = "PostConfirmation_ConfirmForgotPassword".into();

    let returned = cognito::post_confirmation(&t.app, event.clone())
        .await
        .unwrap();

    assert_eq!(returned, event);
    assert!(t.attio.requests().is_empty());
}

#[tokio::test]
async fn attio_outage_does_not_block_the_sign_up_by_default() {
    let t = TestApp::spawn().await;
    attio_down(&t);

    let returned = cognito::post_confirmation(&t.app, sign_up()).await;

    assert_eq!(returned.ok(), Some(sign_up()));
    assert!(t.attio.records("users").is_empty());
}

#[tokio::test]
async fn attio_outage_blocks_the_sign_up_when_configured_to() {
    let t = TestApp::spawn_with(
        &default_secret(),
        &[("COGNITO_BLOCK_SIGNUP_ON_ERROR", "true")],
    )
    .await;
    attio_down(&t);

    let error = cognito::post_confirmation(&t.app, sign_up())
        .await
        .expect_err("blocks");

    assert_eq!(error.code(), "attio_unavailable");
}
