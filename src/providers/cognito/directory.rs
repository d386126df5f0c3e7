//! An Amazon Cognito user pool's users, for the backfill: `ListUsers` through the AWS SDK
//! (`PaginationToken` to the end, 60 a page), with the SDK's own credentials and endpoint
//! variables (`AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER` for a local emulator). As in the
//! Post Confirmation trigger, the user id is the `sub` and a mapping's pointers read the
//! attributes as an object; only `CONFIRMED` users are written (the trigger syncs a user at
//! confirmation), the others are reported as skipped with their status.

use serde_json::{Map, Value, json};

use crate::directory::PageCursor;
use crate::directory::{Directory, DirectoryError, Page};
use crate::directory::{ListUsers, Settings, Source};
use crate::domain::{UserChange, UserEvent};

const PROVIDER: &str = "Cognito";

/// One user pool.
pub struct CognitoDirectory {
    client: aws_sdk_cognitoidentityprovider::Client,
    user_pool_id: String,
    limit: i32,
}

impl CognitoDirectory {
    /// The pool `user_pool_id` (`COGNITO_USER_POOL_ID`), through `client`.
    /// `limit` users a page (1–60, Cognito's most).
    pub fn new(
        client: aws_sdk_cognitoidentityprovider::Client,
        user_pool_id: String,
        limit: u64,
    ) -> Self {
        Self {
            client,
            user_pool_id,
            limit: limit.clamp(1, 60) as i32,
        }
    }

    /// A client configured from the environment, as the function's others are
    /// ([`crate::sdk_http::AwsEnvironment`]), sending through `http`.
    pub fn client_from_env(http: reqwest::Client) -> aws_sdk_cognitoidentityprovider::Client {
        crate::sdk_http::client_from_environment!(
            aws_sdk_cognitoidentityprovider,
            http,
            |n: &str| std::env::var(n).ok(),
            "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"
        )
    }
}

impl Directory for CognitoDirectory {
    fn route(&self) -> &'static str {
        super::ROUTE
    }

    async fn total(&self) -> Option<u64> {
        self.client
            .describe_user_pool()
            .user_pool_id(&self.user_pool_id)
            .send()
            .await
            .ok()?
            .user_pool()?
            .estimated_number_of_users()
            .try_into()
            .ok()
    }

    async fn page(&self, cursor: &PageCursor) -> Result<Page, DirectoryError> {
        let mut request = self
            .client
            .list_users()
            .user_pool_id(&self.user_pool_id)
            .limit(self.limit);
        if let Some(token) = cursor.token(PROVIDER)? {
            request = request.pagination_token(token);
        }
        let answer = request.send().await.map_err(|e| DirectoryError::Failed {
            provider: PROVIDER,
            reason: aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(e).to_string(),
        })?;
        let users = answer
            .users()
            .iter()
            .map(|user| {
                let attributes: Map<String, Value> = user
                    .attributes()
                    .iter()
                    .map(|a| (a.name().to_owned(), a.value().unwrap_or_default().into()))
                    .collect();
                json!({
                    "Username": user.username(),
                    "UserStatus": user.user_status().map(|s| s.as_str()),
                    "Attributes": attributes,
                })
            })
            .collect();
        Ok(Page {
            users,
            next: answer
                .pagination_token()
                .filter(|t| !t.is_empty())
                .map(|t| PageCursor::Token(t.to_owned())),
        })
    }

    /// The `sub`, as the trigger writes it; the username when there is none.
    fn user_id(&self, user: &Value) -> String {
        user.pointer("/Attributes/sub")
            .or_else(|| user.get("Username"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    }

    fn event(&self, user: Value) -> Result<UserEvent, String> {
        let status = user["UserStatus"].as_str().unwrap_or("UNKNOWN");
        if status != "CONFIRMED" {
            return Err(format!(
                "the user is {status}, not CONFIRMED; the Post Confirmation trigger syncs it when confirmed"
            ));
        }
        let raw = user["Attributes"].clone();
        let attributes: std::collections::HashMap<String, String> = raw
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let user_name = user["Username"].as_str().map(str::to_owned);
        Ok(UserEvent::upserted(
            UserChange::Updated,
            super::profile(&attributes, user_name, raw).map_err(|e| e.to_string())?,
        ))
    }
}

/// Cognito's `ListUsers` for the backfill: `COGNITO_USER_POOL_ID` (the AWS SDK's own settings
/// for the rest).
pub const SOURCE: Source = Source {
    route: crate::routes::COGNITO,
    open: |settings: &Settings<'_>| -> Result<Box<dyn ListUsers>, String> {
        Ok(Box::new(CognitoDirectory::new(
            CognitoDirectory::client_from_env(settings.http.clone()),
            settings.required("COGNITO_USER_POOL_ID", "give the user pool's id")?,
            settings.page_size.unwrap_or(60),
        )))
    },
    read_exported: None,
};
