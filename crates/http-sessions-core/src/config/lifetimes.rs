//! How long sessions live: idle timeout, absolute lifetime, refresh
//! fraction and the longest expiry a handler may give, and their bounds.

use std::time::Duration;

use crate::config::error::ConfigError;

/// See [`DEFAULT_MAX_EXPIRY`](crate::Settings::DEFAULT_MAX_EXPIRY).
pub(crate) const DEFAULT_MAX_EXPIRY: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// See [`MAX_LIFETIME`](crate::Settings::MAX_LIFETIME).
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// Idle timeout: OWASP Session Management Cheat Sheet, "Idle Timeout",
/// suggests 15 to 30 minutes for low-risk applications.
const DEFAULT_IDLE: Duration = Duration::from_secs(30 * 60);
/// Absolute lifetime: the same sheet suggests 4 to 8 hours for an office
/// day; 12 hours covers a long one.
const DEFAULT_ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);
const DEFAULT_REFRESH_FRACTION: f64 = 0.25;

/// What a lifetime accepts, for the error.
const LIFETIME_RANGE: &str = "between one second and 400 days (MAX_LIFETIME)";

/// The lifetimes the builder was given; `None` takes the default.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Requested {
    pub(super) idle: Option<Duration>,
    pub(super) absolute: Option<Duration>,
    pub(super) refresh_fraction: Option<f64>,
    pub(super) max_expiry: Option<Duration>,
}

/// The lifetimes, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Lifetimes {
    pub(super) idle: Duration,
    pub(super) absolute: Duration,
    pub(super) refresh_fraction: f64,
    pub(super) max_expiry: Duration,
}

impl Requested {
    /// The defaults filled in, each value checked against its range.
    pub(super) fn check(self) -> Result<Lifetimes, ConfigError> {
        let lifetime = |setting, value: Option<Duration>, default| {
            let value = value.unwrap_or(default);
            if value.as_secs() == 0 || value > MAX_LIFETIME {
                return Err(ConfigError::out_of_range(setting, value, LIFETIME_RANGE));
            }
            Ok(value)
        };
        let refresh_fraction = self.refresh_fraction.unwrap_or(DEFAULT_REFRESH_FRACTION);
        // NaN is in no range, and is refused with the rest.
        if !(0.0..=1.0).contains(&refresh_fraction) {
            return Err(ConfigError::out_of_range(
                "SettingsBuilder::with_refresh_fraction",
                refresh_fraction,
                "between 0 and 1",
            ));
        }
        Ok(Lifetimes {
            idle: lifetime(
                "SettingsBuilder::with_idle_timeout",
                self.idle,
                DEFAULT_IDLE,
            )?,
            absolute: lifetime(
                "SettingsBuilder::with_absolute_lifetime",
                self.absolute,
                DEFAULT_ABSOLUTE,
            )?,
            refresh_fraction,
            max_expiry: lifetime(
                "SettingsBuilder::with_max_expiry",
                self.max_expiry,
                DEFAULT_MAX_EXPIRY,
            )?,
        })
    }
}

#[cfg(test)]
#[path = "lifetimes_tests.rs"]
mod tests;
