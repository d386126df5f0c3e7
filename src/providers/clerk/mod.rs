//! Clerk, delivered by Svix: `POST /webhooks/clerk` with `svix-id`, `svix-timestamp`,
//! `svix-signature`. Syncs `user.created`, `user.updated`, `user.deleted` and
//! `organizationMembership.created|updated|deleted` (organisations become Attio workspaces).

pub mod directory;

use http::HeaderMap;
use serde::Deserialize;

use crate::domain::{
    EmailAddress, Timestamp, UserChange, UserDetails, UserEvent, UserProfile, UserRef, Workspace,
    name_part,
};
use crate::providers::provider::{
    Delivery, PayloadError, Provider, SVIX_HEADERS, SecretForm, WebhookRequest, read_body,
    read_part, required_email,
};
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
    /// Unix milliseconds.
    created_at: Option<i64>,
    /// Unix milliseconds: orders this user's changes.
    updated_at: Option<i64>,
    /// Unix milliseconds.
    last_sign_in_at: Option<i64>,
    username: Option<String>,
    image_url: Option<String>,
    #[serde(default)]
    phone_numbers: Vec<ClerkPhone>,
    primary_phone_number_id: Option<String>,
}

#[derive(Deserialize)]
struct ClerkEmail {
    id: String,
    email_address: String,
    verification: Option<Verification>,
}

#[derive(Deserialize)]
struct Verification {
    status: Option<String>,
}

#[derive(Deserialize)]
struct ClerkPhone {
    id: String,
    phone_number: String,
}

/// `session.created` data: `{id, user_id, created_at, …}` (Unix milliseconds).
#[derive(Deserialize)]
struct Session {
    user_id: Option<String>,
    created_at: Option<i64>,
}

/// `user.deleted` data: `{id, object, deleted: true}`.
#[derive(Deserialize)]
struct Deleted {
    id: String,
}

/// `organizationMembership.*` data.
/// An organisation membership, as a webhook and the memberships list both give it.
#[derive(Deserialize)]
pub(crate) struct Membership {
    organization: Organization,
    public_user_data: PublicUserData,
    role: Option<String>,
}

#[derive(Deserialize)]
struct Organization {
    id: String,
    name: Option<String>,
    slug: Option<String>,
}

#[derive(Deserialize)]
struct PublicUserData {
    user_id: String,
    identifier: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

const NAME: &str = "Clerk";

impl Provider for Clerk {
    fn route(&self) -> &'static str {
        crate::routes::CLERK
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
        let event = match envelope.event_type.as_str() {
            "user.created" | "user.updated" => {
                let change = if envelope.event_type == "user.created" {
                    UserChange::Created
                } else {
                    UserChange::Updated
                };
                let user: ClerkUser = read_part(NAME, "data", &envelope.data)?;
                let changed_at = user.updated_at.and_then(Timestamp::from_unix_millis);
                UserEvent::upserted(change, user.profile(envelope.data)?).at(changed_at)
            }
            "user.deleted" => {
                let deleted: Deleted = read_part(NAME, "data", &envelope.data)?;
                UserEvent::Deleted {
                    user_id: deleted.id,
                }
            }
            "organizationMembership.created" | "organizationMembership.updated" => {
                let m: Membership = read_part(NAME, "data", &envelope.data)?;
                let workspace = m.workspace();
                let member = m.public_user_data;
                // The identifier is the member's email when they signed up with one.
                let user = match EmailAddress::parse(member.identifier.as_deref().unwrap_or("")) {
                    Ok(email) => UserRef::Profile(Box::new(UserProfile {
                        user_id: member.user_id,
                        email,
                        first_name: name_part(member.first_name.as_deref()),
                        last_name: name_part(member.last_name.as_deref()),
                        created_at: None,
                        details: UserDetails::raw(crate::routes::CLERK, envelope.data),
                    })),
                    Err(_) => UserRef::Id(member.user_id),
                };
                UserEvent::JoinedWorkspace { user, workspace }
            }
            "session.created" => {
                let session: Session = read_part(NAME, "data", &envelope.data)?;
                let (Some(user_id), Some(at)) = (
                    session.user_id,
                    session.created_at.and_then(Timestamp::from_unix_millis),
                ) else {
                    return Ok(Delivery::ignored(envelope.event_type));
                };
                UserEvent::SignedIn {
                    user_id,
                    provider: crate::routes::CLERK,
                    at,
                }
            }
            "organizationMembership.deleted" => {
                let m: Membership = read_part(NAME, "data", &envelope.data)?;
                UserEvent::LeftWorkspace {
                    user_id: m.public_user_data.user_id,
                    workspace_id: m.organization.id,
                }
            }
            _ => return Ok(Delivery::ignored(envelope.event_type)),
        };
        Ok(Delivery::of(envelope.event_type, vec![event]))
    }
}

impl Membership {
    /// The member's user id.
    pub(crate) fn user_id(&self) -> &str {
        &self.public_user_data.user_id
    }

    /// The workspace the membership links its member to, as the webhook and the backfill
    /// both link it.
    pub(crate) fn workspace(&self) -> Workspace {
        Workspace {
            slug: name_part(self.organization.slug.as_deref()),
            role: name_part(self.role.as_deref()),
            ..Workspace::new(
                self.organization.id.clone(),
                name_part(self.organization.name.as_deref()),
            )
        }
    }
}

