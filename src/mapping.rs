//! The attribute mapping (`ATTIO_ATTRIBUTE_MAP`): which of a user's fields are written to which
//! Attio attributes, beyond those every sync writes. Read and checked once at cold start; each
//! event's values are read by [`Source::read`] and converted to what the attribute takes by
//! [`crate::convert`].
//!
//! ```json
//! {"users":  {"plan": "/public_metadata/plan", "signed_up_with": "provider"},
//!  "people": {"job_title": {"clerk": "/unsafe_metadata/title", "workos": "/metadata/title"}}}
//! ```

use serde_json::Value;

use crate::domain::{Timestamp, UserProfile, Workspace};

/// The Attio objects a mapping writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MappedObject {
    /// `users`, asserted for every user.
    Users,
    /// `people`, asserted for every user.
    People,
    /// `workspaces`, asserted for each organisation a user belongs to.
    Workspaces,
}

impl MappedObject {
    /// Attio's slug of the object.
    pub fn slug(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::People => "people",
            Self::Workspaces => "workspaces",
        }
    }

    /// Attributes every sync writes itself: a mapping may not write them too.
    fn reserved(self) -> &'static [&'static str] {
        match self {
            Self::Users => &["user_id", "primary_email_address", "person", "workspace"],
            Self::People => &["email_addresses", "name"],
            Self::Workspaces => &["workspace_id", "name", "users"],
        }
    }
}

/// A field each provider fills where it has it (the README says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CanonicalField {
    /// The route the user came through: `clerk`, `okta`, `cognito`, …
    Provider,
    /// The provider's user id.
    UserId,
    /// The primary email address.
    Email,
    /// Whether the provider has verified the address.
    EmailVerified,
    /// Given name.
    FirstName,
    /// Family name.
    LastName,
    /// `First Last`.
    FullName,
    /// Phone number, as the provider has it (E.164 for most).
    Phone,
    /// Username.
    Username,
    /// Profile picture URL.
    ImageUrl,
    /// When the user signed up.
    CreatedAt,
    /// When the user last changed.
    UpdatedAt,
    /// When the user last signed in.
    LastSignInAt,
    /// The organisation's id (organisation events and B2B members).
    OrganizationId,
    /// The organisation's name.
    OrganizationName,
    /// The organisation's slug.
    OrganizationSlug,
    /// The organisation's domain.
    OrganizationDomain,
    /// The user's role in the organisation.
    OrganizationRole,
}

/// Every canonical field by the name a mapping uses.
pub const CANONICAL_FIELDS: [(&str, CanonicalField); 18] = [
    ("provider", CanonicalField::Provider),
    ("user_id", CanonicalField::UserId),
    ("email", CanonicalField::Email),
    ("email_verified", CanonicalField::EmailVerified),
    ("first_name", CanonicalField::FirstName),
    ("last_name", CanonicalField::LastName),
    ("full_name", CanonicalField::FullName),
    ("phone", CanonicalField::Phone),
    ("username", CanonicalField::Username),
    ("image_url", CanonicalField::ImageUrl),
    ("created_at", CanonicalField::CreatedAt),
    ("updated_at", CanonicalField::UpdatedAt),
    ("last_sign_in_at", CanonicalField::LastSignInAt),
    ("organization_id", CanonicalField::OrganizationId),
    ("organization_name", CanonicalField::OrganizationName),
    ("organization_slug", CanonicalField::OrganizationSlug),
    ("organization_domain", CanonicalField::OrganizationDomain),
    ("organization_role", CanonicalField::OrganizationRole),
];

impl CanonicalField {
    /// Its name in a mapping (`email`, `created_at`, …).
    pub fn name(self) -> &'static str {
        CANONICAL_FIELDS
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("", |(name, _)| name)
    }

    /// Values standing for every shape this field's values take (what [`Source::read`] gives),
    /// so a mapping can be checked before the first event; `None` where any text may come
    /// (names, ids, roles), which any attribute type might take.
    pub fn shapes(self) -> Option<Vec<Value>> {
        use CanonicalField as F;
        Some(match self {
            F::Provider => vec![crate::routes::CLERK.into()],
            F::Email => vec!["ada@example.com".into()],
            F::EmailVerified => vec![true.into(), false.into()],
            F::Phone => vec!["+14155550100".into()],
            F::ImageUrl => vec!["https://img.example.com/u/1.png".into()],
            F::CreatedAt | F::UpdatedAt | F::LastSignInAt => vec!["2026-01-01T00:00:00Z".into()],
            F::OrganizationDomain => vec!["example.com".into()],
            F::UserId
            | F::FirstName
            | F::LastName
            | F::FullName
            | F::Username
            | F::OrganizationId
            | F::OrganizationName
            | F::OrganizationSlug
            | F::OrganizationRole => return None,
        })
    }

    /// What its values are, in words, for messages.
    pub fn described(self) -> &'static str {
        use CanonicalField as F;
        match self {
            F::Provider => "a route name",
            F::Email => "an email address",
            F::EmailVerified => "true or false",
            F::Phone => "a phone number",
            F::ImageUrl => "a URL",
            F::CreatedAt | F::UpdatedAt | F::LastSignInAt => "a time",
            F::OrganizationDomain => "a domain",
            _ => "text",
        }
    }
}

