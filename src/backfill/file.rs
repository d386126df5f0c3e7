//! `--from-file`: users from a file instead of a provider's list API. Either the provider's own
//! user objects (a JSON array, or JSON Lines: what its list API or export returns; Clerk's,
//! WorkOS's, Supabase's (on `supabase-db` or `standard`) and Auth0's, whose export job writes
//! NDJSON), read as its list API's are, or a CSV with
//! `user_id,email,first_name,last_name` headers for any route.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::directory::{Directory, DirectoryError, Page, PageCursor};
use crate::domain::{RouteName, UserChange, UserDetails, UserEvent, UserProfile, name_part};
use crate::providers::provider::{PayloadError, read_part, required_email};

/// Users read per page from the file (a page is the unit the checkpoint counts in).
const PAGE: usize = 100;

/// A file of users for one route.
pub struct FileDirectory {
    route: RouteName,
    users: Vec<Value>,
    /// How the users read: CSV rows, or the provider's own objects through its list API's
    /// reader.
    shape: Shape,
}

enum Shape {
    Csv,
    Provider(fn(Value) -> Result<UserEvent, String>),
}

/// A CSV row.
#[derive(Deserialize)]
struct Row {
    user_id: String,
    email: String,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
}

impl FileDirectory {
    /// Reads `path` for `route`: `.csv` as CSV, anything else as a JSON array or JSON Lines.
    pub fn open(path: &Path, route: RouteName) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let is_csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let users = if is_csv {
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let headers = reader
                .headers()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for needed in ["user_id", "email"] {
                if !headers.iter().any(|h| h == needed) {
                    return Err(format!(
                        "{}: the CSV has no {needed} column (headers: user_id,email,first_name,last_name)",
                        path.display()
                    ));
                }
            }
            reader
                .deserialize::<Row>()
                .enumerate()
                .map(|(i, row)| {
                    row.map(|r| {
                        json!({"user_id": r.user_id, "email": r.email,
                               "first_name": r.first_name, "last_name": r.last_name})
                    })
                    .map_err(|e| format!("{} row {}: {e}", path.display(), i + 2))
                })
                .collect::<Result<Vec<_>, _>>()?
        } else if text.trim_start().starts_with('[') {
            serde_json::from_str(&text)
                .map_err(|e| format!("{}: not a JSON array of users ({e})", path.display()))?
        } else {
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| {
                    serde_json::from_str(l).map_err(|e| {
                        format!("{} line {}: not a JSON user ({e})", path.display(), i + 1)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let shape = if is_csv {
            Shape::Csv
        } else {
            let exported = crate::providers::source_for(route).and_then(|s| s.read_exported);
            Shape::Provider(exported.ok_or_else(|| {
                format!(
                    "reading {route}'s own user objects is not supported yet; give a CSV with user_id,email,first_name,last_name"
                )
            })?)
        };
        Ok(Self {
            route,
            users,
            shape,
        })
    }
}

impl Directory for FileDirectory {
    fn route(&self) -> &'static str {
        self.route
    }

    async fn total(&self) -> Option<u64> {
        Some(self.users.len() as u64)
    }

    async fn page(&self, cursor: &PageCursor) -> Result<Page, DirectoryError> {
        let start = cursor.offset("the file")? as usize;
        let users: Vec<Value> = self.users.iter().skip(start).take(PAGE).cloned().collect();
        let end = start + users.len();
        let next = (end < self.users.len()).then_some(PageCursor::Offset(end as u64));
        Ok(Page { users, next })
    }

    fn event(&self, user: Value) -> Result<UserEvent, String> {
        match self.shape {
            Shape::Provider(read) => read(user),
            Shape::Csv => self.read_row(user).map_err(|e| e.to_string()),
        }
    }
}

impl FileDirectory {
    fn read_row(&self, user: Value) -> Result<UserEvent, PayloadError> {
        let row: Row = read_part("CSV", "row", &user)?;
        let email = required_email(Some(&row.email))?;
        Ok(UserEvent::upserted(
            UserChange::Updated,
            UserProfile {
                email,
                user_id: row.user_id,
                first_name: name_part(row.first_name.as_deref()),
                last_name: name_part(row.last_name.as_deref()),
                created_at: None,
                details: UserDetails {
                    provider: self.route,
                    ..UserDetails::default()
                },
            },
        ))
    }
}
