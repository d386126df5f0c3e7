//! Supabase Auth's admin list of users, for the backfill: `GET
//! /auth/v1/admin/users?page=&per_page=&sort=created_at%20asc` with the service-role key as
//! `apikey` and as `Authorization: Bearer`, answering `{users: [...], aud}` with the total in
//! `X-Total-Count`. Pages are numbered from 1; the `Link` header's URLs lack the gateway's
//! `/auth/v1` prefix on hosted projects, so the next page is computed rather than followed.
//! Oldest first, so users who sign up during the walk land at the end.
//!
//! The listed user is the object the `before-user-created` hook sends ([`SupabaseUser`]), so
//! users backfilled for the `standard` route are read, and mapped, as the hook's are. For the
//! `supabase-db` route (database webhooks, which carry `auth.users` rows), `user_metadata` and
//! `app_metadata` are offered to the mapping under the row's names, `raw_user_meta_data` and
//! `raw_app_meta_data`, so one mapping reads both.

use serde_json::Value;

use super::SupabaseUser;
use crate::directory::PageCursor;
use crate::directory::fetch::Credentials;
use crate::directory::{Directory, DirectoryError, Page};
use crate::directory::{ListUsers, Settings, Source};
use crate::domain::{UserChange, UserEvent};
use crate::providers::provider::{PayloadError, read_part};

const PROVIDER: &str = "Supabase";
const NAME: &str = "Supabase admin users";
const KEY: &str = "SUPABASE_SERVICE_ROLE_KEY";

/// The users of one Supabase project.
pub struct SupabaseDirectory {
    http: reqwest::Client,
    url: String,
    key: String,
    per_page: u64,
    route: &'static str,
}

impl SupabaseDirectory {
    /// `url` is `SUPABASE_URL` (`https://<ref>.supabase.co`), `key` `SUPABASE_SERVICE_ROLE_KEY`;
    /// `per_page` users a page; `route` is `standard` (the Auth hook) or `supabase-db`.
    pub fn new(
        http: reqwest::Client,
        url: &str,
        key: String,
        per_page: u64,
        route: &'static str,
    ) -> Self {
        Self {
            http,
            url: url.trim_end_matches('/').to_owned(),
            key,
            per_page: per_page.max(1),
            route,
        }
    }

    async fn get(&self, page: u64, per_page: u64) -> Result<(Option<u64>, Value), DirectoryError> {
        let url = format!(
            "{}/auth/v1/admin/users?page={page}&per_page={per_page}&sort=created_at%20asc",
            self.url
        );
        let (headers, body) = crate::directory::fetch::fetch(
            &self.http,
            &url,
            Credentials::ApiKeyAndBearer(&self.key),
            PROVIDER,
            KEY,
        )
        .await?;
        let total = headers
            .get("x-total-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok((total, body))
    }
}

impl Directory for SupabaseDirectory {
    fn route(&self) -> &'static str {
        self.route
    }

    async fn total(&self) -> Option<u64> {
        self.get(1, 1).await.ok()?.0
    }

    async fn page(&self, cursor: &PageCursor) -> Result<Page, DirectoryError> {
        let page = cursor.page_number(self.per_page, PROVIDER)?;
        let (total, mut answer) = self.get(page + 1, self.per_page).await?;
        let users = crate::directory::fetch::list_in(&mut answer, "users", PROVIDER)?;
        let read = page * self.per_page + users.len() as u64;
        let more = match total {
            Some(total) => read < total && !users.is_empty(),
            None => users.len() as u64 == self.per_page,
        };
        Ok(Page {
            users,
            next: more.then_some(PageCursor::Offset(read)),
        })
    }

    fn event(&self, user: Value) -> Result<UserEvent, String> {
        listed_user(self.route, user).map_err(|e| e.to_string())
    }
}

/// A user as the admin API lists it, for `route` (`standard` or `supabase-db`, see above).
pub fn listed_user(route: &'static str, user: Value) -> Result<UserEvent, PayloadError> {
    let parsed: SupabaseUser = read_part(NAME, "user", &user)?;
    let at = parsed.updated_at();
    let raw = match (route, user) {
        (crate::routes::SUPABASE_DB, Value::Object(mut row)) => {
            for (listed, column) in [
                ("user_metadata", "raw_user_meta_data"),
                ("app_metadata", "raw_app_meta_data"),
            ] {
                if let Some(value) = row.remove(listed) {
                    row.insert(column.into(), value);
                }
            }
            Value::Object(row)
        }
        (_, user) => user,
    };
    Ok(UserEvent::upserted(UserChange::Updated, parsed.profile(route, raw)?).at(at))
}

