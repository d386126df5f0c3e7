//! A stand-in for Clerk's Backend API list of users, strict about what Clerk documents:
//! `GET /v1/users?limit=&offset=&order_by=` with `limit` 1–500 (default 10) answering a bare JSON
//! array, `GET /v1/users/count` answering `{object, total_count}`, `Authorization: Bearer
//! <secret key>`, `GET /v1/organization_memberships?limit=&offset=` answering `{data,
//! total_count}` (the instance's memberships), and `429` with `Retry-After` (seconds) when asked
//! to play one.
#![allow(dead_code)] // Each user of this module (tests, the backfill bench) calls a different part of it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The secret key the stand-in accepts.
pub const CLERK_SECRET_KEY: &str = "sk_test_backfill";

#[derive(Default)]
struct Inner {
    users: Vec<Value>,
    /// Organisation memberships, as the instance-wide list gives them.
    memberships: Vec<Value>,
    /// `429`s to answer before the next real answers.
    rate_limited: u32,
    /// List requests served: (limit, offset).
    pages: Vec<(u64, u64)>,
    /// Answers every users page after the first `500`, as an outage mid-listing.
    fail_after_first_page: bool,
    /// The memberships list answered with this status instead (an instance without
    /// organisations).
    memberships_refused: Option<StatusCode>,
}

/// A running stand-in.
pub struct ClerkApi {
    addr: SocketAddr,
    state: Arc<Mutex<Inner>>,
    _server: tokio::task::JoinHandle<()>,
}

/// A membership of the `n`th listed user in organisation `org` (named `name`), as Clerk's
/// memberships list gives it.
pub fn clerk_listed_membership(n: usize, org: &str, name: &str, role: &str) -> Value {
    json!({
        "object": "organization_membership", "id": format!("orgmem_{n}_{org}"), "role": role,
        "permissions": [], "public_metadata": {}, "private_metadata": {},
        "created_at": 1_654_012_600_000_i64, "updated_at": 1_654_012_600_000_i64,
        "organization": {"object": "organization", "id": org, "name": name,
                         "slug": name.to_lowercase(), "members_count": 1},
        "public_user_data": {"user_id": format!("user_backfill_{n:04}"),
                             "identifier": format!("backfill.user.{n}@example.com"),
                             "first_name": "Backfill", "last_name": format!("User {n}")}
    })
}

/// A Clerk user object as the list API returns it; `email` `None` for one without an address.
pub fn clerk_listed_user(n: usize, email: Option<&str>) -> Value {
    let addresses: Vec<Value> = email
        .map(|e| {
            json!({"id": format!("idn_{n}"), "object": "email_address", "email_address": e,
                        "verification": {"status": "verified", "strategy": "email_code"}})
        })
        .into_iter()
        .collect();
    json!({
        "id": format!("user_backfill_{n:04}"), "object": "user", "first_name": "Backfill",
        "last_name": format!("User {n}"), "username": null,
        "primary_email_address_id": email.map(|_| format!("idn_{n}")),
        "email_addresses": addresses, "phone_numbers": [], "primary_phone_number_id": null,
        "public_metadata": {"plan": "Pro"}, "private_metadata": {}, "unsafe_metadata": {},
        "created_at": 1_654_012_591_514_i64 + n as i64, "updated_at": 1_654_012_591_835_i64 + n as i64,
        "last_sign_in_at": null
    })
}