/// Where a mapped value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A canonical field.
    Field(CanonicalField),
    /// A JSON Pointer (RFC 6901) into the provider's user object as it was delivered.
    Pointer(String),
}

/// A user's value for a mapped attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// The source holds this value.
    Value(Value),
    /// The source holds JSON `null`: the attribute is cleared.
    Null,
}

impl Source {
    /// The value `user` (and, for organisation fields, `workspace`) holds here; `None` when
    /// the source is absent, which leaves the attribute untouched. Without a user (a membership
    /// naming only the user's id), only organisation fields are known.
    pub fn read(&self, user: Option<&UserProfile>, workspace: Option<&Workspace>) -> Option<Found> {
        let text = |s: &Option<String>| s.as_ref().map(|s| Found::Value(s.as_str().into()));
        let time = |t: Option<Timestamp>| t.map(|t| Found::Value(t.to_rfc3339().into()));
        let field = match self {
            Self::Pointer(pointer) => {
                let raw = user?.details.raw.as_deref()?;
                return match raw.pointer(pointer)? {
                    Value::Null => Some(Found::Null),
                    value => Some(Found::Value(value.clone())),
                };
            }
            Self::Field(field) => *field,
        };
        let organization = || workspace;
        match field {
            CanonicalField::OrganizationId => {
                organization().map(|w| Found::Value(w.id.as_str().into()))
            }
            CanonicalField::OrganizationName => text(&organization()?.name),
            CanonicalField::OrganizationSlug => text(&organization()?.slug),
            CanonicalField::OrganizationDomain => text(&organization()?.domain),
            CanonicalField::OrganizationRole => text(&organization()?.role),
            CanonicalField::Provider => {
                let provider = user?.details.provider;
                (!provider.is_empty()).then(|| Found::Value(provider.into()))
            }
            CanonicalField::UserId => Some(Found::Value(user?.user_id.as_str().into())),
            CanonicalField::Email => Some(Found::Value(user?.email.as_str().into())),
            CanonicalField::EmailVerified => {
                user?.details.email_verified.map(|v| Found::Value(v.into()))
            }
            CanonicalField::FirstName => text(&user?.first_name),
            CanonicalField::LastName => text(&user?.last_name),
            CanonicalField::FullName => text(&user?.full_name()),
            CanonicalField::Phone => text(&user?.details.phone),
            CanonicalField::Username => text(&user?.details.username),
            CanonicalField::ImageUrl => text(&user?.details.image_url),
            CanonicalField::CreatedAt => time(user?.created_at),
            CanonicalField::UpdatedAt => time(user?.details.updated_at),
            CanonicalField::LastSignInAt => time(user?.details.last_sign_in_at),
        }
    }
}

/// One mapped attribute: where its value comes from, for every route or per route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedAttribute {
    /// The object it belongs to.
    pub object: MappedObject,
    /// Its slug (or attribute id), as configured.
    pub attribute: String,
    /// The source for every route, or `None` when the mapping names sources per route.
    every_route: Option<Source>,
    /// Sources by route.
    per_route: Vec<(String, Source)>,
}

impl MappedAttribute {
    /// Every source it reads: (the route, or `None` for every route; the source).
    pub fn sources(&self) -> impl Iterator<Item = (Option<&str>, &Source)> {
        self.every_route
            .iter()
            .map(|s| (None, s))
            .chain(self.per_route.iter().map(|(r, s)| (Some(r.as_str()), s)))
    }

    /// Where this attribute's value comes from for users of `route`, if anywhere.
    pub fn source(&self, route: &str) -> Option<&Source> {
        self.every_route.as_ref().or_else(|| {
            self.per_route
                .iter()
                .find(|(r, _)| r == route)
                .map(|(_, s)| s)
        })
    }
}

/// The whole mapping; empty when `ATTIO_ATTRIBUTE_MAP` is unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributeMap {
    attributes: Vec<MappedAttribute>,
}

