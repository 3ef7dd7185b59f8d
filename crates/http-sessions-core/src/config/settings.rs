//! [`Settings`] and its [`SettingsBuilder`]: the keyring, the clock, and
//! one field per concern, each kept and checked by its own file
//! (`cookie`, `lifetimes`, `limits`, `environment`).

use std::sync::Arc;

use crate::config::cookie::{self, CookieSettings, FixedAttributes};
use crate::config::environment::{self, EnvValues};
use crate::config::error::ConfigError;
use crate::config::keys::Keyring;
use crate::config::lifetimes::{self, Lifetimes};
use crate::config::limits::{self, Limits};
use crate::session::time::{Clock, SystemClock};

/// Everything the session layer and the stores are configured by.
///
/// Cheap to clone: the keyring and the clock are shared.
///
/// # Examples
///
/// ```
/// use http_sessions_core::{Key, Keyring, Settings};
/// use std::time::Duration;
///
/// let settings = Settings::builder()
///     .with_keyring(Keyring::new(Key::from_bytes(&[42; 32])?)?)
///     .with_cookie_name("__Host-sid")
///     .with_idle_timeout(Duration::from_secs(15 * 60))
///     .build()?;
/// assert_eq!(settings.cookie().name, "__Host-sid");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Settings {
    keyring: Arc<Keyring>,
    pub(super) cookie: CookieSettings,
    pub(super) fixed_attributes: FixedAttributes,
    pub(super) lifetimes: Lifetimes,
    pub(super) limits: Limits,
    clock: Arc<dyn Clock>,
}

impl Settings {
    /// The environment variable [`from_env`](Self::from_env) and
    /// [`SettingsBuilder::build`] read the secret key from.
    pub const SECRET_ENV: &str = crate::config::environment::SECRET_ENV;
    /// The environment variable that can turn the cookie's `Secure`
    /// attribute off (`false`) for plain-http development.
    pub const SECURE_ENV: &str = crate::config::environment::SECURE_ENV;

    /// A builder with the defaults.
    pub fn builder() -> SettingsBuilder {
        SettingsBuilder::default()
    }

    /// The trusted keys.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The clock that tells the time of every request: the one given to
    /// [`SettingsBuilder::with_clock`], else the system's. The manager
    /// reads it and passes the time to every store call; a store that
    /// must tell the time between calls (the memory store's sweeper) takes
    /// it from here.
    #[doc(hidden)]
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }
}

/// Builds [`Settings`]; every value is checked by [`build`](Self::build).
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct SettingsBuilder {
    keyring: Option<Keyring>,
    pub(super) random_dev_key: bool,
    pub(super) cookie: CookieSettings,
    /// `Some` once [`with_secure`](Self::with_secure) is called: the code's
    /// word, which `SESSION_COOKIE_SECURE` does not override.
    pub(super) secure: Option<bool>,
    pub(super) lifetimes: lifetimes::Requested,
    pub(super) limits: limits::Requested,
    clock: Option<Arc<dyn Clock>>,
}

impl SettingsBuilder {
    /// Uses this keyring instead of `SESSION_SECRET`.
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// Tells the time by `clock` instead of the system clock: the one
    /// place a test sets the time, for the layer, the manager and the
    /// stores alike (tests move a [`ManualClock`](crate::seams::ManualClock)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use http_sessions_core::{Key, Keyring, seams::ManualClock, Settings, store::UnixTime};
    ///
    /// let clock = ManualClock::new(UnixTime::from_secs(1_000));
    /// let settings = Settings::builder()
    ///     .with_keyring(Keyring::new(Key::generate()?)?)
    ///     .with_clock(clock.clone())
    ///     .build()?;
    /// clock.advance(Duration::from_secs(60));
    /// assert_eq!(settings.clock().now(), UnixTime::from_secs(1_060));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(hidden)]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Checks everything and builds the settings.
    ///
    /// Two environment variables are read. `SESSION_SECRET` gives the key
    /// when no keyring was given. `SESSION_COOKIE_SECURE` gives the
    /// cookie's `Secure` attribute when [`with_secure`](Self::with_secure)
    /// was not called: `false` or `0` turn it off, for local development
    /// over plain http; `true`, `1` or no variable keep it on. Whenever
    /// `Secure` ends up off, by either, a warning is logged here, once.
    ///
    /// # Security
    ///
    /// With `SESSION_COOKIE_SECURE=false` the browser sends the session
    /// cookie over plain http, where anyone on the network can read and
    /// replay it. Never set it in production; `__Host-` and `__Secure-`
    /// cookie names and `SameSite=None` refuse to build without `Secure`.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::{Key, Keyring, Settings};
    ///
    /// // `with_secure` is the code's word: SESSION_COOKIE_SECURE is not read.
    /// let settings = Settings::builder()
    ///     .with_keyring(Keyring::new(Key::generate()?)?)
    ///     .with_secure(true)
    ///     .build()?;
    /// assert!(settings.cookie().secure);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first value refused: a cookie name, path
    /// or domain with characters a cookie cannot carry, a cookie prefix whose
    /// rules are broken, `SameSite=None` without `Secure`, any value out of
    /// its setting's range, zero included
    /// ([`ConfigError::OutOfRange`], naming the setting and its range), a
    /// `SESSION_SECRET` shorter than 32 bytes, a `SESSION_COOKIE_SECURE`
    /// other than `true`, `1`, `false` or `0` ([`ConfigError::SecureEnv`]),
    /// or no key at all: [`ConfigError::MissingSecret`] without a keyring,
    /// `SESSION_SECRET` or [`with_random_dev_key`](Self::with_random_dev_key).
    pub fn build(self) -> Result<Settings, ConfigError> {
        self.build_with_env(EnvValues::read())
    }

