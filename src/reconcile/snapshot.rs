//! What Attio holds of the `users` object, read once in pages of Attio's query and kept small:
//! per user a 128-bit key of its `user_id` and its record id in 16 bytes, never the values
//! themselves: 50 to 110 bytes a user with the index, as the hash map's and the vector's growth
//! fall (a million users: about 100 MB at most; to be measured by issue 21's benchmark).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::attio::{AttioBudget, AttioClient, AttioError, FoundRecord, RecordId};
use crate::domain::{Timestamp, Workspace};
use crate::secrets::Secret;
use crate::sync::{Repair, WouldWrite, WrittenAttributes};

use super::canonical::fingerprint;

/// How the snapshot reads Attio's records: pages of `page` records (Attio's most, 500, by
/// default), `at_once` of them in flight (8 by default: Attio's round trip is paid once for
/// several pages, and the client's read limiter keeps them under 100 a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Records a query page holds.
    pub page: u32,
    /// Pages in flight at once.
    pub at_once: usize,
}

impl Default for Reading {
    fn default() -> Self {
        Self {
            page: 500,
            at_once: 8,
        }
    }
}

/// Which `users` records are a route's: those whose attribute `slug` (where the attribute map
/// writes the canonical `provider` field) holds `route`, as text or as a select option's title.
/// A record without it is not of the route.
#[derive(Debug, Clone)]
pub struct OfRoute {
    /// The attribute's slug.
    pub slug: String,
    /// The route.
    pub route: &'static str,
}

impl OfRoute {
    fn holds(&self, values: &serde_json::Value) -> bool {
        let first = values.get(&self.slug).and_then(|list| list.get(0));
        let held = first.and_then(|v| {
            v.get("value")
                .or_else(|| v.pointer("/option/title"))
                .and_then(serde_json::Value::as_str)
        });
        held == Some(self.route)
    }
}

/// The `users` records Attio holds, by `user_id`, each with a fingerprint per compared
/// attribute, its person's fingerprints and its workspace links; then what the provider's
/// listing found of them.
#[derive(Debug, Default)]
pub struct AttioUsers {
    written: WrittenAttributes,
    reading: Reading,
    /// Each user's `user_id` key and its place in `held`, sorted by key (a binary search finds
    /// a user: no hash table's empty slots).
    index: Vec<(Key, u32)>,
    held: Vec<Held>,
    /// `written.users.len()` fingerprints per user.
    fingerprints: Vec<u64>,
    /// Per user the event time Attio holds (Unix milliseconds, `i64::MIN`: none), when the
    /// event-time attribute is configured.
    event_times: Vec<i64>,
    /// The workspace records users link to, `Held::links` ranges into it.
    links: Vec<[u8; 16]>,
    /// The linked people's records, sorted; `Held::person` is a place in it, plus one.
    people: Vec<[u8; 16]>,
    /// Whether Attio still holds each linked person (a user may link to one since deleted).
    people_found: Vec<bool>,
    /// `written.people.len()` fingerprints per linked person.
    people_fingerprints: Vec<u64>,
    /// Workspace records → their `workspace_id`'s key and their name's fingerprint.
    workspaces: HashMap<[u8; 16], (Key, u64)>,
    /// `workspace_id` keys → their workspace records (the other way round).
    workspace_records: HashMap<Key, [u8; 16]>,
    /// Workspaces whose name was found to differ (once each, on the first member listed).
    renamed: std::collections::HashSet<Key>,
    /// Organisations the listing named (their ids' keys, and the ids): the route's workspaces.
    route_organisations: HashMap<Key, Box<str>>,
    /// Links of listed users to workspaces the provider did not list for them, decided at the
    /// end of the listing: (user id, user, workspace record).
    unlisted_links: Vec<(String, u32, [u8; 16])>,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    record: [u8; 16],
    /// The linked person's place in `AttioUsers::people`, plus one (0: none).
    person: u32,
    links: (u32, u16),
    listed: bool,
    /// Found to differ while listed.
    drifted: bool,
}

