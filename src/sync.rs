//! Applies [`UserEvent`]s to Attio: a user is a `people` record (matched on email) and a
//! `users` record (matched on the provider's id) linked to it; organisations are `workspaces`
//! records the user is linked to.

use std::time::Duration;

use serde_json::{Value, json};
use thiserror::Error;

use crate::attio::{AttioBudget, AttioClient, AttioError, ListUpdate, RecordId};
use crate::config::{Config, OnUserDeleted, UserMatchingAttribute};
use crate::domain::{Timestamp, UserEvent, UserProfile, UserRef, Workspace};
use crate::recent::Recent;
use crate::secrets::Secret;

/// What applying one event did in Attio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The user (and person) were asserted, and linked to these workspaces.
    Synced {
        /// The `users` record.
        record_id: RecordId,
        /// The `people` record the user is linked to.
        person_record_id: RecordId,
        /// The `workspaces` records the user was linked to.
        workspace_record_ids: Vec<RecordId>,
    },
    /// The user was linked to a workspace.
    Linked {
        /// The `users` record.
        record_id: RecordId,
        /// The `workspaces` record.
        workspace_record_id: RecordId,
    },
    /// The user is no longer linked to the workspace (or never was).
    Unlinked {
        /// The `users` record, if Attio has the user.
        record_id: Option<RecordId>,
    },
    /// The user's record was deleted (or was not there).
    Deleted {
        /// The deleted `users` record, if there was one.
        record_id: Option<RecordId>,
    },
    /// Attio already holds a newer change of this user; this late event was not applied.
    Outdated {
        /// The `users` record.
        record_id: RecordId,
    },
    /// Nothing to do, on purpose.
    Ignored {
        /// Why, for the answer.
        reason: &'static str,
    },
}

/// Why an event could not be applied.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SyncError {
    /// Attio did not confirm a write.
    #[error(transparent)]
    Attio(#[from] AttioError),
    /// A membership names a user by id only, and Attio has no such user yet.
    #[error(
        "the user {0} is not in Attio yet, so it cannot be linked; the sender's retry will link it once the user's own event has been synced"
    )]
    UserNotYetSynced(String),
}

/// Turns user events into Attio calls.
#[derive(Debug)]
pub struct UserSync {
    attio: AttioClient,
    matching: UserMatchingAttribute,
    on_user_deleted: OnUserDeleted,
    created_at_attribute: Option<String>,
    event_time_attribute: Option<String>,
    /// People this container asserted recently: email → (the values sent, the record id).
    people: Recent<String, (Value, RecordId)>,
}

impl UserSync {
    /// A sync writing through `attio`, as `config` says.
    pub fn new(attio: AttioClient, config: &Config) -> Self {
        Self {
            attio,
            matching: config.user_matching_attribute,
            on_user_deleted: config.on_user_deleted,
            created_at_attribute: config.user_created_at_attribute.clone(),
            event_time_attribute: config.user_event_time_attribute.clone(),
            people: Recent::new(PERSON_MEMORY, PERSON_MEMORY_SIZE),
        }
    }

