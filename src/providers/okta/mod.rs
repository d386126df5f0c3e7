//! Okta Event Hooks: `POST /webhooks/okta`, authenticated by the `Authorization` header value
//! configured on the hook (compared in constant time), plus the one-time `GET` verification
//! (`X-Okta-Verification-Challenge` → `{"verification": …}`). One POST carries several events;
//! Okta waits 3 s and retries once, so Attio work is cut to fit.

pub mod directory;

use std::time::Duration;

use http::HeaderMap;
use serde::Deserialize;
use serde_json::json;

use crate::domain::{
    EmailAddress, Timestamp, UserChange, UserDetails, UserEvent, UserProfile, split_full_name,
};
use crate::providers::provider::{
    Delivery, PayloadError, Provider, SecretForm, WebhookRequest, read_body, read_part,
    verify_authorization_header,
};
use crate::secrets::Secret;
use crate::signature::SignatureError;

/// Okta Event Hooks.
pub struct Okta;

const NAME: &str = "Okta";
const CHALLENGE: &str = "x-okta-verification-challenge";
/// Longest verification challenge echoed (Okta's are about 40 characters).
const MAX_CHALLENGE: usize = 128;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "eventType")]
    event_type: String,
    data: serde_json::Value,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "eventType")]
    event_type: String,
    /// Read as [`Target`]s; the user's is kept as sent for the attribute mapping.
    #[serde(default)]
    target: Vec<serde_json::Value>,
    /// RFC 3339: when Okta recorded the event; orders redeliveries.
    published: Option<String>,
    /// Who did it: the user, for a sign-in.
    actor: Option<Actor>,
}

#[derive(Deserialize)]
struct Actor {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Target {
    id: String,
    #[serde(rename = "alternateId")]
    alternate_id: Option<String>,
    #[serde(rename = "displayName")]
    display_name: Option<String>,
}

impl Provider for Okta {
    fn route(&self) -> &'static str {
        crate::routes::OKTA
    }

    fn secret_form(&self) -> SecretForm {
        SecretForm::Text
    }

    fn verify(
        &self,
        request: &WebhookRequest<'_>,
        secrets: &[Secret],
    ) -> Result<(), SignatureError> {
        verify_authorization_header(request, secrets)
    }

    fn answer_challenge(
        &self,
        headers: &HeaderMap,
    ) -> Option<Result<serde_json::Value, PayloadError>> {
        let challenge = headers.get(CHALLENGE)?.as_bytes();
        // Okta's challenges are short URL-safe tokens (`Me_rShK8JHsTnbyYrWXCEoMGbM_zsZ6k0hLPZ_Pg`):
        // echo nothing else.
        let plain = (1..=MAX_CHALLENGE).contains(&challenge.len())
            && challenge
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~+/=".contains(b));
        Some(match std::str::from_utf8(challenge) {
            Ok(challenge) if plain => Ok(json!({ "verification": challenge })),
            _ => Err(PayloadError::Malformed {
                provider: NAME,
                reason: format!(
                    "the {CHALLENGE} header is not 1 to {MAX_CHALLENGE} URL-safe characters"
                ),
            }),
        })
    }

    fn answer_within(&self) -> Option<Duration> {
        // Okta gives up after 3 s; keep time to answer.
        Some(Duration::from_millis(2500))
    }

