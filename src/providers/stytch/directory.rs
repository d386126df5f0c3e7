//! Stytch's users, for the backfill, with `Authorization: Basic base64(project_id:secret)`:
//! - a consumer project's: `POST /v1/users/search` with `{limit, cursor}` and no query (every
//!   user), answering `{results, results_metadata: {total, next_cursor}}`; a null or absent
//!   `next_cursor` ends it;
//! - a B2B project's members, which Stytch searches only within named organisations: every
//!   organisation from `POST /v1/b2b/organizations/search`, then each one's members from `POST
//!   /v1/b2b/organizations/members/search` with `{organization_ids: [id], limit, cursor}`. The
//!   answer names the organisations, so each member's workspace is written with its name.
//!
//! Both are the objects Stytch's webhooks carry, read the same way.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::directory::PageCursor;
use crate::directory::fetch::Credentials;
use crate::directory::{Directory, DirectoryError, Page};
use crate::directory::{ListUsers, Settings, Source};
use crate::domain::UserEvent;

const PROVIDER: &str = "Stytch";

/// Which API a Stytch project has (`STYTCH_PROJECT_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StytchProject {
    /// Users (`consumer`, the default).
    Consumer,
    /// Organisations and their members (`b2b`).
    B2b,
}

/// The users (or members) of one Stytch project.
pub struct StytchDirectory {
    http: reqwest::Client,
    api_url: String,
    project_id: String,
    secret: String,
    limit: u64,
    project: StytchProject,
    /// B2B: the organisations' names, from the members search's answers, by id.
    organisation_names: Mutex<HashMap<String, String>>,
    /// B2B: the last organisations page read (its cursor, its organisation ids).
    organisations: Mutex<Option<(Option<String>, OrganisationsPage)>>,
}

/// A page of organisations: their ids, and the cursor of the next page.
#[derive(Clone)]
struct OrganisationsPage {
    ids: Vec<String>,
    next: Option<String>,
}

/// Where a B2B walk is, kept in the checkpoint as JSON: the cursor of the organisations page
/// (none for the first), the organisation's place in it, and the cursor within its members.
#[derive(Serialize, Deserialize, Default)]
struct MembersCursor {
    organisations: Option<String>,
    organisation: usize,
    members: Option<String>,
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
            project: StytchProject::Consumer,
            organisation_names: Mutex::default(),
            organisations: Mutex::default(),
        }
    }

    /// The same, for a B2B project's members.
    pub fn b2b(self) -> Self {
        Self {
            project: StytchProject::B2b,
            ..self
        }
    }

    async fn search(
        &self,
        path: &str,
        mut body: Value,
        cursor: Option<&str>,
    ) -> Result<Value, DirectoryError> {
        if let Some(cursor) = cursor {
            body["cursor"] = cursor.into();
        }
        crate::directory::fetch::search(
            &self.http,
            &format!("{}{path}", self.api_url),
            &body,
            Credentials::Basic(&self.project_id, &self.secret),
            PROVIDER,
            "STYTCH_PROJECT_ID and STYTCH_SECRET",
        )
        .await
    }

    /// The organisations page at `cursor` (the last one read is kept: a walk reads each once).
    async fn organisations(
        &self,
        cursor: Option<&str>,
    ) -> Result<OrganisationsPage, DirectoryError> {
        if let Some((at, page)) = self.organisations.lock().expect("lock").as_ref()
            && at.as_deref() == cursor
        {
            return Ok(page.clone());
        }
        let mut answer = self
            .search(
                "/v1/b2b/organizations/search",
                json!({ "limit": self.limit }),
                cursor,
            )
            .await?;
        let organisations =
            crate::directory::fetch::list_in(&mut answer, "organizations", PROVIDER)?;
        let page = OrganisationsPage {
            ids: organisations
                .iter()
                .filter_map(|o| o["organization_id"].as_str().map(str::to_owned))
                .collect(),
            next: next_cursor(&answer),
        };
        *self.organisations.lock().expect("lock") = Some((cursor.map(str::to_owned), page.clone()));
        Ok(page)
    }

    async fn members_page(&self, cursor: &PageCursor) -> Result<Page, DirectoryError> {
        let at: MembersCursor = match cursor.token(PROVIDER)? {
            None => MembersCursor::default(),
            Some(token) => serde_json::from_str(token).map_err(|_| DirectoryError::Failed {
                provider: PROVIDER,
                reason: "the checkpoint's cursor is not a B2B members cursor".into(),
            })?,
        };
        let organisations = self.organisations(at.organisations.as_deref()).await?;
        let Some(organisation) = organisations.ids.get(at.organisation) else {
            // No organisation here (a project without any).
            return Ok(Page::default());
        };
        let mut answer = self
            .search(
                "/v1/b2b/organizations/members/search",
                json!({ "organization_ids": [organisation], "limit": self.limit }),
                at.members.as_deref(),
            )
            .await?;
        let members = crate::directory::fetch::list_in(&mut answer, "members", PROVIDER)?;
        if let Some(Value::Object(named)) = answer.get("organizations") {
            let mut names = self.organisation_names.lock().expect("lock");
            for (id, organisation) in named {
                if let Some(name) = organisation["organization_name"].as_str() {
                    names.insert(id.clone(), name.to_owned());
                }
            }
        }
        let next = match next_cursor(&answer) {
            Some(members) => Some(MembersCursor {
                members: Some(members),
                ..at
            }),
            None if at.organisation + 1 < organisations.ids.len() => Some(MembersCursor {
                organisation: at.organisation + 1,
                members: None,
                ..at
            }),
            None => organisations.next.map(|next| MembersCursor {
                organisations: Some(next),
                organisation: 0,
                members: None,
            }),
        };
        Ok(Page {
            users: members,
            next: next.map(|n| PageCursor::Token(serde_json::to_string(&n).expect("a cursor"))),
        })
    }
}

