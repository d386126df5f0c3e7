//! The AWS SDK's HTTP client: Secrets Manager requests go through the same `reqwest` client as
//! Attio's, so the function has one TLS setup, one connection stack and one pool, instead of
//! the SDK's own hyper-rustls client beside reqwest's.

use std::time::Duration;

use aws_sdk_secretsmanager::config::{HttpClient, RuntimeComponents};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// Lets the AWS SDK send its requests through `reqwest`.
#[derive(Debug, Clone)]
pub struct ReqwestSdkClient {
    http: reqwest::Client,
}

impl ReqwestSdkClient {
    /// Wraps a client; its connect timeout, pool and TLS settings apply to SDK calls too.
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }
}

impl HttpClient for ReqwestSdkClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            http: self.http.clone(),
            // The SDK's read timeout bounds each request; the connect timeout is the client's.
            timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug)]
struct Connector {
    http: reqwest::Client,
    timeout: Option<Duration>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = self.convert(request);
        HttpConnectorFuture::new(async move {
            let response = request?.send().await.map_err(connector_error)?;
            let status = StatusCode::try_from(response.status().as_u16())
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(connector_error)?;
            let mut answer = HttpResponse::new(status, SdkBody::from(body));
            for (name, value) in &headers {
                if let Ok(value) = value.to_str() {
                    answer
                        .headers_mut()
                        .append(name.as_str().to_owned(), value.to_owned());
                }
            }
            Ok(answer)
        })
    }
}

impl Connector {
    fn convert(&self, request: HttpRequest) -> Result<reqwest::RequestBuilder, ConnectorError> {
        let method = reqwest::Method::from_bytes(request.method().as_bytes())
            .map_err(|e| ConnectorError::other(e.into(), None))?;
        // Secrets Manager's requests are small JSON documents, always held in memory.
        let body = request.body().bytes().ok_or_else(|| {
            ConnectorError::other("streaming request bodies are not supported".into(), None)
        })?;
        let mut builder = self.http.request(method, request.uri()).body(body.to_vec());
        for (name, value) in request.headers() {
            builder = builder.header(name, value);
        }
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        Ok(builder)
    }
}

/// Maps a transport failure to the SDK's kinds, which decide whether it retries.
fn connector_error(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else if e.is_connect() || e.is_request() || e.is_body() {
        ConnectorError::io(e.into())
    } else {
        ConnectorError::other(e.into(), None)
    }
}

/// What an AWS SDK client needs from the environment Lambda provides: the region
/// (`AWS_REGION`, else `AWS_DEFAULT_REGION`), credentials (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) and an endpoint override (the service's own
/// variable, else `AWS_ENDPOINT_URL`). Read instead of aws-config's full provider chain (profile
/// files, SSO, IMDS, STS), which a Lambda function never needs and which would add to its size
/// and cold start.
#[derive(Debug, Clone)]
pub struct AwsEnvironment {
    /// The region, if set.
    pub region: Option<aws_sdk_secretsmanager::config::Region>,
    /// Static credentials, if set (Lambda's stay valid for the life of the environment).
    pub credentials: Option<aws_sdk_secretsmanager::config::Credentials>,
    /// The endpoint to send to instead of AWS's (moto, in the demo and tests).
    pub endpoint: Option<String>,
}

impl AwsEnvironment {
    /// Reads the variables through `lookup`; `endpoint_variable` is the service's own
    /// (`AWS_ENDPOINT_URL_SQS`, …).
    pub fn read(lookup: impl Fn(&str) -> Option<String>, endpoint_variable: &str) -> Self {
        use aws_sdk_secretsmanager::config::{Credentials, Region};
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(key), Some(secret)) => Some(Credentials::new(
                key,
                secret,
                var("AWS_SESSION_TOKEN"),
                None,
                "environment",
            )),
            _ => None,
        };
        Self {
            region: var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .map(Region::new),
            credentials,
            endpoint: var(endpoint_variable).or_else(|| var("AWS_ENDPOINT_URL")),
        }
    }
}

/// An AWS SDK client of the crate `$sdk` from the Lambda environment ([`AwsEnvironment`], with
/// the service's endpoint variable), sending through `$http`. A macro because each SDK has its
/// own config builder type, with the same methods.
macro_rules! client_from_environment {
    ($sdk:ident, $http:expr, $lookup:expr, $endpoint_variable:expr) => {{
        let env = $crate::sdk_http::AwsEnvironment::read($lookup, $endpoint_variable);
        let mut config = $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .http_client($crate::sdk_http::ReqwestSdkClient::new($http))
            .region(env.region);
        if let Some(credentials) = env.credentials {
            config = config.credentials_provider(credentials);
        }
        if let Some(url) = env.endpoint {
            config = config.endpoint_url(url);
        }
        $sdk::Client::from_conf(config.build())
    }};
}
pub(crate) use client_from_environment;
