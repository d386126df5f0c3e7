//! Kinde's Management API list of users, for the backfill. A token first: an M2M application's
//! `POST {KINDE_ISSUER_URL}/oauth2/token` (form: `grant_type=client_credentials`, `client_id`,
//! `client_secret`, `audience={KINDE_ISSUER_URL}/api`), then `GET /api/v1/users?page_size=500`
//! with `next_token` passed back until it is absent or empty. The listed user is not the
//! webhook's (organisations are codes, `created_on`, `picture`, `last_signed_in`), so it is read
//! here; each organisation code becomes a workspace, as a webhook's organisations do.

use serde_json::Value;

use super::KindeUser;
use crate::directory::PageCursor;
use crate::directory::fetch::ClientToken;
use crate::directory::{Directory, DirectoryError, Page};
use crate::directory::{ListUsers, Settings, Source};
use crate::domain::{UserChange, UserEvent};
use crate::providers::provider::{PayloadError, read_part};

const PROVIDER: &str = "Kinde";

/// The users of one Kinde business.
pub struct KindeDirectory {
    http: reqwest::Client,
    issuer: String,
    client_id: String,
    client_secret: String,
    page_size: u64,
    token: ClientToken,
}

impl KindeDirectory {
    /// `issuer` is `KINDE_ISSUER_URL` (`https://<sub>.kinde.com`), with the M2M application's
    /// `KINDE_CLIENT_ID` and `KINDE_CLIENT_SECRET`; `page_size` 1–500.
    pub fn new(
        http: reqwest::Client,
        issuer: &str,
        client_id: String,
        client_secret: String,
        page_size: u64,
    ) -> Self {
        Self {
            http,
            issuer: issuer.trim_end_matches('/').to_owned(),
            client_id,
            client_secret,
            page_size: page_size.clamp(1, 500),
            token: ClientToken::new(),
        }
    }

    /// The Management API token, fetched once (it lasts a day).
    async fn token(&self) -> Result<&str, DirectoryError> {
        let grant = || {
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &self.client_id)
                .append_pair("client_secret", &self.client_secret)
                .append_pair("audience", &format!("{}/api", self.issuer))
                .finish();
            self.http
                .post(format!("{}/oauth2/token", self.issuer))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
        };
        self.token
            .get(grant, PROVIDER, "KINDE_CLIENT_ID and KINDE_CLIENT_SECRET")
            .await
    }
}

impl Directory for KindeDirectory {
    fn route(&self) -> &'static str {
        crate::routes::KINDE
    }

    async fn total(&self) -> Option<u64> {
        None
    }

    async fn page(&self, cursor: &PageCursor) -> Result<Page, DirectoryError> {
        let mut url = format!("{}/api/v1/users?page_size={}", self.issuer, self.page_size);
        if let Some(next) = cursor.token(PROVIDER)? {
            let encoded: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
            url.push_str("&next_token=");
            url.push_str(&encoded);
        }
        let token = self.token().await?;
        let answer = crate::directory::fetch::get_json(
            &self.http,
            &url,
            token,
            PROVIDER,
            "KINDE_CLIENT_SECRET",
        )
        .await?;
        let users = match answer.get("users") {
            Some(Value::Array(users)) => users.clone(),
            // Kinde leaves `users` out of a page with none.
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(DirectoryError::Failed {
                    provider: PROVIDER,
                    reason: "the answer's users is not a list".into(),
                });
            }
        };
        let next = answer["next_token"]
            .as_str()
            .filter(|t| !t.is_empty() && !users.is_empty())
            .map(|t| PageCursor::Token(t.to_owned()));
        Ok(Page { users, next })
    }

    fn event(&self, user: Value) -> Result<UserEvent, String> {
        listed_user(user).map_err(|e| e.to_string())
    }
}

fn listed_user(raw: Value) -> Result<UserEvent, PayloadError> {
    let user: KindeUser = read_part(PROVIDER, "user", &raw)?;
    user.upserted(UserChange::Updated, None, None)
}

/// Kinde's Management API for the backfill: `KINDE_ISSUER_URL`, and an M2M application's
/// `KINDE_CLIENT_ID` and `KINDE_CLIENT_SECRET`.
pub const SOURCE: Source = Source {
    route: crate::routes::KINDE,
    open: |settings: &Settings<'_>| -> Result<Box<dyn ListUsers>, String> {
        Ok(Box::new(KindeDirectory::new(
            settings.http.clone(),
            &settings.required("KINDE_ISSUER_URL", "give https://<sub>.kinde.com")?,
            settings.required("KINDE_CLIENT_ID", "give an M2M application's client id")?,
            settings.required("KINDE_CLIENT_SECRET", "")?,
            settings.page_size.unwrap_or(500),
        )))
    },
    read_exported: None,
};