    /// [`build`](Self::build), with the environment's values passed in:
    /// tests pass them rather than change the environment, which every
    /// thread of the process shares.
    pub(super) fn build_with_env(mut self, env: EnvValues) -> Result<Settings, ConfigError> {
        let (secure, secure_from) = environment::secure(self.secure, env.cookie_secure.as_deref())?;
        self.cookie.secure = secure;
        cookie::check(&self.cookie, secure_from)?;
        let lifetimes = self.lifetimes.check()?;
        let limits = self.limits.check()?;
        let keyring = environment::keyring(self.keyring, self.random_dev_key, env.secret)?;
        if !self.cookie.secure {
            environment::warn_not_secure(secure_from);
        }
        Ok(Settings {
            keyring: Arc::new(keyring),
            fixed_attributes: FixedAttributes::of(&self.cookie),
            cookie: self.cookie,
            lifetimes,
            limits,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::cookie::SameSite;
    use crate::config::keys::Key;
    use crate::session::flash::FlashLevel;
    use crate::session::time::{ManualClock, UnixTime};

    /// A builder with a fixed key, so that only what a test sets can fail.
    pub(crate) fn base() -> SettingsBuilder {
        Settings::builder().with_keyring(Keyring::new(Key::from_bytes(&[1; 32]).unwrap()).unwrap())
    }

    /// `builder` is refused with the one out-of-range kind, naming
    /// `setting` and `value`, in a message that says what to change.
    pub(crate) fn assert_out_of_range(builder: SettingsBuilder, setting: &str, value: &str) {
        let error = builder.build().unwrap_err();
        let message = error.to_string();
        match &error {
            ConfigError::OutOfRange {
                setting: named,
                value: refused,
                allowed,
            } => {
                assert_eq!((*named, refused.as_str()), (setting, value), "{message}");
                for part in [setting, value, allowed] {
                    assert!(message.contains(part), "{part:?} missing from {message:?}");
                }
            }
            other => panic!("{setting} = {value}: not OutOfRange but {other:?}"),
        }
    }

    #[test]
    fn every_setting_reads_back_as_it_was_given() {
        let clock = ManualClock::new(UnixTime::from_secs(5_000));
        let keyring = Keyring::new(Key::from_bytes(&[7; 32]).unwrap()).unwrap();
        let key_id = keyring.current().id();
        let s = Settings::builder()
            .with_keyring(keyring)
            .with_cookie_name("sid")
            .with_cookie_path("/app")
            .with_cookie_domain("example.com")
            .with_same_site(SameSite::Strict)
            .with_secure(true)
            .with_http_only(false)
            .with_idle_timeout(Duration::from_secs(600))
            .with_absolute_lifetime(Duration::from_secs(7_200))
            .with_refresh_fraction(0.5)
            .with_max_expiry(Duration::from_secs(86_400))
            .with_store_timeout(Duration::from_millis(750))
            .with_max_session_size(4_096)
            .with_flash_capacity(3)
            .with_flash_min_level(FlashLevel::Warning)
            .with_save_on_server_error(true)
            .with_clock(clock.clone())
            .build()
            .unwrap();
        assert_eq!(s.keyring().current().id(), key_id);
        assert_eq!(
            s.cookie(),
            &CookieSettings {
                name: "sid".into(),
                path: "/app".into(),
                domain: Some("example.com".into()),
                same_site: SameSite::Strict,
                secure: true,
                http_only: false,
            }
        );
        assert_eq!(s.idle_timeout(), Duration::from_secs(600));
        assert_eq!(s.absolute_lifetime(), Duration::from_secs(7_200));
        assert_eq!(s.refresh_fraction(), 0.5);
        assert_eq!(s.max_expiry(), Duration::from_secs(86_400));
        assert_eq!(s.store_timeout(), Duration::from_millis(750));
        assert_eq!(s.max_session_size(), 4_096);
        assert_eq!(s.flash_capacity(), 3);
        assert_eq!(s.flash_min_level(), FlashLevel::Warning);
        assert!(s.save_on_server_error());
        clock.advance(Duration::from_secs(1));
        assert_eq!(s.clock().now(), UnixTime::from_secs(5_001));
        // A clone shares the clock and keeps every value.
        let clone = s.clone();
        assert_eq!(clone.cookie(), s.cookie());
        assert_eq!(
            (clone.lifetimes, clone.limits),
            (s.lifetimes, s.limits),
            "a clone keeps every value"
        );
    }

    #[test]
    fn without_a_clock_the_system_tells_the_time() {
        let s = base().build().unwrap();
        let system = SystemClock.now();
        assert!(s.clock().now().as_secs().abs_diff(system.as_secs()) <= 1);
    }
}
