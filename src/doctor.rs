//! The preflight behind `attio-user-sync-doctor`: checks, one at a time, what the function
//! needs before its first event (the Attio token and its scopes, the objects it writes, the
//! attribute mapping, the secret's signing secrets, Kinde's published keys) and says, for each
//! that fails, how to fix it. Reads the same configuration as the function.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::attio::{AttioBudget, AttioClient, AttioError, AttributeInfo};
use crate::config::Config;
use crate::convert;
use crate::jwks::JwksCache;
use crate::mapping::{MappedAttribute, MappedObject, Source};
use crate::providers::{SecretForm, provider_for_route};
use crate::secrets::{Secret, SecretCache, SyncSecrets};
use crate::signature::decode_signing_secret;

/// The scopes the function's calls need.
pub const REQUIRED_SCOPES: [&str; 2] =
    ["record_permission:read-write", "object_configuration:read"];

/// Whether the space-separated `scopes` Attio lists for a token (`GET /v2/self`'s `scope`)
/// allow what `needed` allows. Attio's scopes are levels of one area (`object_configuration:read`,
/// `object_configuration:read-write`): a higher level of the same area grants the lower one.
pub fn grants(scopes: &str, needed: &str) -> bool {
    fn level(level: &str) -> Option<u8> {
        match level {
            "read" => Some(1),
            "read-write" => Some(2),
            _ => None,
        }
    }
    let Some((area, wanted)) = needed.split_once(':') else {
        return scopes.split_whitespace().any(|s| s == needed);
    };
    scopes.split_whitespace().any(|granted| {
        granted == needed
            || granted.split_once(':').is_some_and(|(a, l)| {
                a == area && level(l).zip(level(wanted)).is_some_and(|(l, w)| l >= w)
            })
    })
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, e.g. `token` or `mapping users.plan`.
    pub check: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// How to fix it, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every check, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// One line a check: `✓ token: …` or `✗ users object: … — fix: …`.
    pub fn lines(&self) -> Vec<String> {
        self.checks
            .iter()
            .map(|c| match (&c.fix, c.ok) {
                (_, true) => format!("✓ {}: {}", c.check, c.detail),
                (Some(fix), false) => format!("✗ {}: {} — fix: {fix}", c.check, c.detail),
                (None, false) => format!("✗ {}: {}", c.check, c.detail),
            })
            .collect()
    }

    fn pass(&mut self, check: impl Into<String>, detail: impl Into<String>) {
        self.checks.push(Check {
            check: check.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        });
    }

    fn fail(
        &mut self,
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.checks.push(Check {
            check: check.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        });
    }
}

/// Where the Attio token comes from.
pub enum TokenSource {
    /// The function's secret, by `ATTIO_SYNC_SECRET_ID`, through Secrets Manager.
    Secret(SecretCache),
    /// `ATTIO_ACCESS_TOKEN`, for a first try before the secret exists.
    Direct(Secret),
}

/// What the doctor works with: the function's configuration and clients.
pub struct Doctor {
    /// The configuration, as the function reads it.
    pub config: Config,
    /// The Attio client.
    pub attio: AttioClient,
    /// Where the token comes from.
    pub token: TokenSource,
    /// The routes to check the secret for; empty for the routes the secret configures.
    pub routes: Vec<String>,
}

impl Doctor {
    /// Runs every check.
    pub async fn run(&self) -> Report {
        let mut report = Report::default();
        let secrets = self.check_secret(&mut report).await;
        let token = match (&self.token, &secrets) {
            (TokenSource::Direct(token), _) => Some(token.clone()),
            (TokenSource::Secret(_), Some(s)) => Some(s.attio_access_token.clone()),
            (TokenSource::Secret(_), None) => None,
        };
        if let Some(secrets) = &secrets {
            self.check_signing_secrets(&mut report, secrets);
        }
        let Some(token) = token else {
            report.fail(
                "token",
                "not checked: no token (the secret could not be read)",
                "fix the secret, or set ATTIO_ACCESS_TOKEN to try a token directly",
            );
            return report;
        };
        let mut budget = AttioBudget::from_now(Duration::from_secs(60));
        if self.check_token(&mut report, &token, &mut budget).await {
            let mut catalogs = Vec::new();
            self.check_objects(
                &mut report,
                &token,
                &mut budget,
                &mut catalogs,
                secrets.as_deref(),
            )
            .await;
            self.check_mapping(&mut report, &token, &mut budget, &mut catalogs)
                .await;
        }
        self.check_kinde(&mut report).await;
        report
    }

