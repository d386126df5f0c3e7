//! Neutral domain types: what every provider's payload is turned into, and what sync consumes.

pub use crate::email::{EmailAddress, InvalidEmail, redact_emails};

/// A moment a provider reported (a sign-up, a change), kept to the millisecond in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From Unix milliseconds (Clerk). Times before 1970 are taken as unknown.
    pub fn from_unix_millis(ms: i64) -> Option<Self> {
        (ms > 0).then_some(Self(ms))
    }

    /// From RFC 3339 text, any offset (`2026-11-27T09:00:00.000Z`, `…+00:00`). Unparseable text
    /// and times before 1970 (Supabase's `0001-01-01` placeholder) are taken as unknown.
    pub fn parse(text: &str) -> Option<Self> {
        let t = time::OffsetDateTime::parse(
            text.trim(),
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?;
        Self::from_unix_millis(i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()?)
    }

    /// RFC 3339 in UTC, as Attio's timestamp attributes take it.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    }
}

/// What happened to the user at the identity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    /// A new user signed up.
    Created,
    /// An existing user's profile changed.
    Updated,
}

/// A user as the identity provider describes it, reduced to what Attio stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    /// The provider's stable id for the user (`user_…`, a UUID, …).
    pub user_id: String,
    /// The user's primary email address.
    pub email: EmailAddress,
    /// Given name, when known.
    pub first_name: Option<String>,
    /// Family name, when known.
    pub last_name: Option<String>,
    /// When the user signed up, when the provider says.
    pub created_at: Option<Timestamp>,
    /// What else the provider said, for the attribute mapping.
    pub details: UserDetails,
}

/// What a provider says about a user beyond the fields every sync writes: the canonical fields
/// of the attribute mapping it fills ([`crate::mapping::CanonicalField`]) and the user object
/// as it was delivered, for JSON Pointers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserDetails {
    /// The route the user came through (`clerk`, `cognito`, …).
    pub provider: &'static str,
    /// Whether the provider has verified the email address.
    pub email_verified: Option<bool>,
    /// Phone number.
    pub phone: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// Profile picture URL.
    pub image_url: Option<String>,
    /// When the user last changed.
    pub updated_at: Option<Timestamp>,
    /// When the user last signed in.
    pub last_sign_in_at: Option<Timestamp>,
    /// The provider's user object as delivered (what a mapping's JSON Pointer reads).
    pub raw: Option<std::sync::Arc<serde_json::Value>>,
}

impl UserDetails {
    /// Details holding only the route and the user object as delivered.
    pub fn raw(provider: &'static str, raw: serde_json::Value) -> Self {
        Self {
            provider,
            raw: Some(std::sync::Arc::new(raw)),
            ..Self::default()
        }
    }
}

impl UserProfile {
    /// `First Last`, or whichever part is known; `None` when neither is.
    pub fn full_name(&self) -> Option<String> {
        match (self.first_name.as_deref(), self.last_name.as_deref()) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(n), None) | (None, Some(n)) => Some(n.to_owned()),
            (None, None) => None,
        }
    }
}

/// An organisation at the identity provider: an Attio `workspaces` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// The provider's organisation id (Attio's `workspace_id`).
    pub id: String,
    /// Its name, when the provider sends it.
    pub name: Option<String>,
    /// Its slug, when the provider sends it.
    pub slug: Option<String>,
    /// Its domain, when the provider sends it.
    pub domain: Option<String>,
    /// The user's role in it, when the provider sends it.
    pub role: Option<String>,
}

impl Workspace {
    /// An organisation known by its id, and its name if sent.
    pub fn new(id: String, name: Option<String>) -> Self {
        Self {
            id,
            name,
            slug: None,
            domain: None,
            role: None,
        }
    }
}

/// Who a membership event is about: the whole profile when the provider sends it, else the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// Enough to create the user if Attio does not have it yet.
    Profile(Box<UserProfile>),
    /// Only the provider's user id: the user must already be in Attio.
    Id(String),
}

