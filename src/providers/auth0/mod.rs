//! Auth0: `POST /webhooks/auth0`, authenticated by the `Authorization` header value configured
//! on the stream (compared in constant time). Reads Log Streams (custom webhook, in JSON array,
//! JSON lines or single-object format: `ss` successful signup creates, `du` deleted user
//! deletes) and Event Streams CloudEvents (`user.created`, `user.updated`, `user.deleted`, and
//! `organization.member.added` / `.deleted`, which link the user to its organisation's
//! workspace and unlink it).

pub mod directory;

use serde::Deserialize;
use serde_json::Value;

use crate::domain::{
    Timestamp, UserChange, UserDetails, UserEvent, UserProfile, UserRef, Workspace, name_part,
    split_full_name,
};
use crate::providers::provider::{
    Delivery, PayloadError, Provider, SecretForm, WebhookRequest, read_part, required_email,
    verify_authorization_header,
};
use crate::secrets::Secret;
use crate::signature::SignatureError;

/// Auth0 Log Streams and Event Streams.
pub struct Auth0;

const NAME: &str = "Auth0";

/// One Log Streams entry: `{"log_id", "data": {"type", "user_id", "user_name", "details"}}`.
#[derive(Deserialize)]
struct Log {
    data: LogData,
}

#[derive(Deserialize)]
struct LogData {
    #[serde(rename = "type")]
    kind: String,
    user_id: Option<String>,
    user_name: Option<String>,
    date: Option<String>,
    #[serde(default)]
    details: Value,
}

/// One Event Streams CloudEvent: `{"type": "…user.created", "data": {"object": {…}}}`.
#[derive(Deserialize)]
struct CloudEvent {
    #[serde(rename = "type")]
    kind: String,
    data: CloudEventData,
    time: Option<String>,
}

#[derive(Deserialize)]
struct CloudEventData {
    object: Auth0User,
}

/// An Auth0 user object, as an Event Streams CloudEvent carries it (`data.object`) and the
/// Management API lists it (and its export job writes it): the same fields, read once.
#[derive(Deserialize)]
pub(crate) struct Auth0User {
    user_id: String,
    email: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    name: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    email_verified: Option<bool>,
    phone_number: Option<String>,
    username: Option<String>,
    picture: Option<String>,
    last_login: Option<String>,
}

impl Auth0User {
    /// The user; `raw` is the object as delivered, which a mapping's pointers read (`None` for
    /// a listed user: pointers are written against the webhook's object).
    pub(crate) fn profile(self, raw: Option<Value>) -> Result<UserProfile, PayloadError> {
        let email = required_email(self.email.as_deref())?;
        // Without given and family names, the full name (unless it is the address, as Auth0
        // fills it for database users).
        let (first_name, last_name) = match (
            name_part(self.given_name.as_deref()),
            name_part(self.family_name.as_deref()),
        ) {
            (None, None) => split_full_name(self.name.as_deref().filter(|n| !n.contains('@'))),
            parts => parts,
        };
        Ok(UserProfile {
            user_id: self.user_id,
            email,
            first_name,
            last_name,
            created_at: self.created_at.as_deref().and_then(Timestamp::parse),
            details: UserDetails {
                email_verified: self.email_verified,
                phone: name_part(self.phone_number.as_deref()),
                username: name_part(self.username.as_deref()),
                image_url: name_part(self.picture.as_deref()),
                updated_at: self.updated_at.as_deref().and_then(Timestamp::parse),
                last_sign_in_at: self.last_login.as_deref().and_then(Timestamp::parse),
                provider: crate::routes::AUTH0,
                raw: raw.map(std::sync::Arc::new),
            },
        })
    }
}

impl Provider for Auth0 {
    fn route(&self) -> &'static str {
        crate::routes::AUTH0
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

    fn parse(&self, body: &[u8]) -> Result<Delivery, PayloadError> {
        let items = items(body)?;
        let single_cloud_event = match items.as_slice() {
            [item] => item
                .get("specversion")
                .or(item.get("spec_version"))
                .and(item.get("type")),
            _ => None,
        };
        let event_type = single_cloud_event
            .and_then(Value::as_str)
            .unwrap_or("log_stream")
            .to_owned();
        let mut delivery = Delivery::ignored(event_type);
        for (i, item) in items.into_iter().enumerate() {
            match read_item(item) {
                Ok(Some(event)) => delivery.events.push(event),
                Ok(None) => {}
                Err(PayloadError::Malformed { reason, .. }) => {
                    return Err(PayloadError::Malformed {
                        provider: NAME,
                        reason: format!("item {i}: {reason}"),
                    });
                }
                Err(e) => delivery.skipped.push(format!("item {i}: {e}")),
            }
        }
        Ok(delivery)
    }
}

