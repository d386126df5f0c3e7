//! What Attio holds of the `users` object, read once in pages of Attio's query and kept small:
//! per user a 128-bit key of its `user_id` and its record id in 16 bytes, never the values
//! themselves: 50 to 110 bytes a user with the index, as the hash map's and the vector's growth
//! fall (a million users: about 100 MB at most; to be measured by issue 21's benchmark).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use crate::attio::{AttioBudget, AttioClient, AttioError, RecordId};
use crate::secrets::Secret;

/// Records a query page holds: Attio's most.
pub const PAGE: u32 = 500;

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

/// The `users` records Attio holds, by `user_id`.
#[derive(Debug, Default)]
pub struct AttioUsers {
    index: HashMap<u128, u32>,
    held: Vec<Held>,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    record: [u8; 16],
    listed: bool,
}

impl AttioUsers {
    /// Every `users` record (of the route, with `of_route`), read page by page (`on_page`
    /// hears how many records were read so far). Reads are paced by the client's read limiter,
    /// when it has one; each page has a minute.
    pub async fn read(
        attio: &AttioClient,
        token: &Secret,
        of_route: Option<&OfRoute>,
        mut on_page: impl FnMut(u64),
    ) -> Result<Self, AttioError> {
        let mut users = Self::default();
        let mut offset = 0u64;
        loop {
            let mut budget =
                AttioBudget::until(tokio::time::Instant::now() + Duration::from_secs(60));
            let page = attio
                .query_records(token, "users", PAGE, offset, &mut budget)
                .await?;
            let last = page.len() < PAGE as usize;
            offset += page.len() as u64;
            for record in page {
                if of_route.is_some_and(|r| !r.holds(&record.values)) {
                    continue;
                }
                // A record without a user_id (made by hand in Attio) is no user of a provider.
                let Some(user_id) = record.text("user_id") else {
                    continue;
                };
                let id = record_key(&record.id).ok_or_else(|| {
                    AttioError::UnexpectedResponse("a record id is not a UUID".into())
                })?;
                users.insert(user_id, id);
            }
            on_page(offset);
            if last {
                return Ok(users);
            }
        }
    }

    fn insert(&mut self, user_id: &str, record: [u8; 16]) {
        let at = self.held.len() as u32;
        self.held.push(Held {
            record,
            listed: false,
        });
        self.index.insert(user_key(user_id), at);
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
        let at = *self.index.get(&user_key(user_id))? as usize;
        self.held[at].listed = true;
        Some(record_id(&self.held[at].record))
    }

    /// The record ids of the users the provider did not list (after a complete listing: the
    /// orphans).
    pub fn unlisted(&self) -> impl Iterator<Item = RecordId> + '_ {
        self.index
            .values()
            .map(|&at| self.held[at as usize])
            .filter(|h| !h.listed)
            .map(|h| record_id(&h.record))
    }
}

/// A `user_id` as two independent 64-bit hashes (a collision among a million ids is about one
/// chance in 10^25).
fn user_key(user_id: &str) -> u128 {
    let half = |salt: u8| {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (salt, user_id).hash(&mut hasher);
        hasher.finish() as u128
    };
    (half(0) << 64) | half(1)
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