impl UserRef {
    /// The provider's user id.
    pub fn user_id(&self) -> &str {
        match self {
            Self::Profile(p) => &p.user_id,
            Self::Id(id) => id,
        }
    }
}

/// One change to apply to Attio, whatever provider it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent {
    /// The user was created or updated; `workspaces` are organisations it belongs to.
    Upserted {
        /// Created or updated.
        change: UserChange,
        /// The user after the change.
        user: UserProfile,
        /// Organisations to link the user to (never unlinks others).
        workspaces: Vec<Workspace>,
        /// When the change happened at the provider, when it says; orders redeliveries.
        occurred_at: Option<Timestamp>,
    },
    /// The user was deleted at the provider.
    Deleted {
        /// The provider's user id.
        user_id: String,
    },
    /// The user joined an organisation.
    JoinedWorkspace {
        /// The member.
        user: UserRef,
        /// The organisation.
        workspace: Workspace,
    },
    /// The user signed in. Written only where `last_sign_in_at` is mapped.
    SignedIn {
        /// The provider's user id.
        user_id: String,
        /// The route it came through.
        provider: &'static str,
        /// When.
        at: Timestamp,
    },
    /// The user left an organisation.
    LeftWorkspace {
        /// The provider's user id.
        user_id: String,
        /// The provider's organisation id.
        workspace_id: String,
    },
}

impl UserEvent {
    /// A created or updated user belonging to no organisation the event names.
    pub fn upserted(change: UserChange, user: UserProfile) -> Self {
        Self::Upserted {
            change,
            user,
            workspaces: Vec::new(),
            occurred_at: None,
        }
    }

    /// The same event, stamped with when it happened at the provider.
    pub fn at(mut self, when: Option<Timestamp>) -> Self {
        if let Self::Upserted { occurred_at, .. } = &mut self {
            *occurred_at = when;
        }
        self
    }
}

/// Cleans an optional name part: trims it and drops it when empty.
pub fn name_part(raw: Option<&str>) -> Option<String> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Splits a single name string at its first space: "Ada King Lovelace" → ("Ada", "King
/// Lovelace"); one word is a first name. For providers that send one name field.
pub fn split_full_name(full: Option<&str>) -> (Option<String>, Option<String>) {
    match name_part(full) {
        Some(full) => match full.split_once(' ') {
            Some((first, last)) => (name_part(Some(first)), name_part(Some(last))),
            None => (Some(full), None),
        },
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_from_millis_and_rfc3339_agree_and_placeholders_are_unknown() {
        let from_ms = Timestamp::from_unix_millis(1_654_012_591_514).unwrap();
        assert_eq!(from_ms.to_rfc3339(), "2022-05-31T15:56:31.514Z");
        assert_eq!(Timestamp::parse("2022-05-31T15:56:31.514Z"), Some(from_ms));
        assert_eq!(
            Timestamp::parse("2022-05-31T17:56:31.514+02:00"),
            Some(from_ms)
        );
        assert_eq!(Timestamp::parse("0001-01-01T00:00:00Z"), None);
        assert_eq!(Timestamp::parse("yesterday"), None);
        assert!(
            Timestamp::parse("2026-11-27T09:00:01Z")
                > Timestamp::parse("2026-11-27T09:00:00.999999+00:00")
        );
    }

    #[test]
    fn full_name_uses_the_parts_that_are_known() {
        let mut u = UserProfile {
            user_id: "u1".into(),
            email: EmailAddress::parse("a@example.com").unwrap(),
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            created_at: None,
            details: UserDetails::default(),
        };
        assert_eq!(u.full_name().as_deref(), Some("Ada Lovelace"));
        u.last_name = None;
        assert_eq!(u.full_name().as_deref(), Some("Ada"));
        u.first_name = None;
        assert_eq!(u.full_name(), None);
    }
}