/// The entries of a body in any of the three Log Streams formats.
fn items(body: &[u8]) -> Result<Vec<Value>, PayloadError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(item @ Value::Object(_)) => Ok(vec![item]),
        Ok(_) => Err(PayloadError::Malformed {
            provider: NAME,
            reason: "expected a JSON array, an object or JSON lines".into(),
        }),
        // JSON lines: one object per line.
        Err(whole) => body
            .split(|&b| b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(serde_json::from_slice)
            .collect::<Result<Vec<Value>, _>>()
            .map_err(|_| PayloadError::malformed(NAME, &whole)),
    }
}

/// An Auth0 organisation as member events and the Management API give it: its id and `name`
/// (the identifier its users know it by).
#[derive(Deserialize)]
pub(crate) struct Organization {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
}

impl Organization {
    /// The organisation as a workspace, named as the webhook and the backfill both name it.
    pub(crate) fn workspace(self) -> Workspace {
        Workspace::new(self.id, self.name.filter(|n| !n.trim().is_empty()))
    }
}

/// An Event Streams organisation membership (`organization.member.added` and `.deleted`):
/// `data.object` is `{"organization": {"id", "name"?}, "user": {"user_id"}}`. Read by pointer
/// from the JSON already parsed (derived readers for these three objects cost the webhook
/// binary more than the event needs).
fn member_event(item: &Value, added: bool) -> Result<UserEvent, PayloadError> {
    let text = |pointer: &str| {
        item.pointer(pointer)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let missing = |what: &str| PayloadError::Malformed {
        provider: NAME,
        reason: format!("a member event without {what}"),
    };
    let user_id = text("/data/object/user/user_id").ok_or_else(|| missing("user.user_id"))?;
    let organization = Organization {
        id: text("/data/object/organization/id").ok_or_else(|| missing("organization.id"))?,
        name: text("/data/object/organization/name"),
    };
    Ok(if added {
        UserEvent::JoinedWorkspace {
            user: UserRef::Id(user_id),
            workspace: organization.workspace(),
        }
    } else {
        UserEvent::LeftWorkspace {
            user_id,
            workspace_id: organization.id,
        }
    })
}

/// One entry as a user event; `None` for entry types this function does not act on.
fn read_item(item: Value) -> Result<Option<UserEvent>, PayloadError> {
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
    if kind.ends_with("organization.member.added") || kind.ends_with("organization.member.deleted")
    {
        return member_event(&item, kind.ends_with(".added")).map(Some);
    }
    if let Some(object) = item.get("data").and_then(|d| d.get("object")) {
        let event: CloudEvent = read_part(NAME, "", &item)?;
        let raw = object.clone();
        let user = event.data.object;
        let change = if event.kind.ends_with("user.created") {
            UserChange::Created
        } else if event.kind.ends_with("user.updated") {
            UserChange::Updated
        } else if event.kind.ends_with("user.deleted") {
            return Ok(Some(UserEvent::Deleted {
                user_id: user.user_id,
            }));
        } else {
            return Ok(None);
        };
        let sent_at = event.time.as_deref().and_then(Timestamp::parse);
        let profile = user.profile(Some(raw))?;
        let changed_at = profile.details.updated_at.or(sent_at);
        return Ok(Some(UserEvent::upserted(change, profile).at(changed_at)));
    }
    let log: Log = read_part(NAME, "", &item)?;
    let data = log.data;
    match data.kind.as_str() {
        "ss" => {
            let date = data.date.as_deref().and_then(Timestamp::parse);
            let user_id = data.user_id.ok_or_else(|| PayloadError::Malformed {
                provider: NAME,
                reason: "an ss entry without user_id".into(),
            })?;
            // The signup request's body holds the email; user_name usually repeats it.
            let body = data.details.get("body");
            let email = required_email(
                body.and_then(|b| b.get("email"))
                    .and_then(Value::as_str)
                    .or(data.user_name.as_deref()),
            )?;
            let name = |key: &str| name_part(body.and_then(|b| b.get(key)).and_then(Value::as_str));
            let profile = UserProfile {
                user_id,
                email,
                first_name: name("given_name"),
                last_name: name("family_name"),
                // A signup log's date is when the user signed up.
                created_at: date,
                details: UserDetails {
                    username: name("username"),
                    ..UserDetails::raw(crate::routes::AUTH0, body.cloned().unwrap_or_default())
                },
            };
            Ok(Some(
                UserEvent::upserted(UserChange::Created, profile).at(date),
            ))
        }
        "du" => Ok(data.user_id.map(|user_id| UserEvent::Deleted { user_id })),
        // A successful login.
        "s" => Ok(data
            .user_id
            .zip(data.date.as_deref().and_then(Timestamp::parse))
            .map(|(user_id, at)| UserEvent::SignedIn {
                user_id,
                provider: crate::routes::AUTH0,
                at,
            })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like an Auth0 `ss` (successful signup) log as Log Streams sends it.
    const SIGNUP: &str = r#"{"log_id":"90020231127090000123456789012345678901234567890123","data":{"date":"2026-11-27T09:00:00.000Z","type":"ss",
      "description":"","connection":"Username-Password-Authentication","connection_id":"con_8hFsMBGmdyJRaXE5","client_id":"AaiyAPdpYdesoKnqjj8HJqRn4T5titww",
      "client_name":"My App","ip":"203.0.113.30","user_agent":"Chrome 120.0.0 / Mac OS X 10.15.7",
      "details":{"body":{"tenant":"example","client_id":"AaiyAPdpYdesoKnqjj8HJqRn4T5titww","connection":"Username-Password-Authentication","email":"evelyn.boyd@example.com","password":"*****"}},
      "user_id":"auth0|6564a1b2c3d4e5f6a7b8c9d0","user_name":"evelyn.boyd@example.com","strategy":"auth0","strategy_type":"database",
      "log_id":"90020231127090000123456789012345678901234567890123"}}"#;
    const LOGIN: &str =
        r#"{"log_id":"2","data":{"type":"s","user_id":"auth0|1","user_name":"x@example.com"}}"#;

    #[test]
    fn reads_all_three_log_stream_formats() {
        let array = format!("[{SIGNUP},{LOGIN}]");
        let lines = format!("{}\n{}\n", SIGNUP.replace('\n', " "), LOGIN);
        for body in [array.as_str(), lines.as_str(), SIGNUP] {
            let d = Auth0.parse(body.as_bytes()).unwrap();
            assert_eq!(d.event_type, "log_stream");
            let [UserEvent::Upserted { user, .. }] = d.events.as_slice() else {
                panic!("{d:?}")
            };
            assert_eq!(user.user_id, "auth0|6564a1b2c3d4e5f6a7b8c9d0");
            assert_eq!(user.email.as_str(), "evelyn.boyd@example.com");
        }
    }

    #[test]
    fn deleted_user_logs_delete_and_entries_without_email_are_skipped() {
        let no_email = SIGNUP
            .replace(r#""email":"evelyn.boyd@example.com","#, "")
            .replace(r#""user_name":"evelyn.boyd@example.com","#, "");
        let body =
            format!(r#"[{no_email},{{"log_id":"3","data":{{"type":"du","user_id":"auth0|9"}}}}]"#);
        let d = Auth0.parse(body.as_bytes()).unwrap();
        assert_eq!(
            d.events,
            [UserEvent::Deleted {
                user_id: "auth0|9".into()
            }]
        );
        assert_eq!(d.skipped.len(), 1, "{:?}", d.skipped);
    }

    #[test]
    fn reads_event_streams_cloud_events() {
        let body = r#"{"id":"evt_1","source":"urn:auth0:example:users","specversion":"1.0","type":"com.auth0.user.updated",
          "time":"2026-11-27T09:00:00.000Z","data":{"object":{"user_id":"auth0|1","email":"a@example.com","given_name":"Ada","family_name":"L"}}}"#;
        let d = Auth0.parse(body.as_bytes()).unwrap();
        assert_eq!(d.event_type, "com.auth0.user.updated");
        let [UserEvent::Upserted { change, user, .. }] = d.events.as_slice() else {
            panic!("{d:?}")
        };
        assert_eq!(
            (*change, user.first_name.as_deref()),
            (UserChange::Updated, Some("Ada"))
        );
    }

    #[test]
    fn member_events_link_and_unlink_and_one_without_its_user_is_refused_as_malformed() {
        let event = |kind: &str, user: &str| {
            format!(
                r#"{{"specversion":"1.0","type":"organization.member.{kind}","source":"urn:auth0:example.auth0app.com","id":"evt_1",
                "time":"2026-11-27T09:00:00Z","data":{{"object":{{"organization":{{"id":"org_1","name":"acme"}},"user":{{{user}}}}}}}}}"#
            )
        };
        let added = Auth0
            .parse(event("added", r#""user_id":"auth0|1""#).as_bytes())
            .unwrap();
        assert_eq!(
            added.events,
            [UserEvent::JoinedWorkspace {
                user: UserRef::Id("auth0|1".into()),
                workspace: Workspace::new("org_1".into(), Some("acme".into())),
            }]
        );
        let deleted = Auth0
            .parse(event("deleted", r#""user_id":"auth0|1""#).as_bytes())
            .unwrap();
        assert_eq!(
            deleted.events,
            [UserEvent::LeftWorkspace {
                user_id: "auth0|1".into(),
                workspace_id: "org_1".into(),
            }]
        );
        match Auth0.parse(event("added", "").as_bytes()) {
            Err(PayloadError::Malformed { reason, .. }) => {
                assert!(reason.contains("user.user_id"), "{reason}")
            }
            other => panic!("expected malformed, got {other:?}"),
        }
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            Auth0.parse(b"not json\nat all"),
            Err(PayloadError::Malformed { .. })
        ));
        assert!(matches!(
            Auth0.parse(b"42"),
            Err(PayloadError::Malformed { .. })
        ));
    }
}
