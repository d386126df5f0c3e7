//! Amazon Cognito Post Confirmation trigger: the same sync, invoked directly by Cognito.

use attio_user_sync::{App, Config, cognito_trigger};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

// One invocation at a time: a single-threaded runtime spares cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    attio_user_sync::logging::init_logging();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let app = App::from_config(config)?;
    app.prefetch_secret().await;
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        cognito_trigger::post_confirmation(app, event.payload).await
    }))
    .await
}