impl AttributeMap {
    /// Reads `ATTIO_ATTRIBUTE_MAP`'s JSON. `routes` are the routes a per-route source may name.
    /// The error names the entry that is wrong and says what it should be.
    pub fn parse(text: &str, routes: &[&str]) -> Result<Self, String> {
        let top: serde_json::Map<String, Value> =
            serde_json::from_str(text).map_err(|e| format!("is not a JSON object ({e})"))?;
        let mut attributes = Vec::new();
        for (object_name, entries) in &top {
            let object = [
                MappedObject::Users,
                MappedObject::People,
                MappedObject::Workspaces,
            ]
            .into_iter()
            .find(|o| o.slug() == object_name)
            .ok_or_else(|| {
                format!("names the object {object_name:?}; only users, people and workspaces can be mapped")
            })?;
            let entries = entries.as_object().ok_or_else(|| {
                format!("{object_name}: expected an object of attribute → source")
            })?;
            for (attribute, source) in entries {
                let entry = format!("{object_name}.{attribute}");
                if !is_attribute_slug(attribute) {
                    return Err(format!(
                        "{entry}: {attribute:?} is not an attribute slug or id (letters, digits, _ and -)"
                    ));
                }
                if object.reserved().contains(&attribute.as_str()) {
                    return Err(format!(
                        "{entry}: the function writes this attribute itself; map another one"
                    ));
                }
                let (every_route, per_route) = match source {
                    Value::String(s) => (Some(parse_source(s, &entry)?), Vec::new()),
                    Value::Object(by_route) if !by_route.is_empty() => {
                        let mut per_route = Vec::new();
                        for (route, s) in by_route {
                            if !routes.contains(&route.as_str()) {
                                return Err(format!(
                                    "{entry}: {route:?} is not a route (one of {})",
                                    routes.join(", ")
                                ));
                            }
                            let s = s.as_str().ok_or_else(|| {
                                format!(
                                    "{entry}.{route}: expected a canonical field or a JSON Pointer"
                                )
                            })?;
                            per_route.push((
                                route.clone(),
                                parse_source(s, &format!("{entry}.{route}"))?,
                            ));
                        }
                        (None, per_route)
                    }
                    _ => {
                        return Err(format!(
                            "{entry}: expected a canonical field, a JSON Pointer, or an object of route → source"
                        ));
                    }
                };
                attributes.push(MappedAttribute {
                    object,
                    attribute: attribute.clone(),
                    every_route,
                    per_route,
                });
            }
        }
        Ok(Self { attributes })
    }

    /// The mapped attributes of `object`.
    pub fn of(&self, object: MappedObject) -> impl Iterator<Item = &MappedAttribute> {
        self.attributes.iter().filter(move |a| a.object == object)
    }

    /// Whether nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }

    /// The parts of a provider's user object (`raw`) that this mapping's JSON Pointers read for
    /// users of `route`, at the same places, and nothing else: what a queue message keeps of
    /// the object, so it carries no more of the user's data than the mapping writes. `None`
    /// when the mapping reads nothing of it.
    pub fn keep(&self, route: &str, raw: &Value) -> Option<Value> {
        let mut kept = Value::Null;
        for attribute in &self.attributes {
            if let Some(Source::Pointer(pointer)) = attribute.source(route)
                && let Some(value) = raw.pointer(pointer)
            {
                place(&mut kept, raw, pointer, value);
            }
        }
        (!kept.is_null()).then_some(kept)
    }
}

/// Writes `value` into `kept` at `pointer`, building the objects and arrays on the way as `raw`
/// has them (an array is padded with `null` up to the index the pointer names).
fn place(kept: &mut Value, raw: &Value, pointer: &str, value: &Value) {
    let mut source = raw;
    let mut target = kept;
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        match source {
            Value::Object(fields) => {
                let Some(next) = fields.get(&token) else {
                    return;
                };
                if !target.is_object() {
                    *target = Value::Object(serde_json::Map::new());
                }
                let Value::Object(map) = target else {
                    return;
                };
                target = map.entry(token).or_insert(Value::Null);
                source = next;
            }
            Value::Array(items) => {
                let Some((index, next)) = token
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| Some((i, items.get(i)?)))
                else {
                    return;
                };
                if !target.is_array() {
                    *target = Value::Array(Vec::new());
                }
                let Value::Array(list) = target else {
                    return;
                };
                if list.len() <= index {
                    list.resize(index + 1, Value::Null);
                }
                target = &mut list[index];
                source = next;
            }
            _ => return,
        }
    }
    *target = value.clone();
}

