//! Clerk's Backend API list of users, for the backfill: `GET /v1/users?limit=&offset=&order_by=`
//! (a bare JSON array, no cursor: the last page is shorter than `limit`), the total from
//! `GET /v1/users/count`, `Authorization: Bearer <CLERK_SECRET_KEY>`. Users are read oldest
//! first (`+created_at`), so users who sign up during the walk land at the end instead of
//! shifting the offsets of those not read yet. A `429` is waited out for its `Retry-After`.
//!
//! Before the first page, every organisation membership of the instance is read (`GET
//! /v1/organization_memberships`, 500 a page, `{data, total_count}`), so each user arrives with
//! the workspaces the webhook's `organizationMembership.*` events would link. An instance
//! without organisations (the endpoint answers `403` or `404`) gives none.

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::directory::PageCursor;
use crate::directory::{Directory, DirectoryError, Page};
use crate::directory::{ListUsers, Memberships, Settings, Source, with_memberships};
use crate::domain::UserEvent;
use crate::providers::provider::read_part;

/// Clerk's documented page size limit.
pub const MAX_LIMIT: u64 = 500;
const PROVIDER: &str = "Clerk";

/// The list API of one Clerk instance.
pub struct ClerkDirectory {
    http: reqwest::Client,
    api_url: String,
    secret_key: String,
    limit: u64,
    /// Each user's organisations, by user id: read once, before the first page.
    memberships: OnceCell<Memberships>,
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
            memberships: OnceCell::new(),
        }
    }

    /// Every organisation membership of the instance, by user id.
    async fn memberships(&self) -> Result<&Memberships, DirectoryError> {
        self.memberships
            .get_or_try_init(|| async {
                let mut by_user = Memberships::new();
                let mut offset = 0u64;
                loop {
                    let path =
                        format!("/v1/organization_memberships?limit={MAX_LIMIT}&offset={offset}");
                    let mut answer = match self.get(&path).await {
                        Ok(answer) => answer,
                        // Organisations are not enabled for the instance.
                        Err(DirectoryError::Unauthorized { status: 403, .. }) => break,
                        Err(DirectoryError::NotFound { .. }) => break,
                        Err(e) => return Err(e),
                    };
                    let page = crate::directory::fetch::list_in(&mut answer, "data", PROVIDER)?;
                    let read = page.len() as u64;
                    for membership in page {
                        let membership: super::Membership =
                            read_part(PROVIDER, "membership", &membership)
                                .map_err(|e| DirectoryError::failed(PROVIDER, e))?;
                        by_user.add(membership.user_id().to_owned(), membership.workspace());
                    }
                    offset += read;
                    if read < MAX_LIMIT {
                        break;
                    }
                }
                Ok(by_user)
            })
            .await
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
        self.memberships().await?;
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
        let event = super::listed_user(user).map_err(|e| e.to_string())?;
        Ok(with_memberships(event, self.memberships.get()))
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
