//! Applies [`UserEvent`]s to Attio: a user is a `people` record (matched on email) and a
//! `users` record (matched on the provider's id) linked to it; organisations are `workspaces`
//! records the user is linked to.

use std::time::Duration;

use serde_json::{Value, json};

use crate::attio::{AttioBudget, AttioClient, AttioError, ListUpdate, RecordId};
use crate::config::{Config, OnUserDeleted, UserMatchingAttribute};
use crate::convert;
use crate::domain::{Timestamp, UserEvent, UserProfile, UserRef, Workspace};
use crate::mapping::{AttributeMap, CanonicalField, Found, MappedAttribute, MappedObject, Source};
use crate::recent::Recent;
use crate::secrets::Secret;

mod catalog;
mod outcome;
mod plan;
mod values;

use catalog::AttributeCatalog;
pub use outcome::{SyncError, SyncOutcome, Warning};
pub use plan::{Repair, WouldWrite, WrittenAttributes};
use values::{Fingerprint, Written, person_values, user_values, with_mapped, workspace_ref};

/// Turns user events into Attio calls.
#[derive(Debug)]
pub struct UserSync {
    attio: AttioClient,
    matching: UserMatchingAttribute,
    on_user_deleted: OnUserDeleted,
    created_at_attribute: Option<String>,
    event_time_attribute: Option<String>,
    /// People this container asserted recently: email → (the values sent, the record id).
    people: Recent<String, (Fingerprint, RecordId)>,
    /// Users this container wrote recently: (which write, user id) → (the values, the id).
    users: Recent<(Written, String), (Fingerprint, RecordId)>,
    /// `ATTIO_ATTRIBUTE_MAP`.
    mapping: AttributeMap,
    /// The mapped objects' attributes, read from Attio once per container.
    catalog: AttributeCatalog,
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
            users: Recent::new(PERSON_MEMORY, PERSON_MEMORY_SIZE),
            mapping: config.attribute_map.clone(),
            catalog: AttributeCatalog::default(),
        }
    }

    /// The Attio client it writes through.
    pub fn attio(&self) -> &AttioClient {
        &self.attio
    }

    /// Whether applying `event` calls Attio at all: an unmapped sign-in and a deletion kept by
    /// `ON_USER_DELETED=ignore` are answered `ignored` without a call, and are not queued.
    pub fn needs_attio(&self, event: &UserEvent) -> bool {
        match event {
            UserEvent::SignedIn { provider, .. } => self
                .mapping
                .of(MappedObject::Users)
                .any(|a| a.source(provider) == Some(&Source::Field(CanonicalField::LastSignInAt))),
            UserEvent::Deleted { .. } => self.on_user_deleted == OnUserDeleted::Delete,
            _ => true,
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
                let mut warnings = Vec::new();
                let (record_id, person_record_id) = self
                    .write_user(token, user, *occurred_at, &mut warnings, budget)
                    .await?;
                let mut workspace_record_ids = Vec::with_capacity(workspaces.len());
                for workspace in workspaces {
                    workspace_record_ids.push(
                        self.assert_workspace(token, workspace, Some(user), &mut warnings, budget)
                            .await?,
                    );
                }
                if !workspace_record_ids.is_empty() {
                    self.link(token, &record_id, &workspace_record_ids, budget)
                        .await?;
                }
                Ok(SyncOutcome::Synced {
                    record_id,
                    person_record_id,
                    workspace_record_ids,
                    warnings,
                })
            }
            UserEvent::JoinedWorkspace { user, workspace } => {
                let mut warnings = Vec::new();
                let profile = match user {
                    UserRef::Profile(profile) => Some(profile.as_ref()),
                    UserRef::Id(_) => None,
                };
                let record_id = match user {
                    UserRef::Profile(profile) => {
                        self.write_user(token, profile, None, &mut warnings, budget)
                            .await?
                            .0
                    }
                    UserRef::Id(id) => self
                        .find_user(token, id, budget)
                        .await?
                        .ok_or_else(|| SyncError::UserNotYetSynced(id.clone()))?,
                };
                let workspace_record_id = self
                    .assert_workspace(token, workspace, profile, &mut warnings, budget)
                    .await?;
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
                    warnings,
                })
            }
            UserEvent::SignedIn {
                user_id,
                provider,
                at,
            } => {
                self.record_sign_in(token, user_id, provider, *at, budget)
                    .await
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
                    self.unlink_workspaces(
                        token,
                        &record_id,
                        std::slice::from_ref(&workspace.id),
                        budget,
                    )
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
        warnings: &mut Vec<Warning>,
        budget: &mut AttioBudget,
    ) -> Result<(RecordId, RecordId), AttioError> {
        let (person_mapped, user_mapped) =
            self.mapped_of_user(token, user, warnings, budget).await?;
        let person_values = with_mapped(person_values(user), &person_mapped);
        let person_fingerprint = Fingerprint::of(&person_values);
        let email = user.email.as_str();
        // With event-time ordering, a version's person values are always written: another
        // container may have written another version of this person since this one remembered
        // sending these values, and skipping the write would leave that version's name beside
        // this version's event time.
        let ordered = self.event_time_attribute.is_some() && occurred_at.is_some();
        let remembered = self
            .people
            .get(email)
            .filter(|_| !ordered)
            .and_then(|(sent, id)| (sent == person_fingerprint).then_some(id));
        let person = match &remembered {
            Some(id) => id.clone(),
            None => {
                self.refuse_what_another_user_holds(token, user, budget)
                    .await?;
                self.assert_person(
                    token,
                    email,
                    &person_values,
                    person_fingerprint,
                    &person_mapped,
                    warnings,
                    budget,
                )
                .await?
            }
        };
        match self
            .assert_user(
                token,
                user,
                &person,
                occurred_at,
                &user_mapped,
                warnings,
                budget,
            )
            .await
        {
            Err(AttioError::Invalid { .. }) if remembered.is_some() => {
                self.people.remove(email);
                let person = self
                    .assert_person(
                        token,
                        email,
                        &person_values,
                        person_fingerprint,
                        &person_mapped,
                        warnings,
                        budget,
                    )
                    .await?;
                let record = self
                    .assert_user(
                        token,
                        user,
                        &person,
                        occurred_at,
                        &user_mapped,
                        warnings,
                        budget,
                    )
                    .await?;
                Ok((record, person))
            }
            result => Ok((result?, person)),
        }
    }

    /// The mapped attributes of the user's person and of its `users` record: (people, users).
    async fn mapped_of_user(
        &self,
        token: &Secret,
        user: &UserProfile,
        warnings: &mut Vec<Warning>,
        budget: &mut AttioBudget,
    ) -> Result<(Vec<(String, Value)>, Vec<(String, Value)>), AttioError> {
        let route = user.details.provider;
        let read = |source: &Source| source.read(Some(user), None);
        let person_mapped = self
            .mapped(token, MappedObject::People, route, &read, warnings, budget)
            .await?;
        let user_mapped = self
            .mapped(token, MappedObject::Users, route, &read, warnings, budget)
            .await?;
        Ok((person_mapped, user_mapped))
    }

    /// The `users` record's values: the user's own, its mapped ones, the sign-up and event
    /// times where configured.
    fn user_record_values(
        &self,
        user: &UserProfile,
        person: &str,
        occurred_at: Option<Timestamp>,
        mapped: &[(String, Value)],
    ) -> Value {
        let mut values = with_mapped(user_values(user, person), mapped);
        if let (Some(attribute), Some(created_at)) = (&self.created_at_attribute, user.created_at) {
            values[attribute.as_str()] = json!(created_at.to_rfc3339());
        }
        if let (Some(attribute), Some(occurred_at)) = (&self.event_time_attribute, occurred_at) {
            values[attribute.as_str()] = json!(occurred_at.to_rfc3339());
        }
        values
    }

    /// Refuses, before anything is written, a user whose other unique value (the address when
    /// users match on `user_id`, the id when they match on the address) another user's record
    /// holds: Attio would refuse the user's write, but only after the person matched by the
    /// address (perhaps the other user's person) had been renamed with this user's name. One
    /// read (Attio allows four reads for each write); a write racing between the read and this
    /// event's writes is still refused by Attio at the user's assert.
    async fn refuse_what_another_user_holds(
        &self,
        token: &Secret,
        user: &UserProfile,
        budget: &mut AttioBudget,
    ) -> Result<(), AttioError> {
        let email = user.email.as_str();
        let (unique, value) = match self.matching {
            UserMatchingAttribute::UserId => ("primary_email_address", email),
            UserMatchingAttribute::PrimaryEmailAddress => ("user_id", user.user_id.as_str()),
        };
        let Some(holder) = self
            .attio
            .find_record(token, "users", unique, value, budget)
            .await?
        else {
            return Ok(());
        };
        let is_this_user = match self.matching {
            UserMatchingAttribute::UserId => holder.text("user_id") == Some(user.user_id.as_str()),
            UserMatchingAttribute::PrimaryEmailAddress => holder
                .values
                .pointer("/primary_email_address/0/email_address")
                .and_then(Value::as_str)
                .is_some_and(|held| held.eq_ignore_ascii_case(email)),
        };
        if is_this_user {
            return Ok(());
        }
        Err(AttioError::UniquenessConflict {
            object: "users".into(),
            message: format!(
                "{unique} is held by another user's record {}; nothing was written for this event",
                holder.id
            ),
        })
    }

    /// Asserts the person with `values` (its mapped attributes, `mapped`, among them), and
    /// remembers their `fingerprint`.
    #[allow(clippy::too_many_arguments)] // each is one of the person assert's inputs
    async fn assert_person(
        &self,
        token: &Secret,
        email: &str,
        values: &Value,
        fingerprint: Fingerprint,
        mapped: &[(String, Value)],
        warnings: &mut Vec<Warning>,
        budget: &mut AttioBudget,
    ) -> Result<RecordId, AttioError> {
        let id = self
            .assert_mapped(
                token,
                MappedObject::People,
                "email_addresses",
                values.clone(),
                mapped,
                warnings,
                budget,
            )
            .await?;
        self.people
            .insert(email.to_owned(), (fingerprint, id.clone()));
        Ok(id)
    }

    #[allow(clippy::too_many_arguments)] // each is one of the user assert's inputs
    async fn assert_user(
        &self,
        token: &Secret,
        user: &UserProfile,
        person: &str,
        occurred_at: Option<Timestamp>,
        mapped: &[(String, Value)],
        warnings: &mut Vec<Warning>,
        budget: &mut AttioBudget,
    ) -> Result<RecordId, AttioError> {
        let values = self.user_record_values(user, person, occurred_at, mapped);
        let key = (Written::Profile, user.user_id.clone());
        self.assert_user_once(
            token,
            key,
            self.matching.slug(),
            values,
            mapped,
            warnings,
            budget,
        )
        .await
    }

    /// Asserts a `users` record with `values`, unless this container wrote the very same
    /// values for it (`key`) in the last minutes: then the remembered record id answers.
    #[allow(clippy::too_many_arguments)] // each is one of the assert's inputs
    async fn assert_user_once(
        &self,
        token: &Secret,
        key: (Written, String),
        matching: &str,
        values: Value,
        mapped: &[(String, Value)],
        warnings: &mut Vec<Warning>,
        budget: &mut AttioBudget,
    ) -> Result<RecordId, AttioError> {
        let fingerprint = Fingerprint::of(&values);
        if let Some((sent, record_id)) = self.users.get(&key)
            && sent == fingerprint
        {
            return Ok(record_id);
        }
        let record_id = self
            .assert_mapped(
                token,
                MappedObject::Users,
                matching,
                values,
                mapped,
                warnings,
                budget,
            )
            .await?;
        self.users.insert(key, (fingerprint, record_id.clone()));
        Ok(record_id)
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
        user: Option<&UserProfile>,
        warnings: &mut Vec<Warning>,
        budget: &mut AttioBudget,
    ) -> Result<RecordId, AttioError> {
        let mut values = json!({ "workspace_id": workspace.id });
        if let Some(name) = &workspace.name {
            values["name"] = json!(name);
        }
        let route = user.map_or("", |u| u.details.provider);
        let read = |source: &Source| source.read(user, Some(workspace));
        let mapped = self
            .mapped(
                token,
                MappedObject::Workspaces,
                route,
                &read,
                warnings,
                budget,
            )
            .await?;
        let values = with_mapped(values, &mapped);
        self.assert_mapped(
            token,
            MappedObject::Workspaces,
            "workspace_id",
            values,
            &mapped,
            warnings,
            budget,
        )
        .await
    }

    /// Writes a sign-in's time to the `users` attributes that map `last_sign_in_at` for this
    /// route, by the user's id; ignored where none does, or while Attio has no such user.
    async fn record_sign_in(
        &self,
        token: &Secret,
        user_id: &str,
        route: &'static str,
        at: Timestamp,
        budget: &mut AttioBudget,
    ) -> Result<SyncOutcome, SyncError> {
        let mut warnings = Vec::new();
        let read = |source: &Source| {
            (*source == Source::Field(CanonicalField::LastSignInAt))
                .then(|| Found::Value(at.to_rfc3339().into()))
        };
        let mapped = self
            .mapped(
                token,
                MappedObject::Users,
                route,
                &read,
                &mut warnings,
                budget,
            )
            .await?;
        if mapped.is_empty() && warnings.is_empty() {
            return Ok(SyncOutcome::Ignored {
                reason: "sign-ins are written only where last_sign_in_at is mapped to a users attribute",
            });
        }
        if mapped.is_empty() {
            // Every attribute mapping it was left out: a write would change nothing.
            return Ok(SyncOutcome::Ignored {
                reason: "no attribute mapping last_sign_in_at can be written; attio-user-sync-doctor says why",
            });
        }
        let values = with_mapped(json!({ "user_id": user_id }), &mapped);
        let key = (Written::SignIn, user_id.to_owned());
        let written = self
            .assert_user_once(
                token,
                key,
                "user_id",
                values,
                &mapped,
                &mut warnings,
                budget,
            )
            .await;
        match written {
            Ok(record_id) => Ok(SyncOutcome::SignedIn {
                record_id,
                warnings,
            }),
            // Only the user's own event can create it (Attio requires its email address).
            Err(AttioError::Invalid { code, .. }) if code == "missing_value" => {
                Ok(SyncOutcome::Ignored {
                    reason: "the user is not in Attio yet; its sign-in is not recorded",
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The mapped attributes of `object` that `read` finds values for (for users of `route`),
    /// converted to what each attribute takes. What cannot be written is left out with a
    /// warning; only a failure to reach Attio is an error.
    async fn mapped(
        &self,
        token: &Secret,
        object: MappedObject,
        route: &str,
        read: &(dyn Fn(&Source) -> Option<Found> + Sync),
        warnings: &mut Vec<Warning>,
        budget: &mut AttioBudget,
    ) -> Result<Vec<(String, Value)>, AttioError> {
        let found: Vec<(&MappedAttribute, Found)> = self
            .mapping
            .of(object)
            .filter_map(|a| Some((a, read(a.source(route)?)?)))
            .collect();
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let mut warn = |attribute: &str, reason: String| {
            warnings.push(Warning {
                object: object.slug(),
                attribute: attribute.to_owned(),
                reason,
            })
        };
        let catalog = match self.catalog.get(token, &self.attio, object, budget).await? {
            Ok(catalog) => catalog,
            Err(reason) => {
                for (mapped, _) in &found {
                    warn(&mapped.attribute, reason.clone());
                }
                return Ok(Vec::new());
            }
        };
        let mut values = Vec::with_capacity(found.len());
        for (mapped, value) in found {
            let name = mapped.attribute.as_str();
            let Some(attribute) = catalog
                .iter()
                .find(|a| a.api_slug == name || a.attribute_id == name)
            else {
                warn(
                    name,
                    format!("Attio has no attribute {name} on {}", object.slug()),
                );
                continue;
            };
            if attribute.is_archived {
                warn(
                    name,
                    "archived: unarchive it in Attio, or map another attribute".into(),
                );
                continue;
            }
            if !attribute.is_writable {
                warn(
                    name,
                    "the attribute cannot be written through the API".into(),
                );
                continue;
            }
            match value {
                // JSON null clears the attribute.
                Found::Null => values.push((attribute.api_slug.clone(), json!([]))),
                Found::Value(value) => match convert::to_attio(&value, attribute) {
                    Ok(converted) => values.push((attribute.api_slug.clone(), converted)),
                    Err(reason) => warn(name, reason),
                },
            }
        }
        Ok(values)
    }

    /// Asserts a record with `values`; when Attio refuses the value of one of the `mapped`
    /// attributes, asserts it again without that one (a warning says which), so one bad
    /// optional field never blocks the core record.
    #[allow(clippy::too_many_arguments)] // each is one of the assert's inputs
    async fn assert_mapped(
        &self,
        token: &Secret,
        object: MappedObject,
        matching: &str,
        mut values: Value,
        mapped: &[(String, Value)],
        warnings: &mut Vec<Warning>,
        budget: &mut AttioBudget,
    ) -> Result<RecordId, AttioError> {
        let mut left: Vec<&str> = mapped.iter().map(|(slug, _)| slug.as_str()).collect();
        loop {
            match self
                .attio
                .assert_record(token, object.slug(), matching, values.clone(), budget)
                .await
            {
                Err(e) => {
                    let Some(i) = left.iter().position(|slug| e.names_attribute(slug)) else {
                        return Err(e);
                    };
                    let slug = left.remove(i);
                    if let Some(values) = values.as_object_mut() {
                        values.remove(slug);
                    }
                    let code = match &e {
                        AttioError::Invalid { code, .. } => code.as_str(),
                        _ => "invalid",
                    };
                    warnings.push(Warning {
                        object: object.slug(),
                        attribute: slug.to_owned(),
                        reason: format!("Attio refused the value ({code})"),
                    });
                }
                written => return written,
            }
        }
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
}

/// How long a remembered person assert stands in for a new one.
const PERSON_MEMORY: Duration = Duration::from_secs(300);
/// Most people remembered.
const PERSON_MEMORY_SIZE: usize = 1024;
