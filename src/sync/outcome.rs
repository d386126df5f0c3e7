//! What applying an event did ([`SyncOutcome`], with the [`Warning`]s of mapped attributes
//! left out), and why it could not be applied ([`SyncError`]).

use std::time::Duration;

use thiserror::Error;

use crate::attio::{AttioError, RecordId};

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
        /// Mapped attributes left out of the writes, and why.
        warnings: Vec<Warning>,
    },
    /// The user was linked to a workspace.
    Linked {
        /// The `users` record.
        record_id: RecordId,
        /// The `workspaces` record.
        workspace_record_id: RecordId,
        /// Mapped attributes left out of the writes, and why.
        warnings: Vec<Warning>,
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
    /// A sign-in was written to the mapped `last_sign_in_at` attributes.
    SignedIn {
        /// The `users` record.
        record_id: RecordId,
        /// Mapped attributes left out of the write, and why.
        warnings: Vec<Warning>,
    },
    /// Nothing to do, on purpose.
    Ignored {
        /// Why, for the answer.
        reason: &'static str,
    },
}

impl SyncOutcome {
    /// The `status` the answer gives it.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Synced { .. } => "synced",
            Self::Linked { .. } => "linked",
            Self::SignedIn { .. } => "signed_in",
            Self::Unlinked { .. } => "unlinked",
            Self::Deleted { .. } => "deleted",
            Self::Outdated { .. } => "outdated",
            Self::Ignored { .. } => "ignored",
        }
    }

    /// The mapped attributes left out of its writes.
    pub fn warnings(&self) -> &[Warning] {
        match self {
            Self::Synced { warnings, .. }
            | Self::Linked { warnings, .. }
            | Self::SignedIn { warnings, .. } => warnings,
            _ => &[],
        }
    }
}

/// A mapped attribute left out of a write, and why: the user was written without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The object (`users`, `people`, `workspaces`).
    pub object: &'static str,
    /// The attribute, as mapped.
    pub attribute: String,
    /// Why, in words that never hold the value.
    pub reason: String,
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

impl SyncError {
    /// The stable snake_case code naming the failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Attio(e) => e.code(),
            Self::UserNotYetSynced(_) => "user_not_yet_synced",
        }
    }

    /// Whether a later attempt can succeed with nothing changed but time: Attio's transient
    /// failures, and a membership whose user is not in Attio yet.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Attio(e) => e.is_transient(),
            Self::UserNotYetSynced(_) => true,
        }
    }

    /// `Retry-After` for a sender: Attio's, or 60 s for a membership waiting for its user (long
    /// enough for the user's own event to land first).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Attio(e) => e.retry_after(),
            Self::UserNotYetSynced(_) => Some(Duration::from_secs(60)),
        }
    }
}
