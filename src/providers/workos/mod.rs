//! WorkOS: `POST /webhooks/workos` with `WorkOS-Signature: t=<ms>, v1=<hex>`, the hex
//! HMAC-SHA256 of `{t}.{body}` keyed with the secret's UTF-8 bytes. Syncs `user.created`,
//! `user.updated`, `user.deleted` (AuthKit users), `dsync.user.created|updated|deleted`
//! (Directory Sync, linked to their organisation's workspace) and
//! `organization_membership.created|updated|deleted`.

pub mod directory;

use serde::Deserialize;

use crate::domain::{
    Timestamp, UserChange, UserDetails, UserEvent, UserProfile, UserRef, Workspace, name_part,
};
use crate::providers::provider::{
    Delivery, PayloadError, Provider, SecretForm, WebhookRequest, read_body, read_part,
    required_email,
};
use crate::secrets::Secret;
use crate::signature::{SignatureError, decode_hex, hmac_sha256_matches};

/// WorkOS webhooks.
pub struct WorkOs;

const NAME: &str = "WorkOS";
const HEADER: &str = "workos-signature";

#[derive(Deserialize)]
struct Envelope {
    event: String,
    data: serde_json::Value,
    /// RFC 3339: when the event happened.
    created_at: Option<String>,
}

/// `authentication.*_succeeded` data: `{type, status, user_id, email, …}`.
#[derive(Deserialize)]
struct Authentication {
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct WorkOsUser {
    id: String,
    email: Option<String>,
    #[serde(default)]
    emails: Vec<DirectoryEmail>,
    first_name: Option<String>,
    last_name: Option<String>,
    /// Directory users only.
    organization_id: Option<String>,
    created_at: Option<String>,
    /// Orders this user's changes.
    updated_at: Option<String>,
    email_verified: Option<bool>,
    profile_picture_url: Option<String>,
    last_sign_in_at: Option<String>,
}

#[derive(Deserialize)]
struct Identified {
    id: String,
}

/// `organization_membership.*` data, and an item of the memberships list: `{id, user_id,
/// organization_id, status, role}`.
#[derive(Deserialize)]
pub(crate) struct Membership {
    user_id: String,
    organization_id: String,
    status: Option<String>,
    role: Option<Role>,
}

impl Membership {
    /// Whether the user is a member (not a pending invitation or a deactivated member).
    pub(crate) fn is_active(&self) -> bool {
        self.status.as_deref().is_none_or(|s| s == "active")
    }

    /// The member's user id.
    pub(crate) fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The workspace the membership links its member to (named when the organisation's name
    /// is known), as the webhook and the backfill both link it.
    pub(crate) fn workspace(&self, name: Option<String>) -> Workspace {
        Workspace {
            role: self.role.as_ref().and_then(|r| r.slug.clone()),
            ..Workspace::new(self.organization_id.clone(), name)
        }
    }
}

/// `{"slug": "member"}`.
#[derive(Deserialize)]
struct Role {
    slug: Option<String>,
}

#[derive(Deserialize)]
struct DirectoryEmail {
    #[serde(default)]
    primary: bool,
    value: Option<String>,
}

impl Provider for WorkOs {
    fn route(&self) -> &'static str {
        crate::routes::WORKOS
    }

    fn secret_form(&self) -> SecretForm {
        SecretForm::Text
    }

    fn links_organisations(&self) -> bool {
        true
    }

    fn verify(
        &self,
        request: &WebhookRequest<'_>,
        secrets: &[Secret],
    ) -> Result<(), SignatureError> {
        let header = request
            .headers
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(SignatureError::MissingHeader("WorkOS-Signature"))?;
        let (mut timestamp, mut signature) = (None, None);
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", t)) => timestamp = Some(t),
                Some(("v1", v)) => signature = Some(v),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::InvalidTimestamp)?;
        let sent_ms: i64 = timestamp
            .parse()
            .map_err(|_| SignatureError::InvalidTimestamp)?;
        let now_ms = request
            .now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let skew_ms = now_ms.saturating_sub(sent_ms);
        if skew_ms.unsigned_abs() > request.tolerance.as_millis() as u64 {
            return Err(SignatureError::TimestampOutOfTolerance(skew_ms / 1000));
        }
        let signature = signature
            .and_then(decode_hex)
            .ok_or(SignatureError::NoMatch)?;
        let signed: [&[u8]; 3] = [timestamp.as_bytes(), b".", request.body];
        if secrets
            .iter()
            .any(|s| hmac_sha256_matches(s.expose().trim().as_bytes(), &signed, &signature))
        {
            Ok(())
        } else {
            Err(SignatureError::NoMatch)
        }
    }

