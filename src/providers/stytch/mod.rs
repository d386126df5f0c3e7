//! Stytch, delivered by Svix: `POST /webhooks/stytch` with `svix-id`, `svix-timestamp`,
//! `svix-signature`. Event types are `source.object_type.action`; syncs users
//! (`direct.user.create`, `dashboard.user.update`, …) and B2B members (`*.member.create|update`).

pub mod directory;

use http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use crate::domain::{
    Timestamp, UserChange, UserDetails, UserEvent, UserProfile, Workspace, name_part,
    split_full_name,
};
use crate::providers::provider::{
    Delivery, PayloadError, Provider, SVIX_HEADERS, SecretForm, WebhookRequest, read_body,
    read_part, required_email,
};
use crate::secrets::Secret;
use crate::signature::SignatureError;

/// Stytch webhooks, consumer and B2B.
pub struct Stytch;

const NAME: &str = "Stytch";

#[derive(Deserialize)]
struct Envelope {
    action: String,
    object_type: String,
    source: String,
    /// The id of the entity acted upon.
    id: String,
    /// RFC 3339: when the event happened; orders redeliveries.
    timestamp: Option<String>,
    #[serde(default)]
    user: Option<Value>,
    #[serde(default)]
    member: Option<Value>,
}

#[derive(Deserialize)]
struct StytchUser {
    user_id: String,
    #[serde(default)]
    emails: Vec<StytchEmail>,
    #[serde(default)]
    phone_numbers: Vec<StytchPhone>,
    #[serde(default)]
    name: Option<StytchName>,
    created_at: Option<String>,
}

#[derive(Deserialize)]
struct StytchEmail {
    email: String,
    verified: Option<bool>,
}

#[derive(Deserialize)]
struct StytchPhone {
    phone_number: String,
}

#[derive(Deserialize)]
struct StytchName {
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Deserialize)]
struct StytchMember {
    member_id: String,
    email_address: Option<String>,
    /// B2B members have one name string.
    name: Option<String>,
    organization_id: String,
    email_address_verified: Option<bool>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl Provider for Stytch {
    fn route(&self) -> &'static str {
        crate::routes::STYTCH
    }

    fn secret_form(&self) -> SecretForm {
        SecretForm::SigningKey
    }

    fn links_organisations(&self) -> bool {
        true
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
        let envelope: Envelope = read_body(NAME, body)?;
        let event_type = format!(
            "{}.{}.{}",
            envelope.source, envelope.object_type, envelope.action
        )
        .to_lowercase();
        let is_person = matches!(envelope.object_type.as_str(), "user" | "member");
        let change = match envelope.action.as_str() {
            "CREATE" if is_person => UserChange::Created,
            "UPDATE" if is_person => UserChange::Updated,
            "DELETE" if is_person => {
                let event = UserEvent::Deleted {
                    user_id: envelope.id,
                };
                return Ok(Delivery::of(event_type, vec![event]));
            }
            _ => return Ok(Delivery::ignored(event_type)),
        };
        let missing = |field: &str| PayloadError::Malformed {
            provider: NAME,
            reason: format!("missing field `{field}`"),
        };
        let event = if envelope.object_type == "user" {
            let raw = envelope.user.ok_or_else(|| missing("user"))?;
            UserEvent::upserted(change, user_profile(raw)?)
        } else {
            let raw = envelope.member.ok_or_else(|| missing("member"))?;
            member_event(change, raw, None)?
        };
        let occurred_at = envelope.timestamp.as_deref().and_then(Timestamp::parse);
        Ok(Delivery::of(event_type, vec![event.at(occurred_at)]))
    }
}

/// A consumer user, `raw` being the user object as Stytch sends it (in a webhook's `user`, or in
/// the users search's `results`).
fn user_profile(raw: Value) -> Result<UserProfile, PayloadError> {
    let user: StytchUser = read_part(NAME, "user", &raw)?;
    // Stytch marks no address primary: the first is the one the user signed up with.
    let primary = user.emails.first();
    let email = required_email(primary.map(|e| e.email.as_str()))?;
    let name = user.name.as_ref();
    Ok(UserProfile {
        user_id: user.user_id,
        email,
        first_name: name_part(name.and_then(|n| n.first_name.as_deref())),
        last_name: name_part(name.and_then(|n| n.last_name.as_deref())),
        created_at: user.created_at.as_deref().and_then(Timestamp::parse),
        details: UserDetails {
            email_verified: primary.and_then(|e| e.verified),
            phone: user.phone_numbers.first().map(|p| p.phone_number.clone()),
            ..UserDetails::raw(crate::routes::STYTCH, raw)
        },
    })
}

/// A B2B member, `raw` being the member object as Stytch sends it (a webhook's `member`, or the
/// members search's `members`), in its one organisation (named when the caller knows the name).
fn member_event(
    change: UserChange,
    raw: Value,
    organisation_name: Option<String>,
) -> Result<UserEvent, PayloadError> {
    let member: StytchMember = read_part(NAME, "member", &raw)?;
    let email = required_email(member.email_address.as_deref())?;
    let (first_name, last_name) = split_full_name(member.name.as_deref());
    let updated_at = member.updated_at.as_deref().and_then(Timestamp::parse);
    let profile = UserProfile {
        user_id: member.member_id,
        email,
        first_name,
        last_name,
        created_at: member.created_at.as_deref().and_then(Timestamp::parse),
        details: UserDetails {
            email_verified: member.email_address_verified,
            updated_at,
            ..UserDetails::raw(crate::routes::STYTCH, raw)
        },
    };
    // A B2B member belongs to exactly one organisation.
    Ok(UserEvent::Upserted {
        change,
        user: profile,
        workspaces: vec![Workspace::new(member.organization_id, organisation_name)],
        occurred_at: None,
    })
}

