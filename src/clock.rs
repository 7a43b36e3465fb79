//! The wall clock: the one place slipway reads it for timestamps, so every
//! stored and served time comes from the same source (and a test or a second
//! backend has one function to look at). Durations use `Instant`, not this.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time as a `SystemTime` (power journal records keep it whole).
pub fn system_now() -> SystemTime {
    SystemTime::now()
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now() -> i64 {
    system_now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it), for
/// identifiers that mix in the time.
pub fn now_nanos() -> u128 {
    system_now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