/// `results_metadata.next_cursor`, when there is a next page.
fn next_cursor(answer: &Value) -> Option<String> {
    answer
        .pointer("/results_metadata/next_cursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

impl Directory for StytchDirectory {
    fn route(&self) -> &'static str {
        crate::routes::STYTCH
    }

    async fn total(&self) -> Option<u64> {
        if self.project == StytchProject::B2b {
            // Counted per organisation only.
            return None;
        }
        // -1 when the workspace has totals turned off.
        self.search("/v1/users/search", json!({ "limit": 1 }), None)
            .await
            .ok()?
            .pointer("/results_metadata/total")?
            .as_u64()
    }

    async fn page(&self, cursor: &PageCursor) -> Result<Page, DirectoryError> {
        if self.project == StytchProject::B2b {
            return self.members_page(cursor).await;
        }
        let cursor = cursor.token(PROVIDER)?;
        let mut answer = self
            .search("/v1/users/search", json!({ "limit": self.limit }), cursor)
            .await?;
        let users = crate::directory::fetch::list_in(&mut answer, "results", PROVIDER)?;
        Ok(Page {
            users,
            next: next_cursor(&answer).map(PageCursor::Token),
        })
    }

    fn user_id(&self, user: &Value) -> String {
        user.get("member_id")
            .or_else(|| user.get("user_id"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    }

    fn event(&self, user: Value) -> Result<UserEvent, String> {
        let read = match self.project {
            StytchProject::Consumer => super::listed_user(user),
            StytchProject::B2b => {
                let name = user["organization_id"].as_str().and_then(|id| {
                    self.organisation_names
                        .lock()
                        .expect("lock")
                        .get(id)
                        .cloned()
                });
                super::listed_member(user, name)
            }
        };
        read.map_err(|e| e.to_string())
    }
}

/// Stytch's search APIs for the backfill: `STYTCH_PROJECT_ID`, `STYTCH_SECRET` and
/// `STYTCH_PROJECT_TYPE` (`consumer`, the default, or `b2b`; `STYTCH_API_URL`, a stand-in).
pub const SOURCE: Source = Source {
    route: crate::routes::STYTCH,
    open: |settings: &Settings<'_>| -> Result<Box<dyn ListUsers>, String> {
        let directory = StytchDirectory::new(
            settings.http.clone(),
            &(settings.var)("STYTCH_API_URL").unwrap_or_else(|| "https://api.stytch.com".into()),
            settings.required("STYTCH_PROJECT_ID", "")?,
            settings.required("STYTCH_SECRET", "")?,
            settings.page_size.unwrap_or(100),
        );
        match (settings.var)("STYTCH_PROJECT_TYPE").as_deref() {
            None | Some("consumer") => Ok(Box::new(directory)),
            Some("b2b") => Ok(Box::new(directory.b2b())),
            Some(other) => Err(format!(
                "STYTCH_PROJECT_TYPE is {other:?}: give consumer (the default) or b2b"
            )),
        }
    },
    read_exported: None,
};
