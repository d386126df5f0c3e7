//! The values a write sends (a person's, a user's, a workspace link), and the fingerprint a
//! container remembers a write by.

use serde_json::{Value, json};

use crate::domain::UserProfile;

/// What a write sent, remembered as a 64-bit keyed hash rather than the JSON itself: a
/// `serde_json::Value` object costs a B-tree node (over half a KiB) per map, and a container
/// remembers up to a thousand of each kind. The key is random per container, so no sender can
/// aim two writes at one fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fingerprint(u64);

impl Fingerprint {
    pub(super) fn of(values: &Value) -> Self {
        use std::hash::{Hash, Hasher};
        /// Hashes a JSON value by its structure (objects' keys come sorted).
        struct Json<'a>(&'a Value);
        impl Hash for Json<'_> {
            fn hash<H: Hasher>(&self, state: &mut H) {
                match self.0 {
                    Value::Null => 0u8.hash(state),
                    Value::Bool(b) => (1u8, b).hash(state),
                    Value::Number(n) => (2u8, n.to_string()).hash(state),
                    Value::String(s) => (3u8, s).hash(state),
                    Value::Array(items) => {
                        (4u8, items.len()).hash(state);
                        items.iter().for_each(|v| Json(v).hash(state));
                    }
                    Value::Object(map) => {
                        (5u8, map.len()).hash(state);
                        for (k, v) in map {
                            k.hash(state);
                            Json(v).hash(state);
                        }
                    }
                }
            }
        }
        Self(crate::recent::keyed_hash(Json(values)))
    }
}

/// Which write of a user a remembered one was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Written {
    /// The user's profile (the user assert).
    Profile,
    /// A sign-in time.
    SignIn,
}

/// `values` with the mapped attributes set.
pub(super) fn with_mapped(mut values: Value, mapped: &[(String, Value)]) -> Value {
    for (slug, value) in mapped {
        values[slug.as_str()] = value.clone();
    }
    values
}

pub(super) fn workspace_ref(record_id: &str) -> Value {
    json!({ "target_object": "workspaces", "target_record_id": record_id })
}

pub(super) fn person_values(user: &UserProfile) -> Value {
    let mut values = json!({ "email_addresses": [{ "email_address": user.email.as_str() }] });
    if let Some(full_name) = user.full_name() {
        // Attio's personal-name attribute wants all three parts set.
        values["name"] = json!([{
            "first_name": user.first_name.as_deref().unwrap_or(""),
            "last_name": user.last_name.as_deref().unwrap_or(""),
            "full_name": full_name,
        }]);
    }
    values
}

pub(super) fn user_values(user: &UserProfile, person_record_id: &str) -> Value {
    json!({
        "user_id": user.user_id,
        "primary_email_address": [{ "email_address": user.email.as_str() }],
        "person": [{ "target_object": "people", "target_record_id": person_record_id }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EmailAddress;

    fn user(first: Option<&str>, last: Option<&str>) -> UserProfile {
        UserProfile {
            user_id: "user_1".into(),
            email: EmailAddress::parse("ada@example.com").unwrap(),
            first_name: first.map(Into::into),
            last_name: last.map(Into::into),
            created_at: None,
            details: Default::default(),
        }
    }

    #[test]
    fn person_name_has_all_three_parts_when_any_is_known() {
        let v = person_values(&user(Some("Ada"), None));
        assert_eq!(
            v["name"],
            json!([{"first_name": "Ada", "last_name": "", "full_name": "Ada"}])
        );
        assert!(person_values(&user(None, None)).get("name").is_none());
    }

    #[test]
    fn user_values_reference_the_person_and_never_the_workspaces() {
        let v = user_values(&user(None, None), "rec-1");
        assert_eq!(v["person"][0]["target_record_id"], "rec-1");
        assert_eq!(
            v["primary_email_address"][0]["email_address"],
            "ada@example.com"
        );
        assert_eq!(v["user_id"], "user_1");
        // An assert replaces multi-value lists: sending `workspace` would drop the others.
        assert!(v.get("workspace").is_none());
    }
}
