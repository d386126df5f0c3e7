//! The list-API interface the providers implement for the backfill: a [`Directory`] reads a
//! provider's users page by page ([`Page`], resumed at a [`PageCursor`]); a [`Source`] is how
//! the backfill finds one by route and opens it from its [`Settings`]; [`fetch`] is the HTTP
//! every list API is called with (credentials, `429`s, token grants).

pub mod fetch;

use std::future::Future;

use futures_util::future::BoxFuture;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::domain::{UserEvent, Workspace};

/// Where a provider's list API is read from next.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// The list API answered `404`: the endpoint is not there (an optional list, like an
    /// instance's organisations, that is not enabled), or the URL is wrong.
    #[error("{provider}'s list API failed: a page request answered 404")]
    NotFound {
        /// The provider.
        provider: &'static str,
    },
    /// Any other failure, after retries.
    #[error("{provider}'s list API failed: {reason}")]
    Failed {
        /// The provider.
        provider: &'static str,
        /// What happened.
        reason: String,
    },
    /// The list API's paging went back on itself (a next page already read, or the same page
    /// again): reading on would never end, and the listing could not be called complete.
    #[error(
        "{route}'s list API is not moving on: {what}; the listing stops here rather than loop for ever"
    )]
    Loops {
        /// The route.
        route: &'static str,
        /// What came back, in words that hold no user's values.
        what: String,
    },
}

/// Watches a listing move on: refuses a next page already read (a cursor or link that repeats)
/// and a page holding the same users as the one before (a list API ignoring its cursor), so a
/// listing ends only where the provider's paging ends as documented.
#[derive(Debug, Default)]
pub struct PagingGuard {
    read: std::collections::HashSet<PageCursor>,
    last_page: Option<u64>,
}

impl PagingGuard {
    /// Before reading the page at `cursor`: refused when it was read already.
    pub fn before(
        &mut self,
        route: &'static str,
        cursor: &PageCursor,
    ) -> Result<(), DirectoryError> {
        if self.read.insert(cursor.clone()) {
            return Ok(());
        }
        Err(DirectoryError::Loops {
            route,
            what: format!("it gave a next page already read ({})", describe(cursor)),
        })
    }

    /// After reading `page` at `cursor`: refused when its users are exactly those of the page
    /// before.
    pub fn after(
        &mut self,
        route: &'static str,
        cursor: &PageCursor,
        page: &Page,
    ) -> Result<(), DirectoryError> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for user in &page.users {
            user.to_string().hash(&mut hasher);
        }
        let users = (!page.users.is_empty()).then(|| hasher.finish());
        let same = users.is_some() && self.last_page == users;
        self.last_page = users;
        if same {
            return Err(DirectoryError::Loops {
                route,
                what: format!(
                    "the page at {} holds the same {} users as the page before",
                    describe(cursor),
                    page.users.len()
                ),
            });
        }
        Ok(())
    }
}

/// A cursor as an error may name it: an offset, or a token's length (a token can be long, or
/// carry what the provider put in it).
fn describe(cursor: &PageCursor) -> String {
    match cursor {
        PageCursor::Start => "the first page".into(),
        PageCursor::Offset(offset) => format!("offset {offset}"),
        PageCursor::Token(token) => format!("a cursor of {} characters", token.len()),
    }
}

impl DirectoryError {
    /// `provider`'s list API failed for `reason` (an answer that could not be read).
    pub fn failed(provider: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Failed {
            provider,
            reason: reason.to_string(),
        }
    }
}

/// The organisations `memberships` holds as listed by the provider itself (none before they
/// are read): [`Directory::organisations`] for a directory that lists organisations.
pub fn listed_organisations(memberships: Option<&Memberships>) -> Vec<String> {
    memberships
        .map(|m| m.organisations().to_vec())
        .unwrap_or_default()
}

/// Organisation memberships read apart from the users (Clerk's, WorkOS's, Auth0's): each
/// user's workspaces, by user id, and the organisations listed, members or none.
#[derive(Debug, Default)]
pub struct Memberships {
    by_user: std::collections::HashMap<String, Vec<Workspace>>,
    organisations: Vec<String>,
}

impl Memberships {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `user_id` is a member of `workspace`.
    pub fn add(&mut self, user_id: String, workspace: Workspace) {
        self.by_user.entry(user_id).or_default().push(workspace);
    }

    /// The provider listed the organisation `id` (whether or not it has members).
    pub fn listed(&mut self, id: String) {
        self.organisations.push(id);
    }

    /// The workspaces of `user_id`.
    pub fn of(&self, user_id: &str) -> Option<&[Workspace]> {
        self.by_user.get(user_id).map(Vec::as_slice)
    }

    /// Every organisation the provider listed itself.
    pub fn organisations(&self) -> &[String] {
        &self.organisations
    }
}