/// How a listed user compares with what Attio holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Attio holds no user with its id.
    Missing,
    /// Attio holds it as the sync would write it: nothing to write.
    Same,
    /// Something the sync would write differs.
    Differs(Drift),
}

/// A listed user's links to workspaces of the route the provider no longer lists for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleLinks {
    /// The provider's user id.
    pub user_id: String,
    /// The user's record.
    pub record_id: RecordId,
    /// The workspace records to unlink.
    pub unlink: Vec<RecordId>,
    /// Their organisations' ids at the provider (`workspace_id`), in the same order.
    pub workspace_ids: Vec<String>,
    /// Whether the user was found to differ already (and counted so).
    pub drifted: bool,
}

/// What differs of a user, and the writes that repair it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The attributes that differ, by Attio slug (`person` for a missing person record,
    /// `workspace` for links), never their values.
    pub attributes: Vec<String>,
    /// The user's record.
    pub record_id: RecordId,
    /// The writes it needs.
    pub repair: Repair,
}

impl AttioUsers {
    /// Every `users` record (of the route, with `of_route`), read page by page, with what
    /// `written` names of it, then the people they link to and the workspaces (`on_page` hears
    /// how many records were read so far). Reads are paced by the client's read limiter, when
    /// it has one; each page has a minute.
    pub async fn read(
        attio: &AttioClient,
        token: &Secret,
        of_route: Option<&OfRoute>,
        written: &WrittenAttributes,
        reading: Reading,
        mut on_page: impl FnMut(u64),
    ) -> Result<Self, AttioError> {
        let mut users = Self {
            written: written.clone(),
            reading,
            ..Self::default()
        };
        let mut read = 0;
        // Each user's person record, until the people are known.
        let mut persons: Vec<[u8; 16]> = Vec::new();
        each_record(
            attio,
            token,
            "users",
            reading,
            |record| {
                read += 1;
                if of_route.is_some_and(|r| !r.holds(&record.values)) {
                    return Ok(());
                }
                // A record without a user_id (made by hand in Attio) is no user of a provider.
                let Some(user_id) = record.text("user_id") else {
                    return Ok(());
                };
                persons.push(person_of(record));
                users.insert(user_id, record)
            },
            &mut |n| on_page(n),
        )
        .await?;
        users.index.sort_unstable();
        users.index.shrink_to_fit();
        users.link_people(&persons);
        drop(persons);
        if !users.people.is_empty() {
            let width = users.written.people.len();
            users.people_found = vec![false; users.people.len()];
            users.people_fingerprints = vec![0; users.people.len() * width];
            each_record(
                attio,
                token,
                "people",
                reading,
                |record| {
                    let key = record_key(&record.id).ok_or_else(not_a_uuid)?;
                    if let Ok(at) = users.people.binary_search(&key) {
                        users.people_found[at] = true;
                        for (i, (slug, kind)) in users.written.people.iter().enumerate() {
                            users.people_fingerprints[at * width + i] =
                                fingerprint(kind, record.values.get(slug));
                        }
                    }
                    Ok(())
                },
                &mut |n| on_page(read + n),
            )
            .await?;
        }
        let workspaces = each_record(
            attio,
            token,
            "workspaces",
            reading,
            |record| {
                let key = record_key(&record.id).ok_or_else(not_a_uuid)?;
                if let Some(id) = record.text("workspace_id") {
                    let name = fingerprint("text", record.values.get("name"));
                    users.workspaces.insert(key, (user_key(id), name));
                    users.workspace_records.insert(user_key(id), key);
                }
                Ok(())
            },
            &mut |_| {},
        )
        .await;
        match workspaces {
            // Not activated: no workspace to compare.
            Ok(_) | Err(AttioError::ObjectNotActivated { .. }) => {
                users.held.shrink_to_fit();
                users.fingerprints.shrink_to_fit();
                users.event_times.shrink_to_fit();
                users.links.shrink_to_fit();
                Ok(users)
            }
            Err(e) => Err(e),
        }
    }

