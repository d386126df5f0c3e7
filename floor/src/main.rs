//! Hello world: answers every request `200 {"status":"ok"}`.

use lambda_http::{Body, Error, Request, Response, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    run(service_fn(|_request: Request| async {
        let mut response = Response::new(Body::from(r#"{"status":"ok"}"#));
        response
            .headers_mut()
            .insert("content-type", "application/json".parse().expect("static header"));
        Ok::<_, Error>(response)
    }))
    .await
}
