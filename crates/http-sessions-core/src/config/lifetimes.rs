//! How long sessions live: idle timeout, absolute lifetime, refresh
//! fraction and the longest expiry a handler may give, their bounds, and
//! the builder methods that set them.

use std::time::Duration;

use crate::config::error::ConfigError;
use crate::config::settings::{Settings, SettingsBuilder};

/// Idle timeout: OWASP Session Management Cheat Sheet, "Idle Timeout",
/// suggests 15 to 30 minutes for low-risk applications.
const DEFAULT_IDLE: Duration = Duration::from_secs(30 * 60);
/// Absolute lifetime: the same sheet suggests 4 to 8 hours for an office
/// day; 12 hours covers a long one.
const DEFAULT_ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);
const DEFAULT_REFRESH_FRACTION: f64 = 0.25;

/// What a lifetime accepts, for the error.
const LIFETIME_RANGE: &str = "between one second and 400 days (Settings::MAX_LIFETIME)";

/// The lifetimes the builder was given; `None` takes the default.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Requested {
    idle: Option<Duration>,
    absolute: Option<Duration>,
    refresh_fraction: Option<f64>,
    max_expiry: Option<Duration>,
}

/// The lifetimes, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Lifetimes {
    idle: Duration,
    absolute: Duration,
    refresh_fraction: f64,
    max_expiry: Duration,
}

impl Requested {
    /// The defaults filled in, each value checked against its range.
    pub(super) fn check(self) -> Result<Lifetimes, ConfigError> {
        let lifetime = |setting, value: Option<Duration>, default| {
            let value = value.unwrap_or(default);
            if value.as_secs() == 0 || value > Settings::MAX_LIFETIME {
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
                Settings::DEFAULT_MAX_EXPIRY,
            )?,
        })
    }
}

impl Settings {
    /// The longest idle timeout or absolute lifetime
    /// [`build`](SettingsBuilder::build) accepts: 400 days, the most a
    /// browser keeps a cookie whatever its `Max-Age` (RFC 6265bis section
    /// 5.6.2). It also keeps every deadline far from the end of
    /// [`UnixTime`](crate::store::UnixTime).
    pub const MAX_LIFETIME: Duration = Duration::from_secs(400 * 24 * 60 * 60);

    /// The longest lifetime a handler may give a session with
    /// [`Session::set_expiry`](crate::Session::set_expiry), unless
    /// configured: 30 days, the usual "remember me".
    pub const DEFAULT_MAX_EXPIRY: Duration = Duration::from_secs(30 * 24 * 60 * 60);

    /// How long a session lives without a request.
    pub fn idle_timeout(&self) -> Duration {
        self.lifetimes.idle
    }

    /// How long a session lives at most, however active.
    pub fn absolute_lifetime(&self) -> Duration {
        self.lifetimes.absolute
    }

    /// The share of the idle window that must pass before a request that
    /// changed nothing extends the session.
    pub fn refresh_fraction(&self) -> f64 {
        self.lifetimes.refresh_fraction
    }

    /// The longest idle timeout or absolute lifetime a session may be
    /// given with [`Session::set_expiry`](crate::Session::set_expiry)
    /// (default [`Settings::DEFAULT_MAX_EXPIRY`], 30 days).
    pub fn max_expiry(&self) -> Duration {
        self.lifetimes.max_expiry
    }
}