    /// Applies one event. Every step is idempotent, so the sender's retry after a partial
    /// failure converges on the same records.
    pub async fn apply(
        &self,
        token: &Secret,
        event: &UserEvent,
        budget: &mut AttioBudget,
    ) -> Result<SyncOutcome, SyncError> {
        match event {
            UserEvent::Upserted {
                user,
                workspaces,
                occurred_at,
                ..
            } => {
                if let Some(record_id) = self
                    .newer_change_applied(token, user, *occurred_at, budget)
                    .await?
                {
                    return Ok(SyncOutcome::Outdated { record_id });
                }
                let (record_id, person_record_id) =
                    self.write_user(token, user, *occurred_at, budget).await?;
                let mut workspace_record_ids = Vec::with_capacity(workspaces.len());
                for workspace in workspaces {
                    workspace_record_ids
                        .push(self.assert_workspace(token, workspace, budget).await?);
                }
                if !workspace_record_ids.is_empty() {
                    self.link(token, &record_id, &workspace_record_ids, budget)
                        .await?;
                }
                Ok(SyncOutcome::Synced {
                    record_id,
                    person_record_id,
                    workspace_record_ids,
                })
            }
            UserEvent::JoinedWorkspace { user, workspace } => {
                let record_id = match user {
                    UserRef::Profile(profile) => {
                        self.write_user(token, profile, None, budget).await?.0
                    }
                    UserRef::Id(id) => self
                        .find_user(token, id, budget)
                        .await?
                        .ok_or_else(|| SyncError::UserNotYetSynced(id.clone()))?,
                };
                let workspace_record_id = self.assert_workspace(token, workspace, budget).await?;
                self.link(
                    token,
                    &record_id,
                    std::slice::from_ref(&workspace_record_id),
                    budget,
                )
                .await?;
                Ok(SyncOutcome::Linked {
                    record_id,
                    workspace_record_id,
                })
            }
            UserEvent::LeftWorkspace {
                user_id,
                workspace_id,
            } => {
                let Some(record_id) = self.find_user(token, user_id, budget).await? else {
                    return Ok(SyncOutcome::Unlinked { record_id: None });
                };
                let workspace = self
                    .attio
                    .find_record(token, "workspaces", "workspace_id", workspace_id, budget)
                    .await?;
                if let Some(workspace) = workspace {
                    self.unlink(token, &record_id, &workspace.id, budget)
                        .await?;
                }
                Ok(SyncOutcome::Unlinked {
                    record_id: Some(record_id),
                })
            }
            UserEvent::Deleted { user_id } => match self.on_user_deleted {
                OnUserDeleted::Ignore => Ok(SyncOutcome::Ignored {
                    reason: "ON_USER_DELETED=ignore keeps deleted users in Attio",
                }),
                OnUserDeleted::Delete => {
                    let record_id = self.find_user(token, user_id, budget).await?;
                    if let Some(id) = &record_id {
                        self.attio.delete_record(token, "users", id, budget).await?;
                    }
                    Ok(SyncOutcome::Deleted { record_id })
                }
            },
        }
    }

    /// With `ATTIO_USER_EVENT_TIME_ATTRIBUTE` set: the user's record id when Attio already
    /// holds a change newer than `occurred_at` (this event arrived late), else `None`. Attio has
    /// no conditional write, so this is a read before the write.
    async fn newer_change_applied(
        &self,
        token: &Secret,
        user: &UserProfile,
        occurred_at: Option<Timestamp>,
        budget: &mut AttioBudget,
    ) -> Result<Option<RecordId>, AttioError> {
        let (Some(attribute), Some(occurred_at)) = (&self.event_time_attribute, occurred_at) else {
            return Ok(None);
        };
        let Some(existing) = self
            .attio
            .find_record(token, "users", "user_id", &user.user_id, budget)
            .await?
        else {
            return Ok(None);
        };
        let applied = existing.text(attribute).and_then(Timestamp::parse);
        Ok(applied
            .filter(|applied| *applied > occurred_at)
            .map(|_| existing.id))
    }

    /// Asserts the person, then the user linked to it. Returns (user, person) record ids.
    /// When this container asserted the very same person values recently, the person assert
    /// is skipped (one Attio call instead of two); should Attio refuse the user's reference to
    /// that person (deleted or merged since), the person is asserted again and the user retried.
    async fn write_user(
        &self,
        token: &Secret,
        user: &UserProfile,
        occurred_at: Option<Timestamp>,
        budget: &mut AttioBudget,
    ) -> Result<(RecordId, RecordId), AttioError> {
        let person_values = person_values(user);
        let email = user.email.as_str();
        let remembered = self
            .people
            .get(email)
            .and_then(|(sent, id)| (sent == person_values).then_some(id));
        let person = match &remembered {
            Some(id) => id.clone(),
            None => {
                self.assert_person(token, email, &person_values, budget)
                    .await?
            }
        };
        match self
            .assert_user(token, user, &person, occurred_at, budget)
            .await
        {
            Err(AttioError::Invalid { .. }) if remembered.is_some() => {
                self.people.remove(email);
                let person = self
                    .assert_person(token, email, &person_values, budget)
                    .await?;
                let record = self
                    .assert_user(token, user, &person, occurred_at, budget)
                    .await?;
                Ok((record, person))
            }
            result => Ok((result?, person)),
        }
    }

