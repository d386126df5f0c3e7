//! Auth0's users, for the backfill: the Management API's `GET /api/v2/users?page=&per_page=<1–100>
//! &include_totals=true&sort=created_at:1` with a Management API token (`AUTH0_MANAGEMENT_TOKEN`,
//! or one from a client-credentials grant with `AUTH0_CLIENT_ID` and `AUTH0_CLIENT_SECRET`).
//! Auth0 pages through only the first 1,000 users of a query; a larger tenant is refused before
//! anything is written, with the way round: a user export job (format json), whose NDJSON
//! file `--from-file` reads with the same field names. Log Streams (the webhook) send another
//! shape, so the listed user is read here.
//!
//! Before the first page, every organisation (`GET /api/v2/organizations`) and its members
//! (`GET /api/v2/organizations/{id}/members`) are read, 100 at a time with checkpoint paging
//! (`take`, then `from` the answer's `next`, which has no 1,000-result cap), so each user
//! arrives with the workspaces the webhook's `organization.member.added` events link: one list
//! per organisation, not one call per user. The token needs `read:organizations` and
//! `read:organization_members` besides `read:users`.

use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::{Auth0User, Organization};
use crate::directory::PageCursor;
use crate::directory::fetch::ClientToken;
use crate::directory::{Directory, DirectoryError, Page};
use crate::directory::{
    ListUsers, Memberships, Settings, Source, listed_organisations, with_memberships,
};
use crate::domain::{UserChange, UserEvent};
use crate::providers::provider::{PayloadError, read_part};

const PROVIDER: &str = "Auth0";
/// Users a page, Auth0's most.
pub const MAX_PER_PAGE: u64 = 100;
/// Users Auth0 pages through, at most, for one query.
pub const PAGING_CAP: u64 = 1000;

/// How the Management API token is had.
pub enum Auth0Token {
    /// `AUTH0_MANAGEMENT_TOKEN`.
    Given(String),
    /// A client-credentials grant: `AUTH0_CLIENT_ID`, `AUTH0_CLIENT_SECRET`.
    Client { id: String, secret: String },
}

/// The users of one Auth0 tenant.
pub struct Auth0Directory {
    http: reqwest::Client,
    /// `https://<AUTH0_DOMAIN>`, or `AUTH0_API_URL`.
    base: String,
    /// The token's audience: `https://<AUTH0_DOMAIN>/api/v2/`.
    audience: String,
    credentials: Auth0Token,
    token: ClientToken,
    per_page: u64,
    /// Each user's organisations, by user id: read once, before the first page.
    memberships: OnceCell<Memberships>,
}

/// What a checkpoint-paged list asks for at once (Auth0's most).
const TAKE: u32 = 100;
/// What the credentials need, for Auth0's refusals.
const NEEDS: &str = "AUTH0_MANAGEMENT_TOKEN (or AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET) with read:users, read:organizations and read:organization_members";

impl Auth0Directory {
    /// `domain` is `AUTH0_DOMAIN` (`acme.us.auth0.com`); `api_url`, `AUTH0_API_URL`, replaces
    /// `https://<domain>` (a stand-in); `per_page` users a page (1–100).
    pub fn new(
        http: reqwest::Client,
        domain: &str,
        api_url: Option<&str>,
        credentials: Auth0Token,
        per_page: u64,
    ) -> Self {
        let domain = domain.trim_start_matches("https://").trim_end_matches('/');
        Self {
            http,
            base: api_url
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| format!("https://{domain}")),
            audience: format!("https://{domain}/api/v2/"),
            token: match &credentials {
                Auth0Token::Given(token) => ClientToken::given(token.clone()),
                Auth0Token::Client { .. } => ClientToken::new(),
            },
            credentials,
            per_page: per_page.clamp(1, MAX_PER_PAGE),
            memberships: OnceCell::new(),
        }
    }

    /// Every organisation's members, by user id: the organisations, then one members list
    /// each. A tenant where the list is not found has none.
    async fn memberships(&self) -> Result<&Memberships, DirectoryError> {
        self.memberships
            .get_or_try_init(|| async {
                let mut by_user = Memberships::new();
                let organisations = match self
                    .checkpoint_list("/api/v2/organizations", "organizations")
                    .await
                {
                    Err(DirectoryError::NotFound { .. }) => return Ok(by_user),
                    listed => listed?,
                };
                for organisation in organisations {
                    let organisation: Organization =
                        read_part(PROVIDER, "organization", &organisation)
                            .map_err(|e| DirectoryError::failed(PROVIDER, e))?;
                    let path = format!("/api/v2/organizations/{}/members", organisation.id);
                    let members = self.checkpoint_list(&path, "members").await?;
                    let workspace = organisation.workspace();
                    by_user.listed(workspace.id.clone());
                    for member in members {
                        if let Some(user_id) = member.get("user_id").and_then(Value::as_str) {
                            by_user.add(user_id.to_owned(), workspace.clone());
                        }
                    }
                }
                Ok(by_user)
            })
            .await
    }

    /// Every item of a checkpoint-paged list (`{<key>: […], "next"?}`), `take` 100 at a time,
    /// each next page `from` the last answer's `next`; a `next` already read is refused.
    async fn checkpoint_list(&self, path: &str, key: &str) -> Result<Vec<Value>, DirectoryError> {
        let mut items = Vec::new();
        let mut from: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        loop {
            let take = TAKE.to_string();
            let mut query = vec![("take", take.as_str())];
            if let Some(from) = &from {
                query.push(("from", from));
            }
            let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.base), &query)
                .map_err(|e| DirectoryError::failed(PROVIDER, e))?;
            let token = self.token().await?;
            let mut answer =
                crate::directory::fetch::get_json(&self.http, url.as_str(), token, PROVIDER, NEEDS)
                    .await?;
            items.extend(crate::directory::fetch::list_in(
                &mut answer,
                key,
                PROVIDER,
            )?);
            match answer
                .get("next")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                None => return Ok(items),
                Some(next) if seen.insert(next.to_owned()) => from = Some(next.to_owned()),
                Some(_) => {
                    return Err(DirectoryError::Loops {
                        route: crate::routes::AUTH0,
                        what: format!("{path} gave a next checkpoint already read"),
                    });
                }
            }
        }
    }

    async fn token(&self) -> Result<&str, DirectoryError> {
        let grant = || {
            // A given token is held from the start: only a client's grant is ever sent.
            let (id, secret) = match &self.credentials {
                Auth0Token::Client { id, secret } => (id.as_str(), secret.as_str()),
                Auth0Token::Given(_) => ("", ""),
            };
            self.http
                .post(format!("{}/oauth/token", self.base))
                .json(&json!({"grant_type": "client_credentials", "client_id": id,
                        "client_secret": secret, "audience": self.audience}))
        };
        self.token
            .get(grant, PROVIDER, "AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET")
            .await
    }
}

