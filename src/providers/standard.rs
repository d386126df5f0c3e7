//! Any Standard Webhooks 1.0 sender: `POST /webhooks/standard` with `webhook-id`,
//! `webhook-timestamp`, `webhook-signature`. Reads two payloads:
//! - the neutral one: `{"type":"user.created"|"user.updated","data":{"id","email","first_name","last_name"}}`;
//! - Supabase Auth's `before-user-created` hook: `{"metadata":{"name":…},"user":{"id","email","user_metadata"}}`.

use http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use super::supabase::SupabaseUser;
use crate::domain::{Timestamp, UserChange, UserDetails, UserEvent, UserProfile, name_part};
use crate::providers::provider::{
    Delivery, PayloadError, Provider, SecretForm, WEBHOOK_HEADERS, WebhookRequest, read_part,
    required_email,
};
use crate::secrets::Secret;
use crate::signature::SignatureError;

/// Standard Webhooks senders, Supabase Auth hooks among them.
pub struct StandardWebhooks;

const NAME: &str = "Standard Webhooks";

#[derive(Deserialize)]
#[serde(untagged)]
enum Payload {
    SupabaseHook {
        metadata: HookMetadata,
        /// A Supabase user (read as [`SupabaseUser`]), kept as sent for the attribute mapping.
        user: Value,
    },
    Neutral {
        #[serde(rename = "type")]
        event_type: String,
        data: Value,
        /// RFC 3339: when the change happened; orders redeliveries.
        #[serde(default)]
        timestamp: Option<String>,
    },
}

#[derive(Deserialize)]
struct HookMetadata {
    name: String,
    time: Option<String>,
}

#[derive(Deserialize)]
struct NeutralUser {
    id: String,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    created_at: Option<String>,
}

impl Provider for StandardWebhooks {
    fn route(&self) -> &'static str {
        crate::routes::STANDARD
    }

    fn secret_form(&self) -> SecretForm {
        SecretForm::SigningKey
    }

    fn verify(
        &self,
        request: &WebhookRequest<'_>,
        secrets: &[Secret],
    ) -> Result<(), SignatureError> {
        WEBHOOK_HEADERS.verify(request, secrets)
    }

    fn delivery_id<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        WEBHOOK_HEADERS.delivery_id(headers)
    }

    fn parse(&self, body: &[u8]) -> Result<Delivery, PayloadError> {
        // Parse to a Value first so a wrong shape is told apart from bad JSON.
        let value: Value =
            serde_json::from_slice(body).map_err(|e| PayloadError::malformed(NAME, &e))?;
        let payload: Payload =
            serde_json::from_value(value).map_err(|_| PayloadError::Malformed {
                provider: NAME,
                reason: "expected {\"type\",\"data\"} or a Supabase hook {\"metadata\",\"user\"}"
                    .into(),
            })?;
        match payload {
            Payload::Neutral {
                event_type,
                data,
                timestamp,
            } => {
                let change = match event_type.as_str() {
                    "user.created" => UserChange::Created,
                    "user.updated" => UserChange::Updated,
                    _ => return Ok(Delivery::ignored(event_type)),
                };
                let user: NeutralUser = read_part(NAME, "data", &data)?;
                let profile = UserProfile {
                    user_id: user.id,
                    email: required_email(user.email.as_deref())?,
                    first_name: name_part(user.first_name.as_deref()),
                    last_name: name_part(user.last_name.as_deref()),
                    created_at: user.created_at.as_deref().and_then(Timestamp::parse),
                    details: UserDetails::raw(crate::routes::STANDARD, data),
                };
                Ok(single(event_type, change, profile, timestamp.as_deref()))
            }
            Payload::SupabaseHook { metadata, user } => {
                if metadata.name != "before-user-created" {
                    return Ok(Delivery::ignored(metadata.name));
                }
                let parsed: SupabaseUser = read_part(NAME, "user", &user)?;
                let profile = parsed.profile(crate::routes::STANDARD, user)?;
                Ok(single(
                    metadata.name,
                    UserChange::Created,
                    profile,
                    metadata.time.as_deref(),
                ))
            }
        }
    }
}

fn single(event_type: String, change: UserChange, user: UserProfile, at: Option<&str>) -> Delivery {
    let event = UserEvent::upserted(change, user).at(at.and_then(Timestamp::parse));
    Delivery::of(event_type, vec![event])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::provider::single_upsert;

    /// Shaped like Supabase's documented before-user-created hook payload.
    const SUPABASE_HOOK: &str = r#"{
      "metadata": {"uuid": "8b34dcdd-9df1-4c10-850a-b3277c653040", "time": "2025-04-29T13:13:24.755552-07:00",
                   "name": "before-user-created", "ip_address": "127.0.0.1"},
      "user": {"id": "ff7fc9ae-3b1b-4642-9241-64adb9848a03", "aud": "authenticated", "role": "",
               "email": "valid.email@supabase.com", "phone": "",
               "app_metadata": {"provider": "email", "providers": ["email"]},
               "user_metadata": {"full_name": "Valid Email"}, "identities": [],
               "created_at": "0001-01-01T00:00:00Z", "updated_at": "0001-01-01T00:00:00Z", "is_anonymous": false}
    }"#;

    #[test]
    fn neutral_user_updated_is_read() {
        let d = StandardWebhooks
            .parse(br#"{"type":"user.updated","data":{"id":"u_1","email":"a@example.com","first_name":"Ada","last_name":""}}"#)
            .unwrap();
        let e = single_upsert(&d);
        assert_eq!(e.0, UserChange::Updated);
        assert_eq!(e.1.email.as_str(), "a@example.com");
        assert_eq!(e.1.first_name.as_deref(), Some("Ada"));
        assert_eq!(e.1.last_name, None);
    }

    #[test]
    fn supabase_before_user_created_is_a_creation_with_split_full_name() {
        let d = StandardWebhooks.parse(SUPABASE_HOOK.as_bytes()).unwrap();
        assert_eq!(d.event_type, "before-user-created");
        let e = single_upsert(&d);
        assert_eq!(e.0, UserChange::Created);
        assert_eq!(e.1.user_id, "ff7fc9ae-3b1b-4642-9241-64adb9848a03");
        assert_eq!(e.1.first_name.as_deref(), Some("Valid"));
        assert_eq!(e.1.last_name.as_deref(), Some("Email"));
    }

    #[test]
    fn phone_only_supabase_user_has_no_email() {
        let body = SUPABASE_HOOK.replace("valid.email@supabase.com", "");
        assert_eq!(
            StandardWebhooks.parse(body.as_bytes()),
            Err(PayloadError::NoEmail)
        );
    }

    #[test]
    fn other_event_types_are_ignored() {
        let d = StandardWebhooks
            .parse(br#"{"type":"invoice.paid","data":{"id":"in_1"}}"#)
            .unwrap();
        assert!(d.events.is_empty());
        assert_eq!(d.event_type, "invoice.paid");
    }

    #[test]
    fn bodies_of_another_shape_are_malformed_without_quoting_them() {
        for body in [&b"not json"[..], b"[1,2]", br#"{"secret":"s3cr3t"}"#] {
            let err = StandardWebhooks.parse(body).unwrap_err();
            assert!(matches!(err, PayloadError::Malformed { .. }));
            assert!(!err.to_string().contains("s3cr3t"));
        }
    }

    #[test]
    fn invalid_email_is_refused() {
        let err = StandardWebhooks
            .parse(br#"{"type":"user.created","data":{"id":"u_1","email":"not-an-email"}}"#)
            .unwrap_err();
        assert!(matches!(err, PayloadError::InvalidEmail(_)));
    }
}
