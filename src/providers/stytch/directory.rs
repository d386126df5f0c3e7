//! Stytch's consumer users, for the backfill: `POST /v1/users/search` with `{limit, cursor}` and
//! no query (every user), `Authorization: Basic base64(project_id:secret)`, answering
//! `{results, results_metadata: {total, next_cursor}}`; a null or absent `next_cursor` ends it.
//! The results are the user objects Stytch's webhooks carry, read the same way. (B2B members,
//! searched per organisation, are not read yet.)

use serde_json::{Value, json};

use crate::backfill::{Credentials, Directory, DirectoryError, Page};
use crate::checkpoint::PageCursor;
use crate::domain::UserEvent;

const PROVIDER: &str = "Stytch";

/// The consumer users of one Stytch project.
pub struct StytchDirectory {
    http: reqwest::Client,
    api_url: String,
    project_id: String,
    secret: String,
    limit: u64,
}

impl StytchDirectory {
    /// `api_url` is `STYTCH_API_URL` (default `https://api.stytch.com`; `https://test.stytch.com`
    /// for a test project), with `STYTCH_PROJECT_ID` and `STYTCH_SECRET`; `limit` 1–1000.
    pub fn new(
        http: reqwest::Client,
        api_url: &str,
        project_id: String,
        secret: String,
        limit: u64,
    ) -> Self {
        Self {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            project_id,
            secret,
            limit: limit.clamp(1, 1000),
        }
    }

    async fn search(&self, limit: u64, cursor: Option<&str>) -> Result<Value, DirectoryError> {
        let mut body = json!({ "limit": limit });
        if let Some(cursor) = cursor {
            body["cursor"] = cursor.into();
        }
        crate::backfill::search(
            &self.http,
            &format!("{}/v1/users/search", self.api_url),
            &body,
            Credentials::Basic(&self.project_id, &self.secret),
            PROVIDER,
            "STYTCH_PROJECT_ID and STYTCH_SECRET",
        )
        .await
    }
}

impl Directory for StytchDirectory {
    fn route(&self) -> &'static str {
        "stytch"
    }

    async fn total(&self) -> Option<u64> {
        // -1 when the workspace has totals turned off.
        self.search(1, None)
            .await
            .ok()?
            .pointer("/results_metadata/total")?
            .as_u64()
    }

    async fn page(&self, cursor: &PageCursor) -> Result<Page, DirectoryError> {
        let cursor = cursor.token(PROVIDER)?;
        let answer = self.search(self.limit, cursor).await?;
        let users = match answer.get("results") {
            Some(Value::Array(users)) => users.clone(),
            _ => {
                return Err(DirectoryError::Failed {
                    provider: PROVIDER,
                    reason: "the answer has no results list".into(),
                });
            }
        };
        let next = answer
            .pointer("/results_metadata/next_cursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(|c| PageCursor::Token(c.to_owned()));
        Ok(Page { users, next })
    }

    fn event(&self, user: Value) -> Result<UserEvent, String> {
        super::listed_user(user).map_err(|e| e.to_string())
    }
}
