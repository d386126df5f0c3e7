//! The webhook function's event loop, in which lambda_http reads each HTTP event (API Gateway REST or HTTP API, Function
//! URL) into a request for [`App::handle`].
//!
//! lambda_http 1.x panics on a few events it cannot turn into a request: a `Host` or
//! `X-Forwarded-Proto` header that makes no URL (`Url::parse(..).unwrap()` in its request.rs)
//! and an `isBase64Encoded` body that is not base64 (aws_lambda_events'
//! `Body::from_maybe_encoded`). API Gateway and Function URLs encode bodies themselves and
//! route on the host, so they are not known to send such events; a direct `lambda:Invoke`
//! can. lambda_runtime would report the panic as a failed invocation, which the caller sees as
//! a `502` and retries for days; this loop answers it `400 invalid_payload`, as the contract
//! says for a request that can never succeed.

use std::convert::Infallible;
use std::panic::{AssertUnwindSafe, catch_unwind};

use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, LambdaEvent, Service, service_fn};
use serde::Serialize;
use serde_json::json;

use crate::App;

/// The webhook function's answer to one event: lambda_http's, or ours when lambda_http could
/// not read the event.
#[derive(Serialize)]
#[serde(untagged)]
enum HttpAnswer<R> {
    Handled(R),
    Unreadable(serde_json::Value),
}

/// Serves webhook events with `app` until the Lambda runtime stops.
pub async fn run_webhooks(app: &App) -> Result<(), lambda_runtime::Error> {
    let adapter = Adapter::from(service_fn(move |request| async move {
        Ok::<_, Infallible>(app.handle(request).await)
    }));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<LambdaRequest>| {
        let mut adapter = adapter.clone();
        async move {
            // The adapter reads the event into a request before its future starts: a panic
            // there is lambda_http's, on the event.
            match catch_unwind(AssertUnwindSafe(|| adapter.call(event))) {
                Ok(handled) => handled.await.map(HttpAnswer::Handled),
                Err(_) => Ok(HttpAnswer::Unreadable(unreadable_event())),
            }
        }
    }))
    .await
}

/// `400 invalid_payload`, in the shape both payload formats accept (REST API proxy and HTTP
/// API / Function URL 2.0): the event could not be read, so its format is not known.
fn unreadable_event() -> serde_json::Value {
    const MESSAGE: &str = "the HTTP event could not be read: its Host or X-Forwarded-Proto header does not form a URL, or its body is marked base64 but is not";
    tracing::info!(
        provider = "none",
        outcome = "invalid_payload",
        status = 400,
        detail = MESSAGE,
        "webhook handled"
    );
    let body = json!({ "error": { "code": "invalid_payload", "message": MESSAGE } });
    json!({
        "statusCode": 400,
        "headers": { "content-type": "application/json" },
        "body": body.to_string(),
        "isBase64Encoded": false,
    })
}
