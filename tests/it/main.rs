//! Integration tests, one binary: the real handler behind lambda_http's event parsing, moto's
//! Secrets Manager and the local Attio stand-in.

mod support;

mod backfill;
mod backfill_sources;
mod batches;
mod cargo_lambda_watch;
mod chaos;
mod cognito;
mod contract;
mod doctor;
mod faults;
mod hostile;
mod kinde;
mod load;
mod mapping;
mod ordering;
mod overlap;
mod pace;
mod providers;
mod queue;
mod reads;
mod reconcile;

mod secrets;
mod tls;
mod workspaces;
