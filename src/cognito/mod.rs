//! Amazon Cognito's Post Confirmation trigger: invoked directly by Cognito (no HTTP, no
//! signature). `PostConfirmation_ConfirmSignUp` syncs the new user; anything else passes
//! through. The event is always returned unchanged, within Cognito's 5 s. Cognito never
//! retries a trigger: with `SYNC_QUEUE_URL` set, a user Attio cannot take in time is queued for
//! the worker instead. Otherwise (or if the queue refuses too) the failure is logged with the
//! user's `sub` and the sign-up goes on; with `COGNITO_BLOCK_SIGNUP_ON_ERROR=true` it fails
//! the sign-up instead.

pub mod directory;

use std::time::Duration;

use aws_lambda_events::event::cognito::{
    CognitoEventUserPoolsPostConfirmation, CognitoEventUserPoolsPostConfirmationTriggerSource,
};
use serde_json::Value;

use crate::App;
use crate::attio::AttioBudget;
use crate::domain::{EmailAddress, UserChange, UserDetails, UserEvent, UserProfile, name_part};
use crate::error::AppError;
use crate::providers::{PayloadError, read_part};
use crate::queue::DeliveryIdentity;

/// The Cognito trigger's name as a route (in logs and per-route mappings).
pub const ROUTE: &str = "cognito";

/// Cognito waits 5 s; keep time to return.
const COGNITO_BUDGET: Duration = Duration::from_secs(4);

/// The user a Post Confirmation event confirms, or `None` for triggers other than sign-up.
pub fn confirmed_user(event: &Value) -> Result<Option<UserProfile>, PayloadError> {
    let parsed: CognitoEventUserPoolsPostConfirmation =
        read_part("Cognito Post Confirmation", "", event)?;
    let header = parsed.cognito_event_user_pools_header;
    if header.trigger_source
        != Some(CognitoEventUserPoolsPostConfirmationTriggerSource::ConfirmSignUp)
    {
        return Ok(None);
    }
    let raw = event
        .pointer("/request/userAttributes")
        .cloned()
        .unwrap_or_default();
    profile(&parsed.request.user_attributes, header.user_name, raw).map(Some)
}

/// A user from its attributes (`sub`, `email`, `given_name`, …), as the trigger and `ListUsers`
/// both give them; `user_name` stands in for a missing `sub`, `raw` is what a mapping's pointers
/// read (the attributes as an object, in both).
pub(crate) fn profile(
    attributes: &std::collections::HashMap<String, String>,
    user_name: Option<String>,
    raw: Value,
) -> Result<UserProfile, PayloadError> {
    let user_id = attributes
        .get("sub")
        .cloned()
        .or(user_name)
        .ok_or_else(|| PayloadError::Malformed {
            provider: "Cognito",
            reason: "the user's attributes have no sub".into(),
        })?;
    let email = attributes
        .get("email")
        .filter(|e| !e.trim().is_empty())
        .ok_or(PayloadError::NoEmail)?;
    Ok(UserProfile {
        user_id,
        email: EmailAddress::parse(email)?,
        first_name: name_part(attributes.get("given_name").map(String::as_str)),
        last_name: name_part(attributes.get("family_name").map(String::as_str)),
        // Post Confirmation runs right after the sign-up; Cognito sends no time with it.
        created_at: None,
        details: UserDetails {
            email_verified: attributes.get("email_verified").map(|v| v == "true"),
            phone: name_part(attributes.get("phone_number").map(String::as_str)),
            username: name_part(attributes.get("preferred_username").map(String::as_str)),
            ..UserDetails::raw(ROUTE, raw)
        },
    })
}

