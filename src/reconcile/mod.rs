//! Reconcile: prove Attio equals the identity provider, write only the difference, remove who
//! is gone. Built up in steps (issue 21); so far what Attio holds of the users, read small
//! ([`snapshot`]), and the deletion guard ([`guard`]), which decides whether the users Attio
//! holds and the provider no longer lists may be deleted.

pub mod guard;
pub mod snapshot;
