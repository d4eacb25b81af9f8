//! Write locks shared by every worker of one Envoy: one shared-data entry (the
//! [`LockTable`], JSON) changed only by compare-and-swap, so that checking "the
//! tag is absent" and writing it is one step across workers, as
//! [`Route::write_lock`](taglock_gateway::Route::write_lock) asks.
//!
//! A push holds each of its tags, a manifest delete its whole image. A busy
//! lock is waited for (see [`crate::waiters`]) up to the configured
//! `lock_timeout_ms`, then the request is refused (503, try again). Every
//! entry expires after the configured TTL, so a worker that died holding one
//! does not lock a tag forever.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use taglock_gateway::WriteLock;

/// The shared-data key of the table.
pub const TABLE_KEY: &str = "taglock.write_locks";
/// The most locks held at once (a push of many tags holds one per tag); past
/// it, writes are refused until some finish.
pub const MAX_HELD: usize = 1024;
/// How many times a compare-and-swap is retried when another worker changed
/// the table in between.
pub const MAX_CAS_ATTEMPTS: usize = 32;

/// Every lock held, and the last owner number handed out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockTable {
    /// The last owner number given.
    pub seq: u64,
    /// The locks held.
    pub held: Vec<Held>,
}

/// One lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// Who holds it.
    pub owner: u64,
    /// The image.
    pub image: String,
    /// The tag; `None`: the whole image (a delete).
    pub tag: Option<String>,
    /// When it expires (milliseconds since the epoch).
    pub until: u64,
}

/// One thing a write locks: a tag of an image, or (`tag: None`) the whole image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockKey {
    /// The image.
    pub image: String,
    /// The tag; `None`: the whole image (a delete).
    pub tag: Option<String>,
}

impl LockKey {
    /// What `lock` takes (nothing for `WriteLock::None`).
    pub fn of(lock: WriteLock<'_>) -> Vec<LockKey> {
        match lock {
            WriteLock::None => Vec::new(),
            WriteLock::Tags { image, tags } => tags
                .iter()
                .map(|tag| LockKey {
                    image: image.to_owned(),
                    tag: Some(tag.clone()),
                })
                .collect(),
            WriteLock::Image { image } => vec![LockKey {
                image: image.to_owned(),
                tag: None,
            }],
        }
    }

    /// Whether holding `self` excludes holding `other`: the same image, and
    /// the same tag or either of them the whole image.
    pub fn conflicts(&self, other: &LockKey) -> bool {
        self.image == other.image
            && (self.tag.is_none() || other.tag.is_none() || self.tag == other.tag)
    }
}

/// `image`, `image:tag` or `image:{a,b}`: the keys of one write as `taglock
/// serve` names them in its lock refusals.
pub fn describe(keys: &[LockKey]) -> String {
    let Some(first) = keys.first() else {
        return String::new();
    };
    let tags: Vec<&str> = keys.iter().filter_map(|key| key.tag.as_deref()).collect();
    match tags.as_slice() {
        [] => first.image.clone(),
        [tag] => format!("{}:{tag}", first.image),
        _ => format!("{}:{{{}}}", first.image, tags.join(",")),
    }
}

/// Why a lock was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// Another write holds it.
    #[error("another write to {0} is in progress; try again")]
    Busy(String),
    /// Another write still held it when the wait (`lock_timeout_ms`) ended;
    /// the wording of `taglock serve`'s `--lock-timeout` refusal.
    #[error("another write to {0} is still in progress after {1:?}; try again")]
    TimedOut(String, Duration),
    /// The worker's waiting list (`lock_waiters`) is full.
    #[error("too many writes are waiting for a write lock; try again")]
    Crowded,
    /// [`MAX_HELD`] locks are held.
    #[error("too many writes are in progress; try again")]
    Full,
    /// The shared table could not be read or written.
    #[error("the write locks cannot be read: {0}")]
    Table(String),
}

impl LockTable {
    /// Reads a table (an absent or empty entry is an empty table).
    pub fn decode(bytes: Option<&[u8]>) -> Result<LockTable, LockError> {
        match bytes {
            None | Some([]) => Ok(LockTable::default()),
            Some(bytes) => {
                serde_json::from_slice(bytes).map_err(|err| LockError::Table(err.to_string()))
            }
        }
    }

    /// The table as stored.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Takes `lock` for a new owner at `now` (expiring at `now + ttl`) and
    /// returns the owner, or why not. `WriteLock::None` takes nothing (`None`).
    pub fn acquire(
        &mut self,
        lock: WriteLock<'_>,
        now: u64,
        ttl: u64,
    ) -> Result<Option<u64>, LockError> {
        self.acquire_keys(&LockKey::of(lock), now, ttl)
    }

