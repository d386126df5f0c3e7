//! Clerk's Backend API list of users, for the backfill: `GET /v1/users?limit=&offset=&order_by=`
//! (a bare JSON array, no cursor: the last page is shorter than `limit`), the total from
//! `GET /v1/users/count`, `Authorization: Bearer <CLERK_SECRET_KEY>`. Users are read oldest
//! first (`+created_at`), so users who sign up during the walk land at the end instead of
//! shifting the offsets of those not read yet. A `429` is waited out for its `Retry-After`.

use serde_json::Value;

use crate::directory::PageCursor;
use crate::directory::{Directory, DirectoryError, Page};
use crate::directory::{ListUsers, Settings, Source};
use crate::domain::UserEvent;

/// Clerk's documented page size limit.
pub const MAX_LIMIT: u64 = 500;
const PROVIDER: &str = "Clerk";

/// The list API of one Clerk instance.
pub struct ClerkDirectory {
    http: reqwest::Client,
    api_url: String,
    secret_key: String,
    limit: u64,
}

impl ClerkDirectory {
    /// `api_url` is `CLERK_API_URL` (default `https://api.clerk.com`), `secret_key`
    /// `CLERK_SECRET_KEY`; `limit` users a page (1–500).
    pub fn new(http: reqwest::Client, api_url: &str, secret_key: String, limit: u64) -> Self {
        Self {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            secret_key,
            limit: limit.clamp(1, MAX_LIMIT),
        }
    }

    async fn get(&self, path: &str) -> Result<Value, DirectoryError> {
        let url = format!("{}{path}", self.api_url);
        crate::directory::fetch::get_json(
            &self.http,
            &url,
            &self.secret_key,
            PROVIDER,
            "CLERK_SECRET_KEY",
        )
        .await
    }
}

impl Directory for ClerkDirectory {
    fn route(&self) -> &'static str {
        crate::routes::CLERK
    }

    async fn total(&self) -> Option<u64> {
        self.get("/v1/users/count")
            .await
            .ok()?
            .get("total_count")?
            .as_u64()
    }

    async fn page(&self, cursor: &PageCursor) -> Result<Page, DirectoryError> {
        let offset = cursor.offset(PROVIDER)?;
        let answer = self
            .get(&format!(
                "/v1/users?limit={}&offset={offset}&order_by=%2Bcreated_at",
                self.limit
            ))
            .await?;
        let Value::Array(users) = answer else {
            return Err(DirectoryError::Failed {
                provider: PROVIDER,
                reason: "the list of users is not a JSON array".into(),
            });
        };
        let next =
            (users.len() as u64 == self.limit).then(|| PageCursor::Offset(offset + self.limit));
        Ok(Page { users, next })
    }

    fn event(&self, user: Value) -> Result<UserEvent, String> {
        super::listed_user(user).map_err(|e| e.to_string())
    }
}

/// Clerk's list API for the backfill: `CLERK_SECRET_KEY` (and `CLERK_API_URL`, a stand-in).
pub const SOURCE: Source = Source {
    route: crate::routes::CLERK,
    open: |settings: &Settings<'_>| -> Result<Box<dyn ListUsers>, String> {
        Ok(Box::new(ClerkDirectory::new(
            settings.http.clone(),
            &(settings.var)("CLERK_API_URL").unwrap_or_else(|| "https://api.clerk.com".into()),
            settings.required("CLERK_SECRET_KEY", "give the instance's secret key")?,
            settings.page_size.unwrap_or(100),
        )))
    },
    read_exported: Some(|user| super::listed_user(user).map_err(|e| e.to_string())),
};
