//! Reconcile: prove Attio equals the identity provider, write only the difference, remove who
//! is gone. What Attio holds of the users is read once, small ([`snapshot`]: a fingerprint per
//! compared attribute, compared the way Attio stores values, [`canonical`]); each user the
//! provider lists is then `missing`, `differs` (naming the attributes) or `same`
//! ([`Comparison::classify`]); after a complete listing, the users Attio holds that the
//! provider did not list are orphans, deleted only as the [`guard`] allows.

pub mod canonical;
pub mod guard;
pub mod snapshot;

use crate::App;
use crate::attio::{AttioBudget, AttioError, RecordId};
use crate::domain::UserEvent;
use crate::mapping::{CanonicalField, MappedObject, Source};
use crate::secrets::Secret;
use snapshot::{AttioUsers, Class, OfRoute, Reading, StaleLinks};

/// A user's line in a reconcile report: each user that is not `same`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The provider's user id.
    pub user_id: String,
    /// `missing`, `differs`, `orphan`, or `deleted` (an orphan removed).
    pub class: &'static str,
    /// For `differs`: the attributes that differ, by Attio slug.
    pub attributes: Vec<String>,
}

impl Found {
    /// The report's JSON line: `{"user_id", "class", "attributes"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "user_id": self.user_id,
            "class": self.class,
            "attributes": self.attributes,
        })
    }
}

/// Which of Attio's `users` records are `route`'s: with the canonical `provider` field mapped
/// to a `users` attribute, those holding the route there; otherwise every one.
pub fn of_route(app: &App, route: &'static str) -> Option<OfRoute> {
    let provider = Source::Field(CanonicalField::Provider);
    app.config()
        .attribute_map
        .of(MappedObject::Users)
        .find(|a| a.source(route) == Some(&provider))
        .map(|a| OfRoute {
            slug: a.attribute.clone(),
            route,
        })
}

/// A comparison in progress: what Attio holds, and what the listing has found of it.
#[derive(Debug)]
pub struct Comparison {
    users: AttioUsers,
    token: Secret,
    of_route: Option<OfRoute>,
}

impl Comparison {
    /// Reads what Attio holds of `route`'s users as `reading` says (paced by the app's read
    /// limiter).
    pub async fn start(
        app: &App,
        token: Secret,
        route: &'static str,
        reading: Reading,
        on_page: impl FnMut(u64),
    ) -> Result<Self, AttioError> {
        let of_route = of_route(app, route);
        let mut budget = AttioBudget::from_now(std::time::Duration::from_secs(120));
        let written = app.sync().written_attributes(&token, &mut budget).await?;
        let users = AttioUsers::read(
            app.attio(),
            &token,
            of_route.as_ref(),
            &written,
            reading,
            on_page,
        )
        .await?;
        Ok(Self {
            users,
            token,
            of_route,
        })
    }

    /// How many users of the route Attio holds.
    pub fn attio_users(&self) -> u64 {
        self.users.len() as u64
    }

    /// How a listed user's event compares with what Attio holds. Only upserts are compared;
    /// any other event is `missing` (applied as it is).
    pub async fn classify(&mut self, app: &App, event: &UserEvent) -> Result<Class, AttioError> {
        let UserEvent::Upserted {
            user,
            workspaces,
            occurred_at,
            ..
        } = event
        else {
            return Ok(Class::Missing);
        };
        let mut budget = AttioBudget::from_now(std::time::Duration::from_secs(60));
        let would = app
            .sync()
            .would_write(&self.token, user, *occurred_at, &mut budget)
            .await?;
        Ok(self.users.compare(&user.user_id, &would, workspaces))
    }

    /// The organisations the provider listed as such, members or none (the directory's
    /// [`organisations`](crate::directory::Directory::organisations)).
    pub fn organisations_listed(&mut self, ids: Vec<String>) {
        self.users.organisations_listed(ids);
    }

    /// After the listing: listed users linked to workspaces of the route that the provider
    /// no longer lists for them.
    pub fn stale_links(&self) -> Vec<StaleLinks> {
        self.users.stale_links()
    }

    /// After a complete listing: the users Attio holds that it did not name, (user id,
    /// record).
    pub async fn orphans(&self, app: &App) -> Result<Vec<(String, RecordId)>, AttioError> {
        self.users
            .unlisted_users(app.attio(), &self.token, self.of_route.as_ref())
            .await
    }

    /// The token the comparison reads with.
    pub fn token(&self) -> &Secret {
        &self.token
    }
}
