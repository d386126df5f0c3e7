//! Public keys that a provider publishes as a JWKS (Kinde signs its webhooks as RS256 JWTs),
//! fetched once per container and refetched, at most once per [`FORCED_REFRESH_FLOOR`], when a
//! token names a key the cached set lacks (a key rotation).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use thiserror::Error;
use tokio::sync::Mutex;

use crate::secrets::FORCED_REFRESH_FLOOR;

const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// The key set could not be had.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("the signing keys at {url} could not be fetched: {reason}")]
pub struct JwksError {
    /// Where they were looked for.
    pub url: String,
    /// What went wrong.
    pub reason: String,
}

#[derive(Default)]
struct State {
    sets: HashMap<String, Arc<JwkSet>>,
    last_refresh: HashMap<String, Instant>,
}

/// Key sets by URL, for the life of the container.
pub struct JwksCache {
    http: reqwest::Client,
    state: Mutex<State>,
}

impl JwksCache {
    /// An empty cache fetching through `http`.
    pub fn new(http: reqwest::Client) -> Self {
        Self {
            http,
            state: Mutex::new(State::default()),
        }
    }

    /// The key set at `url`, fetched on first use.
    pub async fn get(&self, url: &str) -> Result<Arc<JwkSet>, JwksError> {
        let mut state = self.state.lock().await;
        if let Some(set) = state.sets.get(url) {
            return Ok(set.clone());
        }
        let set = Arc::new(self.fetch(url).await?);
        state.sets.insert(url.to_owned(), set.clone());
        Ok(set)
    }

    /// Refetches after a token named an unknown key. `None` when a refetch of this URL
    /// happened less than [`FORCED_REFRESH_FLOOR`] ago, or the fetch failed.
    pub async fn refresh(&self, url: &str) -> Option<Arc<JwkSet>> {
        let mut state = self.state.lock().await;
        if state
            .last_refresh
            .get(url)
            .is_some_and(|at| at.elapsed() < FORCED_REFRESH_FLOOR)
        {
            return None;
        }
        state.last_refresh.insert(url.to_owned(), Instant::now());
        match self.fetch(url).await {
            Ok(set) => {
                let set = Arc::new(set);
                state.sets.insert(url.to_owned(), set.clone());
                Some(set)
            }
            Err(e) => {
                tracing::warn!(error = %e, "key set refresh failed");
                None
            }
        }
    }

    async fn fetch(&self, url: &str) -> Result<JwkSet, JwksError> {
        let fail = |reason: String| JwksError {
            url: url.to_owned(),
            reason,
        };
        let response = self
            .http
            .get(url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("answered {}", response.status())));
        }
        response
            .json()
            .await
            .map_err(|e| fail(format!("not a JWKS: {e}")))
    }
}
