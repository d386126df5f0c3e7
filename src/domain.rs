//! Neutral domain types: what every provider's payload is turned into, and what sync consumes.

use std::fmt;

use thiserror::Error;

/// An email address that has passed a basic shape check. Attio validates strictly; this
/// catches what can never be valid before a call is made. `Debug` and `Display` redact it,
/// so an address cannot reach the logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

/// Why a string is not an email address. Never holds the address itself.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("not a valid email address: {0}")]
pub struct InvalidEmail(&'static str);

impl EmailAddress {
    /// Accepts `local@domain` with no whitespace, a dotted domain and at most 254 characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(InvalidEmail("it is empty"));
        }
        if s.len() > 254 {
            return Err(InvalidEmail("it is longer than 254 characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidEmail("it contains whitespace"));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(InvalidEmail("it has no @"));
        };
        if local.is_empty() || local.contains('@') {
            return Err(InvalidEmail(
                "the part before @ is empty or holds another @",
            ));
        }
        if domain.is_empty()
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(InvalidEmail("the domain is not a dotted host name"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The address itself, for sending to Attio. Never log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A form safe for logs: first character of the local part and the domain, `j***@example.com`.
    pub fn redacted(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or(("", &self.0));
        format!("{}@{domain}", mask_local_part(local))
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.redacted())
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

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
}

/// Who a membership event is about: the whole profile when the provider sends it, else the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// Enough to create the user if Attio does not have it yet.
    Profile(UserProfile),
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

/// `j***` for `jane`; a one-character local part is hidden whole, since its first character is all of it.
fn mask_local_part(local: &str) -> String {
    let mut chars = local.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(_)) => format!("{first}***"),
        _ => "***".to_owned(),
    }
}

/// Replaces every email-looking word in `text` (e.g. an Attio error message) with its redacted
/// form, so the text can be logged.
pub fn redact_emails(text: &str) -> String {
    text.split_inclusive(char::is_whitespace)
        .map(|word| {
            let Some(at) = word.rfind('@') else {
                return word.to_owned();
            };
            // Keep opening quotes and brackets; hide the local part but its first character.
            let (prefix, domain) = word.split_at(at);
            let local_start = prefix
                .find(|c: char| !matches!(c, '"' | '\'' | '(' | '<' | '['))
                .unwrap_or(prefix.len());
            let (opening, local) = prefix.split_at(local_start);
            match (opening.is_empty(), local.is_empty()) {
                (true, true) => word.to_owned(),
                // Nothing but quotes before the @: they may be the local part; hide them too.
                (false, true) => format!("{}{domain}", mask_local_part(opening)),
                _ => format!("{opening}{}{domain}", mask_local_part(local)),
            }
        })
        .collect()
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
    fn redact_emails_hides_addresses_inside_messages() {
        let msg = "Invalid value \"jane.doe@example.com\" for primary_email_address, see x@y.";
        let out = redact_emails(msg);
        assert!(!out.contains("jane.doe"), "{out}");
        assert!(out.contains("j***@example.com"), "{out}");
        assert!(out.starts_with("Invalid value"));
    }

    #[test]
    fn redact_emails_hides_local_parts_that_start_with_punctuation() {
        // Found by fuzz/fuzz_targets/email_address.rs.
        let out = redact_emails("value \"]@b.co\" rejected");
        assert!(!out.contains("]@b.co"), "{out}");
        assert_eq!(
            redact_emails("no address here, @handle"),
            "no address here, @handle"
        );
        let out = redact_emails("value \"\"@d.example\" rejected");
        assert!(!out.contains("\"@d.example"), "{out}");
    }

    #[test]
    fn accepts_ordinary_addresses_and_trims_them() {
        let e = EmailAddress::parse("  jane.doe+crm@example.co.uk ").unwrap();
        assert_eq!(e.as_str(), "jane.doe+crm@example.co.uk");
    }

    #[test]
    fn rejects_addresses_that_can_never_be_valid() {
        for bad in [
            "",
            "jane",
            "@example.com",
            "jane@",
            "jane@localhost",
            "jane@exa mple.com",
            "jane@.example.com",
            "jane@example..com",
            "a@b@example.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(EmailAddress::parse(&long).is_err());
    }

    #[test]
    fn debug_and_display_never_show_the_full_address() {
        let e = EmailAddress::parse("jane.doe@example.com").unwrap();
        assert_eq!(format!("{e}"), "j***@example.com");
        assert!(!format!("{e:?}").contains("jane.doe"));
    }

    #[test]
    fn full_name_uses_the_parts_that_are_known() {
        let mut u = UserProfile {
            user_id: "u1".into(),
            email: EmailAddress::parse("a@example.com").unwrap(),
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            created_at: None,
        };
        assert_eq!(u.full_name().as_deref(), Some("Ada Lovelace"));
        u.last_name = None;
        assert_eq!(u.full_name().as_deref(), Some("Ada"));
        u.first_name = None;
        assert_eq!(u.full_name(), None);
    }
}
