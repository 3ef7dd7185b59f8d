//! What bounds a request's work on its session: the store timeout, the
//! largest session, the flash queue, and whether a failed request saves;
//! and their bounds.

use std::time::Duration;

use crate::config::error::ConfigError;
use crate::session::flash::{DEFAULT_FLASH_CAPACITY, FlashLevel};

/// See [`DEFAULT_MAX_SESSION_SIZE`](crate::Settings::DEFAULT_MAX_SESSION_SIZE).
pub(crate) const DEFAULT_MAX_SESSION_SIZE: usize = 64 * 1024;

/// See [`MAX_STORE_TIMEOUT`](crate::Settings::MAX_STORE_TIMEOUT).
pub(crate) const MAX_STORE_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// See [`DEFAULT_STORE_TIMEOUT`](crate::Settings::DEFAULT_STORE_TIMEOUT).
pub(crate) const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The smallest session size bound: room for a few values and a flash
/// message, so that a bound set in the wrong unit fails at start, not at
/// every save.
const MIN_SESSION_SIZE: usize = 1024;

/// The limits the builder was given; `None` takes the default.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Requested {
    pub(super) store_timeout: Option<Duration>,
    pub(super) max_session_size: Option<usize>,
    pub(super) flash_capacity: Option<usize>,
    pub(super) flash_min_level: Option<FlashLevel>,
    pub(super) save_on_server_error: bool,
    pub(super) max_sessions_per_user: Option<usize>,
    pub(super) over_cap: OverCap,
}

/// What happens when a session is bound to a user who already has the most
/// sessions one user may have
/// ([`with_max_sessions_per_user`](crate::SettingsBuilder::with_max_sessions_per_user)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverCap {
    /// The user's least recently used sessions end, so that the new one
    /// and the most recently used others make up the cap (the default: a
    /// login always works, and signs out the device unused longest).
    #[default]
    EndLeastRecent,
    /// The new binding is refused with
    /// [`StoreError::TooManySessions`](crate::StoreError::TooManySessions),
    /// and the user's sessions stay as they are: the user must sign out
    /// elsewhere first.
    Refuse,
}

/// The limits, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Limits {
    pub(super) store_timeout: Duration,
    pub(super) max_session_size: usize,
    pub(super) flash_capacity: usize,
    pub(super) flash_min_level: FlashLevel,
    pub(super) save_on_server_error: bool,
    pub(super) max_sessions_per_user: Option<usize>,
    pub(super) over_cap: OverCap,
}

impl Requested {
    /// The defaults filled in, each value checked against its range.
    pub(super) fn check(self) -> Result<Limits, ConfigError> {
        let store_timeout = self.store_timeout.unwrap_or(DEFAULT_STORE_TIMEOUT);
        if store_timeout.is_zero() || store_timeout > MAX_STORE_TIMEOUT {
            return Err(ConfigError::out_of_range(
                "SettingsBuilder::with_store_timeout",
                store_timeout,
                "above zero and at most one hour (MAX_STORE_TIMEOUT)",
            ));
        }
        let max_session_size = self.max_session_size.unwrap_or(DEFAULT_MAX_SESSION_SIZE);
        if max_session_size < MIN_SESSION_SIZE {
            return Err(ConfigError::out_of_range(
                "SettingsBuilder::with_max_session_size",
                max_session_size,
                "at least 1024 bytes (1 KiB)",
            ));
        }
        let flash_capacity = self.flash_capacity.unwrap_or(DEFAULT_FLASH_CAPACITY);
        if flash_capacity == 0 {
            return Err(ConfigError::out_of_range(
                "SettingsBuilder::with_flash_capacity",
                flash_capacity,
                "at least 1 message (to drop every flash message, raise \
                 with_flash_min_level instead)",
            ));
        }
        if self.max_sessions_per_user == Some(0) {
            return Err(ConfigError::out_of_range(
                "SettingsBuilder::with_max_sessions_per_user",
                0,
                "at least 1 session (without a cap, do not call it)",
            ));
        }
        Ok(Limits {
            store_timeout,
            max_session_size,
            flash_capacity,
            flash_min_level: self.flash_min_level.unwrap_or(FlashLevel::Info),
            save_on_server_error: self.save_on_server_error,
            max_sessions_per_user: self.max_sessions_per_user,
            over_cap: self.over_cap,
        })
    }
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