    async fn check_secret(&self, report: &mut Report) -> Option<Arc<SyncSecrets>> {
        let TokenSource::Secret(cache) = &self.token else {
            report.pass("secret", "not read: ATTIO_ACCESS_TOKEN is used instead");
            return None;
        };
        match cache.get().await {
            Ok(secrets) => {
                let mut routes: Vec<&str> =
                    secrets.webhook_secrets.keys().map(String::as_str).collect();
                routes.sort_unstable();
                report.pass(
                    "secret",
                    format!(
                        "{} read: attio_access_token, webhook_secrets for {}",
                        self.config.secret_id,
                        if routes.is_empty() {
                            "no route".to_owned()
                        } else {
                            routes.join(", ")
                        }
                    ),
                );
                Some(secrets)
            }
            Err(e) => {
                report.fail(
                    "secret",
                    format!("{} could not be used: {e}", self.config.secret_id),
                    "create it as the README shows (aws secretsmanager create-secret …), give this identity secretsmanager:GetSecretValue, and check AWS_REGION",
                );
                None
            }
        }
    }

    /// The routes to check: those asked for, else those the secret configures (and Kinde's,
    /// when its issuer is set).
    fn routes(&self, secrets: &SyncSecrets) -> Vec<String> {
        if !self.routes.is_empty() {
            return self.routes.clone();
        }
        let mut routes: Vec<String> = secrets.webhook_secrets.keys().cloned().collect();
        if self.config.kinde_issuer_url.is_some() {
            routes.push(crate::routes::KINDE.into());
        }
        routes.sort_unstable();
        routes
    }

    fn check_signing_secrets(&self, report: &mut Report, secrets: &SyncSecrets) {
        for route in self.routes(secrets) {
            let check = format!("route {route}");
            let Some(provider) = provider_for_route(&route) else {
                report.fail(
                    check,
                    "no such route",
                    "use one of the routes in the README's table, or remove this key from webhook_secrets",
                );
                continue;
            };
            let configured = secrets.webhook_secrets_for(&route);
            match provider.secret_form() {
                SecretForm::PublishedKeys => report.pass(
                    check,
                    "verified with the provider's published keys; no secret needed",
                ),
                _ if configured.is_empty() => report.fail(
                    check,
                    format!("the secret has no webhook_secrets.{route}"),
                    format!(
                        "add \"{route}\": \"<the provider's signing secret>\" under webhook_secrets"
                    ),
                ),
                SecretForm::SigningKey => {
                    let bad = configured
                        .iter()
                        .filter(|s| decode_signing_secret(s.expose()).is_none())
                        .count();
                    if bad == 0 {
                        report.pass(
                            check,
                            format!(
                                "{} signing secret(s), each a whsec_ key that decodes",
                                configured.len()
                            ),
                        );
                    } else {
                        report.fail(
                            check,
                            format!(
                                "{bad} of {} signing secret(s) are not whsec_<base64>",
                                configured.len()
                            ),
                            "copy the endpoint's signing secret again, whole (whsec_…)",
                        );
                    }
                }
                SecretForm::Text => {
                    if configured.iter().all(|s| !s.expose().trim().is_empty()) {
                        report.pass(check, format!("{} secret value(s) set", configured.len()));
                    } else {
                        report.fail(
                            check,
                            "a secret value is empty",
                            "set the value the provider sends or signs with",
                        );
                    }
                }
            }
        }
    }

    async fn check_token(
        &self,
        report: &mut Report,
        token: &Secret,
        budget: &mut AttioBudget,
    ) -> bool {
        match self.attio.token_info(token, budget).await {
            Ok(info) if !info.active => {
                report.fail(
                    "token",
                    "Attio says the token is not active",
                    "create a new access token in Attio (Settings › Developers)",
                );
                false
            }
            Ok(info) => {
                let missing: Vec<&str> = REQUIRED_SCOPES
                    .iter()
                    .copied()
                    .filter(|needed| !grants(&info.scope, needed))
                    .collect();
                let workspace = info.workspace_name.as_deref().unwrap_or("(unnamed)");
                if missing.is_empty() {
                    report.pass(
                        "token",
                        format!(
                            "active for workspace \"{workspace}\", with {}",
                            REQUIRED_SCOPES.join(" and ")
                        ),
                    );
                    true
                } else {
                    report.fail(
                        "token",
                        format!("active for workspace \"{workspace}\" but without {}", missing.join(" and ")),
                        "give the integration's token these scopes in Attio (Settings › Developers)",
                    );
                    false
                }
            }
            Err(e) => {
                report.fail(
                    "token",
                    format!("Attio refused or could not be asked: {e}"),
                    "check ATTIO_API_URL and the token (a new one from Settings › Developers)",
                );
                false
            }
        }
    }

