//! Supabase Auth. Its users reach the function two ways: the `before-user-created` Auth hook,
//! a Standard Webhooks delivery on the `standard` route (read in [`crate::providers::standard`]
//! with [`SupabaseUser`]), and database webhooks on `auth.users` on `supabase-db` ([`database`],
//! which carry table rows). The Auth admin API lists the hook's user object ([`directory`]).

pub mod database;
pub mod directory;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::domain::{Timestamp, UserDetails, UserProfile, name_part, split_full_name};
use crate::providers::provider::{PayloadError, required_email};

/// A Supabase Auth user as the `before-user-created` hook sends it and `GET
/// /auth/v1/admin/users` lists it (the Auth server's one `User` struct): `id`, one `email`,
/// names under `user_metadata`, times in RFC 3339 (`0001-01-01…` in the hook, before the
/// user exists, read as unknown).
#[derive(Deserialize)]
pub(crate) struct SupabaseUser {
    id: String,
    email: Option<String>,
    phone: Option<String>,
    #[serde(default)]
    user_metadata: Map<String, Value>,
    created_at: Option<String>,
    updated_at: Option<String>,
    email_confirmed_at: Option<String>,
    last_sign_in_at: Option<String>,
}

impl SupabaseUser {
    /// The user, for `route`; `raw` is the object as delivered (what a mapping reads).
    pub(crate) fn profile(
        self,
        route: &'static str,
        raw: Value,
    ) -> Result<UserProfile, PayloadError> {
        let email = required_email(self.email.as_deref())?;
        let (first_name, last_name) = supabase_names(&self.user_metadata);
        let time = |t: Option<&str>| t.and_then(Timestamp::parse);
        Ok(UserProfile {
            user_id: self.id,
            email,
            first_name,
            last_name,
            created_at: time(self.created_at.as_deref()),
            details: UserDetails {
                phone: name_part(self.phone.as_deref()),
                email_verified: Some(self.email_confirmed_at.is_some()),
                updated_at: time(self.updated_at.as_deref()),
                last_sign_in_at: time(self.last_sign_in_at.as_deref()),
                ..UserDetails::raw(route, raw)
            },
        })
    }

    /// When this version of the user was written (orders a listed user against webhooks).
    pub(crate) fn updated_at(&self) -> Option<Timestamp> {
        self.updated_at.as_deref().and_then(Timestamp::parse)
    }
}

/// Supabase sign-up forms and OAuth providers put names under different keys: try the
/// common ones, and split a single full name at its first space.
pub(crate) fn supabase_names(meta: &Map<String, Value>) -> (Option<String>, Option<String>) {
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| name_part(meta.get(*k).and_then(Value::as_str)))
    };
    let first = get(&["first_name", "given_name"]);
    let last = get(&["last_name", "family_name"]);
    if first.is_some() || last.is_some() {
        return (first, last);
    }
    split_full_name(get(&["full_name", "name"]).as_deref())
}