    fn parse(&self, body: &[u8]) -> Result<Delivery, PayloadError> {
        let envelope: Envelope = read_body(NAME, body)?;
        let event = match envelope.event.as_str() {
            "user.created" | "dsync.user.created" | "user.updated" | "dsync.user.updated" => {
                let change = if envelope.event.ends_with("created") {
                    UserChange::Created
                } else {
                    UserChange::Updated
                };
                let user: WorkOsUser = read_part(NAME, "data", &envelope.data)?;
                // Directory users belong to the organisation whose directory they come from.
                let workspaces = user
                    .organization_id
                    .clone()
                    .map(|id| Workspace::new(id, None))
                    .into_iter()
                    .collect();
                let occurred_at = user.updated_at.as_deref().and_then(Timestamp::parse);
                UserEvent::Upserted {
                    change,
                    user: user.profile(envelope.data)?,
                    workspaces,
                    occurred_at,
                }
            }
            "user.deleted" | "dsync.user.deleted" => {
                let user: Identified = read_part(NAME, "data", &envelope.data)?;
                UserEvent::Deleted { user_id: user.id }
            }
            "organization_membership.created" | "organization_membership.updated" => {
                let m: Membership = read_part(NAME, "data", &envelope.data)?;
                if !m.is_active() {
                    // Pending invitations and deactivated members are not (yet) members.
                    return Ok(Delivery::ignored(envelope.event));
                }
                let workspace = m.workspace(None);
                UserEvent::JoinedWorkspace {
                    user: UserRef::Id(m.user_id),
                    workspace,
                }
            }
            event if event.starts_with("authentication.") && event.ends_with("_succeeded") => {
                let authentication: Authentication = read_part(NAME, "data", &envelope.data)?;
                let at = envelope.created_at.as_deref().and_then(Timestamp::parse);
                let (Some(user_id), Some(at)) = (authentication.user_id, at) else {
                    return Ok(Delivery::ignored(envelope.event));
                };
                UserEvent::SignedIn {
                    user_id,
                    provider: crate::routes::WORKOS,
                    at,
                }
            }
            "organization_membership.deleted" => {
                let m: Membership = read_part(NAME, "data", &envelope.data)?;
                UserEvent::LeftWorkspace {
                    user_id: m.user_id,
                    workspace_id: m.organization_id,
                }
            }
            _ => return Ok(Delivery::ignored(envelope.event)),
        };
        Ok(Delivery::of(envelope.event, vec![event]))
    }
}

/// A user as WorkOS's User Management API lists it (`GET /user_management/users`): the same
/// object a `user.*` event carries as `data`, read the same way (see [`directory`]).
pub fn listed_user(user: serde_json::Value) -> Result<UserEvent, PayloadError> {
    let parsed: WorkOsUser = read_part(NAME, "user", &user)?;
    let occurred_at = parsed.updated_at.as_deref().and_then(Timestamp::parse);
    Ok(UserEvent::upserted(UserChange::Updated, parsed.profile(user)?).at(occurred_at))
}