    fn parse(&self, body: &[u8]) -> Result<Delivery, PayloadError> {
        let envelope: Envelope = read_body(NAME, body)?;
        let data: Data = read_part(NAME, "data", &envelope.data)?;
        let mut delivery = Delivery::ignored(envelope.event_type);
        for (i, event) in data.events.into_iter().enumerate() {
            let change = match event.event_type.as_str() {
                "user.lifecycle.create" | "user.lifecycle.activate" => Some(UserChange::Created),
                "user.account.update_profile" => Some(UserChange::Updated),
                "user.lifecycle.delete.initiated" => None,
                "user.session.start" => {
                    // The user signing in is the event's actor.
                    let at = event.published.as_deref().and_then(Timestamp::parse);
                    if let (Some(actor), Some(at)) = (event.actor, at)
                        && actor.kind == "User"
                    {
                        delivery.events.push(UserEvent::SignedIn {
                            user_id: actor.id,
                            provider: crate::routes::OKTA,
                            at,
                        });
                    }
                    continue;
                }
                _ => continue,
            };
            let user_target = event
                .target
                .into_iter()
                .find(|t| t.get("type").and_then(serde_json::Value::as_str) == Some("User"));
            let Some(raw) = user_target else {
                delivery.skipped.push(format!(
                    "event {i} ({}): no target of type User",
                    event.event_type
                ));
                continue;
            };
            let user: Target = read_part(NAME, &format!("data.events[{i}].target"), &raw)?;
            let Some(change) = change else {
                delivery
                    .events
                    .push(UserEvent::Deleted { user_id: user.id });
                continue;
            };
            // The login (alternateId) is the user's email in most Okta orgs.
            match EmailAddress::parse(user.alternate_id.as_deref().unwrap_or("")) {
                Ok(email) => {
                    let (first_name, last_name) = split_full_name(user.display_name.as_deref());
                    let published = event.published.as_deref().and_then(Timestamp::parse);
                    let profile = UserProfile {
                        user_id: user.id,
                        email,
                        first_name,
                        last_name,
                        // A creation event is published when the user is created.
                        created_at: published.filter(|_| change == UserChange::Created),
                        details: UserDetails::raw(crate::routes::OKTA, raw),
                    };
                    delivery
                        .events
                        .push(UserEvent::upserted(change, profile).at(published));
                }
                Err(e) => delivery
                    .skipped
                    .push(format!("event {i} ({}): the login {e}", event.event_type)),
            }
        }
        Ok(delivery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like Okta's documented event hook delivery, with two events in one POST.
    const DELIVERY: &str = r#"{
      "eventType": "com.okta.event_hook", "eventTypeVersion": "1.0", "cloudEventsVersion": "0.1",
      "source": "https://dev-123456.okta.com/api/v1/eventHooks/whoql0HfiLGPWc8Jx0g3",
      "eventId": "b5a188b9-5ece-4636-b041-482ffda96311", "eventTime": "2026-11-27T09:00:00.000Z", "contentType": "application/json",
      "data": {"events": [
        {"uuid": "7c2a9f1e-ac17-11ee-b5b7-5d1a1f8b2b11", "published": "2026-11-27T09:00:00.000Z", "eventType": "user.lifecycle.create",
         "displayMessage": "Create Okta user", "severity": "INFO",
         "actor": {"id": "00u1qw1mqitPHM8AJ0g7", "type": "User", "alternateId": "admin@example.com", "displayName": "Admin"},
         "target": [{"id": "00u1s8ir7jCPI3ZSp0g7", "type": "User", "alternateId": "annie.easley@example.com", "displayName": "Annie Easley", "detailEntry": null}]},
        {"uuid": "8d3b0a2f-ac17-11ee-b5b7-5d1a1f8b2b11", "published": "2026-11-27T09:00:01.000Z", "eventType": "user.session.start",
         "target": []},
        {"uuid": "9e4c1b3a-ac17-11ee-b5b7-5d1a1f8b2b11", "published": "2026-11-27T09:00:02.000Z", "eventType": "user.account.update_profile",
         "target": [{"id": "00u1s8ir7jCPI3ZSp0g8", "type": "User", "alternateId": "jdoe", "displayName": "J Doe"}]}
      ]}
    }"#;

    #[test]
    fn reads_every_user_event_of_a_batch_and_skips_logins_that_are_not_emails() {
        let d = Okta.parse(DELIVERY.as_bytes()).unwrap();
        assert_eq!(d.event_type, "com.okta.event_hook");
        let [UserEvent::Upserted { change, user, .. }] = d.events.as_slice() else {
            panic!("{d:?}")
        };
        assert_eq!(*change, UserChange::Created);
        assert_eq!(user.user_id, "00u1s8ir7jCPI3ZSp0g7");
        assert_eq!(user.email.as_str(), "annie.easley@example.com");
        assert_eq!(user.last_name.as_deref(), Some("Easley"));
        assert_eq!(d.skipped.len(), 1);
        assert!(
            d.skipped[0].contains("user.account.update_profile"),
            "{:?}",
            d.skipped
        );
    }

    #[test]
    fn answers_the_verification_challenge() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "X-Okta-Verification-Challenge",
            "In4ZtV8DoJmVuHzKp0kdkzg0i9xp0bIu".parse().unwrap(),
        );
        assert_eq!(
            Okta.answer_challenge(&headers),
            Some(Ok(
                json!({"verification": "In4ZtV8DoJmVuHzKp0kdkzg0i9xp0bIu"})
            ))
        );
        assert_eq!(Okta.answer_challenge(&HeaderMap::new()), None);
        for hostile in ["<script>alert(1)</script>", "a b", &"x".repeat(129)] {
            headers.insert(CHALLENGE, hostile.parse().unwrap());
            let refused = Okta.answer_challenge(&headers).unwrap().unwrap_err();
            assert!(!refused.to_string().contains(hostile), "{refused}");
        }
    }

    #[test]
    fn delete_initiated_deletes() {
        let body = DELIVERY.replace("user.lifecycle.create", "user.lifecycle.delete.initiated");
        let d = Okta.parse(body.as_bytes()).unwrap();
        assert_eq!(
            d.events,
            [UserEvent::Deleted {
                user_id: "00u1s8ir7jCPI3ZSp0g7".into()
            }]
        );
    }
}