    /// Sorts the users' people into `people` and points each user at its own (`persons`: each
    /// user's person record, in `held`'s order, all zero for none).
    fn link_people(&mut self, persons: &[[u8; 16]]) {
        self.people = persons.iter().copied().filter(|p| *p != [0; 16]).collect();
        self.people.sort_unstable();
        self.people.dedup();
        self.people.shrink_to_fit();
        for (held, person) in self.held.iter_mut().zip(persons) {
            held.person = match self.people.binary_search(person) {
                Ok(at) => at as u32 + 1,
                Err(_) => 0,
            };
        }
    }

    /// The place in `held` of the user `user_id`.
    fn position(&self, user_id: &str) -> Option<usize> {
        let key = user_key(user_id);
        let at = self.index.binary_search_by_key(&key, |(k, _)| *k).ok()?;
        Some(self.index[at].1 as usize)
    }

    fn insert(&mut self, user_id: &str, record: &FoundRecord) -> Result<(), AttioError> {
        let at = self.held.len() as u32;
        let start = self.links.len() as u32;
        let linked = record.values.get("workspace").and_then(|v| v.as_array());
        self.links
            .extend(linked.into_iter().flatten().filter_map(reference));
        let count = (self.links.len() as u32 - start).min(u16::MAX.into()) as u16;
        for (slug, kind) in &self.written.users {
            self.fingerprints
                .push(fingerprint(kind, record.values.get(slug)));
        }
        if let Some(attribute) = &self.written.event_time {
            let held = record.text(attribute).and_then(Timestamp::parse);
            self.event_times
                .push(held.map_or(i64::MIN, |t| t.unix_millis()));
        }
        self.held.push(Held {
            record: record_key(&record.id).ok_or_else(not_a_uuid)?,
            person: 0,
            links: (start, count),
            listed: false,
            drifted: false,
        });
        self.index.push((user_key(user_id), at));
        Ok(())
    }

    /// How many users Attio holds.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether Attio holds none.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The provider listed `user_id`: its record id, if Attio holds the user (`None`: missing).
    pub fn listed(&mut self, user_id: &str) -> Option<RecordId> {
        let at = self.position(user_id)?;
        self.held[at].listed = true;
        Some(record_id(&self.held[at].record))
    }