/// A B2B member as the members search returns it (the object a webhook carries as `member`),
/// with its organisation's name from the same answer.
pub fn listed_member(
    raw: Value,
    organisation_name: Option<String>,
) -> Result<UserEvent, PayloadError> {
    let event = member_event(UserChange::Updated, raw, organisation_name)?;
    let at = match &event {
        UserEvent::Upserted { user, .. } => user.details.updated_at,
        _ => None,
    };
    Ok(event.at(at))
}

/// A consumer user as the users search returns it: the object a webhook carries as `user`
/// (see [`directory`]).
pub fn listed_user(raw: Value) -> Result<UserEvent, PayloadError> {
    Ok(UserEvent::upserted(UserChange::Updated, user_profile(raw)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::provider::single_upsert;

    /// Shaped like Stytch's documented webhook payload (project_id, event_id, action,
    /// object_type, source, id, timestamp, and the object under its type's name).
    const USER_CREATE: &str = r#"{
      "project_id": "project-test-6c20cd16-73d5-44f7-852c-9a7e7b2ccf62",
      "event_id": "event-test-c5ae8c47-3c2a-4ff1-8d2b-e3e1d1c2a2a1",
      "action": "CREATE", "object_type": "user", "source": "DIRECT",
      "id": "user-test-16d9ba61-97a1-4ba4-9720-b03761dc50c6",
      "timestamp": "2026-11-27T09:00:00Z",
      "user": {
        "user_id": "user-test-16d9ba61-97a1-4ba4-9720-b03761dc50c6",
        "emails": [{"email": "sandbox@stytch.com", "email_id": "email-test-81bf03a8-86e1-4d95-bd44-bb3495224953", "verified": true}],
        "name": {"first_name": "Jane", "middle_name": "", "last_name": "Doe"},
        "phone_numbers": [], "providers": [], "status": "active", "created_at": "2026-11-27T09:00:00Z"
      }
    }"#;

    #[test]
    fn consumer_user_create_is_read() {
        let d = Stytch.parse(USER_CREATE.as_bytes()).unwrap();
        assert_eq!(d.event_type, "direct.user.create");
        let e = single_upsert(&d);
        assert_eq!(e.0, UserChange::Created);
        assert_eq!(
            e.1.user_id,
            "user-test-16d9ba61-97a1-4ba4-9720-b03761dc50c6"
        );
        assert_eq!(e.1.email.as_str(), "sandbox@stytch.com");
        assert_eq!(
            (e.1.first_name.as_deref(), e.1.last_name.as_deref()),
            (Some("Jane"), Some("Doe"))
        );
    }

    #[test]
    fn b2b_member_update_is_read() {
        let body = r#"{"project_id":"project-test-1","event_id":"event-test-2","action":"UPDATE","object_type":"member",
            "source":"DASHBOARD","id":"member-test-32fc5024-9c09-4da3-bd2e-c9ce4da9375f","timestamp":"2026-11-27T09:00:00Z",
            "member":{"member_id":"member-test-32fc5024-9c09-4da3-bd2e-c9ce4da9375f","email_address":"admin@acme.example",
            "name":"Ada King Lovelace","organization_id":"organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931","status":"active"}}"#;
        let d = Stytch.parse(body.as_bytes()).unwrap();
        assert_eq!(d.event_type, "dashboard.member.update");
        let e = single_upsert(&d);
        assert_eq!(e.0, UserChange::Updated);
        assert_eq!(e.1.email.as_str(), "admin@acme.example");
        assert_eq!(e.1.last_name.as_deref(), Some("King Lovelace"));
        let [UserEvent::Upserted { workspaces, .. }] = d.events.as_slice() else {
            panic!("{d:?}")
        };
        assert_eq!(
            workspaces[0].id,
            "organization-test-07971b06-ac8b-4cdb-9c15-63b17e653931"
        );
    }

    #[test]
    fn deletes_name_the_user_and_other_objects_are_ignored() {
        let d = Stytch
            .parse(
                br#"{"action":"DELETE","object_type":"user","source":"DIRECT","id":"user-test-1"}"#,
            )
            .unwrap();
        assert_eq!(d.event_type, "direct.user.delete");
        assert_eq!(
            d.events,
            [UserEvent::Deleted {
                user_id: "user-test-1".into()
            }]
        );
        let d = Stytch
            .parse(br#"{"action":"CREATE","object_type":"organization","source":"DIRECT","id":"org-1"}"#)
            .unwrap();
        assert!(d.events.is_empty());
    }

    #[test]
    fn user_without_email_is_refused() {
        let body = USER_CREATE.replace(
            r#"[{"email": "sandbox@stytch.com", "email_id": "email-test-81bf03a8-86e1-4d95-bd44-bb3495224953", "verified": true}]"#,
            "[]",
        );
        assert_eq!(Stytch.parse(body.as_bytes()), Err(PayloadError::NoEmail));
    }
}
