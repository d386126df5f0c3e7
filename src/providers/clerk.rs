//! Clerk, delivered by Svix: `POST /webhooks/clerk` with `svix-id`, `svix-timestamp`,
//! `svix-signature`. Syncs `user.created` and `user.updated`.

use lambda_http::http::HeaderMap;
use serde::Deserialize;

use super::{Delivery, PayloadError, Provider, SVIX_HEADERS, WebhookRequest};
use crate::domain::{EmailAddress, UserChange, UserEvent, UserProfile, name_part};
use crate::secrets::Secret;
use crate::signature::SignatureError;

/// Clerk webhooks.
pub struct Clerk;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    event_type: String,
    data: serde_json::Value,
}

#[derive(Deserialize)]
struct ClerkUser {
    id: String,
    first_name: Option<String>,
    last_name: Option<String>,
    #[serde(default)]
    email_addresses: Vec<ClerkEmail>,
    primary_email_address_id: Option<String>,
}

#[derive(Deserialize)]
struct ClerkEmail {
    id: String,
    email_address: String,
}

const NAME: &str = "Clerk";

impl Provider for Clerk {
    fn route(&self) -> &'static str {
        "clerk"
    }

    fn verify(
        &self,
        request: &WebhookRequest<'_>,
        secrets: &[Secret],
    ) -> Result<(), SignatureError> {
        SVIX_HEADERS.verify(request, secrets)
    }

    fn delivery_id<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        SVIX_HEADERS.delivery_id(headers)
    }

    fn parse(&self, body: &[u8]) -> Result<Delivery, PayloadError> {
        let envelope: Envelope =
            serde_json::from_slice(body).map_err(|e| PayloadError::malformed(NAME, &e))?;
        let change = match envelope.event_type.as_str() {
            "user.created" => UserChange::Created,
            "user.updated" => UserChange::Updated,
            _ => {
                return Ok(Delivery::ignored(envelope.event_type));
            }
        };
        let user: ClerkUser =
            serde_json::from_value(envelope.data).map_err(|e| PayloadError::Malformed {
                provider: NAME,
                reason: format!("data: {e}"),
            })?;
        let primary = user
            .primary_email_address_id
            .as_deref()
            .and_then(|id| user.email_addresses.iter().find(|e| e.id == id))
            .ok_or(PayloadError::NoEmail)?;
        let profile = UserProfile {
            user_id: user.id,
            email: EmailAddress::parse(&primary.email_address)?,
            first_name: name_part(user.first_name.as_deref()),
            last_name: name_part(user.last_name.as_deref()),
        };
        Ok(Delivery::of(
            envelope.event_type,
            vec![UserEvent::upserted(change, profile)],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::single_upsert;

    /// Shaped like Clerk's documented `user.created` example, trimmed of fields not read.
    const USER_CREATED: &str = r#"{
      "data": {
        "birthday": "", "created_at": 1654012591514, "external_id": "567772",
        "email_addresses": [
          {"email_address": "old@example.org", "id": "idn_29w83yL7CwVlJXylYLxcslromF1", "object": "email_address", "verification": {"status": "verified"}},
          {"email_address": "example@example.org", "id": "idn_29w83yL7CwVlJXylYLxcslromF2", "object": "email_address", "verification": {"status": "verified"}}
        ],
        "first_name": "Example", "last_name": "Example", "id": "user_29w83sxmDNGwOuEthce5gg56FcC",
        "primary_email_address_id": "idn_29w83yL7CwVlJXylYLxcslromF2",
        "object": "user", "public_metadata": {}, "updated_at": 1654012591835, "username": null
      },
      "instance_id": "ins_123", "object": "event", "timestamp": 1654012591835, "type": "user.created"
    }"#;

    #[test]
    fn user_created_yields_the_primary_email_and_names() {
        let d = Clerk.parse(USER_CREATED.as_bytes()).unwrap();
        assert_eq!(d.event_type, "user.created");
        let event = single_upsert(&d);
        assert_eq!(event.0, UserChange::Created);
        assert_eq!(event.1.user_id, "user_29w83sxmDNGwOuEthce5gg56FcC");
        assert_eq!(event.1.email.as_str(), "example@example.org");
        assert_eq!(event.1.first_name.as_deref(), Some("Example"));
    }

    #[test]
    fn session_events_are_ignored() {
        let d = Clerk
            .parse(br#"{"type":"session.created","object":"event","data":{"id":"sess_1"}}"#)
            .unwrap();
        assert_eq!(d.event_type, "session.created");
        assert!(d.events.is_empty());
    }

    #[test]
    fn user_without_primary_email_is_refused() {
        let body = USER_CREATED.replace(
            r#""primary_email_address_id": "idn_29w83yL7CwVlJXylYLxcslromF2""#,
            r#""primary_email_address_id": null"#,
        );
        assert_eq!(Clerk.parse(body.as_bytes()), Err(PayloadError::NoEmail));
    }

    #[test]
    fn user_without_id_is_malformed() {
        let err = Clerk
            .parse(br#"{"type":"user.updated","data":{"email_addresses":[]}}"#)
            .unwrap_err();
        assert!(matches!(err, PayloadError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains("`id`"), "{err}");
    }
}
