//! The process-wide wasmtime [`Engine`] and its epoch ticker.
//!
//! One engine per process: compiled code, the type registry and the epoch
//! counter are shared by every component and store created from it.

use crate::error::HostError;
use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::{Config, Engine, OptLevel};

/// How often the epoch advances. A call's CPU budget is counted in these ticks,
/// so a timeout is enforced to within one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();

/// The process-wide engine, created on first use together with a background
/// thread (`taglock-epoch`) that advances its epoch every [`EPOCH_TICK`].
pub fn engine() -> Result<&'static Engine, HostError> {
    ENGINE
        .get_or_init(create_engine)
        .as_ref()
        .map_err(|message| HostError::Compile(message.clone()))
}

/// The engine configuration: Cranelift for speed, epoch interruption for CPU
/// bounds, the component model, and nothing else (no WASI, no async, no GC).
pub(crate) fn config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(OptLevel::Speed);
    config
}

fn create_engine() -> Result<Engine, String> {
    let engine = Engine::new(&config()).map_err(|err| format!("{err:#}"))?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("taglock-epoch".to_owned())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|err| format!("cannot start the epoch thread: {err}"))?;
    Ok(engine)
}

/// The epoch deadline, in ticks beyond now, for a CPU budget of `timeout`.
/// Zero means "trap at the first check", which tests use.
pub(crate) fn deadline_ticks(timeout: Duration) -> u64 {
    if timeout.is_zero() {
        return 0;
    }
    let ticks = timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
    // One more tick: the current epoch may be about to advance.
    u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
}