impl ClerkApi {
    /// Serves `users` (in `created_at` order, as `+created_at` asks) on a free loopback port.
    pub async fn start(users: Vec<Value>) -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), users).await
    }

    /// As [`start`](Self::start), on `addr`.
    pub async fn start_on(addr: SocketAddr, users: Vec<Value>) -> Self {
        let state = Arc::new(Mutex::new(Inner {
            users,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/v1/users", get(list))
            .route("/v1/users/count", get(count))
            .route("/v1/organization_memberships", get(memberships))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind the Clerk stand-in");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("Clerk stand-in");
        });
        Self {
            addr,
            state,
            _server: server,
        }
    }

    /// `CLERK_API_URL` for it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next `n` requests `429` with `Retry-After: 1`.
    pub fn rate_limit(&self, n: u32) {
        self.state.lock().unwrap().rate_limited = n;
    }

    /// `429`s asked for and not played yet.
    pub fn rate_limits_left(&self) -> u32 {
        self.state.lock().unwrap().rate_limited
    }

    /// The instance's organisation memberships from now on.
    pub fn set_memberships(&self, memberships: Vec<Value>) {
        self.state.lock().unwrap().memberships = memberships;
    }

    /// Answers the memberships list with `status` from now on, as an instance whose
    /// organisations are not enabled does.
    pub fn refuse_memberships(&self, status: u16) {
        self.state.lock().unwrap().memberships_refused =
            Some(StatusCode::from_u16(status).expect("a status"));
    }

    /// From the second users page on, answers `500` (an outage in the middle of a listing).
    pub fn fail_after_first_page(&self) {
        self.state.lock().unwrap().fail_after_first_page = true;
    }

    /// The list pages served, as (limit, offset).
    pub fn pages(&self) -> Vec<(u64, u64)> {
        self.state.lock().unwrap().pages.clone()
    }
}

fn clerk_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"errors": [{"code": code, "message": message, "long_message": message}]});
    (status, axum::Json(body)).into_response()
}

/// Checks the key and plays a pending `429`; `Some` is the answer to give instead.
fn gate(state: &Mutex<Inner>, headers: &HeaderMap) -> Option<Response> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {CLERK_SECRET_KEY}") {
        return Some(clerk_error(
            StatusCode::UNAUTHORIZED,
            "authentication_invalid",
            "Unauthorized request",
        ));
    }
    let mut s = state.lock().unwrap();
    if s.rate_limited > 0 {
        s.rate_limited -= 1;
        let mut answer = clerk_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many requests",
        );
        answer
            .headers_mut()
            .insert("retry-after", "1".parse().expect("header"));
        return Some(answer);
    }
    None
}

/// `limit` (1–500, default 10) and `offset` (default 0), as Clerk's lists take them.
/// `Err` holds the code and message of Clerk's `422`.
fn limit_and_offset(
    query: &HashMap<String, String>,
) -> Result<(u64, u64), (&'static str, &'static str)> {
    let number = |name: &str, default: u64| match query.get(name) {
        None => Some(default),
        Some(v) => v.parse::<u64>().ok(),
    };
    let (Some(limit), Some(offset)) = (number("limit", 10), number("offset", 0)) else {
        return Err((
            "form_param_format_invalid",
            "limit and offset must be integers",
        ));
    };
    if !(1..=500).contains(&limit) {
        return Err((
            "form_param_value_invalid",
            "limit must be between 1 and 500",
        ));
    }
    Ok((limit, offset))
}

async fn list(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(answer) = gate(&state, &headers) {
        return answer;
    }
    let (limit, offset) = match limit_and_offset(&query) {
        Ok(paging) => paging,
        Err((code, message)) => {
            return clerk_error(StatusCode::UNPROCESSABLE_ENTITY, code, message);
        }
    };
    if let Some(order) = query.get("order_by")
        && order != "+created_at"
        && order != "-created_at"
    {
        return clerk_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            "order_by is not supported here",
        );
    }
    let mut s = state.lock().unwrap();
    if s.fail_after_first_page && !s.pages.is_empty() {
        return clerk_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_clerk_error",
            "Internal error",
        );
    }
    s.pages.push((limit, offset));
    let page: Vec<Value> = s
        .users
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .cloned()
        .collect();
    axum::Json(Value::Array(page)).into_response()
}

async fn count(State(state): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    if let Some(answer) = gate(&state, &headers) {
        return answer;
    }
    let total = state.lock().unwrap().users.len();
    axum::Json(json!({"object": "total_count", "total_count": total})).into_response()
}

async fn memberships(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(answer) = gate(&state, &headers) {
        return answer;
    }
    let (limit, offset) = match limit_and_offset(&query) {
        Ok(paging) => paging,
        Err((code, message)) => {
            return clerk_error(StatusCode::UNPROCESSABLE_ENTITY, code, message);
        }
    };
    let s = state.lock().unwrap();
    if let Some(status) = s.memberships_refused {
        return clerk_error(
            status,
            "resource_not_found",
            "Organizations are not enabled for this instance",
        );
    }
    let page: Vec<Value> = s
        .memberships
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .cloned()
        .collect();
    axum::Json(json!({"data": page, "total_count": s.memberships.len()})).into_response()
}