/// A user as Clerk's Backend API lists it (`GET /v1/users`): the same object a `user.*`
/// webhook carries as `data`, so it is read the same way (see [`directory`]).
pub fn listed_user(user: serde_json::Value) -> Result<UserEvent, PayloadError> {
    let parsed: ClerkUser = read_part(NAME, "user", &user)?;
    let changed_at = parsed.updated_at.and_then(Timestamp::from_unix_millis);
    Ok(UserEvent::upserted(UserChange::Updated, parsed.profile(user)?).at(changed_at))
}

impl ClerkUser {
    /// The user, `data` being the user object as delivered.
    fn profile(self, data: serde_json::Value) -> Result<UserProfile, PayloadError> {
        let primary = self
            .primary_email_address_id
            .as_deref()
            .and_then(|id| self.email_addresses.iter().find(|e| e.id == id));
        let email = required_email(primary.map(|e| e.email_address.as_str()))?;
        let phone = self
            .primary_phone_number_id
            .as_deref()
            .and_then(|id| self.phone_numbers.iter().find(|p| p.id == id))
            .map(|p| p.phone_number.clone());
        let verification = primary.and_then(|e| e.verification.as_ref());
        Ok(UserProfile {
            email,
            user_id: self.id,
            first_name: name_part(self.first_name.as_deref()),
            last_name: name_part(self.last_name.as_deref()),
            created_at: self.created_at.and_then(Timestamp::from_unix_millis),
            details: UserDetails {
                email_verified: verification
                    .and_then(|v| v.status.as_deref())
                    .map(|status| status == "verified"),
                phone,
                username: name_part(self.username.as_deref()),
                image_url: name_part(self.image_url.as_deref()),
                updated_at: self.updated_at.and_then(Timestamp::from_unix_millis),
                last_sign_in_at: self.last_sign_in_at.and_then(Timestamp::from_unix_millis),
                ..UserDetails::raw(crate::routes::CLERK, data)
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::provider::single_upsert;

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
    fn a_session_created_is_a_sign_in_of_its_user() {
        let d = Clerk
            .parse(br#"{"type":"session.created","object":"event","data":{"id":"sess_1","user_id":"user_1","created_at":1654012591514}}"#)
            .unwrap();
        assert_eq!(
            d.events,
            [UserEvent::SignedIn {
                user_id: "user_1".into(),
                provider: "clerk",
                at: Timestamp::from_unix_millis(1_654_012_591_514).unwrap()
            }]
        );
    }

    #[test]
    fn session_events_without_a_user_are_ignored() {
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
    fn user_deleted_names_the_user() {
        let d = Clerk
            .parse(br#"{"type":"user.deleted","object":"event","data":{"deleted":true,"id":"user_29wBMCtzATuFJut8jO2VNTVekS4","object":"user"}}"#)
            .unwrap();
        assert_eq!(
            d.events,
            [UserEvent::Deleted {
                user_id: "user_29wBMCtzATuFJut8jO2VNTVekS4".into()
            }]
        );
    }

    /// Shaped like Clerk's documented `organizationMembership.created` example.
    const MEMBERSHIP: &str = r#"{"type":"organizationMembership.created","object":"event","data":{
        "created_at":1654013202977,"id":"orgmem_29w8XhKGFkBVfbsOZzYE1fVjmWd","object":"organization_membership",
        "organization":{"created_at":1654013202977,"id":"org_29w9IfBrPmcpi0IeBVaKtA7R94W","name":"Acme Inc","object":"organization","slug":"acme-inc"},
        "public_user_data":{"first_name":"Example","identifier":"example@example.org","image_url":"https://img.clerk.com/x","last_name":"Example","user_id":"user_29w83sxmDNGwOuEthce5gg56FcC"},
        "role":"org:admin","updated_at":1654013202977}}"#;

    #[test]
    fn membership_created_joins_the_named_workspace_with_the_members_profile() {
        let d = Clerk.parse(MEMBERSHIP.as_bytes()).unwrap();
        let [
            UserEvent::JoinedWorkspace {
                user: UserRef::Profile(user),
                workspace,
            },
        ] = d.events.as_slice()
        else {
            panic!("{d:?}")
        };
        assert_eq!(user.user_id, "user_29w83sxmDNGwOuEthce5gg56FcC");
        assert_eq!(user.email.as_str(), "example@example.org");
        assert_eq!(
            workspace,
            &Workspace {
                slug: Some("acme-inc".into()),
                role: Some("org:admin".into()),
                ..Workspace::new(
                    "org_29w9IfBrPmcpi0IeBVaKtA7R94W".into(),
                    Some("Acme Inc".into())
                )
            }
        );
    }

    #[test]
    fn membership_deleted_leaves_the_workspace() {
        let body = MEMBERSHIP.replace(
            "organizationMembership.created",
            "organizationMembership.deleted",
        );
        let d = Clerk.parse(body.as_bytes()).unwrap();
        assert_eq!(
            d.events,
            [UserEvent::LeftWorkspace {
                user_id: "user_29w83sxmDNGwOuEthce5gg56FcC".into(),
                workspace_id: "org_29w9IfBrPmcpi0IeBVaKtA7R94W".into()
            }]
        );
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