    /// Compares a listed user (`would` write, linked to `workspaces`) with what Attio holds,
    /// and marks it listed.
    pub fn compare(
        &mut self,
        user_id: &str,
        would: &WouldWrite,
        workspaces: &[Workspace],
    ) -> Class {
        // The listed workspaces' keys, hashed once.
        let listed: Vec<Key> = workspaces.iter().map(|w| user_key(&w.id)).collect();
        for (workspace, key) in workspaces.iter().zip(&listed) {
            self.route_organisations
                .entry(*key)
                .or_insert_with(|| workspace.id.as_str().into());
        }
        let Some(at) = self.position(user_id) else {
            return Class::Missing;
        };
        let held = &mut self.held[at];
        held.listed = true;
        let held = *held;
        let mut attributes = Vec::new();
        let mut user = false;
        let width = self.written.users.len();
        for (i, (slug, kind)) in self.written.users.iter().enumerate() {
            let Some(value) = would.user.get(slug) else {
                continue; // the provider left it out: not compared
            };
            if fingerprint(kind, Some(value)) != self.fingerprints[at * width + i] {
                attributes.push(slug.clone());
                user = true;
            }
        }
        if let (Some(attribute), Some(at_time)) = (&self.written.event_time, would.event_time) {
            // Attio holding a later change is not drift: the listing is not newer than it.
            if self.event_times[at] < at_time.unix_millis() {
                attributes.push(attribute.clone());
                user = true;
            }
        }
        let person = (held.person as usize)
            .checked_sub(1)
            .filter(|&p| self.people_found[p]);
        let mut person_same = person.is_some();
        match person {
            // No person (deleted or merged in Attio): asserted anew, and the user linked to it.
            None => {
                attributes.push("person".into());
                user = true;
            }
            Some(p) => {
                let width = self.written.people.len();
                for (i, (slug, kind)) in self.written.people.iter().enumerate() {
                    let Some(value) = would.person.get(slug) else {
                        continue;
                    };
                    if fingerprint(kind, Some(value)) != self.people_fingerprints[p * width + i] {
                        attributes.push(slug.clone());
                        person_same = false;
                    }
                }
            }
        }
        // A new address may be another person's: the person is asserted by it again (and the
        // user, whose address differs, links to it).
        if user && attributes.iter().any(|a| a == "primary_email_address") {
            person_same = false;
        }
        let (start, count) = held.links;
        let linked = &self.links[start as usize..start as usize + count as usize];
        let linked_ids: Vec<Option<Key>> = linked
            .iter()
            .map(|w| self.workspaces.get(w).map(|(id, _)| *id))
            .collect();
        let mut link = Vec::new();
        for (workspace, id) in workspaces.iter().zip(&listed) {
            if !linked_ids.contains(&Some(*id))
                && !link
                    .iter()
                    .any(|(w, _): &(Workspace, _)| w.id == workspace.id)
            {
                let known = self.workspace_records.get(id).map(record_id);
                link.push((workspace.clone(), known));
            }
        }
        for (w, id) in linked.iter().zip(&linked_ids) {
            if id.is_some_and(|id| !listed.contains(&id)) {
                self.unlisted_links
                    .push((user_id.to_owned(), at as u32, *w));
            }
        }
        if !link.is_empty() {
            attributes.push("workspace".into());
        }
        // A workspace of the user's whose name differs, once per workspace (its first member
        // listed carries it): asserted again.
        let mut rename = Vec::new();
        for (workspace, &id) in workspaces.iter().zip(&listed) {
            let Some(name) = &workspace.name else {
                continue; // the provider did not name it: not compared
            };
            let held_name = self
                .workspace_records
                .get(&id)
                .and_then(|record| self.workspaces.get(record))
                .map(|(_, name)| *name);
            let written = fingerprint("text", Some(&serde_json::Value::from(name.as_str())));
            if held_name.is_some_and(|held| held != written) && self.renamed.insert(id) {
                rename.push(workspace.clone());
            }
        }
        if !rename.is_empty() {
            attributes.push("workspaces.name".into());
        }
        if attributes.is_empty() {
            return Class::Same;
        }
        self.held[at].drifted = true;
        Class::Differs(Drift {
            attributes,
            record_id: record_id(&held.record),
            repair: Repair {
                record: Some(record_id(&held.record)),
                person: person
                    .filter(|_| person_same)
                    .map(|p| record_id(&self.people[p])),
                user,
                link,
                rename,
            },
        })
    }

    /// The organisations the provider listed as such (members or none): the route's
    /// workspaces too, so a link to one that no listed user belongs to any more is stale.
    pub fn organisations_listed(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            self.route_organisations
                .entry(user_key(&id))
                .or_insert_with(|| id.into_boxed_str());
        }
    }

    /// After the listing: the listed users linked to workspaces of the route (organisations the
    /// listing named) that the provider did not list for them. Links to any other workspace
    /// are left alone.
    pub fn stale_links(&self) -> Vec<StaleLinks> {
        let mut stale: Vec<StaleLinks> = Vec::new();
        for (user_id, at, workspace) in &self.unlisted_links {
            let Some(organisation) = self
                .workspaces
                .get(workspace)
                .and_then(|(id, _)| self.route_organisations.get(id))
            else {
                continue;
            };
            let held = &self.held[*at as usize];
            match stale.last_mut() {
                Some(last) if last.user_id == *user_id => {
                    last.unlink.push(record_id(workspace));
                    last.workspace_ids.push(organisation.to_string());
                }
                _ => stale.push(StaleLinks {
                    user_id: user_id.clone(),
                    record_id: record_id(&held.record),
                    unlink: vec![record_id(workspace)],
                    workspace_ids: vec![organisation.to_string()],
                    drifted: held.drifted,
                }),
            }
        }
        stale
    }

    /// The record ids of the users the provider did not list (after a complete listing: the
    /// orphans).
    pub fn unlisted(&self) -> impl Iterator<Item = RecordId> + '_ {
        self.held
            .iter()
            .filter(|h| !h.listed)
            .map(|h| record_id(&h.record))
    }

    /// The users the provider did not list, with their `user_id`s (read again from Attio, as
    /// the snapshot keeps no ids): the orphans, for the report and their deletion.
    pub async fn unlisted_users(
        &self,
        attio: &AttioClient,
        token: &Secret,
        of_route: Option<&OfRoute>,
    ) -> Result<Vec<(String, RecordId)>, AttioError> {
        let mut orphans = Vec::new();
        let wanted = self.held.iter().filter(|h| !h.listed).count();
        if wanted == 0 {
            return Ok(orphans);
        }
        each_record(
            attio,
            token,
            "users",
            self.reading,
            |record| {
                if of_route.is_some_and(|r| !r.holds(&record.values)) {
                    return Ok(());
                }
                let Some(user_id) = record.text("user_id") else {
                    return Ok(());
                };
                let unlisted = self
                    .position(user_id)
                    .is_some_and(|at| !self.held[at].listed);
                if unlisted {
                    orphans.push((user_id.to_owned(), record.id.clone()));
                }
                Ok(())
            },
            &mut |_| {},
        )
        .await?;
        Ok(orphans)
    }
}