/// Supabase's Auth admin API for the backfill of database-webhook users: `SUPABASE_URL` and
/// `SUPABASE_SERVICE_ROLE_KEY`.
pub const SOURCE: Source = Source {
    route: crate::routes::SUPABASE_DB,
    open: |settings| open(settings, crate::routes::SUPABASE_DB),
    read_exported: Some(|user| {
        listed_user(crate::routes::SUPABASE_DB, user).map_err(|e| e.to_string())
    }),
};

/// The `standard` route's list API, when its sender is Supabase's Auth hook (`SUPABASE_URL`
/// set); any other Standard Webhooks sender has none.
pub const STANDARD_SOURCE: Source = Source {
    route: crate::routes::STANDARD,
    open: |settings| {
        if (settings.var)("SUPABASE_URL").is_none() {
            return Err("standard has no list API to read (a Standard Webhooks sender: set SUPABASE_URL if it is Supabase's Auth hook); --from-file reads a CSV export for any route".into());
        }
        open(settings, crate::routes::STANDARD)
    },
    read_exported: Some(|user| {
        listed_user(crate::routes::STANDARD, user).map_err(|e| e.to_string())
    }),
};

fn open(settings: &Settings<'_>, route: &'static str) -> Result<Box<dyn ListUsers>, String> {
    Ok(Box::new(SupabaseDirectory::new(
        settings.http.clone(),
        &settings.required("SUPABASE_URL", "give https://<project-ref>.supabase.co")?,
        settings.required(
            "SUPABASE_SERVICE_ROLE_KEY",
            "give the project's service-role key",
        )?,
        settings.page_size.unwrap_or(100),
        route,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user as the admin API lists it (shaped like the Auth server's `User`).
    fn listed() -> Value {
        serde_json::json!({"id": "6b9c1f3e-2f4a-4c8e-9a51-0d2f6c7e8a90", "aud": "authenticated",
            "email": "jane@example.com", "email_confirmed_at": "2024-05-01T09:00:00.123456Z",
            "phone": "", "last_sign_in_at": "2024-06-01T12:00:00Z",
            "app_metadata": {"provider": "email"}, "user_metadata": {"full_name": "Jane Doe", "plan": "Team"},
            "identities": [], "created_at": "2024-05-01T08:59:00Z", "updated_at": "2024-06-01T12:00:00Z"})
    }

    fn profile(event: &UserEvent) -> &crate::domain::UserProfile {
        match event {
            UserEvent::Upserted { user, .. } => user,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_listed_user_reads_as_the_hook_s_with_its_times() {
        let event = listed_user("standard", listed()).unwrap();
        let user = profile(&event);
        assert_eq!(user.email.as_str(), "jane@example.com");
        assert_eq!(
            (user.first_name.as_deref(), user.last_name.as_deref()),
            (Some("Jane"), Some("Doe"))
        );
        assert!(user.created_at.is_some() && user.details.last_sign_in_at.is_some());
        assert_eq!(user.details.email_verified, Some(true));
        let raw = user.details.raw.as_deref().unwrap();
        assert_eq!(raw.pointer("/user_metadata/plan"), Some(&"Team".into()));
    }

    #[test]
    fn for_the_database_route_the_metadata_has_the_row_s_names() {
        let event = listed_user("supabase-db", listed()).unwrap();
        let user = profile(&event);
        assert_eq!(user.details.provider, "supabase-db");
        let raw = user.details.raw.as_deref().unwrap();
        assert_eq!(
            raw.pointer("/raw_user_meta_data/plan"),
            Some(&"Team".into())
        );
        assert_eq!(
            raw.pointer("/raw_app_meta_data/provider"),
            Some(&"email".into())
        );
        assert!(raw.get("user_metadata").is_none());
    }

    #[test]
    fn phone_only_users_are_skipped_for_their_missing_email() {
        let mut user = listed();
        user["email"] = "".into();
        assert_eq!(
            listed_user("standard", user).unwrap_err(),
            PayloadError::NoEmail
        );
    }
}