    async fn check_objects(
        &self,
        report: &mut Report,
        token: &Secret,
        budget: &mut AttioBudget,
        catalogs: &mut Vec<(MappedObject, Vec<AttributeInfo>)>,
        secrets: Option<&SyncSecrets>,
    ) {
        let matching = self.config.user_matching_attribute.slug();
        match self
            .catalog(token, MappedObject::Users, budget, catalogs)
            .await
        {
            Ok(users) => match users.iter().find(|a| a.api_slug == matching) {
                Some(a) if a.is_unique => {
                    report.pass("users object", format!("active; {matching} is unique"))
                }
                Some(_) => report.fail(
                    "users object",
                    format!("active, but {matching} is not unique, so it cannot match users"),
                    "make it unique in Attio, or set ATTIO_USER_MATCHING_ATTRIBUTE to user_id",
                ),
                None => report.fail(
                    "users object",
                    format!("active, but has no {matching} attribute"),
                    "set ATTIO_USER_MATCHING_ATTRIBUTE to user_id or primary_email_address",
                ),
            },
            Err(e) => report.fail(
                "users object",
                object_problem(&e),
                "activate Users in Attio under Settings › Objects",
            ),
        }
        let routes = secrets
            .map(|s| self.routes(s))
            .unwrap_or_else(|| self.routes.clone());
        let linking: Vec<&str> = routes
            .iter()
            .filter_map(|r| provider_for_route(r))
            .filter(|p| p.links_organisations())
            .map(|p| p.route())
            .collect();
        if linking.is_empty() {
            return;
        }
        match self
            .catalog(token, MappedObject::Workspaces, budget, catalogs)
            .await
        {
            Ok(_) => report.pass(
                "workspaces object",
                format!("active (for {})", linking.join(", ")),
            ),
            Err(e) => report.fail(
                "workspaces object",
                format!(
                    "{} (needed for {}'s organisations)",
                    object_problem(&e),
                    linking.join(", ")
                ),
                "activate Workspaces in Attio under Settings › Objects",
            ),
        }
    }

    async fn check_mapping(
        &self,
        report: &mut Report,
        token: &Secret,
        budget: &mut AttioBudget,
        catalogs: &mut Vec<(MappedObject, Vec<AttributeInfo>)>,
    ) {
        for object in [
            MappedObject::Users,
            MappedObject::People,
            MappedObject::Workspaces,
        ] {
            let mapped: Vec<_> = self.config.attribute_map.of(object).collect();
            if mapped.is_empty() {
                continue;
            }
            let attributes = match self.catalog(token, object, budget, catalogs).await {
                Ok(attributes) => attributes,
                Err(e) => {
                    for m in mapped {
                        report.fail(
                            format!("mapping {}.{}", object.slug(), m.attribute),
                            object_problem(&e),
                            "activate the object, or remove the mapping",
                        );
                    }
                    continue;
                }
            };
            for m in mapped {
                let check = format!("mapping {}.{}", object.slug(), m.attribute);
                let name = m.attribute.as_str();
                match attributes.iter().find(|a| a.api_slug == name || a.attribute_id == name) {
                    None => report.fail(check, format!("Attio has no attribute {name} on {}", object.slug()), "create it in Attio (Settings › Objects), or fix the slug in ATTIO_ATTRIBUTE_MAP"),
                    Some(a) if a.is_archived => report.fail(check, format!("archived: Attio keeps {name} on {} but takes no values for it", object.slug()), "unarchive it in Attio, or map another attribute"),
                    Some(a) if !a.is_writable => report.fail(check, "the attribute cannot be written through the API", "map another attribute"),
                    Some(a) => match convert::conversion(&a.kind) {
                        Some(conversion) => match sources_against(m, &a.kind) {
                            Err((detail, fix)) => report.fail(check, detail, fix),
                            Ok(note) => report.pass(check, format!("{} attribute; takes {conversion}{note}", a.kind)),
                        },
                        None => report.fail(check, format!("a {} attribute, which the mapping cannot write", a.kind), "map a text, number, checkbox, date, timestamp, select, status, phone-number, domain, email-address or rating attribute"),
                    },
                }
            }
        }
    }

