//! The Lambda entry point: configure, build clients once, serve.

use attio_user_sync::{App, Config};

// One invocation at a time: a single-threaded runtime spares cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let app = App::from_config(config)?;
    app.prefetch_secret().await;
    let app = &app;
    lambda_http::run(lambda_http::service_fn(move |request| async move {
        Ok::<_, std::convert::Infallible>(app.handle(request).await)
    }))
    .await
}
