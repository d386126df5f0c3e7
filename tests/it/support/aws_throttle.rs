//! A front for moto that plays AWS throttling: the next `n` requests are answered as an AWS
//! JSON service answers a caller over its quota (`400`, `TooManyRequestsException`, Cognito's
//! `UserList` category above 30 requests a second); the rest are forwarded to moto as sent.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A running front.
pub struct ThrottlingFront {
    addr: std::net::SocketAddr,
    left: Arc<AtomicU32>,
    _server: tokio::task::JoinHandle<()>,
}

type Shared = (String, Arc<AtomicU32>, reqwest::Client);

impl ThrottlingFront {
    /// Forwards to `upstream` (moto's URL).
    pub async fn start(upstream: &str) -> Self {
        let left = Arc::new(AtomicU32::new(0));
        let app = Router::new().fallback(forward).with_state((
            upstream.to_owned(),
            left.clone(),
            reqwest::Client::new(),
        ));
        let (addr, server) = super::serve_on_loopback(app, "throttling front").await;
        Self {
            addr,
            left,
            _server: server,
        }
    }

    /// The endpoint URL to give the SDK.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Throttles the next `n` requests.
    pub fn throttle(&self, n: u32) {
        self.left.store(n, Ordering::SeqCst);
    }

    /// Throttles asked for and not played yet.
    pub fn throttles_left(&self) -> u32 {
        self.left.load(Ordering::SeqCst)
    }
}

async fn forward(
    State((upstream, left, http)): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        let mut answer = (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"__type": "TooManyRequestsException", "message": "Too many requests"}),
            ),
        )
            .into_response();
        answer.headers_mut().insert(
            "x-amzn-errortype",
            "TooManyRequestsException".parse().expect("header"),
        );
        return answer;
    }
    let mut request = http.post(&upstream).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let Ok(answer) = request.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).expect("status");
    let content_type = answer.headers().get("content-type").cloned();
    let body = answer.bytes().await.unwrap_or_default();
    let mut response = (status, body).into_response();
    if let Some(content_type) = content_type {
        response.headers_mut().insert("content-type", content_type);
    }
    response
}
