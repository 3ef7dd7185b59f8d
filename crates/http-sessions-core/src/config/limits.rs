//! What bounds a request's work on its session: the store timeout, the
//! largest session, the flash queue, and whether a failed request saves;
//! their bounds, and the builder methods that set them.

use std::time::Duration;

use crate::config::error::ConfigError;
use crate::config::settings::{Settings, SettingsBuilder};
use crate::session::flash::{DEFAULT_FLASH_CAPACITY, FlashLevel};

/// The smallest session size bound: room for a few values and a flash
/// message, so that a bound set in the wrong unit fails at start, not at
/// every save.
const MIN_SESSION_SIZE: usize = 1024;

/// The limits the builder was given; `None` takes the default.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Requested {
    store_timeout: Option<Duration>,
    max_session_size: Option<usize>,
    flash_capacity: Option<usize>,
    flash_min_level: Option<FlashLevel>,
    save_on_server_error: bool,
}

/// The limits, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Limits {
    store_timeout: Duration,
    max_session_size: usize,
    flash_capacity: usize,
    flash_min_level: FlashLevel,
    save_on_server_error: bool,
}

impl Requested {
    /// The defaults filled in, each value checked against its range.
    pub(super) fn check(self) -> Result<Limits, ConfigError> {
        let store_timeout = self
            .store_timeout
            .unwrap_or(Settings::DEFAULT_STORE_TIMEOUT);
        if store_timeout.is_zero() || store_timeout > Settings::MAX_STORE_TIMEOUT {
            return Err(ConfigError::out_of_range(
                "SettingsBuilder::with_store_timeout",
                store_timeout,
                "above zero and at most one hour (Settings::MAX_STORE_TIMEOUT)",
            ));
        }
        let max_session_size = self
            .max_session_size
            .unwrap_or(Settings::DEFAULT_MAX_SESSION_SIZE);
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
        Ok(Limits {
            store_timeout,
            max_session_size,
            flash_capacity,
            flash_min_level: self.flash_min_level.unwrap_or(FlashLevel::Info),
            save_on_server_error: self.save_on_server_error,
        })
    }
}

impl Settings {
    /// How long one store call may take unless configured: 2 seconds.
    pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(2);

    /// The longest store timeout [`build`](SettingsBuilder::build) accepts:
    /// one hour. A timer past it would only hold a request open that the
    /// client gave up long before; a bound keeps the deadline arithmetic
    /// of the stores (`Instant` plus timeout) in range.
    pub const MAX_STORE_TIMEOUT: Duration = Duration::from_secs(60 * 60);

    /// The largest session a server-side store is asked to keep, unless
    /// configured: 64 KiB of keys, values and flash messages, far more
    /// than a normal application keeps, and small enough that no session
    /// slows the store for everyone else.
    pub const DEFAULT_MAX_SESSION_SIZE: usize = 64 * 1024;

    /// The longest any one store call may take: the layer cuts a call off
    /// after it, and a store that keeps deadlines of its own (Redis, to
    /// judge its connections) takes them from here when the layer is
    /// built ([`SessionStore::use_settings`](crate::store::SessionStore::use_settings)).
    pub fn store_timeout(&self) -> Duration {
        self.limits.store_timeout
    }

    /// The largest session, in encoded bytes of keys, values and flash
    /// messages, that a server-side store is asked to keep.
    pub fn max_session_size(&self) -> usize {
        self.limits.max_session_size
    }

    /// Flash messages below this level are dropped.
    pub fn flash_min_level(&self) -> FlashLevel {
        self.limits.flash_min_level
    }

    /// The most flash messages a session holds.
    pub fn flash_capacity(&self) -> usize {
        self.limits.flash_capacity
    }

    /// Whether a response with a 5xx status still saves what its handler
    /// changed in the session (by default it does not; see
    /// [`SettingsBuilder::with_save_on_server_error`]).
    pub fn save_on_server_error(&self) -> bool {
        self.limits.save_on_server_error
    }
}

