//! Route names, written once: the last segment of `/webhooks/<route>`, the key of a route's
//! signing secrets under `webhook_secrets`, the `provider` a user came through (the canonical
//! field the attribute map can write), and the route a queue message or checkpoint names.
//! The domain, the configuration and the providers all read this one list.

/// Clerk (Svix-signed).
pub const CLERK: &str = "clerk";
/// Any Standard Webhooks 1.0 sender, Supabase Auth's `before-user-created` hook among them.
pub const STANDARD: &str = "standard";
/// Stytch, consumer and B2B (Svix-signed).
pub const STYTCH: &str = "stytch";
/// WorkOS.
pub const WORKOS: &str = "workos";
/// Okta Event Hooks.
pub const OKTA: &str = "okta";
/// Auth0 Log Streams.
pub const AUTH0: &str = "auth0";
/// Supabase database webhooks on `auth.users`.
pub const SUPABASE_DB: &str = "supabase-db";
/// Kinde (RS256 JWT bodies).
pub const KINDE: &str = "kinde";
/// Amazon Cognito's Post Confirmation trigger (no webhook path: a Lambda trigger).
pub const COGNITO: &str = "cognito";

/// Every route, in the order the providers are tried and listed.
pub const ALL: &[&str] = &[
    CLERK,
    STANDARD,
    STYTCH,
    WORKOS,
    OKTA,
    AUTH0,
    SUPABASE_DB,
    KINDE,
    COGNITO,
];

/// The function's own `&'static str` for a route named in input (a queue message, a
/// checkpoint, a command line), or `None` for a name that is no route.
pub fn named(name: &str) -> Option<&'static str> {
    ALL.iter().copied().find(|route| *route == name)
}
