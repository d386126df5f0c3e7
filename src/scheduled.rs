//! The scheduled reconcile (`attio-user-sync-reconcile`, on an EventBridge schedule): for each
//! route in `RECONCILE_ROUTES` it reads the provider's list and compares it with what Attio
//! holds, as `attio-user-sync-backfill --check` does, and writes nothing; with
//! `RECONCILE_REPAIR=queue` it sends the users that are missing or differ, and a
//! left-the-organisation event for each stale workspace link, to the function's queue, for the
//! worker to write at Attio's pace. Each route's classes become an EMF document
//! (`Same`, `Missing`, `Differs`, `Orphans`, `Drift`, `ReconcileFailed`, `ReconcileSeconds`,
//! dimension `Provider`), which the template's drift alarm watches. Orphans are reported, never
//! deleted from here: deleting stays a person's decision (`--delete-orphans`).
//!
//! The list APIs' credentials are read from the function's secret (`list_api`, by the
//! backfill's variable names) or, failing that, from the environment.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::App;
use crate::backfill::{self, Mode, Options, Reconcile};
use crate::checkpoint::{Checkpoint, Counts};
use crate::directory::Settings;
use crate::secrets::Secret;

/// The scheduled reconcile of some routes.
pub struct Scheduled {
    app: Arc<App>,
    routes: Vec<&'static str>,
    repair: bool,
}

impl Scheduled {
    /// From `RECONCILE_ROUTES` (comma-separated route names with a list API) and
    /// `RECONCILE_REPAIR` (`off`, the default, or `queue`, which needs `SYNC_QUEUE_URL`).
    pub fn from_app(app: App, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let routes = lookup("RECONCILE_ROUTES").unwrap_or_default();
        let routes: Vec<&'static str> = routes
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| {
                crate::routes::named(r)
                    .filter(|route| crate::providers::source_for(route).is_some())
                    .ok_or_else(|| {
                        format!("RECONCILE_ROUTES: {r:?} is not a route with a list API")
                    })
            })
            .collect::<Result<_, _>>()?;
        if routes.is_empty() {
            return Err("RECONCILE_ROUTES names no route (e.g. clerk,workos)".into());
        }
        let repair = match lookup("RECONCILE_REPAIR").as_deref().map(str::trim) {
            None | Some("") | Some("off") => false,
            Some("queue") => true,
            Some(other) => {
                return Err(format!(
                    "RECONCILE_REPAIR: {other:?} is neither off nor queue"
                ));
            }
        };
        if repair && app.queue().is_none() {
            return Err("RECONCILE_REPAIR=queue needs SYNC_QUEUE_URL, the function's queue".into());
        }
        Ok(Self {
            app: Arc::new(app),
            routes,
            repair,
        })
    }

    /// Reconciles every route once, one after another; emits each route's EMF document and
    /// answers with the counts by route (a route that could not be read has its `error`).
    pub async fn run(&self) -> Value {
        let mut answer = serde_json::Map::new();
        // The list APIs' credentials, read once a run for every route.
        let credentials = self
            .app
            .list_api_credentials()
            .await
            .map_err(|e| e.to_string());
        for &route in &self.routes {
            let started = Instant::now();
            let result = match &credentials {
                Ok(credentials) => self.reconcile(route, credentials).await,
                Err(e) => Err(e.clone()),
            };
            let took = started.elapsed();
            let (counts, error) = match result {
                Ok(counts) => (counts, None),
                Err(e) => (Counts::default(), Some(crate::domain::redact_emails(&e))),
            };
            emit(route, &counts, error.is_some(), took);
            let summary = match &error {
                None => json!({"same": counts.same, "missing": counts.missing,
                    "differs": counts.differs, "orphans": counts.orphans,
                    "queued": counts.queued, "seconds": took.as_secs_f64()}),
                Some(error) => json!({"error": error}),
            };
            match &error {
                None => tracing::info!(
                    route,
                    same = counts.same,
                    missing = counts.missing,
                    differs = counts.differs,
                    orphans = counts.orphans,
                    "reconciled"
                ),
                Some(error) => tracing::error!(route, error, "reconcile failed"),
            }
            answer.insert(route.into(), summary);
        }
        Value::Object(answer)
    }

    async fn reconcile(
        &self,
        route: &'static str,
        credentials: &HashMap<String, Secret>,
    ) -> Result<Counts, String> {
        let var = |name: &str| {
            credentials
                .get(name)
                .map(|s| s.expose().to_owned())
                .or_else(|| std::env::var(name).ok())
                .filter(|v| !v.trim().is_empty())
        };
        let source = crate::providers::source_for(route).ok_or("no list API")?;
        let directory = (source.open)(&Settings {
            var: &var,
            http: self.app.http_client(),
            page_size: None,
        })?;
        let options = Options {
            mode: if self.repair {
                Mode::Enqueue
            } else {
                Mode::Check
            },
            concurrency: backfill::DEFAULT_CONCURRENCY,
            reconcile: Some(Reconcile::default()),
            reading: Default::default(),
        };
        let path = std::env::temp_dir().join(format!("attio-user-sync-reconcile.{route}.json"));
        let done = backfill::run(
            self.app.clone(),
            &directory,
            Checkpoint::start(route),
            &path,
            &options,
            |_| {},
            |_| {},
        )
        .await;
        let _ = std::fs::remove_file(&path);
        done.map(|c| c.counts).map_err(|e| e.to_string())
    }
}

fn emit(route: &str, counts: &Counts, failed: bool, took: Duration) {
    let document =
        crate::metrics::reconcile_document(route, counts, failed, took, SystemTime::now());
    println!("{document}");
}