/// Handles one Post Confirmation invocation: returns the event unchanged, or an error only
/// when configured to block sign-ups on failure.
pub async fn post_confirmation(app: &App, event: Value) -> Result<Value, AppError> {
    let started = std::time::Instant::now();
    let user_id = event
        .pointer("/request/userAttributes/sub")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut budget = AttioBudget::until(tokio::time::Instant::now() + COGNITO_BUDGET);
    let result = sync(app, &event, &mut budget).await;
    let (outcome, detail) = match &result {
        Ok(Some(outcome)) => (*outcome, String::new()),
        Ok(None) => ("ignored", String::new()),
        Err(e) => (e.code(), crate::domain::redact_emails(&e.to_string())),
    };
    tracing::info!(
        provider = ROUTE,
        user_sub = user_id.as_deref().unwrap_or(""),
        outcome,
        duration_ms = started.elapsed().as_millis() as u64,
        detail,
        "post confirmation handled"
    );
    let mut tally = crate::metrics::Tally::default();
    tally.add_attio(&budget);
    match &result {
        Ok(Some("queued")) => tally.queued += 1,
        Ok(Some("ignored")) | Ok(None) => tally.ignored += 1,
        Ok(Some(_)) => tally.synced += 1,
        Err(e) if e.status().is_client_error() => tally.rejected += 1,
        Err(_) => tally.failed += 1,
    }
    tally.emit(ROUTE);
    match result {
        Err(e) if app.config().cognito_block_signup_on_error => Err(e),
        _ => Ok(event),
    }
}

/// Syncs the confirmed user: `synced`, `queued` (Attio could not take it in time and the queue
/// did), or `None` for triggers other than sign-up.
async fn sync(
    app: &App,
    event: &Value,
    budget: &mut AttioBudget,
) -> Result<Option<&'static str>, AppError> {
    let Some(user) = confirmed_user(event)? else {
        return Ok(None);
    };
    let secrets = app.secrets().await?;
    // Cognito sends no delivery id, and confirms a user once: the event identifies it.
    let body = event.to_string();
    let events = [UserEvent::upserted(UserChange::Created, user)];
    match app
        .apply(&events, None, secrets, budget)
        .await
        .into_result()
    {
        Ok(outcomes) => Ok(outcomes.first().map(|o| o.status())),
        Err(error) if error.is_transient() && app.queue().is_some() => {
            match app
                .enqueue_events(
                    ROUTE,
                    CONFIRM_SIGN_UP,
                    DeliveryIdentity {
                        id: None,
                        body: body.as_bytes(),
                    },
                    0,
                    &events,
                )
                .await
            {
                Ok(_) => Ok(Some("queued")),
                Err(queue_error) => {
                    tracing::warn!(error = %queue_error, "the queue did not take the user either");
                    Err(error)
                }
            }
        }
        Err(error) => Err(error),
    }
}

/// The trigger source this module syncs.
const CONFIRM_SIGN_UP: &str = "PostConfirmation_ConfirmSignUp";

#[cfg(test)]
mod tests {
    use super::*;

    /// The aws-lambda-rust-runtime fixture example-cognito-event-userpools-postconfirmation.json.
    pub const FIXTURE: &str = r#"{
      "version": "1", "triggerSource": "PostConfirmation_ConfirmSignUp", "region": "us-east-1",
      "userPoolId": "us-east-1_EXAMPLE", "userName": "johndoe",
      "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "1example23456789"},
      "request": {"userAttributes": {"sub": "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111", "cognito:user_status": "CONFIRMED",
                  "email_verified": "true", "email": "johndoe@example.com", "given_name": "John", "family_name": "Doe"},
                  "clientMetadata": {"exampleMetadataKey": "example metadata value"}},
      "response": {}
    }"#;

    #[test]
    fn confirm_sign_up_yields_the_user() {
        let event: Value = serde_json::from_str(FIXTURE).unwrap();
        let user = confirmed_user(&event).unwrap().unwrap();
        assert_eq!(user.user_id, "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111");
        assert_eq!(user.email.as_str(), "johndoe@example.com");
        assert_eq!(user.last_name.as_deref(), Some("Doe"));
    }

    #[test]
    fn forgot_password_confirmation_is_not_a_sign_up() {
        let event: Value =
            serde_json::from_str(&FIXTURE.replace("ConfirmSignUp", "ConfirmForgotPassword"))
                .unwrap();
        assert_eq!(confirmed_user(&event), Ok(None));
    }
}
