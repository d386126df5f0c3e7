//! Okta's list of users, for the backfill: `GET {OKTA_ORG_URL}/api/v1/users?limit=200` with
//! `Authorization: SSWS <OKTA_API_TOKEN>`, the next page's URL taken verbatim from the `Link:
//! <…>; rel="next"` header (no link: the last page). The plain list leaves out deprovisioned
//! users. Unlike the event hook, which names a user by `target[]` only, the list returns the
//! whole user, read here (`profile.email`, names, `login` as the username, `mobilePhone`).

use serde::Deserialize;
use serde_json::Value;

use crate::directory::PageCursor;
use crate::directory::fetch::Credentials;
use crate::directory::{Directory, DirectoryError, Page};
use crate::directory::{ListUsers, Settings, Source};
use crate::domain::{Timestamp, UserChange, UserDetails, UserEvent, UserProfile, name_part};
use crate::providers::provider::{PayloadError, read_part, required_email};

const PROVIDER: &str = "Okta";

/// The users of one Okta org.
pub struct OktaDirectory {
    http: reqwest::Client,
    org_url: String,
    token: String,
    limit: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedUser {
    id: String,
    created: Option<String>,
    last_login: Option<String>,
    last_updated: Option<String>,
    #[serde(default)]
    profile: Profile,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Profile {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    login: Option<String>,
    mobile_phone: Option<String>,
}

impl OktaDirectory {
    /// `org_url` is `OKTA_ORG_URL` (`https://<org>.okta.com`), `token` `OKTA_API_TOKEN`; `limit`
    /// users a page (1–200).
    pub fn new(http: reqwest::Client, org_url: &str, token: String, limit: u64) -> Self {
        Self {
            http,
            org_url: org_url.trim_end_matches('/').to_owned(),
            token,
            limit: limit.clamp(1, 200),
        }
    }
}

/// The `rel="next"` URL among `Link` headers (several lines, or several links in one).
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|link| link.contains("rel=\"next\""))
        .and_then(|link| {
            let start = link.find('<')? + 1;
            let end = link.find('>')?;
            Some(link.get(start..end)?.to_owned())
        })
}

impl Directory for OktaDirectory {
    fn route(&self) -> &'static str {
        crate::routes::OKTA
    }

    async fn total(&self) -> Option<u64> {
        None
    }

    async fn page(&self, cursor: &PageCursor) -> Result<Page, DirectoryError> {
        let url = match cursor.token(PROVIDER)? {
            None => format!("{}/api/v1/users?limit={}", self.org_url, self.limit),
            // The token is only ever sent to the org it belongs to.
            Some(next) if next.starts_with(&format!("{}/", self.org_url)) => next.to_owned(),
            Some(_) => {
                return Err(DirectoryError::Failed {
                    provider: PROVIDER,
                    reason: "the checkpoint's next page is not a link of OKTA_ORG_URL".into(),
                });
            }
        };
        let (headers, body) = crate::directory::fetch::fetch(
            &self.http,
            &url,
            Credentials::Scheme("SSWS", &self.token),
            PROVIDER,
            "OKTA_API_TOKEN",
        )
        .await?;
        let Value::Array(users) = body else {
            return Err(DirectoryError::Failed {
                provider: PROVIDER,
                reason: "the list of users is not a JSON array".into(),
            });
        };
        Ok(Page {
            users,
            next: next_link(&headers).map(PageCursor::Token),
        })
    }

    fn event(&self, user: Value) -> Result<UserEvent, String> {
        listed_user(user).map_err(|e| e.to_string())
    }
}

/// A user as Okta's list returns it.
fn listed_user(user: Value) -> Result<UserEvent, PayloadError> {
    let listed: ListedUser = read_part("Okta", "user", &user)?;
    let email = required_email(listed.profile.email.as_deref())?;
    let updated_at = listed.last_updated.as_deref().and_then(Timestamp::parse);
    Ok(UserEvent::upserted(
        UserChange::Updated,
        UserProfile {
            email,
            user_id: listed.id,
            first_name: name_part(listed.profile.first_name.as_deref()),
            last_name: name_part(listed.profile.last_name.as_deref()),
            created_at: listed.created.as_deref().and_then(Timestamp::parse),
            details: UserDetails {
                username: name_part(listed.profile.login.as_deref()),
                phone: name_part(listed.profile.mobile_phone.as_deref()),
                updated_at,
                last_sign_in_at: listed.last_login.as_deref().and_then(Timestamp::parse),
                provider: crate::routes::OKTA,
                // Pointers of a mapping read the event hook's target, which this is not.
                raw: None,
                ..UserDetails::default()
            },
        },
    )
    .at(updated_at))
}

/// Okta's list API for the backfill: `OKTA_ORG_URL` and `OKTA_API_TOKEN`.
pub const SOURCE: Source = Source {
    route: crate::routes::OKTA,
    open: |settings: &Settings<'_>| -> Result<Box<dyn ListUsers>, String> {
        Ok(Box::new(OktaDirectory::new(
            settings.http.clone(),
            &settings.required(
                "OKTA_ORG_URL",
                "give your org's URL, https://<org>.okta.com",
            )?,
            settings.required("OKTA_API_TOKEN", "give an API token")?,
            settings.page_size.unwrap_or(200),
        )))
    },
    read_exported: None,
};
