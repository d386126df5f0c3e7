//! What this container did recently: a bounded memory whose entries expire. Serves the person
//! asserts a user assert can reuse and the events a sender's retry need not write again.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A map whose entries live `ttl`, holding at most `capacity` (the oldest go first).
#[derive(Debug)]
pub struct Recent<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Recent<K, V> {
    /// An empty memory.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value remembered for `key`, if it has not expired.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.lock();
        let (value, at) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// Remembers `value` for `key` from now on. When full, expired entries go, then the oldest.
    pub fn insert(&self, key: K, value: V) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
            let oldest = entries
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone());
            if entries.len() >= self.capacity
                && let Some(oldest) = oldest
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Forgets `key`.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().remove(key);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (V, Instant)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_oldest_goes_when_full() {
        let recent = Recent::new(Duration::from_secs(60), 2);
        recent.insert("a", 1);
        std::thread::sleep(Duration::from_millis(2));
        recent.insert("b", 2);
        recent.insert("c", 3);
        assert_eq!(recent.get("a"), None, "the oldest made room");
        assert_eq!((recent.get("b"), recent.get("c")), (Some(2), Some(3)));
        recent.insert("c", 4);
        assert_eq!(recent.get("c"), Some(4));
        recent.remove("c");
        assert_eq!(recent.get("c"), None);

        let brief = Recent::new(Duration::ZERO, 4);
        brief.insert("a", 1);
        assert_eq!(brief.get("a"), None);
    }
}