fn is_attribute_slug(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn parse_source(text: &str, entry: &str) -> Result<Source, String> {
    if let Some(rest) = text.strip_prefix('/') {
        // RFC 6901: `~` only as `~0` (a tilde) or `~1` (a slash).
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
                return Err(format!(
                    "{entry}: {text:?} is not a JSON Pointer (~ must be followed by 0 or 1)"
                ));
            }
        }
        return Ok(Source::Pointer(text.to_owned()));
    }
    CANONICAL_FIELDS
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, field)| Source::Field(*field))
        .ok_or_else(|| {
            let names: Vec<&str> = CANONICAL_FIELDS.iter().map(|(n, _)| *n).collect();
            format!(
                "{entry}: {text:?} is neither a canonical field ({}) nor a JSON Pointer (which starts with /)",
                names.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROUTES: &[&str] = &["clerk", "workos", "okta"];

    #[test]
    fn reads_canonical_fields_pointers_and_per_route_sources() {
        let map = AttributeMap::parse(
            r#"{"users": {"plan": "/public_metadata/plan", "signed_up_with": "provider"},
                "people": {"job_title": {"clerk": "/unsafe_metadata/title", "workos": "/metadata/title"}},
                "workspaces": {"domains": "organization_domain"}}"#,
            ROUTES,
        )
        .unwrap();
        let users: Vec<_> = map.of(MappedObject::Users).collect();
        assert_eq!(users.len(), 2);
        let plan = users.iter().find(|a| a.attribute == "plan").unwrap();
        assert_eq!(
            plan.source("okta"),
            Some(&Source::Pointer("/public_metadata/plan".into()))
        );
        let title = map.of(MappedObject::People).next().unwrap();
        assert_eq!(
            title.source("workos"),
            Some(&Source::Pointer("/metadata/title".into()))
        );
        assert_eq!(title.source("okta"), None);
        let domains = map.of(MappedObject::Workspaces).next().unwrap();
        assert_eq!(
            domains.source("clerk"),
            Some(&Source::Field(CanonicalField::OrganizationDomain))
        );
        assert!(AttributeMap::default().is_empty());
    }

    #[test]
    fn keeps_only_what_the_route_s_pointers_read_at_the_same_places() {
        let map = AttributeMap::parse(
            r#"{"users": {"plan": "/public_metadata/plan", "signed_up_with": "provider",
                          "first_email": "/email_addresses/1/email_address", "odd": "/a~1b/~0c"},
                "people": {"job_title": {"clerk": "/unsafe_metadata/title", "workos": "/metadata/title"}}}"#,
            ROUTES,
        )
        .unwrap();
        let raw = json!({
            "id": "user_1", "private_metadata": {"secret": "s"},
            "public_metadata": {"plan": "Pro", "seats": 3},
            "unsafe_metadata": {"title": null, "other": 1},
            "metadata": {"title": "CTO"},
            "email_addresses": [{"email_address": "a@example.com"}, {"email_address": "b@example.com", "id": "e2"}],
            "a/b": {"~c": true}
        });
        let kept = map.keep("clerk", &raw).unwrap();
        assert_eq!(
            kept,
            json!({
                "public_metadata": {"plan": "Pro"},
                "unsafe_metadata": {"title": null},
                "email_addresses": [null, {"email_address": "b@example.com"}],
                "a/b": {"~c": true}
            })
        );
        for (_, pointer) in [
            ("plan", "/public_metadata/plan"),
            ("title", "/unsafe_metadata/title"),
            ("email", "/email_addresses/1/email_address"),
            ("odd", "/a~1b/~0c"),
        ] {
            assert_eq!(kept.pointer(pointer), raw.pointer(pointer), "{pointer}");
        }
        assert_eq!(
            map.keep("workos", &raw).unwrap()["metadata"],
            json!({"title": "CTO"})
        );
        assert_eq!(map.keep("okta", &json!({"id": "x"})), None);
        assert_eq!(AttributeMap::default().keep("clerk", &raw), None);
    }

    #[test]
    fn a_bad_entry_fails_naming_it() {
        for (map, named) in [
            (r#"{"users": {"plan": "plan"}}"#, "users.plan"),
            (r#"{"users": {"plan": "/a~2b"}}"#, "users.plan"),
            (r#"{"users": {"plan": 3}}"#, "users.plan"),
            (r#"{"users": {"plan": {"github": "/x"}}}"#, "users.plan"),
            (r#"{"users": {"plan": {"clerk": 1}}}"#, "users.plan.clerk"),
            (r#"{"users": {"user_id": "email"}}"#, "users.user_id"),
            (r#"{"people": {"name": "full_name"}}"#, "people.name"),
            (r#"{"users": {"Plan Name": "email"}}"#, "users.Plan Name"),
            (r#"{"companies": {"domains": "email"}}"#, "companies"),
            (r#"{"users": []}"#, "users"),
            (r#"[1]"#, "JSON object"),
        ] {
            let err = AttributeMap::parse(map, ROUTES).unwrap_err();
            assert!(err.contains(named), "{map}: {err}");
        }
    }
}