    /// Takes every one of `keys` for a new owner at `now` (expiring at
    /// `now + ttl`), or none of them; no keys take nothing (`None`).
    pub fn acquire_keys(
        &mut self,
        keys: &[LockKey],
        now: u64,
        ttl: u64,
    ) -> Result<Option<u64>, LockError> {
        self.held.retain(|held| held.until > now);
        if keys.is_empty() {
            return Ok(None);
        }
        for key in keys {
            let conflict = self.held.iter().any(|held| {
                held.image == key.image
                    && (key.tag.is_none() || held.tag.is_none() || held.tag == key.tag)
            });
            if conflict {
                return Err(LockError::Busy(describe(std::slice::from_ref(key))));
            }
        }
        if self.held.len().saturating_add(keys.len()) > MAX_HELD {
            return Err(LockError::Full);
        }
        self.seq = self.seq.wrapping_add(1);
        let owner = self.seq;
        let until = now.saturating_add(ttl);
        self.held.extend(keys.iter().map(|key| Held {
            owner,
            image: key.image.clone(),
            tag: key.tag.clone(),
            until,
        }));
        Ok(Some(owner))
    }

    /// Drops every lock of `owner`; whether any was held.
    pub fn release(&mut self, owner: u64) -> bool {
        let before = self.held.len();
        self.held.retain(|held| held.owner != owner);
        self.held.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn tags_exclude_each_other_and_deletes_exclude_the_image() {
        let mut table = LockTable::default();
        let v1 = tags(&["v1"]);
        let first = table
            .acquire(
                WriteLock::Tags {
                    image: "a/b",
                    tags: &v1,
                },
                0,
                100,
            )
            .unwrap()
            .unwrap();
        let busy = table.acquire(
            WriteLock::Tags {
                image: "a/b",
                tags: &v1,
            },
            1,
            100,
        );
        assert_eq!(busy, Err(LockError::Busy("a/b:v1".into())));
        let v2 = tags(&["v2"]);
        assert!(
            table
                .acquire(
                    WriteLock::Tags {
                        image: "a/b",
                        tags: &v2
                    },
                    1,
                    100
                )
                .unwrap()
                .is_some()
        );
        assert!(
            table
                .acquire(WriteLock::Image { image: "a/b" }, 1, 100)
                .is_err()
        );
        assert!(
            table
                .acquire(WriteLock::Image { image: "a/c" }, 1, 100)
                .is_ok()
        );
        assert!(table.release(first));
        assert!(!table.release(first));
        let again = LockTable::decode(Some(&table.encode())).unwrap();
        assert_eq!(again, table);
        assert_eq!(table.acquire(WriteLock::None, 1, 100), Ok(None));
    }

    #[test]
    fn locks_expire_and_are_bounded() {
        let mut table = LockTable::default();
        assert!(
            table
                .acquire(WriteLock::Image { image: "x" }, 0, 10)
                .is_ok()
        );
        assert!(
            table
                .acquire(WriteLock::Image { image: "x" }, 9, 10)
                .is_err()
        );
        assert!(
            table
                .acquire(WriteLock::Image { image: "x" }, 10, 10)
                .is_ok()
        );
        let many: Vec<String> = (0..MAX_HELD).map(|i| format!("t{i}")).collect();
        assert_eq!(
            table.acquire(
                WriteLock::Tags {
                    image: "y",
                    tags: &many
                },
                11,
                10
            ),
            Err(LockError::Full)
        );
        assert!(LockTable::decode(Some(b"not json")).is_err());
        assert_eq!(LockTable::decode(None).unwrap(), LockTable::default());
    }

    #[test]
    fn keys_are_described_as_serve_names_them() {
        let one = tags(&["v1"]);
        let two = tags(&["v1", "v2"]);
        let keys = |lock| LockKey::of(lock);
        assert_eq!(
            describe(&keys(WriteLock::Tags {
                image: "a/b",
                tags: &one
            })),
            "a/b:v1"
        );
        assert_eq!(
            describe(&keys(WriteLock::Tags {
                image: "a/b",
                tags: &two
            })),
            "a/b:{v1,v2}"
        );
        assert_eq!(describe(&keys(WriteLock::Image { image: "a/b" })), "a/b");
        assert_eq!(describe(&[]), "");
        let timed_out = LockError::TimedOut("a/b:v1".into(), Duration::from_millis(30_000));
        assert_eq!(
            timed_out.to_string(),
            "another write to a/b:v1 is still in progress after 30s; try again"
        );
    }
}
