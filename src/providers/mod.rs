//! Identity providers: one file each, behind [`Provider`]. Adding one is a new file here plus
//! a line in [`PROVIDERS`]; nothing else in the function needs to change.

pub mod auth0;
pub mod clerk;
pub mod cognito;
pub mod kinde;
pub mod okta;
pub mod provider;
mod standard;
pub mod stytch;
pub mod supabase;
pub mod workos;

pub use provider::{
    Delivery, PayloadError, Provider, SVIX_HEADERS, SecretForm, StandardHeaders, WEBHOOK_HEADERS,
    WebhookRequest, read_body, read_part, verify_authorization_header,
};

/// Every provider the function serves, found by the last segment of `/webhooks/<route>`.
pub static PROVIDERS: &[&dyn Provider] = &[
    &clerk::Clerk,
    &standard::StandardWebhooks,
    &stytch::Stytch,
    &workos::WorkOs,
    &okta::Okta,
    &auth0::Auth0,
    &supabase::database::SupabaseDatabase,
    &kinde::Kinde,
];

/// The provider serving `route`, if any.
pub fn provider_for_route(route: &str) -> Option<&'static dyn Provider> {
    PROVIDERS.iter().copied().find(|p| p.route() == route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_served_by_exactly_one_provider() {
        for p in PROVIDERS {
            let serving = PROVIDERS.iter().filter(|q| q.route() == p.route()).count();
            assert_eq!(serving, 1, "{}", p.route());
            assert!(provider_for_route(p.route()).is_some());
        }
        assert!(provider_for_route("nope").is_none());
    }
}
