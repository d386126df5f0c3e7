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

use crate::directory::Source;

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

/// Every list API the backfill reads, one a route.
pub static SOURCES: &[&Source] = &[
    &clerk::directory::SOURCE,
    &supabase::directory::STANDARD_SOURCE,
    &stytch::directory::SOURCE,
    &workos::directory::SOURCE,
    &okta::directory::SOURCE,
    &auth0::directory::SOURCE,
    &supabase::directory::SOURCE,
    &kinde::directory::SOURCE,
    &cognito::directory::SOURCE,
];

/// The list API of `route`'s users.
pub fn source_for(route: &str) -> Option<&'static Source> {
    SOURCES.iter().copied().find(|s| s.route == route)
}

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

    #[test]
    fn every_route_has_exactly_one_list_api() {
        for route in crate::routes::ALL {
            let sources = SOURCES.iter().filter(|s| s.route == *route).count();
            assert_eq!(sources, 1, "{route}");
        }
        assert_eq!(SOURCES.len(), crate::routes::ALL.len());
    }
}
