//! For reconcile: what the sync would write for a user, without writing, and the repair that
//! writes only what differs (the person, the user, workspace links), through the same asserts.

use serde_json::{Value, json};

use super::values::{Fingerprint, person_values, with_mapped, workspace_ref};
use super::{SyncError, SyncOutcome, UserSync};
use crate::attio::{AttioBudget, AttioError, ListUpdate, RecordId};
use crate::domain::{Timestamp, UserProfile, Workspace};
use crate::mapping::MappedObject;
use crate::secrets::Secret;

/// The attributes a sync writes beyond the fixed ones, with their Attio types, so what Attio
/// holds can be read and compared attribute by attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WrittenAttributes {
    /// `users` attributes (slug, type): `primary_email_address`, the mapped ones, the sign-up
    /// time where configured. Not `user_id` (the key), `person` or `workspace` (links).
    pub users: Vec<(String, String)>,
    /// `people` attributes: `name` and the mapped ones. Not `email_addresses`: an assert adds
    /// the address to the person's list, and the user's `primary_email_address` stands for it.
    pub people: Vec<(String, String)>,
    /// The event-time attribute (`ATTIO_USER_EVENT_TIME_ATTRIBUTE`), compared as a moment.
    pub event_time: Option<String>,
}

/// What an upsert of a user would write, by object: `{"<slug>": [values…]}` each.
#[derive(Debug, Clone, PartialEq)]
pub struct WouldWrite {
    /// The person's values (without `email_addresses`).
    pub person: Value,
    /// The `users` record's values (without `user_id`, `person` and the event time).
    pub user: Value,
    /// The event time it would write.
    pub event_time: Option<Timestamp>,
}

/// The writes a user's drift needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repair {
    /// The user's record, when Attio holds it.
    pub record: Option<RecordId>,
    /// The person record the user is linked to, when Attio holds it and its values are as the
    /// sync would write them (no person assert then).
    pub person: Option<RecordId>,
    /// Whether the `users` record's values differ, or its link to the person.
    pub user: bool,
    /// The user's workspaces to link: their record ids where Attio holds them, else asserted.
    /// (Links to remove are known only at the listing's end: `AttioUsers::stale_links`.)
    pub link: Vec<(Workspace, Option<RecordId>)>,
    /// The user's workspaces whose values (their name) Attio holds otherwise: asserted again.
    pub rename: Vec<Workspace>,
}

impl UserSync {
    /// The attributes this sync writes beyond the fixed ones, typed by Attio's catalog (an
    /// attribute the catalog does not describe is left out, as the sync leaves it out).
    pub async fn written_attributes(
        &self,
        token: &Secret,
        budget: &mut AttioBudget,
    ) -> Result<WrittenAttributes, AttioError> {
        let mut written = WrittenAttributes {
            users: vec![("primary_email_address".into(), "email-address".into())],
            people: vec![("name".into(), "personal-name".into())],
            event_time: self.event_time_attribute.clone(),
        };
        if let Some(attribute) = &self.created_at_attribute {
            written.users.push((attribute.clone(), "timestamp".into()));
        }
        for (object, into) in [
            (MappedObject::Users, &mut written.users),
            (MappedObject::People, &mut written.people),
        ] {
            if self.mapping.of(object).next().is_none() {
                continue;
            }
            let Ok(catalog) = self.catalog.get(token, &self.attio, object, budget).await? else {
                continue;
            };
            for mapped in self.mapping.of(object) {
                let name = mapped.attribute.as_str();
                if let Some(a) = catalog
                    .iter()
                    .find(|a| a.api_slug == name || a.attribute_id == name)
                    .filter(|a| a.is_writable && !a.is_archived)
                {
                    into.push((a.api_slug.clone(), a.kind.clone()));
                }
            }
        }
        Ok(written)
    }

