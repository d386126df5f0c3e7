//! The queue worker: Lambda's SQS event source (`ReportBatchItemFailures`) invokes it with
//! batches of queued events; see `attio_user_sync::worker`.

use attio_user_sync::worker::Worker;
use attio_user_sync::{App, Config};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

// One invocation at a time: a single-threaded runtime spares cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    attio_user_sync::logging::init_logging();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let worker = Worker::from_app(App::from_config(config)?);
    worker.prefetch_secret().await;
    let worker = &worker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = event.context.deadline();
        Ok::<SqsBatchResponse, lambda_runtime::Error>(
            worker.handle(event.payload, Some(deadline)).await,
        )
    }))
    .await
}
