//! The filter's calls into Envoy, each through `proxy_wasm::hostcalls` so that
//! an unexpected status is an error to handle, never a trap.

use crate::locks::{LockError, LockKey, LockTable, MAX_CAS_ATTEMPTS, TABLE_KEY};
use crate::waiters::TICK_MS;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, Status};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use taglock_gateway::Reply;

/// Logs at `level`; a failing log is ignored (there is nowhere else to say it).
pub fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}

/// Envoy's clock.
pub fn now() -> SystemTime {
    hostcalls::get_current_time().unwrap_or(UNIX_EPOCH)
}

/// Envoy's clock in milliseconds since the epoch.
pub fn now_ms() -> u64 {
    now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Answers the client with `reply` instead of forwarding.
pub fn send(reply: &Reply) -> Result<(), Status> {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    hostcalls::send_http_response(u32::from(reply.status), headers, Some(&reply.body))
}

/// Creates the lock table when no worker has yet (at configuration, before
/// any request).
pub fn init_locks() -> Result<(), Status> {
    let (value, _) = hostcalls::get_shared_data(TABLE_KEY)?;
    if value.is_none() {
        hostcalls::set_shared_data(TABLE_KEY, Some(&LockTable::default().encode()), None)?;
    }
    Ok(())
}

/// Starts (`true`) or stops the root context's tick, which retries the
/// waiters of this worker every [`TICK_MS`].
pub fn tick(on: bool) {
    let period = if on { TICK_MS } else { 0 };
    if let Err(status) = hostcalls::set_tick_period(Duration::from_millis(period)) {
        log(
            LogLevel::Error,
            &format!("taglock: cannot set the tick period ({status:?})"),
        );
    }
}

/// Takes `keys` (see [`LockTable::acquire_keys`]) with compare-and-swap.
pub fn acquire(keys: &[LockKey], ttl_ms: u64) -> Result<Option<u64>, LockError> {
    if keys.is_empty() {
        return Ok(None);
    }
    for _ in 0..MAX_CAS_ATTEMPTS {
        let (value, cas) = hostcalls::get_shared_data(TABLE_KEY)
            .map_err(|status| LockError::Table(format!("{status:?}")))?;
        let Some(cas) = cas else {
            return Err(LockError::Table("the table was never created".to_owned()));
        };
        let mut table = LockTable::decode(value.as_deref())?;
        let owner = table.acquire_keys(keys, now_ms(), ttl_ms)?;
        match hostcalls::set_shared_data(TABLE_KEY, Some(&table.encode()), Some(cas)) {
            Ok(()) => return Ok(owner),
            Err(Status::CasMismatch) => continue,
            Err(status) => return Err(LockError::Table(format!("{status:?}"))),
        }
    }
    Err(LockError::Table(
        "too much contention on the write locks".to_owned(),
    ))
}

/// Releases every lock of `owner`.
pub fn release(owner: u64) {
    for _ in 0..MAX_CAS_ATTEMPTS {
        let Ok((value, Some(cas))) = hostcalls::get_shared_data(TABLE_KEY) else {
            break;
        };
        let Ok(mut table) = LockTable::decode(value.as_deref()) else {
            break;
        };
        if !table.release(owner) {
            return;
        }
        match hostcalls::set_shared_data(TABLE_KEY, Some(&table.encode()), Some(cas)) {
            Ok(()) => return,
            Err(Status::CasMismatch) => continue,
            Err(_) => break,
        }
    }
    log(
        LogLevel::Error,
        &format!("taglock: could not release write lock {owner}; it expires with its TTL"),
    );
}