/// Reads every record of `object` in pages, `reading.at_once` at a time, handing each record
/// to `each` in Attio's order; `on_page` hears how many were read so far. A page shorter than
/// asked for is the last: the pages after it, already asked for, are dropped. Returns how many
/// records there were.
async fn each_record(
    attio: &AttioClient,
    token: &Secret,
    object: &str,
    reading: Reading,
    mut each: impl FnMut(&FoundRecord) -> Result<(), AttioError>,
    on_page: &mut dyn FnMut(u64),
) -> Result<u64, AttioError> {
    use futures_util::StreamExt as _;
    let size = reading.page.max(1);
    let mut pending = futures_util::stream::FuturesOrdered::new();
    let mut next = 0u64;
    let mut read = 0u64;
    loop {
        while pending.len() < reading.at_once.max(1) {
            let offset = next;
            next += u64::from(size);
            pending.push_back(async move {
                let mut budget = AttioBudget::from_now(Duration::from_secs(60));
                attio
                    .query_records(token, object, size, offset, &mut budget)
                    .await
            });
        }
        let Some(page) = pending.next().await else {
            return Ok(read);
        };
        let page = page?;
        read += page.len() as u64;
        for record in &page {
            each(record)?;
        }
        on_page(read);
        if page.len() < size as usize {
            return Ok(read);
        }
    }
}

fn not_a_uuid() -> AttioError {
    AttioError::UnexpectedResponse("a record id is not a UUID".into())
}

/// A `user_id` as two independent 64-bit hashes (a collision among a million ids is about one
/// chance in 10^25).
fn user_key(user_id: &str) -> Key {
    let half = |salt: u8| {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (salt, user_id).hash(&mut hasher);
        hasher.finish()
    };
    [half(0), half(1)]
}

/// A 128-bit key, as two words (a `u128` is aligned to 16 bytes, which pads what holds it).
type Key = [u64; 2];

/// The person record a `users` record links to (all zero: none).
fn person_of(record: &FoundRecord) -> [u8; 16] {
    record
        .values
        .pointer("/person/0")
        .and_then(reference)
        .unwrap_or_default()
}

/// The record a record-reference value points at (`{"target_record_id": …}`).
fn reference(value: &serde_json::Value) -> Option<[u8; 16]> {
    value
        .get("target_record_id")
        .and_then(serde_json::Value::as_str)
        .and_then(record_key)
}

/// A record id (a UUID) in 16 bytes.
fn record_key(id: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = id.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// A record id back in Attio's form (lower-case, hyphenated).
fn record_id(key: &[u8; 16]) -> RecordId {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_id_survives_its_16_bytes() {
        let id = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
        assert_eq!(record_id(&record_key(id).unwrap()), id);
        assert_eq!(record_key("not-a-uuid"), None);
    }
}
