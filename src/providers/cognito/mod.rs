//! Amazon Cognito as a provider: a user from its attributes (`sub`, `email`, `given_name`, …),
//! as the Post Confirmation trigger ([`crate::cognito_trigger`]) and `ListUsers`
//! ([`directory`]) both give them. Cognito calls no webhook: it has no [`super::Provider`].

pub mod directory;

use aws_lambda_events::event::cognito::{
    CognitoEventUserPoolsPostConfirmation, CognitoEventUserPoolsPostConfirmationTriggerSource,
};
use serde_json::Value;

use crate::domain::{UserDetails, UserProfile, name_part};
use crate::providers::provider::{PayloadError, read_part, required_email};

/// The Cognito trigger's name as a route (in logs and per-route mappings).
pub const ROUTE: &str = crate::routes::COGNITO;

/// The trigger source that confirms a sign-up, the one event synced.
pub const CONFIRM_SIGN_UP: &str = "PostConfirmation_ConfirmSignUp";

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
    let email = required_email(attributes.get("email").map(String::as_str))?;
    Ok(UserProfile {
        user_id,
        email,
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
