//! WorkOS's User Management list of users, for the backfill:
//! `GET /user_management/users?limit=100&order=asc&after=<cursor>` with `Authorization: Bearer
//! <WORKOS_API_KEY>`, answering `{object: "list", data: [...], list_metadata: {before, after}}`;
//! `after: null` is the last page. Oldest first, so users created during the walk come last.

use serde_json::Value;

use crate::directory::PageCursor;
use crate::directory::{Directory, DirectoryError, Page};
use crate::directory::{ListUsers, Settings, Source};
use crate::domain::UserEvent;

/// WorkOS's documented page size limit.
pub const MAX_LIMIT: u64 = 100;
const PROVIDER: &str = "WorkOS";

/// The user list of one WorkOS environment.
pub struct WorkOsDirectory {
    http: reqwest::Client,
    api_url: String,
    api_key: String,
    limit: u64,
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
        }
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
        let mut url = format!(
            "{}/user_management/users?limit={}&order=asc",
            self.api_url, self.limit
        );
        if let Some(after) = cursor.token(PROVIDER)? {
            // WorkOS cursors are object ids (`user_…`): letters, digits and `_`.
            if !after
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(DirectoryError::Failed {
                    provider: PROVIDER,
                    reason: "the checkpoint's cursor is not a WorkOS id".into(),
                });
            }
            url.push_str("&after=");
            url.push_str(after);
        }
        let mut answer = crate::directory::fetch::get_json(
            &self.http,
            &url,
            &self.api_key,
            PROVIDER,
            "WORKOS_API_KEY",
        )
        .await?;
        let users = crate::directory::fetch::list_in(&mut answer, "data", PROVIDER)?;
        let next = answer
            .pointer("/list_metadata/after")
            .and_then(Value::as_str)
            .map(|after| PageCursor::Token(after.to_owned()));
        Ok(Page { users, next })
    }

    fn event(&self, user: Value) -> Result<UserEvent, String> {
        super::listed_user(user).map_err(|e| e.to_string())
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