impl SettingsBuilder {
    /// How long a session lives without a request (default 30 minutes);
    /// from one second to [`Settings::MAX_LIFETIME`] (400 days), checked by
    /// [`build`](Self::build).
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.lifetimes.idle = Some(idle);
        self
    }

    /// How long a session lives at most (default 12 hours); from one second
    /// to [`Settings::MAX_LIFETIME`] (400 days), checked by
    /// [`build`](Self::build).
    pub fn with_absolute_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetimes.absolute = Some(lifetime);
        self
    }

    /// The share of the idle window, from 0 to 1, after which a request that
    /// changed nothing still extends the session (default 0.25). Lower means
    /// more writes; 0 rewrites on every request. Checked by
    /// [`build`](Self::build).
    pub fn with_refresh_fraction(mut self, fraction: f64) -> Self {
        self.lifetimes.refresh_fraction = Some(fraction);
        self
    }

    /// The longest idle timeout or absolute lifetime a handler may give a
    /// session with [`Session::set_expiry`](crate::Session::set_expiry)
    /// ("remember me"); longer ones are cut to it. Default
    /// [`Settings::DEFAULT_MAX_EXPIRY`] (30 days); between one second and
    /// [`Settings::MAX_LIFETIME`], checked by [`build`](Self::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use http_sessions_core::{Key, Keyring, Settings};
    ///
    /// let settings = Settings::builder()
    ///     .with_keyring(Keyring::new(Key::generate()?)?)
    ///     .with_max_expiry(Duration::from_secs(90 * 24 * 60 * 60))
    ///     .build()?;
    /// assert_eq!(settings.max_expiry().as_secs(), 90 * 24 * 60 * 60);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_max_expiry(mut self, longest: Duration) -> Self {
        self.lifetimes.max_expiry = Some(longest);
        self
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::settings::tests::{assert_out_of_range, base};
    use crate::config::settings::{Settings, SettingsBuilder};

    #[test]
    fn every_out_of_range_lifetime_is_refused_alike() {
        let half_a_second = Duration::from_millis(500);
        let over = Settings::MAX_LIFETIME + Duration::from_secs(1);
        type Set = fn(SettingsBuilder, Duration) -> SettingsBuilder;
        let cases: [(&str, Set); 3] = [
            (
                "SettingsBuilder::with_idle_timeout",
                SettingsBuilder::with_idle_timeout,
            ),
            (
                "SettingsBuilder::with_absolute_lifetime",
                SettingsBuilder::with_absolute_lifetime,
            ),
            (
                "SettingsBuilder::with_max_expiry",
                SettingsBuilder::with_max_expiry,
            ),
        ];
        for (setting, set) in cases {
            for value in [Duration::ZERO, half_a_second, over, Duration::MAX] {
                assert_out_of_range(set(base(), value), setting, &format!("{value:?}"));
            }
            assert!(set(base(), Duration::from_secs(1)).build().is_ok());
            assert!(set(base(), Settings::MAX_LIFETIME).build().is_ok());
        }
        for fraction in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert_out_of_range(
                base().with_refresh_fraction(fraction),
                "SettingsBuilder::with_refresh_fraction",
                &format!("{fraction:?}"),
            );
        }
        for fraction in [0.0, 1.0] {
            assert!(base().with_refresh_fraction(fraction).build().is_ok());
        }
    }

    #[test]
    fn the_bounds_keep_the_arithmetic_in_range() {
        let s = base()
            .with_store_timeout(Settings::MAX_STORE_TIMEOUT)
            .with_idle_timeout(Settings::MAX_LIFETIME)
            .with_absolute_lifetime(Settings::MAX_LIFETIME)
            .with_refresh_fraction(1.0)
            .build()
            .unwrap();
        // What the layer and the stores compute from them, today and in
        // two thousand years: no saturation, no panic.
        use crate::session::time::{Clock, SystemClock, UnixTime};
        for now in [
            SystemClock.now(),
            UnixTime::from_secs(SystemClock.now().as_secs() + 2_000 * 366 * 24 * 60 * 60),
        ] {
            let deadline = now + s.idle_timeout();
            assert_eq!(deadline.saturating_since(now), Settings::MAX_LIFETIME);
            let end = now + s.absolute_lifetime();
            assert_eq!(end.saturating_since(now), Settings::MAX_LIFETIME);
        }
        assert_eq!(
            s.idle_timeout().mul_f64(s.refresh_fraction()),
            Settings::MAX_LIFETIME
        );
        assert!(
            std::time::Instant::now()
                .checked_add(s.store_timeout())
                .is_some()
        );
    }
}
