//! Supabase Database Webhooks on `auth.users`: `POST /webhooks/supabase-db`. These are not
//! signed: the webhook is configured to send a secret `Authorization` header, compared here in
//! constant time. `INSERT` creates, `UPDATE` updates, `DELETE` deletes (per `ON_USER_DELETED`).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::supabase_names;
use crate::domain::{Timestamp, UserChange, UserDetails, UserEvent, UserProfile, name_part};
use crate::providers::provider::{
    Delivery, PayloadError, Provider, SecretForm, WebhookRequest, read_body, read_part,
    required_email, verify_authorization_header,
};
use crate::secrets::Secret;
use crate::signature::SignatureError;

/// Supabase database webhooks on the `auth.users` table.
pub struct SupabaseDatabase;

const NAME: &str = "Supabase database webhook";

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    operation: String,
    table: String,
    schema: String,
    record: Option<Value>,
    old_record: Option<Value>,
}

#[derive(Deserialize)]
struct AuthUser {
    id: String,
    email: Option<String>,
    #[serde(default)]
    raw_user_meta_data: Option<Map<String, Value>>,
    created_at: Option<String>,
    /// Orders this user's changes.
    updated_at: Option<String>,
    phone: Option<String>,
    email_confirmed_at: Option<String>,
    last_sign_in_at: Option<String>,
}

impl Provider for SupabaseDatabase {
    fn route(&self) -> &'static str {
        crate::routes::SUPABASE_DB
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
        let payload: Payload = read_body(NAME, body)?;
        let event_type =
            format!("{}.{}.{}", payload.schema, payload.table, payload.operation).to_lowercase();
        if (payload.schema.as_str(), payload.table.as_str()) != ("auth", "users") {
            return Ok(Delivery::ignored(event_type));
        }
        let change = match payload.operation.as_str() {
            "INSERT" => UserChange::Created,
            "UPDATE" => UserChange::Updated,
            "DELETE" => {
                let old = payload.old_record.ok_or_else(|| PayloadError::Malformed {
                    provider: NAME,
                    reason: "a DELETE without old_record".into(),
                })?;
                let user: AuthUser = read_part(NAME, "old_record", &old)?;
                return Ok(Delivery::of(
                    event_type,
                    vec![UserEvent::Deleted { user_id: user.id }],
                ));
            }
            _ => return Ok(Delivery::ignored(event_type)),
        };
        let record = payload.record.ok_or_else(|| PayloadError::Malformed {
            provider: NAME,
            reason: format!("an {} without record", payload.operation),
        })?;
        let user: AuthUser = read_part(NAME, "record", &record)?;
        let changed_at = user.updated_at.as_deref().and_then(Timestamp::parse);
        let email = required_email(user.email.as_deref())?;
        let (first_name, last_name) = supabase_names(&user.raw_user_meta_data.unwrap_or_default());
        let profile = UserProfile {
            user_id: user.id,
            email,
            first_name,
            last_name,
            created_at: user.created_at.as_deref().and_then(Timestamp::parse),
            details: UserDetails {
                email_verified: Some(user.email_confirmed_at.is_some()),
                phone: name_part(user.phone.as_deref()),
                updated_at: changed_at,
                last_sign_in_at: user.last_sign_in_at.as_deref().and_then(Timestamp::parse),
                ..UserDetails::raw(crate::routes::SUPABASE_DB, record)
            },
        };
        Ok(Delivery::of(
            event_type,
            vec![UserEvent::upserted(change, profile).at(changed_at)],
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::providers::provider::single_upsert;
    use http::HeaderMap;

    /// Shaped like Supabase's documented database webhook payload for `auth.users`.
    const INSERT: &str = r#"{"type":"INSERT","table":"users","schema":"auth","old_record":null,
      "record":{"id":"3f5c1f4e-8a5e-4c1b-9a53-2a1f3b8d9e10","aud":"authenticated","role":"authenticated",
        "email":"mary.jackson@example.com","phone":null,"raw_app_meta_data":{"provider":"email","providers":["email"]},
        "raw_user_meta_data":{"first_name":"Mary","last_name":"Jackson"},"created_at":"2026-11-27T09:00:00.000000+00:00"}}"#;

    #[test]
    fn insert_creates_with_names_from_metadata() {
        let d = SupabaseDatabase.parse(INSERT.as_bytes()).unwrap();
        assert_eq!(d.event_type, "auth.users.insert");
        let (change, user) = single_upsert(&d);
        assert_eq!(change, UserChange::Created);
        assert_eq!(user.email.as_str(), "mary.jackson@example.com");
        assert_eq!(user.last_name.as_deref(), Some("Jackson"));
    }

    #[test]
    fn delete_names_the_old_record_and_other_tables_are_ignored() {
        let delete = r#"{"type":"DELETE","table":"users","schema":"auth","record":null,"old_record":{"id":"3f5c1f4e","email":"a@example.com"}}"#;
        let d = SupabaseDatabase.parse(delete.as_bytes()).unwrap();
        assert_eq!(
            d.events,
            [UserEvent::Deleted {
                user_id: "3f5c1f4e".into()
            }]
        );
        let other = INSERT.replace(r#""table":"users""#, r#""table":"profiles""#);
        assert!(
            SupabaseDatabase
                .parse(other.as_bytes())
                .unwrap()
                .events
                .is_empty()
        );
    }

    #[test]
    fn phone_only_users_have_no_email() {
        let body = INSERT.replace(r#""mary.jackson@example.com""#, "null");
        assert_eq!(
            SupabaseDatabase.parse(body.as_bytes()),
            Err(PayloadError::NoEmail)
        );
    }

    #[test]
    fn authorization_header_must_match() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer db-hook-secret".parse().unwrap());
        let request = WebhookRequest {
            headers: &headers,
            body: b"{}",
            now: SystemTime::now(),
            tolerance: Duration::from_secs(300),
            keys: None,
        };
        assert_eq!(
            SupabaseDatabase.verify(&request, &[Secret::new("Bearer db-hook-secret")]),
            Ok(())
        );
        assert_eq!(
            SupabaseDatabase.verify(&request, &[Secret::new("Bearer other")]),
            Err(SignatureError::NoMatch)
        );
    }
}
