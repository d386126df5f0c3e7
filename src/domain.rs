//! Neutral domain types: what every provider's payload is turned into, and what sync consumes.

//! They are also the body of a queue message ([`crate::queue`]): their serde form is that
//! message's schema, documented in the README; change it only with a new schema version.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::email::{EmailAddress, InvalidEmail, redact_emails};

/// What this module's Deserialize impls say of a value they refuse (never the value).
pub(crate) const OWN_DESERIALIZE_ERRORS: [&str; 2] = [
    "expected an RFC 3339 time after 1970",
    "expected the name of one of the function's routes",
];

/// A moment a provider reported (a sign-up, a change), kept to the millisecond in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Written as RFC 3339 text in UTC, read from RFC 3339 text.
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom(OWN_DESERIALIZE_ERRORS[0]))
    }
}

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

    /// Unix milliseconds.
    pub fn unix_millis(self) -> i64 {
        self.0
    }

    /// A time of this machine's clock.
    pub fn from_system_time(at: std::time::SystemTime) -> Self {
        let ms = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self(ms)
    }

    /// Milliseconds from `earlier` to this time (0 if `earlier` is later).
    pub fn millis_since(self, earlier: Timestamp) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserChange {
    /// A new user signed up.
    Created,
    /// An existing user's profile changed.
    Updated,
}

/// A user as the identity provider describes it, reduced to what Attio stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProfile {
    /// The provider's stable id for the user (`user_…`, a UUID, …).
    pub user_id: String,
    /// The user's primary email address.
    pub email: EmailAddress,
    /// Given name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Family name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// When the user signed up, when the provider says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// What else the provider said, for the attribute mapping.
    pub details: UserDetails,
}

/// What a provider says about a user beyond the fields every sync writes: the canonical fields
/// of the attribute mapping it fills ([`crate::mapping::CanonicalField`]) and the user object
/// as it was delivered, for JSON Pointers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDetails {
    /// The route the user came through (`clerk`, `cognito`, …).
    #[serde(deserialize_with = "route_name")]
    pub provider: RouteName,
    /// Whether the provider has verified the email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// Phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Profile picture URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// When the user last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    /// When the user last signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sign_in_at: Option<Timestamp>,
    /// The provider's user object as delivered (what a mapping's JSON Pointer reads). A queue
    /// message holds only the parts the mapping reads ([`crate::mapping::AttributeMap::keep`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<std::sync::Arc<serde_json::Value>>,
}

/// A route's name (`clerk`, `cognito`, …): one of the function's own strings. (Named, so serde
/// does not take it for text borrowed from the input.)
pub type RouteName = &'static str;

/// A route's name read back as the function's own `&'static str` (a queue message names the
/// route its user came through); an unknown name is an error.
pub(crate) fn route_name<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<&'static str, D::Error> {
    let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    crate::routes::named(&name).ok_or_else(|| serde::de::Error::custom(OWN_DESERIALIZE_ERRORS[1]))
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// The provider's organisation id (Attio's `workspace_id`).
    pub id: String,
    /// Its name, when the provider sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its slug, when the provider sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// Its domain, when the provider sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The user's role in it, when the provider sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UserEvent {
    /// The user was created or updated; `workspaces` are organisations it belongs to.
    Upserted {
        /// Created or updated.
        change: UserChange,
        /// The user after the change.
        user: UserProfile,
        /// Organisations to link the user to (never unlinks others).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        workspaces: Vec<Workspace>,
        /// When the change happened at the provider, when it says; orders redeliveries.
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
        #[serde(deserialize_with = "route_name")]
        provider: RouteName,
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
    /// The provider's id of the user the event is about.
    pub fn user_id(&self) -> &str {
        match self {
            Self::Upserted { user, .. } => &user.user_id,
            Self::JoinedWorkspace { user, .. } => user.user_id(),
            Self::Deleted { user_id }
            | Self::SignedIn { user_id, .. }
            | Self::LeftWorkspace { user_id, .. } => user_id,
        }
    }

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
