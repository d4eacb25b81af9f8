//! The requests of one worker waiting for a busy write lock, as `taglock
//! serve` waits up to its `--lock-timeout`.
//!
//! The locks themselves are shared by every worker ([`crate::locks`]); this
//! list is one worker's. A request whose lock is busy pauses and joins it; the
//! worker's root context then ticks every [`TICK_MS`] and takes a [`turn`]:
//! in arrival order, each waiter tries its lock again, and one whose deadline
//! has passed leaves with [`Turn::TimedOut`]. Fairness on a worker:
//!
//! - a waiter does not try while an earlier waiter for a conflicting lock is
//!   still waiting, so waiters for one tag take it in arrival order;
//! - a new request whose lock conflicts with a waiter's queues behind it
//!   without trying ([`Waiters::blocks`]), so it cannot overtake.
//!
//! Across workers there is no order beyond "whoever retries first after the
//! release"; every waiter is still bounded by its deadline. The list holds at
//! most its capacity (`lock_waiters`); past it a request is refused at once.
//!
//! [`turn`]: Waiters::turn

use crate::locks::{LockError, LockKey};
use std::collections::VecDeque;

/// How often a worker with waiters retries their locks, in milliseconds.
pub const TICK_MS: u64 = 20;
/// The default capacity of one worker's waiting list.
pub const DEFAULT_WAITERS: usize = 256;
/// The largest capacity a configuration may give.
pub const MAX_WAITERS: usize = 4096;

/// One paused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiter {
    /// The request's context id.
    pub context: u32,
    /// What it locks.
    pub keys: Vec<LockKey>,
    /// When it stops waiting (milliseconds since the epoch).
    pub deadline_ms: u64,
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// The lock is taken (by this owner; `None`: there was nothing to take).
    Acquired(Option<u64>),
    /// The deadline passed with the lock still busy.
    TimedOut,
    /// The lock table failed; waiting longer would not help.
    Failed(LockError),
}

/// The waiting list of one worker, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiters {
    queue: VecDeque<Waiter>,
    capacity: usize,
}

impl Default for Waiters {
    fn default() -> Self {
        Waiters::new(DEFAULT_WAITERS)
    }
}

