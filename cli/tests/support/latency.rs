//! Latency samples as the benchmarks print them.

use std::time::Duration;

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `1.234 ms`.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// `+0.123 ms`: what `through` adds to `base`.
pub fn added(base: Duration, through: Duration) -> String {
    let delta = through.as_secs_f64() - base.as_secs_f64();
    format!("{:+.3} ms", delta * 1e3)
}
