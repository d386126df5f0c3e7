//! attio-user-sync: identity provider webhooks in, Attio `users` and `people` records out.
//!
//! Data flows one way: [`lambda_entry`] reads each Lambda event into a request; [`handler`]
//! routes it to a [`providers`] module, which verifies it and turns it into
//! [`domain::UserEvent`]s (addresses parsed by [`email`]); [`sync`] applies those through the
//! [`attio`] client, with the fields [`mapping`] names converted by [`convert`] to each
//! attribute's type; [`error`] maps every failure to one HTTP status. What Attio cannot take in
//! time goes, as a [`queue`] message (the event's serde form, versioned), to an SQS FIFO queue,
//! and the [`worker`] applies it later through the same [`sync`]. [`recent`] is what a
//! container remembers between invocations (person asserts, applied events of a delivery),
//! [`secrets`] caches the Secrets Manager secret, [`config`] validates the environment once,
//! [`metrics`] writes CloudWatch EMF lines; [`backfill`] reads a provider's
//! existing users page by page into the same events and sync, its writes paced by [`pace`] and
//! its position kept by [`checkpoint`]. [`lambda_entry`], [`cognito`], [`worker`], [`backfill`] and
//! [`doctor`] are what the binaries (`src/main.rs`, `src/bin/`) run.

pub mod app;
pub mod attio;
pub mod backfill;
pub mod checkpoint;
pub mod cognito_trigger;
pub mod config;
pub mod convert;
pub mod directory;
pub mod doctor;
pub mod domain;
pub mod email;
pub mod http;
pub mod jwks;
pub mod logging;
pub mod mapping;
pub mod metrics;
pub mod pace;
pub mod providers;
pub mod queue;
pub mod recent;
pub mod routes;
pub mod sdk_http;
pub mod secrets;
pub mod signature;
pub mod sync;
pub mod tls;
pub mod worker;

pub use app::App;
pub use config::Config;
