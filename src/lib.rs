//! attio-user-sync: identity provider webhooks in, Attio `users` and `people` records out.
//!
//! Data flows one way, and every import points down this map:
//!
//! - **Entry points** (`src/main.rs`, `src/bin/`): read the [`Config`], build the [`App`] once,
//!   run one adapter.
//! - **Adapters**: [`http`] (route, verify, parse, apply, answer; the only place a failure
//!   becomes an HTTP status, and the only reader of Lambda's HTTP events), [`worker`] (SQS
//!   batches, message fates, dead letters), [`cognito_trigger`], [`backfill`] (a run over a
//!   provider's list API or an export file), [`scheduled`] (the scheduled reconcile) and
//!   [`doctor`] (preflight checks).
//! - **Reconcile** ([`reconcile`]): what the backfill (and `--check`) use to compare Attio
//!   with a provider's listing: what Attio holds, read small; `missing`, `differs`, `same`;
//!   orphans and the deletion guard.
//! - **The app** ([`app`]): the clients (TLS, Attio, Secrets Manager, SQS) built once; applies
//!   a delivery's users at the same time under the write pacing, queues what Attio cannot take.
//! - **The sync core** ([`sync`]): a [`domain::UserEvent`] becomes Attio calls, with the fields
//!   [`mapping`] names converted by [`convert`] to each attribute's type.
//! - **Clients and providers, side by side**: [`attio`] (the client, and the rules for Attio's
//!   failures), [`providers`] (each verifies and parses its webhooks, and lists its users for the
//!   backfill, into the same events), [`queue`] (the versioned message, SQS), [`secrets`],
//!   [`jwks`], [`signature`]; and the machinery they share: [`metrics`] (EMF), [`logging`],
//!   [`recent`] (what a container remembers), [`pace`] (write pacing), [`checkpoint`],
//!   [`tls`], [`sdk_http`].
//! - **Configuration** ([`config`], [`mapping`], [`convert`]): read and checked once; lists no
//!   adapter.
//! - **Domain** ([`domain`], [`email`], [`routes`], [`directory`]): the events, addresses,
//!   route names and the list-API interface the providers implement; depends on nothing above.

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
pub mod reconcile;
pub mod routes;
pub mod scheduled;
pub mod sdk_http;
pub mod secrets;
pub mod signature;
pub mod sync;
pub mod tls;
pub mod worker;

pub use app::App;
pub use config::Config;