/// `event` with its user's workspaces from `memberships`, when it is an upsert of a user who
/// has some.
pub fn with_memberships(mut event: UserEvent, memberships: Option<&Memberships>) -> UserEvent {
    if let UserEvent::Upserted {
        user, workspaces, ..
    } = &mut event
        && let Some(joined) = memberships.and_then(|m| m.of(&user.user_id))
    {
        *workspaces = joined.to_vec();
    }
    event
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

    /// The organisations the provider listed as such (members or none), once the first page
    /// has been read: the route's workspaces even when no listed user belongs to one any more.
    /// Empty where organisations are known only through their members.
    fn organisations(&self) -> Vec<String> {
        Vec::new()
    }

    /// The provider's id of a listed user, for reports (its `id`, or `user_id`).
    fn user_id(&self, user: &Value) -> String {
        user.get("id")
            .or_else(|| user.get("user_id"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    }
}

/// A [`Directory`] behind a pointer, for a list API chosen at run time ([`Source::open`]). Every
/// directory is one; a boxed one is a [`Directory`] again.
pub trait ListUsers: Send + Sync {
    /// [`Directory::route`].
    fn route(&self) -> &'static str;
    /// [`Directory::total`].
    fn total(&self) -> BoxFuture<'_, Option<u64>>;
    /// [`Directory::page`].
    fn page(&self, cursor: &PageCursor) -> BoxFuture<'_, Result<Page, DirectoryError>>;
    /// [`Directory::event`].
    fn event(&self, user: Value) -> Result<UserEvent, String>;
    /// [`Directory::user_id`].
    fn user_id(&self, user: &Value) -> String;
    /// [`Directory::organisations`].
    fn organisations(&self) -> Vec<String>;
}

impl<D: Directory> ListUsers for D {
    fn route(&self) -> &'static str {
        Directory::route(self)
    }

    fn total(&self) -> BoxFuture<'_, Option<u64>> {
        Box::pin(Directory::total(self))
    }

    fn page(&self, cursor: &PageCursor) -> BoxFuture<'_, Result<Page, DirectoryError>> {
        // The cursor is copied in, so that the future borrows the directory alone.
        let cursor = cursor.clone();
        Box::pin(async move { Directory::page(self, &cursor).await })
    }

    fn event(&self, user: Value) -> Result<UserEvent, String> {
        Directory::event(self, user)
    }

    fn user_id(&self, user: &Value) -> String {
        Directory::user_id(self, user)
    }

    fn organisations(&self) -> Vec<String> {
        Directory::organisations(self)
    }
}

impl Directory for Box<dyn ListUsers> {
    fn route(&self) -> &'static str {
        ListUsers::route(self.as_ref())
    }

    fn total(&self) -> impl Future<Output = Option<u64>> + Send {
        ListUsers::total(self.as_ref())
    }

    fn page(
        &self,
        cursor: &PageCursor,
    ) -> impl Future<Output = Result<Page, DirectoryError>> + Send {
        ListUsers::page(self.as_ref(), cursor)
    }

    fn event(&self, user: Value) -> Result<UserEvent, String> {
        ListUsers::event(self.as_ref(), user)
    }

    fn user_id(&self, user: &Value) -> String {
        ListUsers::user_id(self.as_ref(), user)
    }

    fn organisations(&self) -> Vec<String> {
        ListUsers::organisations(self.as_ref())
    }
}

/// What a list API is opened with: its settings by name (the environment: a provider's key,
/// URL, …), the HTTP client, and the page size asked for (`None`: the provider's default).
pub struct Settings<'a> {
    /// A setting's value; `None` when it is unset or blank.
    pub var: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// The client every list API is called with (the app's: one TLS setup).
    pub http: reqwest::Client,
    /// `--page-size`.
    pub page_size: Option<u64>,
}

impl Settings<'_> {
    /// A setting that must be given, or what to give (`hint`, when there is one).
    pub fn required(&self, name: &str, hint: &str) -> Result<String, String> {
        (self.var)(name).ok_or_else(|| {
            if hint.is_empty() {
                format!("{name} is not set")
            } else {
                format!("{name} is not set: {hint}")
            }
        })
    }
}

/// A route's list API, as the backfill finds it (the registry is
/// [`crate::providers::SOURCES`]): how to open it, and how to read a user object of the
/// provider's own shape from an export file.
pub struct Source {
    /// The route its users belong to.
    pub route: &'static str,
    /// Opens the list API from its settings, or says which setting is missing.
    pub open: fn(&Settings<'_>) -> Result<Box<dyn ListUsers>, String>,
    /// Reads one user object as the provider's list API or export writes it, when an export
    /// file of that shape can be read (`None`: CSV only).
    pub read_exported: Option<fn(Value) -> Result<UserEvent, String>>,
}