impl Waiters {
    /// An empty list that holds at most `capacity` waiters.
    pub fn new(capacity: usize) -> Waiters {
        Waiters {
            queue: VecDeque::new(),
            capacity,
        }
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether a waiter's lock conflicts with `keys` (a new request for them
    /// must queue behind it rather than try).
    pub fn blocks(&self, keys: &[LockKey]) -> bool {
        self.queue.iter().any(|waiter| overlap(&waiter.keys, keys))
    }

    /// Adds `waiter` at the end; [`LockError::Crowded`] when the list is full.
    pub fn push(&mut self, waiter: Waiter) -> Result<(), LockError> {
        if self.queue.len() >= self.capacity {
            return Err(LockError::Crowded);
        }
        self.queue.push_back(waiter);
        Ok(())
    }

    /// Removes the waiter of `context` (its stream ended); whether it waited.
    pub fn remove(&mut self, context: u32) -> bool {
        let before = self.queue.len();
        self.queue.retain(|waiter| waiter.context != context);
        self.queue.len() != before
    }

    /// One tick at `now_ms`: the waiters whose wait ended, in arrival order,
    /// with how. `acquire` tries a lock; a busy lock ([`LockError::Busy`]) or
    /// a full table ([`LockError::Full`]) keeps the waiter waiting, any other
    /// error ends its wait.
    pub fn turn(
        &mut self,
        now_ms: u64,
        mut acquire: impl FnMut(&[LockKey]) -> Result<Option<u64>, LockError>,
    ) -> Vec<(u32, Turn)> {
        let mut ended = Vec::new();
        let mut still: Vec<LockKey> = Vec::new();
        let mut kept = VecDeque::with_capacity(self.queue.len());
        while let Some(waiter) = self.queue.pop_front() {
            if now_ms >= waiter.deadline_ms {
                ended.push((waiter.context, Turn::TimedOut));
                continue;
            }
            if overlap(&still, &waiter.keys) {
                still.extend(waiter.keys.iter().cloned());
                kept.push_back(waiter);
                continue;
            }
            match acquire(&waiter.keys) {
                Ok(owner) => ended.push((waiter.context, Turn::Acquired(owner))),
                Err(LockError::Busy(_) | LockError::Full) => {
                    still.extend(waiter.keys.iter().cloned());
                    kept.push_back(waiter);
                }
                Err(err) => ended.push((waiter.context, Turn::Failed(err))),
            }
        }
        self.queue = kept;
        ended
    }
}

/// Whether any of `a` conflicts with any of `b`.
fn overlap(a: &[LockKey], b: &[LockKey]) -> bool {
    a.iter().any(|x| b.iter().any(|y| x.conflicts(y)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locks::LockTable;

    fn tag(image: &str, tag: &str) -> Vec<LockKey> {
        vec![LockKey {
            image: image.to_owned(),
            tag: Some(tag.to_owned()),
        }]
    }

    fn image(image: &str) -> Vec<LockKey> {
        vec![LockKey {
            image: image.to_owned(),
            tag: None,
        }]
    }

    fn waiter(context: u32, keys: Vec<LockKey>, deadline_ms: u64) -> Waiter {
        Waiter {
            context,
            keys,
            deadline_ms,
        }
    }

    #[test]
    fn waiters_for_one_tag_take_it_in_arrival_order() {
        let mut table = LockTable::default();
        let holder = table.acquire_keys(&tag("a", "v1"), 0, 1_000).unwrap();
        let mut waiters = Waiters::new(8);
        for context in 1..=3 {
            waiters.push(waiter(context, tag("a", "v1"), 500)).unwrap();
        }
        // Another tag of the image is not held back by them.
        waiters.push(waiter(4, tag("a", "v2"), 500)).unwrap();
        assert!(waiters.blocks(&tag("a", "v1")));
        assert!(waiters.blocks(&image("a")));
        assert!(!waiters.blocks(&tag("b", "v1")));

        let mut tried = Vec::new();
        let ended = waiters.turn(10, |keys| {
            tried.push(keys.to_vec());
            table.acquire_keys(keys, 10, 1_000)
        });
        // Only the oldest waiter for v1 tried; v2 was free.
        assert_eq!(tried.len(), 2);
        assert_eq!(ended, vec![(4, Turn::Acquired(Some(2)))]);
        assert_eq!(waiters.len(), 3);

        assert!(table.release(holder.unwrap()));
        for expected in 1..=3 {
            let ended = waiters.turn(20, |keys| table.acquire_keys(keys, 20, 1_000));
            let [(context, Turn::Acquired(Some(owner)))] = ended.as_slice() else {
                panic!("{ended:?}")
            };
            assert_eq!(*context, expected);
            // Still held: the next one waits another turn.
            assert!(
                waiters
                    .turn(21, |keys| table.acquire_keys(keys, 21, 1_000))
                    .is_empty()
            );
            assert!(table.release(*owner));
        }
        assert!(waiters.is_empty());
    }

    #[test]
    fn deadlines_end_waits_and_the_list_is_bounded() {
        let mut waiters = Waiters::new(2);
        waiters.push(waiter(1, tag("a", "v1"), 100)).unwrap();
        waiters.push(waiter(2, tag("a", "v1"), 200)).unwrap();
        assert_eq!(
            waiters.push(waiter(3, tag("b", "v1"), 200)),
            Err(LockError::Crowded)
        );
        let busy = |_: &[LockKey]| Err(LockError::Busy("a:v1".to_owned()));
        assert!(waiters.turn(99, busy).is_empty());
        assert_eq!(waiters.turn(100, busy), vec![(1, Turn::TimedOut)]);
        // Room again for one more.
        waiters.push(waiter(3, tag("b", "v1"), 300)).unwrap();
        // A stream that ended leaves the list.
        assert!(waiters.remove(2));
        assert!(!waiters.remove(2));
        let failed = waiters.turn(150, |_| Err(LockError::Table("gone".to_owned())));
        assert_eq!(
            failed,
            vec![(3, Turn::Failed(LockError::Table("gone".to_owned())))]
        );
        assert!(waiters.is_empty());
    }

    #[test]
    fn a_full_table_keeps_waiters_waiting_and_deletes_wait_for_pushes() {
        let mut waiters = Waiters::default();
        waiters.push(waiter(1, image("a"), 100)).unwrap();
        // A push to a tag of the image queues behind the delete.
        waiters.push(waiter(2, tag("a", "v1"), 100)).unwrap();
        let mut tries = 0;
        let ended = waiters.turn(1, |_| {
            tries += 1;
            Err(LockError::Full)
        });
        assert!(ended.is_empty());
        assert_eq!(tries, 1);
        let ended = waiters.turn(2, |_| Ok(Some(7)));
        assert_eq!(
            ended,
            vec![(1, Turn::Acquired(Some(7))), (2, Turn::Acquired(Some(7)))]
        );
    }
}
