//! What this container did recently: a bounded memory whose entries expire. Serves the person
//! and user asserts a repeat need not make again, and the events a sender's retry need not
//! write again.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A map whose entries live `ttl`, holding at most `capacity`: the oldest go first. Every
/// operation is O(1) amortised (it runs on every event).
#[derive(Debug)]
pub struct Recent<K, V> {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

#[derive(Debug)]
struct Inner<K, V> {
    entries: HashMap<K, (V, Instant)>,
    /// Keys in the order they were written, with when; a key written again appears again,
    /// and its older place is skipped when it comes up.
    order: VecDeque<(K, Instant)>,
}

impl<K: Eq + Hash + Clone, V: Clone> Recent<K, V> {
    /// An empty memory.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// The value remembered for `key`, if it has not expired.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = self.lock();
        let (value, at) = inner.entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// Remembers `value` for `key` from now on; past the capacity, the oldest entries go.
    pub fn insert(&self, key: K, value: V) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.entries.insert(key.clone(), (value, now));
        inner.order.push_back((key, now));
        while inner.entries.len() > self.capacity || inner.order.len() > 2 * self.capacity {
            let Some((oldest, at)) = inner.order.pop_front() else {
                break;
            };
            // Only if that write is still the entry's latest.
            if inner.entries.get(&oldest).is_some_and(|(_, t)| *t == at) {
                inner.entries.remove(&oldest);
            }
        }
    }

    /// Forgets `key`.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().entries.remove(key);
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A 64-bit hash of `value` under a key drawn at random once per container, so no sender can
/// aim two different inputs at one value: how the memories know a delivery or a write again
/// without keeping it.
pub fn keyed_hash(value: impl Hash) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    static KEY: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    KEY.get_or_init(RandomState::new).hash_one(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_oldest_goes_when_full() {
        let recent = Recent::new(Duration::from_secs(60), 2);
        recent.insert("a", 1);
        recent.insert("b", 2);
        recent.insert("c", 3);
        assert_eq!(recent.get("a"), None, "the oldest made room");
        assert_eq!((recent.get("b"), recent.get("c")), (Some(2), Some(3)));
        // Written again, "b" is now the newest: "c" goes first.
        recent.insert("b", 4);
        recent.insert("d", 5);
        assert_eq!(recent.get("c"), None);
        assert_eq!((recent.get("b"), recent.get("d")), (Some(4), Some(5)));
        recent.remove("d");
        assert_eq!(recent.get("d"), None);

        let brief = Recent::new(Duration::ZERO, 4);
        brief.insert("a", 1);
        assert_eq!(brief.get("a"), None);
    }

    #[test]
    fn rewriting_one_key_keeps_the_memory_bounded() {
        let recent = Recent::new(Duration::from_secs(60), 3);
        for i in 0..1000 {
            recent.insert("same", i);
        }
        let inner = recent.lock();
        assert_eq!(inner.entries.len(), 1);
        assert!(inner.order.len() <= 6, "{}", inner.order.len());
    }
}