impl Directory for Auth0Directory {
    fn route(&self) -> &'static str {
        crate::routes::AUTH0
    }

    async fn total(&self) -> Option<u64> {
        None
    }

    async fn page(&self, cursor: &PageCursor) -> Result<Page, DirectoryError> {
        self.memberships().await?;
        let page = cursor.page_number(self.per_page, PROVIDER)?;
        let url = format!(
            "{}/api/v2/users?page={page}&per_page={}&include_totals=true&sort=created_at%3A1",
            self.base, self.per_page
        );
        let token = self.token().await?;
        let mut answer = crate::directory::fetch::get_json(
            &self.http,
            &url,
            token,
            PROVIDER,
            "AUTH0_MANAGEMENT_TOKEN (or AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET)",
        )
        .await?;
        let total = answer["total"].as_u64().unwrap_or(0);
        if page == 0 && total > PAGING_CAP {
            return Err(DirectoryError::Failed {
                provider: PROVIDER,
                reason: format!(
                    "the tenant has {total} users and Auth0's list pages through only the first {PAGING_CAP}: run a user export job (POST /api/v2/jobs/users-exports, format json), gunzip its file and give it to --from-file"
                ),
            });
        }
        let users = crate::directory::fetch::list_in(&mut answer, "users", PROVIDER)?;
        let start = answer["start"].as_u64().unwrap_or(page * self.per_page);
        let seen = start + users.len() as u64;
        let next = (!users.is_empty() && seen < total).then_some(PageCursor::Offset(seen));
        Ok(Page { users, next })
    }

    fn event(&self, user: Value) -> Result<UserEvent, String> {
        let event = listed_user(user).map_err(|e| e.to_string())?;
        Ok(with_memberships(event, self.memberships.get()))
    }

    fn organisations(&self) -> Vec<String> {
        listed_organisations(self.memberships.get())
    }
}

/// A user as Auth0's Management API lists it, or its export job writes it (same field names).
pub fn listed_user(raw: Value) -> Result<UserEvent, PayloadError> {
    let user: Auth0User = read_part(PROVIDER, "user", &raw)?;
    let profile = user.profile(None)?;
    let updated_at = profile.details.updated_at;
    Ok(UserEvent::upserted(UserChange::Updated, profile).at(updated_at))
}

/// Auth0's Management API for the backfill: `AUTH0_DOMAIN` and `AUTH0_MANAGEMENT_TOKEN`, or an
/// application's `AUTH0_CLIENT_ID` and `AUTH0_CLIENT_SECRET` (`AUTH0_API_URL`, a stand-in).
pub const SOURCE: Source = Source {
    route: crate::routes::AUTH0,
    open: |settings: &Settings<'_>| -> Result<Box<dyn ListUsers>, String> {
        let var = settings.var;
        let credentials = match (
            var("AUTH0_MANAGEMENT_TOKEN"),
            var("AUTH0_CLIENT_ID"),
            var("AUTH0_CLIENT_SECRET"),
        ) {
            (Some(token), _, _) => Auth0Token::Given(token),
            (None, Some(id), Some(secret)) => Auth0Token::Client { id, secret },
            _ => {
                return Err("set AUTH0_MANAGEMENT_TOKEN, or AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET of an application authorised for the Management API (read:users)".into());
            }
        };
        Ok(Box::new(Auth0Directory::new(
            settings.http.clone(),
            &settings.required("AUTH0_DOMAIN", "give your tenant's domain")?,
            var("AUTH0_API_URL").as_deref(),
            credentials,
            settings.page_size.unwrap_or(100),
        )))
    },
    read_exported: Some(|user| listed_user(user).map_err(|e| e.to_string())),
};
