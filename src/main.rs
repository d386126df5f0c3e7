//! The Lambda entry point: configure, build clients once, serve.

use attio_user_sync::http::lambda::run_webhooks;
use attio_user_sync::logging::init_logging;
use attio_user_sync::{App, Config};

// One invocation at a time: a single-threaded runtime spares cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    init_logging();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let app = App::from_config(config)?;
    app.prefetch_for_webhooks().await;
    run_webhooks(&app).await
}
