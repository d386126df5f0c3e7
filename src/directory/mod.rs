//! The list-API interface the providers implement for the backfill: a [`Directory`] reads a
//! provider's users page by page ([`Page`], resumed at a [`PageCursor`]); [`fetch`] is the
//! HTTP every list API is called with (credentials, `429`s, token grants).

pub mod fetch;

use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::domain::UserEvent;

/// Where a provider's list API is read from next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum PageCursor {
    /// The first page.
    Start,
    /// An offset (Clerk's `offset`, Supabase's `page`).
    Offset(u64),
    /// An opaque cursor the provider gave (WorkOS `after`, Okta's `Link`, Kinde's `next_token`…).
    Token(String),
}

/// One page of a provider's user list.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The provider's own user objects, as its list API returns them.
    pub users: Vec<Value>,
    /// Where the next page is; `None` on the last one.
    pub next: Option<PageCursor>,
}

impl PageCursor {
    /// Where a source that pages by offset or page number is (0 at the start); an error if
    /// the checkpoint holds a cursor token, which `provider` does not give.
    pub fn offset(&self, provider: &'static str) -> Result<u64, DirectoryError> {
        match self {
            Self::Start => Ok(0),
            Self::Offset(offset) => Ok(*offset),
            Self::Token(_) => Err(DirectoryError::Failed {
                provider,
                reason: format!("the checkpoint holds a cursor token; {provider} pages by offset"),
            }),
        }
    }

    /// The 0-based number of the page of `per_page` users a source that numbers its pages is
    /// at; the checkpoint holds the users before it, so a resume with another page size is
    /// refused rather than skipping or repeating users.
    pub fn page_number(
        &self,
        per_page: u64,
        provider: &'static str,
    ) -> Result<u64, DirectoryError> {
        let offset = self.offset(provider)?;
        if offset % per_page.max(1) != 0 {
            return Err(DirectoryError::Failed {
                provider,
                reason: format!(
                    "the checkpoint is {offset} users in, not at a page of {per_page}: resume with the --page-size of the interrupted run"
                ),
            });
        }
        Ok(offset / per_page.max(1))
    }

    /// The cursor of a source that pages by token (`None` at the start); an error if the
    /// checkpoint holds an offset, which `provider` does not take.
    pub fn token(&self, provider: &'static str) -> Result<Option<&str>, DirectoryError> {
        match self {
            Self::Start => Ok(None),
            Self::Token(token) => Ok(Some(token)),
            Self::Offset(_) => Err(DirectoryError::Failed {
                provider,
                reason: format!("the checkpoint holds an offset; {provider} pages by cursor"),
            }),
        }
    }
}

/// Why a page could not be read.
#[derive(Debug, Error)]
pub enum DirectoryError {
    /// The provider refused the credentials.
    #[error("{provider} refused the credentials ({status}): check {variable}")]
    Unauthorized {
        /// The provider.
        provider: &'static str,
        /// Its status.
        status: u16,
        /// The variable holding them.
        variable: &'static str,
    },
    /// Any other failure, after retries.
    #[error("{provider}'s list API failed: {reason}")]
    Failed {
        /// The provider.
        provider: &'static str,
        /// What happened.
        reason: String,
    },
}

/// A provider's list of users.
pub trait Directory: Send + Sync {
    /// The route its users belong to (`clerk`, …).
    fn route(&self) -> &'static str;
    /// How many users there are, when the provider says.
    fn total(&self) -> impl Future<Output = Option<u64>> + Send;
    /// The page at `cursor`.
    fn page(
        &self,
        cursor: &PageCursor,
    ) -> impl Future<Output = Result<Page, DirectoryError>> + Send;
    /// A listed user as the event the webhook path would produce, or why it is skipped (in
    /// words that never hold the user's values).
    fn event(&self, user: Value) -> Result<UserEvent, String>;

    /// The provider's id of a listed user, for reports (its `id`, or `user_id`).
    fn user_id(&self, user: &Value) -> String {
        user.get("id")
            .or_else(|| user.get("user_id"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    }
}