    /// What upserting `user` would write, without writing. Reads Attio's attribute catalog
    /// once, as the sync does.
    pub async fn would_write(
        &self,
        token: &Secret,
        user: &UserProfile,
        occurred_at: Option<Timestamp>,
        budget: &mut AttioBudget,
    ) -> Result<WouldWrite, AttioError> {
        let mut warnings = Vec::new();
        let (person_mapped, user_mapped) = self
            .mapped_of_user(token, user, &mut warnings, budget)
            .await?;
        let mut person = with_mapped(person_values(user), &person_mapped);
        let mut values = self.user_record_values(user, "", None, &user_mapped);
        if let Some(values) = values.as_object_mut() {
            values.remove("user_id");
            values.remove("person");
        }
        if let Some(person) = person.as_object_mut() {
            person.remove("email_addresses");
        }
        Ok(WouldWrite {
            person,
            user: values,
            event_time: occurred_at.filter(|_| self.event_time_attribute.is_some()),
        })
    }

    /// Writes what `repair` says a user's drift needs, and nothing else: the person assert
    /// only when its values differ, the user assert only when the user's differ, a workspace
    /// assert only for a workspace Attio does not hold, and one append for the links to add.
    pub async fn repair(
        &self,
        token: &Secret,
        user: &UserProfile,
        occurred_at: Option<Timestamp>,
        repair: &Repair,
        budget: &mut AttioBudget,
    ) -> Result<SyncOutcome, SyncError> {
        let mut warnings = Vec::new();
        let (person_mapped, user_mapped) = self
            .mapped_of_user(token, user, &mut warnings, budget)
            .await?;
        let person = match &repair.person {
            Some(person) => person.clone(),
            None => {
                let values = with_mapped(person_values(user), &person_mapped);
                self.refuse_what_another_user_holds(token, user, budget)
                    .await?;
                let fingerprint = Fingerprint::of(&values);
                self.assert_person(
                    token,
                    user.email.as_str(),
                    &values,
                    fingerprint,
                    &person_mapped,
                    &mut warnings,
                    budget,
                )
                .await?
            }
        };
        let record_id = match &repair.record {
            Some(record) if !repair.user => record.clone(),
            _ => {
                let values = self.user_record_values(user, &person, occurred_at, &user_mapped);
                self.assert_mapped(
                    token,
                    MappedObject::Users,
                    self.matching.slug(),
                    values,
                    &user_mapped,
                    &mut warnings,
                    budget,
                )
                .await?
            }
        };
        for workspace in &repair.rename {
            self.assert_workspace(token, workspace, Some(user), &mut warnings, budget)
                .await?;
        }
        let mut workspace_record_ids = Vec::with_capacity(repair.link.len());
        for (workspace, known) in &repair.link {
            workspace_record_ids.push(match known {
                Some(id) => id.clone(),
                None => {
                    self.assert_workspace(token, workspace, Some(user), &mut warnings, budget)
                        .await?
                }
            });
        }
        if !workspace_record_ids.is_empty() {
            self.link(token, &record_id, &workspace_record_ids, budget)
                .await?;
        }
        Ok(SyncOutcome::Synced {
            record_id,
            person_record_id: person,
            workspace_record_ids,
            warnings,
        })
    }

    /// Removes `workspaces` from the user's links, keeping the others (read, then overwrite).
    pub async fn unlink_workspaces(
        &self,
        token: &Secret,
        record_id: &str,
        workspaces: &[RecordId],
        budget: &mut AttioBudget,
    ) -> Result<(), AttioError> {
        let linked = self
            .attio
            .referenced_ids(token, "users", record_id, "workspace", budget)
            .await?;
        if !linked.iter().any(|id| workspaces.contains(id)) {
            return Ok(());
        }
        let remaining: Vec<Value> = linked
            .iter()
            .filter(|id| !workspaces.contains(id))
            .map(|id| workspace_ref(id))
            .collect();
        self.attio
            .update_record(
                token,
                "users",
                record_id,
                json!({ "workspace": remaining }),
                ListUpdate::Replace,
                budget,
            )
            .await
    }
}