impl SettingsBuilder {
    /// The longest a store call may take before the request gets a 503
    /// (default [`Settings::DEFAULT_STORE_TIMEOUT`], 2 seconds); above zero
    /// and at most [`Settings::MAX_STORE_TIMEOUT`] (one hour), checked by
    /// [`build`](Self::build). The one timeout of every store call: a
    /// store has none to set of its own.
    pub fn with_store_timeout(mut self, timeout: Duration) -> Self {
        self.limits.store_timeout = Some(timeout);
        self
    }

    /// The largest session a server-side store is asked to keep, in
    /// encoded bytes of keys, values and flash messages (default
    /// [`Settings::DEFAULT_MAX_SESSION_SIZE`], 64 KiB). A save past it
    /// fails with [`StoreError::TooLarge`](crate::StoreError::TooLarge)
    /// before anything is sent, as a cookie past 4096 bytes does. At least
    /// 1 KiB, checked by [`build`](Self::build).
    pub fn with_max_session_size(mut self, bytes: usize) -> Self {
        self.limits.max_session_size = Some(bytes);
        self
    }

    /// Flash messages below `level` are dropped (default `Info`).
    pub fn with_flash_min_level(mut self, level: FlashLevel) -> Self {
        self.limits.flash_min_level = Some(level);
        self
    }

    /// The most flash messages kept; the oldest go first (default 16). At
    /// least 1, checked by [`build`](Self::build).
    pub fn with_flash_capacity(mut self, capacity: usize) -> Self {
        self.limits.flash_capacity = Some(capacity);
        self
    }

    /// Whether a response whose status is 5xx saves what its handler
    /// changed in the session. By default it does not: a handler that
    /// failed half-way leaves the session as it was, with no store write
    /// and no new cookie, as if the request had not run. A
    /// [`destroy`](crate::Session::destroy) is carried out all the same:
    /// a logout stands even if the page after it failed.
    ///
    /// A handler that must save before it fails calls
    /// [`Session::save`](crate::Session::save) itself: what it saved
    /// stands, and the response carries the cookie that save set.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::{Key, Keyring, Settings};
    ///
    /// let settings = Settings::builder()
    ///     .with_keyring(Keyring::new(Key::generate()?)?)
    ///     .build()?;
    /// assert!(!settings.save_on_server_error());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_save_on_server_error(mut self, save: bool) -> Self {
        self.limits.save_on_server_error = save;
        self
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::settings::Settings;
    use crate::config::settings::tests::{assert_out_of_range, base};

    #[test]
    fn every_out_of_range_limit_is_refused_alike() {
        for timeout in [
            Duration::ZERO,
            Settings::MAX_STORE_TIMEOUT + Duration::from_nanos(1),
            Duration::MAX,
        ] {
            assert_out_of_range(
                base().with_store_timeout(timeout),
                "SettingsBuilder::with_store_timeout",
                &format!("{timeout:?}"),
            );
        }
        for size in [0, 1, 1023] {
            assert_out_of_range(
                base().with_max_session_size(size),
                "SettingsBuilder::with_max_session_size",
                &size.to_string(),
            );
        }
        assert_out_of_range(
            base().with_flash_capacity(0),
            "SettingsBuilder::with_flash_capacity",
            "0",
        );
    }

    #[test]
    fn each_limit_accepts_its_bounds_and_has_a_default() {
        let s = base().build().unwrap();
        assert_eq!(s.store_timeout(), Settings::DEFAULT_STORE_TIMEOUT);
        assert_eq!(s.max_session_size(), Settings::DEFAULT_MAX_SESSION_SIZE);
        assert_eq!(s.flash_capacity(), crate::store::DEFAULT_FLASH_CAPACITY);
        let s = base()
            .with_store_timeout(Duration::from_nanos(1))
            .with_max_session_size(1024)
            .with_flash_capacity(1)
            .build()
            .unwrap();
        assert_eq!(s.store_timeout(), Duration::from_nanos(1));
        assert_eq!(s.max_session_size(), 1024);
        assert_eq!(s.flash_capacity(), 1);
        let longest = base().with_store_timeout(Settings::MAX_STORE_TIMEOUT);
        assert!(longest.build().is_ok());
    }
}
