//! WorkOS's User Management list of users, for the backfill:
//! `GET /user_management/users?limit=100&order=asc&after=<cursor>` with `Authorization: Bearer
//! <WORKOS_API_KEY>`, answering `{object: "list", data: [...], list_metadata: {before, after}}`;
//! `after: null` is the last page. Oldest first, so users created during the walk come last.
//!
//! Before the first page, every organisation (`GET /organizations`) and its active memberships
//! (`GET /user_management/organization_memberships?organization_id=`, which needs an
//! organisation or a user) are read, one list per organisation rather than one per user, so
//! each user arrives with the workspaces the webhook's `organization_membership.*` events would
//! link, named.

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::directory::PageCursor;
use crate::directory::{Directory, DirectoryError, Page};
use crate::directory::{
    ListUsers, Memberships, Settings, Source, listed_organisations, with_memberships,
};
use crate::domain::UserEvent;
use crate::providers::provider::read_part;

/// WorkOS's documented page size limit.
pub const MAX_LIMIT: u64 = 100;
const PROVIDER: &str = "WorkOS";

/// The user list of one WorkOS environment.
pub struct WorkOsDirectory {
    http: reqwest::Client,
    api_url: String,
    api_key: String,
    limit: u64,
    /// Each user's organisations, by user id: read once, before the first page.
    memberships: OnceCell<Memberships>,
}

impl WorkOsDirectory {
    /// `api_url` is `WORKOS_API_URL` (default `https://api.workos.com`), `api_key`
    /// `WORKOS_API_KEY`; `limit` users a page (1–100).
    pub fn new(http: reqwest::Client, api_url: &str, api_key: String, limit: u64) -> Self {
        Self {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            api_key,
            limit: limit.clamp(1, MAX_LIMIT),
            memberships: OnceCell::new(),
        }
    }

    /// One page of the list at `path` (with its filters, not `limit` or `after`): `limit`
    /// items, oldest first, after the item `after`; and the cursor of the next page.
    async fn list_page(
        &self,
        path: &str,
        limit: u64,
        after: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>), DirectoryError> {
        let join = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{}{path}{join}limit={limit}&order=asc", self.api_url);
        if let Some(after) = after {
            url.push_str("&after=");
            url.push_str(&ascii_id(after)?);
        }
        let mut answer = crate::directory::fetch::get_json(
            &self.http,
            &url,
            &self.api_key,
            PROVIDER,
            "WORKOS_API_KEY",
        )
        .await?;
        let items = crate::directory::fetch::list_in(&mut answer, "data", PROVIDER)?;
        let next = answer
            .pointer("/list_metadata/after")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok((items, next))
    }

    /// Every item of the list at `path`, page by page.
    async fn every(&self, path: &str) -> Result<Vec<Value>, DirectoryError> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (page, next) = self.list_page(path, MAX_LIMIT, after.as_deref()).await?;
            items.extend(page);
            if next.is_none() {
                return Ok(items);
            }
            if next == after {
                return Err(DirectoryError::Loops {
                    route: crate::routes::WORKOS,
                    what: "a list of organisations or memberships gave the same cursor again"
                        .into(),
                });
            }
            after = next;
        }
    }

    /// Every active organisation membership, by user id.
    async fn memberships(&self) -> Result<&Memberships, DirectoryError> {
        self.memberships
            .get_or_try_init(|| async {
                let mut by_user = Memberships::new();
                for organization in self.every("/organizations").await? {
                    let Some(id) = organization["id"].as_str() else {
                        continue;
                    };
                    let name = organization["name"].as_str().map(str::to_owned);
                    by_user.listed(id.to_owned());
                    let path = format!(
                        "/user_management/organization_memberships?organization_id={}",
                        ascii_id(id)?
                    );
                    for item in self.every(&path).await? {
                        let membership: super::Membership =
                            read_part(PROVIDER, "membership", &item)
                                .map_err(|e| DirectoryError::failed(PROVIDER, e))?;
                        if membership.is_active() {
                            by_user.add(
                                membership.user_id().to_owned(),
                                membership.workspace(name.clone()),
                            );
                        }
                    }
                }
                Ok(by_user)
            })
            .await
    }
}

/// A WorkOS object id (`user_…`, `org_…`) as a query may carry it: letters, digits and `_`.
fn ascii_id(id: &str) -> Result<String, DirectoryError> {
    if id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(id.to_owned())
    } else {
        Err(DirectoryError::Failed {
            provider: PROVIDER,
            reason: "an id in the answer or the checkpoint is not a WorkOS id".into(),
        })
    }
}

impl Directory for WorkOsDirectory {
    fn route(&self) -> &'static str {
        crate::routes::WORKOS
    }

    async fn total(&self) -> Option<u64> {
        None
    }

    async fn page(&self, cursor: &PageCursor) -> Result<Page, DirectoryError> {
        self.memberships().await?;
        let after = cursor.token(PROVIDER)?;
        let (users, next) = self
            .list_page("/user_management/users", self.limit, after)
            .await?;
        let next = next.map(PageCursor::Token);
        Ok(Page { users, next })
    }

    fn event(&self, user: Value) -> Result<UserEvent, String> {
        let event = super::listed_user(user).map_err(|e| e.to_string())?;
        Ok(with_memberships(event, self.memberships.get()))
    }

    fn organisations(&self) -> Vec<String> {
        listed_organisations(self.memberships.get())
    }
}

/// WorkOS's list API for the backfill: `WORKOS_API_KEY` (and `WORKOS_API_URL`, a stand-in).
pub const SOURCE: Source = Source {
    route: crate::routes::WORKOS,
    open: |settings: &Settings<'_>| -> Result<Box<dyn ListUsers>, String> {
        Ok(Box::new(WorkOsDirectory::new(
            settings.http.clone(),
            &(settings.var)("WORKOS_API_URL").unwrap_or_else(|| "https://api.workos.com".into()),
            settings.required("WORKOS_API_KEY", "give the environment's API key (sk_…)")?,
            settings.page_size.unwrap_or(100),
        )))
    },
    read_exported: Some(|user| super::listed_user(user).map_err(|e| e.to_string())),
};
