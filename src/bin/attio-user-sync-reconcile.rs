//! The scheduled reconcile: an EventBridge schedule invokes it; it compares each route in
//! `RECONCILE_ROUTES` with what Attio holds and emits the drift as metrics; see
//! `attio_user_sync::scheduled`.

use attio_user_sync::scheduled::Scheduled;
use attio_user_sync::{App, Config};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    attio_user_sync::logging::init_logging();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    // Paced as the backfill is: writes (none, or the queue's) and reads under Attio's limits.
    let limiter = std::sync::Arc::new(attio_user_sync::pace::WriteLimiter::new(24.5));
    let app = App::from_config_paced(config, Some(limiter))?;
    let scheduled = Scheduled::from_app(app, |name| std::env::var(name).ok())
        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let scheduled = &scheduled;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        Ok::<Value, lambda_runtime::Error>(scheduled.run().await)
    }))
    .await
}
