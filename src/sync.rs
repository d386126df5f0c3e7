//! Applies one [`UserEvent`] to Attio: assert the person on its email address, then assert
//! the user linked to that person.

use serde_json::{Value, json};

use crate::attio::{AttioBudget, AttioClient, AttioError, RecordId};
use crate::config::UserMatchingAttribute;
use crate::domain::{UserEvent, UserProfile};
use crate::secrets::Secret;

/// The Attio records a synced user ended up in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// The `users` record.
    pub record_id: RecordId,
    /// The `people` record the user is linked to.
    pub person_record_id: RecordId,
}

/// Turns user events into Attio asserts.
#[derive(Debug, Clone)]
pub struct UserSync {
    attio: AttioClient,
    matching: UserMatchingAttribute,
}

impl UserSync {
    /// A sync writing through `attio`, matching users on `matching`.
    pub fn new(attio: AttioClient, matching: UserMatchingAttribute) -> Self {
        Self { attio, matching }
    }

    /// Asserts the person, then the user. Both asserts are idempotent, so a retry after a
    /// partial failure converges on the same two records.
    pub async fn sync(
        &self,
        token: &Secret,
        event: &UserEvent,
        budget: &mut AttioBudget,
    ) -> Result<SyncOutcome, AttioError> {
        let user = &event.user;
        let person_record_id = self
            .attio
            .assert_record(
                token,
                "people",
                "email_addresses",
                person_values(user),
                budget,
            )
            .await?;
        let record_id = self
            .attio
            .assert_record(
                token,
                "users",
                self.matching.slug(),
                user_values(user, &person_record_id),
                budget,
            )
            .await?;
        Ok(SyncOutcome {
            record_id,
            person_record_id,
        })
    }
}

fn person_values(user: &UserProfile) -> Value {
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

fn user_values(user: &UserProfile, person_record_id: &str) -> Value {
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
    fn user_values_reference_the_person() {
        let v = user_values(&user(None, None), "rec-1");
        assert_eq!(v["person"][0]["target_record_id"], "rec-1");
        assert_eq!(
            v["primary_email_address"][0]["email_address"],
            "ada@example.com"
        );
        assert_eq!(v["user_id"], "user_1");
    }
}