impl WorkOsUser {
    /// The user, `data` being the user object as delivered.
    fn profile(self, data: serde_json::Value) -> Result<UserProfile, PayloadError> {
        // Directory users carry a list; the primary entry wins, then the first.
        let primary = self
            .emails
            .iter()
            .find(|e| e.primary)
            .or(self.emails.first());
        let email = required_email(
            self.email
                .as_deref()
                .or_else(|| primary.and_then(|e| e.value.as_deref())),
        )?;
        Ok(UserProfile {
            user_id: self.id,
            email,
            first_name: name_part(self.first_name.as_deref()),
            last_name: name_part(self.last_name.as_deref()),
            created_at: self.created_at.as_deref().and_then(Timestamp::parse),
            details: UserDetails {
                email_verified: self.email_verified,
                image_url: name_part(self.profile_picture_url.as_deref()),
                updated_at: self.updated_at.as_deref().and_then(Timestamp::parse),
                last_sign_in_at: self.last_sign_in_at.as_deref().and_then(Timestamp::parse),
                ..UserDetails::raw(crate::routes::WORKOS, data)
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::providers::provider::single_upsert;
    use crate::signature::hmac_sha256_hex;
    use http::HeaderMap;

    const SECRET: &str = "sk_test_workos_webhook_secret";
    const BODY: &[u8] = br#"{"id":"event_01HXYZ","event":"user.created","data":{"object":"user","id":"user_01E4ZCR3C56J083X43JQXF3JK5","email":"marcelina.davis@example.com","first_name":"Marcelina","last_name":"Davis","email_verified":true,"created_at":"2021-06-25T19:07:33.155Z","updated_at":"2021-06-25T19:07:33.155Z"},"created_at":"2021-06-25T19:07:33.155Z"}"#;

    /// Made independently with Python's standard library:
    /// `hmac.new(b"sk_test_workos_webhook_secret", b"1700000000000." + BODY, hashlib.sha256).hexdigest()`
    const PYTHON_SIGNATURE: &str =
        "c4d964c2eae314b06b59109f08d62e238634bc80b0a4a45fceb18e480cded9b0";

    fn request<'a>(headers: &'a HeaderMap, body: &'a [u8], now_ms: u64) -> WebhookRequest<'a> {
        WebhookRequest {
            headers,
            body,
            now: UNIX_EPOCH + Duration::from_millis(now_ms),
            tolerance: Duration::from_secs(180),
            keys: None,
        }
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("WorkOS-Signature", value.parse().unwrap());
        h
    }

    #[test]
    fn our_signing_matches_an_independent_implementation() {
        assert_eq!(
            hmac_sha256_hex(SECRET.as_bytes(), &[b"1700000000000.", BODY]),
            PYTHON_SIGNATURE
        );
    }

    #[test]
    fn accepts_a_valid_signature_within_tolerance_either_way() {
        let h = headers(&format!("t=1700000000000, v1={PYTHON_SIGNATURE}"));
        for now in [1_700_000_000_000, 1_700_000_179_000, 1_699_999_821_000] {
            assert_eq!(
                WorkOs.verify(&request(&h, BODY, now), &[Secret::new(SECRET)]),
                Ok(())
            );
        }
    }

    #[test]
    fn rejects_wrong_secret_tampered_body_and_stale_timestamp() {
        let h = headers(&format!("t=1700000000000, v1={PYTHON_SIGNATURE}"));
        let ok = 1_700_000_000_000;
        assert_eq!(
            WorkOs.verify(&request(&h, BODY, ok), &[Secret::new("other")]),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            WorkOs.verify(&request(&h, b"{}", ok), &[Secret::new(SECRET)]),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            WorkOs.verify(&request(&h, BODY, ok + 181_000), &[Secret::new(SECRET)]),
            Err(SignatureError::TimestampOutOfTolerance(181))
        );
        assert_eq!(
            WorkOs.verify(
                &request(&HeaderMap::new(), BODY, ok),
                &[Secret::new(SECRET)]
            ),
            Err(SignatureError::MissingHeader("WorkOS-Signature"))
        );
        assert_eq!(
            WorkOs.verify(
                &request(&headers("v1=abcd"), BODY, ok),
                &[Secret::new(SECRET)]
            ),
            Err(SignatureError::InvalidTimestamp)
        );
    }

    #[test]
    fn reads_authkit_users() {
        let d = WorkOs.parse(BODY).unwrap();
        let e = single_upsert(&d);
        assert_eq!(e.0, UserChange::Created);
        assert_eq!(e.1.user_id, "user_01E4ZCR3C56J083X43JQXF3JK5");
        assert_eq!(e.1.email.as_str(), "marcelina.davis@example.com");
    }

    #[test]
    fn reads_directory_users_primary_email() {
        let body = br#"{"id":"event_1","event":"dsync.user.updated","data":{"object":"directory_user","id":"directory_user_01E1X56GH84T3FB41SD6PZGDBX","directory_id":"directory_01ECAZ4NV9QMV47GW873HDCX74","organization_id":"org_01EZTR6WYX1A0DSE2CYMGXQ24Y","idp_id":"2936","first_name":"Eric","last_name":"Schneider","emails":[{"primary":false,"type":"home","value":"eric@home.example"},{"primary":true,"type":"work","value":"eric@foo-corp.com"}],"state":"active","custom_attributes":{},"raw_attributes":{}},"created_at":"2021-06-25T19:07:33.155Z"}"#;
        let d = WorkOs.parse(body).unwrap();
        let e = single_upsert(&d);
        assert_eq!(e.0, UserChange::Updated);
        assert_eq!(e.1.email.as_str(), "eric@foo-corp.com");
    }

    #[test]
    fn directory_users_belong_to_their_organisations_workspace() {
        let body = br#"{"id":"event_1","event":"dsync.user.created","data":{"id":"directory_user_1","organization_id":"org_01EZTR6WYX1A0DSE2CYMGXQ24Y","email":"eric@foo-corp.com","emails":[]}}"#;
        let d = WorkOs.parse(body).unwrap();
        let [UserEvent::Upserted { workspaces, .. }] = d.events.as_slice() else {
            panic!("{d:?}")
        };
        assert_eq!(
            workspaces,
            &[Workspace::new(
                "org_01EZTR6WYX1A0DSE2CYMGXQ24Y".into(),
                None
            )]
        );
    }

    #[test]
    fn memberships_join_and_leave_by_user_id() {
        let created = br#"{"id":"event_2","event":"organization_membership.created","data":{"object":"organization_membership","id":"om_01E4ZCR3C56J083X43JQXF3JK5","user_id":"user_01E4ZCR3C56J083X43JQXF3JK5","organization_id":"org_01EHZNVPK3SFK441A1RGBFSHRT","status":"active","role":{"slug":"member"},"created_at":"2021-06-25T19:07:33.155Z","updated_at":"2021-06-25T19:07:33.155Z"},"created_at":"2021-06-25T19:07:33.155Z"}"#;
        let d = WorkOs.parse(created).unwrap();
        assert_eq!(
            d.events,
            [UserEvent::JoinedWorkspace {
                user: UserRef::Id("user_01E4ZCR3C56J083X43JQXF3JK5".into()),
                workspace: Workspace {
                    role: Some("member".into()),
                    ..Workspace::new("org_01EHZNVPK3SFK441A1RGBFSHRT".into(), None)
                }
            }]
        );
        let pending = String::from_utf8_lossy(created).replace("\"active\"", "\"pending\"");
        assert!(WorkOs.parse(pending.as_bytes()).unwrap().events.is_empty());
        let deleted =
            String::from_utf8_lossy(created).replace("membership.created", "membership.deleted");
        assert!(matches!(
            WorkOs.parse(deleted.as_bytes()).unwrap().events.as_slice(),
            [UserEvent::LeftWorkspace { .. }]
        ));
    }

    #[test]
    fn user_deleted_names_the_user() {
        let d = WorkOs.parse(br#"{"id":"event_3","event":"user.deleted","data":{"object":"user","id":"user_01E4ZCR3C56J083X43JQXF3JK5","email":"a@example.com"}}"#).unwrap();
        assert_eq!(
            d.events,
            [UserEvent::Deleted {
                user_id: "user_01E4ZCR3C56J083X43JQXF3JK5".into()
            }]
        );
    }

    #[test]
    fn other_events_are_ignored() {
        let d = WorkOs
            .parse(br#"{"id":"event_2","event":"session.created","data":{"id":"session_1"}}"#)
            .unwrap();
        assert!(d.events.is_empty());
    }

    #[test]
    fn a_succeeded_authentication_is_a_sign_in() {
        let body = br#"{"id":"event_3","event":"authentication.password_succeeded","created_at":"2026-11-27T09:00:00.000Z",
            "data":{"type":"password","status":"succeeded","user_id":"user_01E4","email":"a@example.com","ip_address":"203.0.113.1"}}"#;
        let d = WorkOs.parse(body).unwrap();
        assert_eq!(
            d.events,
            [UserEvent::SignedIn {
                user_id: "user_01E4".into(),
                provider: "workos",
                at: Timestamp::parse("2026-11-27T09:00:00.000Z").unwrap()
            }]
        );
    }
}
