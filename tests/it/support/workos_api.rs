//! A stand-in for WorkOS's User Management list of users, strict about what WorkOS documents:
//! `GET /user_management/users?limit=&after=&order=` with `limit` 1–100 (default 10), `order`
//! `asc`, `desc` (default) or `normal`, `after` a user id from an earlier page, answering
//! `{object: "list", data, list_metadata: {before, after}}` with `after: null` on the last page;
//! and, paged the same way, `GET /organizations` and `GET
//! /user_management/organization_memberships`, which needs `organization_id` or `user_id` and
//! gives active memberships unless `statuses` says otherwise.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The API key the stand-in accepts.
pub const WORKOS_API_KEY: &str = "sk_test_backfill_workos";

/// A WorkOS user object as the list returns it.
pub fn workos_listed_user(n: usize) -> Value {
    json!({
        "object": "user", "id": format!("user_01WORKOS{n:06}"), "email": format!("workos.user.{n}@example.com"),
        "email_verified": true, "first_name": "WorkOS", "last_name": format!("User {n}"),
        "profile_picture_url": null, "external_id": null, "metadata": {}, "locale": "en-US",
        "last_sign_in_at": null, "created_at": "2026-11-01T00:00:00.000Z", "updated_at": "2026-11-02T00:00:00.000Z"
    })
}

/// An active membership of the `n`th listed user in organisation `org`, with role `role`.
pub fn workos_listed_membership(n: usize, org: &str, role: &str) -> Value {
    json!({
        "object": "organization_membership", "id": format!("om_{n:06}_{org}"),
        "user_id": format!("user_01WORKOS{n:06}"), "organization_id": org,
        "organization_name": format!("{org} Inc"), "status": "active", "role": {"slug": role},
        "created_at": "2026-11-01T00:00:00.000Z", "updated_at": "2026-11-01T00:00:00.000Z"
    })
}

/// A running stand-in.
pub struct WorkOsApi {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    rate_limited: Arc<AtomicU32>,
    _server: tokio::task::JoinHandle<()>,
}

impl WorkOsApi {
    /// Serves `users`, oldest first.
    pub async fn start(users: Vec<Value>) -> Self {
        Self::start_with(users, Vec::new()).await
    }

    /// Serves `users` and the organisation `memberships` (each organisation named
    /// `<id> Inc`), oldest first.
    pub async fn start_with(users: Vec<Value>, memberships: Vec<Value>) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let rate_limited = Arc::new(AtomicU32::new(0));
        let mut organizations: Vec<Value> = Vec::new();
        for m in &memberships {
            if !organizations
                .iter()
                .any(|o| o["id"] == m["organization_id"])
            {
                organizations.push(json!({"object": "organization", "id": m["organization_id"],
                    "name": m["organization_name"], "domains": []}));
            }
        }
        let state = (Arc::new(users), requests.clone(), rate_limited.clone());
        let organizations = (Arc::new(organizations), rate_limited.clone());
        let memberships = (Arc::new(memberships), rate_limited.clone());
        let app = Router::new()
            .route("/user_management/users", get(list))
            .with_state(state)
            .merge(
                Router::new()
                    .route("/organizations", get(list_organizations))
                    .with_state(organizations),
            )
            .merge(
                Router::new()
                    .route(
                        "/user_management/organization_memberships",
                        get(list_memberships),
                    )
                    .with_state(memberships),
            );
        let (addr, server) = super::serve_on_loopback(app, "WorkOS stand-in").await;
        Self {
            addr,
            requests,
            rate_limited,
            _server: server,
        }
    }

    /// `WORKOS_API_URL` for it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next `n` requests `429` (`rate_limit_exceeded`) with `Retry-After: 1`, the
    /// header WorkOS's SDK reads.
    pub fn rate_limit(&self, n: u32) {
        self.rate_limited.store(n, Ordering::SeqCst);
    }

    /// `429`s asked for and not played yet.
    pub fn rate_limits_left(&self) -> u32 {
        self.rate_limited.load(Ordering::SeqCst)
    }

    /// The query strings of the list requests served.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// The users, the requests served, and `429`s still to play.
type Shared = (Arc<Vec<Value>>, Arc<Mutex<Vec<String>>>, Arc<AtomicU32>);

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

/// Checks the key and plays a pending `429`; `Some` is the answer to give instead.
fn gate(headers: &HeaderMap, rate_limited: &AtomicU32) -> Option<Response> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {WORKOS_API_KEY}") {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
        ));
    }
    if rate_limited
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        let mut answer = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "Rate limit exceeded",
        );
        answer
            .headers_mut()
            .insert("retry-after", "1".parse().expect("header"));
        return Some(answer);
    }
    None
}

/// A page of `items` as WorkOS pages lists: `limit` 1–100 (default 10), oldest first, `after`
/// the id of the last item of the page before.
fn paged(items: &[&Value], query: &HashMap<String, String>) -> Response {
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 10,
        Some(Ok(l)) if (1..=100).contains(&l) => l,
        _ => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_parameters",
                "limit must be between 1 and 100",
            );
        }
    };
    if query.get("order").is_some_and(|o| o != "asc") {
        // The stand-in serves oldest first only; the function asks for it.
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_parameters",
            "only order=asc is served here",
        );
    }
    let start = match query.get("after") {
        None => 0,
        Some(after) => match items.iter().position(|u| u["id"] == *after) {
            Some(i) => i + 1,
            None => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_request_parameters",
                    "after is not an id of this list",
                );
            }
        },
    };
    let page: Vec<Value> = items
        .iter()
        .skip(start)
        .take(limit)
        .map(|v| (*v).clone())
        .collect();
    let after = (start + page.len() < items.len())
        .then(|| page.last().map(|u| u["id"].clone()))
        .flatten();
    axum::Json(
        json!({"object": "list", "data": page, "list_metadata": {"before": null, "after": after}}),
    )
    .into_response()
}

async fn list(
    State((users, requests, rate_limited)): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(answer) = gate(&headers, &rate_limited) {
        return answer;
    }
    let mut keys: Vec<_> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    keys.sort();
    requests.lock().unwrap().push(keys.join("&"));
    let users: Vec<&Value> = users.iter().collect();
    paged(&users, &query)
}

/// The organisations, or the memberships, and `429`s still to play.
type Listed = (Arc<Vec<Value>>, Arc<AtomicU32>);

async fn list_organizations(
    State((organizations, rate_limited)): State<Listed>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(answer) = gate(&headers, &rate_limited) {
        return answer;
    }
    let organizations: Vec<&Value> = organizations.iter().collect();
    paged(&organizations, &query)
}

async fn list_memberships(
    State((memberships, rate_limited)): State<Listed>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(answer) = gate(&headers, &rate_limited) {
        return answer;
    }
    let (organization, user) = (query.get("organization_id"), query.get("user_id"));
    if organization.is_none() && user.is_none() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_parameters",
            "organization_id or user_id is required",
        );
    }
    let statuses: Vec<&str> = query
        .get("statuses")
        .map_or(vec!["active"], |s| s.split(',').collect());
    let matching: Vec<&Value> = memberships
        .iter()
        .filter(|m| organization.is_none_or(|o| m["organization_id"] == *o))
        .filter(|m| user.is_none_or(|u| m["user_id"] == *u))
        .filter(|m| statuses.iter().any(|s| m["status"] == *s))
        .collect();
    paged(&matching, &query)
}
