//! A stand-in for Supabase Auth's admin list of users, strict about what its server does:
//! `GET /auth/v1/admin/users?page=&per_page=&sort=` with the service-role key as `apikey`
//! (the gateway) and as `Authorization: Bearer` (the Auth server), `page` from 1 (default 1),
//! `per_page` default 50, `sort` `created_at asc|desc` (default desc), answering `{users, aud}`
//! with `X-Total-Count` and a `Link` header whose URLs lack the `/auth/v1` prefix, as hosted
//! projects' do; `429` with `Retry-After` when asked to play one.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The service-role key the stand-in accepts.
pub const SUPABASE_SERVICE_ROLE_KEY: &str = "service-role-key-for-tests";

/// A Supabase user as the admin list returns it; `email` `None` for a phone-only user.
pub fn supabase_listed_user(n: usize, email: Option<&str>) -> Value {
    json!({
        "id": format!("00000000-0000-4000-8000-{n:012}"), "aud": "authenticated", "role": "authenticated",
        "email": email.unwrap_or(""), "email_confirmed_at": email.map(|_| "2026-05-01T09:00:00.123456Z"),
        "phone": if email.is_none() { "15555550100" } else { "" },
        "confirmed_at": "2026-05-01T09:00:00.123456Z", "last_sign_in_at": "2026-06-01T12:00:00Z",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {"full_name": format!("Supa User{n}"), "plan": "Team"},
        "identities": [], "created_at": "2026-05-01T08:59:00Z", "updated_at": "2026-06-01T12:00:00Z",
        "is_anonymous": false
    })
}

#[derive(Default)]
struct Inner {
    users: Vec<Value>,
    rate_limited: u32,
    /// (page, per_page) of each list request served.
    pages: Vec<(u64, u64)>,
}

/// A running stand-in.
pub struct SupabaseApi {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<Inner>>,
    _server: tokio::task::JoinHandle<()>,
}

impl SupabaseApi {
    /// Serves `users`, in creation order.
    pub async fn start(users: Vec<Value>) -> Self {
        let state = Arc::new(Mutex::new(Inner {
            users,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/auth/v1/admin/users", get(list))
            .with_state(state.clone());
        let (addr, server) = super::serve_on_loopback(app, "Supabase stand-in").await;
        Self {
            addr,
            state,
            _server: server,
        }
    }

    /// `SUPABASE_URL` for it.
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

    /// The list pages served, as (page, per_page).
    pub fn pages(&self) -> Vec<(u64, u64)> {
        self.state.lock().unwrap().pages.clone()
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": status.as_u16(), "error_code": code, "msg": message})),
    )
        .into_response()
}

async fn list(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("apikey") != Some(SUPABASE_SERVICE_ROLE_KEY) {
        // The gateway, before the Auth server.
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "No API key found in request"})),
        )
            .into_response();
    }
    if header("authorization") != Some(&format!("Bearer {SUPABASE_SERVICE_ROLE_KEY}")) {
        return error(StatusCode::FORBIDDEN, "not_admin", "User not allowed");
    }
    let mut s = state.lock().unwrap();
    if s.rate_limited > 0 {
        s.rate_limited -= 1;
        let mut answer = error(
            StatusCode::TOO_MANY_REQUESTS,
            "over_request_rate_limit",
            "Too many requests",
        );
        answer
            .headers_mut()
            .insert("retry-after", "1".parse().expect("header"));
        return answer;
    }
    let number = |name: &str, default: u64| match query.get(name) {
        None => Some(default),
        Some(v) => v.parse::<u64>().ok(),
    };
    let (Some(page), Some(per_page)) = (number("page", 1), number("per_page", 50)) else {
        return error(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "Bad Pagination Parameters",
        );
    };
    let ascending = match query.get("sort").map(String::as_str) {
        None | Some("created_at desc") | Some("created_at") => false,
        Some("created_at asc") => true,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "validation_failed",
                "Bad Sort Parameters",
            );
        }
    };
    let page = page.max(1);
    s.pages.push((page, per_page));
    let total = s.users.len() as u64;
    let mut users = s.users.clone();
    if !ascending {
        users.reverse();
    }
    let start = ((page - 1) * per_page) as usize;
    let listed: Vec<Value> = users
        .into_iter()
        .skip(start)
        .take(per_page as usize)
        .collect();
    let last = total.div_ceil(per_page.max(1)).max(1);
    let mut links = Vec::new();
    if page < last {
        links.push(format!(
            "</admin/users?page={}&per_page={per_page}>; rel=\"next\"",
            page + 1
        ));
    }
    links.push(format!(
        "</admin/users?page={last}&per_page={per_page}>; rel=\"last\""
    ));
    let mut answer = axum::Json(json!({"users": listed, "aud": "authenticated"})).into_response();
    let h = answer.headers_mut();
    h.insert("x-total-count", total.into());
    h.insert("link", links.join(", ").parse().expect("header"));
    answer
}