    async fn assert_person(
        &self,
        token: &Secret,
        email: &str,
        values: &Value,
        budget: &mut AttioBudget,
    ) -> Result<RecordId, AttioError> {
        let id = self
            .attio
            .assert_record(token, "people", "email_addresses", values.clone(), budget)
            .await?;
        self.people
            .insert(email.to_owned(), (values.clone(), id.clone()));
        Ok(id)
    }

    async fn assert_user(
        &self,
        token: &Secret,
        user: &UserProfile,
        person: &str,
        occurred_at: Option<Timestamp>,
        budget: &mut AttioBudget,
    ) -> Result<RecordId, AttioError> {
        let mut values = user_values(user, person);
        if let (Some(attribute), Some(created_at)) = (&self.created_at_attribute, user.created_at) {
            values[attribute.as_str()] = json!(created_at.to_rfc3339());
        }
        if let (Some(attribute), Some(occurred_at)) = (&self.event_time_attribute, occurred_at) {
            values[attribute.as_str()] = json!(occurred_at.to_rfc3339());
        }
        self.attio
            .assert_record(token, "users", self.matching.slug(), values, budget)
            .await
    }

    async fn find_user(
        &self,
        token: &Secret,
        user_id: &str,
        budget: &mut AttioBudget,
    ) -> Result<Option<RecordId>, AttioError> {
        let found = self
            .attio
            .find_record(token, "users", "user_id", user_id, budget)
            .await?;
        Ok(found.map(|r| r.id))
    }

    async fn assert_workspace(
        &self,
        token: &Secret,
        workspace: &Workspace,
        budget: &mut AttioBudget,
    ) -> Result<RecordId, AttioError> {
        let mut values = json!({ "workspace_id": workspace.id });
        if let Some(name) = &workspace.name {
            values["name"] = json!(name);
        }
        self.attio
            .assert_record(token, "workspaces", "workspace_id", values, budget)
            .await
    }

    /// Adds workspaces to the user's list. Attio's assert would replace the list, so this
    /// reads it once and appends (PATCH) only the workspaces it lacks.
    async fn link(
        &self,
        token: &Secret,
        record_id: &str,
        workspace_record_ids: &[RecordId],
        budget: &mut AttioBudget,
    ) -> Result<(), AttioError> {
        let linked = self
            .attio
            .referenced_ids(token, "users", record_id, "workspace", budget)
            .await?;
        let mut missing: Vec<&RecordId> = Vec::new();
        for id in workspace_record_ids {
            if !linked.contains(id) && !missing.contains(&id) {
                missing.push(id);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let refs: Vec<Value> = missing.into_iter().map(|id| workspace_ref(id)).collect();
        let values = json!({ "workspace": refs });
        self.attio
            .update_record(
                token,
                "users",
                record_id,
                values,
                ListUpdate::Append,
                budget,
            )
            .await
    }

    /// Removes the workspace from the user's list, keeping the others (read, then overwrite).
    async fn unlink(
        &self,
        token: &Secret,
        record_id: &str,
        workspace_record_id: &str,
        budget: &mut AttioBudget,
    ) -> Result<(), AttioError> {
        let linked = self
            .attio
            .referenced_ids(token, "users", record_id, "workspace", budget)
            .await?;
        if !linked.iter().any(|id| id == workspace_record_id) {
            return Ok(());
        }
        let remaining: Vec<Value> = linked
            .iter()
            .filter(|id| *id != workspace_record_id)
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

/// How long a remembered person assert stands in for a new one.
const PERSON_MEMORY: Duration = Duration::from_secs(300);
/// Most people remembered.
const PERSON_MEMORY_SIZE: usize = 1024;
fn workspace_ref(record_id: &str) -> Value {
    json!({ "target_object": "workspaces", "target_record_id": record_id })
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