    async fn check_kinde(&self, report: &mut Report) {
        let Some(issuer) = &self.config.kinde_issuer_url else {
            return;
        };
        let url = format!("{issuer}/.well-known/jwks.json");
        match JwksCache::new(self.attio.http_client()).get(&url).await {
            Ok(keys) if !keys.keys.is_empty() => report.pass(
                "kinde keys",
                format!("{url} serves {} key(s)", keys.keys.len()),
            ),
            Ok(_) => report.fail(
                "kinde keys",
                format!("{url} serves no keys"),
                "check KINDE_ISSUER_URL (https://<sub>.kinde.com)",
            ),
            Err(e) => report.fail(
                "kinde keys",
                format!("{url}: {e}"),
                "check KINDE_ISSUER_URL (https://<sub>.kinde.com)",
            ),
        }
    }

    /// `object`'s attributes, read once per run.
    async fn catalog(
        &self,
        token: &Secret,
        object: MappedObject,
        budget: &mut AttioBudget,
        catalogs: &mut Vec<(MappedObject, Vec<AttributeInfo>)>,
    ) -> Result<Vec<AttributeInfo>, AttioError> {
        if let Some((_, attributes)) = catalogs.iter().find(|(o, _)| *o == object) {
            return Ok(attributes.clone());
        }
        let attributes = self
            .attio
            .list_attributes(token, object.slug(), budget)
            .await?;
        catalogs.push((object, attributes.clone()));
        Ok(attributes)
    }
}

/// Whether each of `mapped`'s sources can ever become a value of a `kind` attribute: `Err((what,
/// fix))` for a canonical field whose every value the type refuses; else a note for the
/// sources whose type only a value shows (JSON Pointers), empty when there are none.
fn sources_against(mapped: &MappedAttribute, kind: &str) -> Result<String, (String, String)> {
    let mut unknown = Vec::new();
    for (route, source) in mapped.sources() {
        let field = match source {
            Source::Pointer(pointer) => {
                unknown.push(pointer.as_str());
                continue;
            }
            Source::Field(field) => *field,
        };
        let Some(shapes) = field.shapes() else {
            continue;
        };
        if convert::takes_any(kind, &shapes) {
            continue;
        }
        let takers: Vec<&str> = convert::WRITABLE_TYPES
            .into_iter()
            .filter(|k| convert::takes_any(k, &shapes))
            .collect();
        let source = match route {
            Some(route) => format!("{route}'s {}", field.name()),
            None => field.name().to_owned(),
        };
        return Err((
            format!(
                "a {kind} attribute can never take {source} ({}): every event would leave it out with a warning",
                field.described()
            ),
            format!(
                "map {} to a {} attribute, or map a source that holds what a {kind} attribute takes",
                field.name(),
                takers.join(", ")
            ),
        ));
    }
    Ok(match unknown.as_slice() {
        [] => String::new(),
        pointers => format!(
            "; {} cannot be checked before the first event (only a value shows its type)",
            pointers.join(", ")
        ),
    })
}

fn object_problem(e: &AttioError) -> String {
    match e {
        AttioError::ObjectNotActivated { object } => {
            format!("the {object} object is not activated")
        }
        other => format!("its attributes could not be read: {other}"),
    }
}

impl Doctor {
    /// The doctor for the configuration `lookup` reads (the process environment, in the
    /// binary): the function's variables, with `ATTIO_ACCESS_TOKEN` standing in for the secret
    /// when `ATTIO_SYNC_SECRET_ID` is unset. `routes` are the routes to check the secret for.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        routes: Vec<String>,
    ) -> Result<Self, String> {
        let (config, direct) =
            crate::config::from_lookup_or_token(&lookup).map_err(|e| e.to_string())?;
        let (attio, secrets) =
            crate::app::build_clients(&config, &lookup).map_err(|e| e.to_string())?;
        let token = match direct {
            Some(token) => TokenSource::Direct(Secret::new(token)),
            None => TokenSource::Secret(SecretCache::new(
                secrets,
                config.secret_id.clone(),
                config.secret_cache_ttl,
            )),
        };
        Ok(Self {
            config,
            attio,
            token,
            routes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::grants;

    #[test]
    fn a_higher_level_of_the_same_area_grants_the_lower_one() {
        let token = "record_permission:read-write object_configuration:read-write";
        assert!(grants(token, "object_configuration:read"));
        assert!(grants(token, "record_permission:read-write"));
        assert!(grants(
            "object_configuration:read",
            "object_configuration:read"
        ));
    }

    #[test]
    fn a_lower_level_or_another_area_does_not() {
        assert!(!grants(
            "record_permission:read object_configuration:read",
            "record_permission:read-write"
        ));
        assert!(!grants(
            "list_configuration:read-write user_management:read-write",
            "object_configuration:read"
        ));
        assert!(!grants("", "object_configuration:read"));
        assert!(!grants(
            "object_configuration:write-only",
            "object_configuration:read"
        ));
    }
}
