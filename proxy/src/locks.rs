//! Serializes writes inside one proxy, so that "the tag is absent" cannot be seen
//! by two pushes at once.
//!
//! A push holds its image *shared* and each of its tags *exclusively*, taking the
//! tags in sorted order (two multi-tag pushes can never wait on each other in a
//! cycle). A manifest delete holds its image *exclusively*: it may remove any tag
//! of the image, so it waits for every push to it and blocks new ones. The locks
//! are held from gathering the facts until the upstream has answered the write.
//!
//! Entries live only while someone holds or waits for them (the map keeps weak
//! references and drops dead ones as it goes), so memory follows concurrency, not
//! the number of images ever seen.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::{
    Mutex as AsyncMutex, OwnedMutexGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock,
};

/// The write locks of one proxy process.
#[derive(Debug, Default)]
pub struct WriteLocks {
    images: Registry<String, RwLock<()>>,
    tags: Registry<(String, String), AsyncMutex<()>>,
}

/// Held while a push is checked and forwarded.
#[derive(Debug)]
pub struct PushGuard {
    _tags: Vec<OwnedMutexGuard<()>>,
    _image: OwnedRwLockReadGuard<()>,
}

/// Held while a delete is checked and forwarded.
#[derive(Debug)]
pub struct DeleteGuard {
    _image: OwnedRwLockWriteGuard<()>,
}

/// The lock could not be had in time (another write of the same tag is stuck).
#[derive(Debug, thiserror::Error)]
#[error("another write to {0} is still in progress after {1:?}")]
pub struct LockTimeout(pub String, pub Duration);

impl WriteLocks {
    /// Locks `image` for a push of `tags` (any order, duplicates allowed).
    pub async fn push(
        &self,
        image: &str,
        tags: &[&str],
        timeout: Duration,
    ) -> Result<PushGuard, LockTimeout> {
        let busy = || LockTimeout(describe(image, tags), timeout);
        let image_lock = self.images.entry(image.to_owned());
        let mut sorted: Vec<&str> = tags.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let acquire = async {
            let image_guard = image_lock.read_owned().await;
            let mut guards = Vec::with_capacity(sorted.len());
            for tag in &sorted {
                let lock = self.tags.entry((image.to_owned(), (*tag).to_owned()));
                guards.push(lock.lock_owned().await);
            }
            PushGuard {
                _tags: guards,
                _image: image_guard,
            }
        };
        tokio::time::timeout(timeout, acquire)
            .await
            .map_err(|_| busy())
    }

    /// Locks all of `image` for a delete.
    pub async fn delete(&self, image: &str, timeout: Duration) -> Result<DeleteGuard, LockTimeout> {
        let lock = self.images.entry(image.to_owned());
        tokio::time::timeout(timeout, lock.write_owned())
            .await
            .map(|guard| DeleteGuard { _image: guard })
            .map_err(|_| LockTimeout(image.to_owned(), timeout))
    }

    /// How many lock entries are alive.
    #[cfg(test)]
    pub fn live_entries(&self) -> usize {
        self.images.live() + self.tags.live()
    }
}

fn describe(image: &str, tags: &[&str]) -> String {
    match tags {
        [] => image.to_owned(),
        [tag] => format!("{image}:{tag}"),
        _ => format!("{image}:{{{}}}", tags.join(",")),
    }
}

/// Weakly held locks by key.
#[derive(Debug)]
struct Registry<K, L> {
    map: Mutex<HashMap<K, Weak<L>>>,
}

impl<K, L> Default for Registry<K, L> {
    fn default() -> Self {
        Registry {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq, L: Default> Registry<K, L> {
    fn entry(&self, key: K) -> Arc<L> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lock) = map.get(&key).and_then(Weak::upgrade) {
            return lock;
        }
        // Sweep dead entries when the map has grown, so it stays near the number
        // of writes in flight (amortised: at most once per doubling).
        if map.len() >= 64 && map.len().is_power_of_two() {
            map.retain(|_, weak| weak.strong_count() > 0);
        }
        let lock = Arc::new(L::default());
        map.insert(key, Arc::downgrade(&lock));
        lock
    }

    #[cfg(test)]
    fn live(&self) -> usize {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.values().filter(|weak| weak.strong_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn the_same_tag_is_held_by_one_push_at_a_time() {
        let locks = WriteLocks::default();
        let first = locks.push("acme/web", &["v1"], T).await.unwrap();
        assert!(
            locks
                .push("acme/web", &["v1"], Duration::from_millis(20))
                .await
                .is_err()
        );
        // Another tag of the image, and the same tag of another image, are free.
        let other_tag = locks.push("acme/web", &["v2"], T).await.unwrap();
        let other_image = locks.push("acme/api", &["v1"], T).await.unwrap();
        drop(first);
        assert!(locks.push("acme/web", &["v1"], T).await.is_ok());
        drop((other_tag, other_image));
    }

    #[tokio::test]
    async fn multi_tag_pushes_lock_in_a_fixed_order() {
        let locks = Arc::new(WriteLocks::default());
        let mut tasks = Vec::new();
        for i in 0..50 {
            let locks = Arc::clone(&locks);
            tasks.push(tokio::spawn(async move {
                let tags = if i % 2 == 0 {
                    ["a", "b", "c"]
                } else {
                    ["c", "b", "a"]
                };
                let guard = locks.push("img", &tags, Duration::from_secs(5)).await;
                tokio::task::yield_now().await;
                guard.is_ok()
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap(), "a push timed out: lock order cycle");
        }
    }

    #[tokio::test]
    async fn a_delete_excludes_pushes_to_its_image() {
        let locks = WriteLocks::default();
        let push = locks.push("acme/web", &["v1"], T).await.unwrap();
        assert!(
            locks
                .delete("acme/web", Duration::from_millis(20))
                .await
                .is_err()
        );
        drop(push);
        let delete = locks.delete("acme/web", T).await.unwrap();
        assert!(
            locks
                .push("acme/web", &["v9"], Duration::from_millis(20))
                .await
                .is_err()
        );
        assert!(locks.delete("acme/api", T).await.is_ok());
        drop(delete);
    }

    #[tokio::test]
    async fn entries_die_with_their_guards() {
        let locks = WriteLocks::default();
        for i in 0..200 {
            let tag = format!("t{i}");
            let guard = locks.push("img", &[tag.as_str()], T).await.unwrap();
            drop(guard);
        }
        assert_eq!(locks.live_entries(), 0);
        assert!(locks.tags.map.lock().unwrap().len() < 200);
    }
}
