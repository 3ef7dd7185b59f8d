//! [`Settings`] and its [`SettingsBuilder`]: every setting's reader and
//! setter in one place, each concern's values kept and checked by a file
//! of its own below this one (`cookie`, `lifetimes`, `limits`,
//! `environment`), which never imports it back.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use crate::config::cookie::{self, CookieSettings, FixedAttributes, SameSite};
use crate::config::environment::{self, EnvValues};
use crate::config::error::ConfigError;
use crate::config::keys::Keyring;
use crate::config::lifetimes::{self, Lifetimes};
use crate::config::limits::{self, Limits, OverCap};
use crate::session::flash::FlashLevel;
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
    /// Names the cookie had before, still read; each with the
    /// `Set-Cookie` that removes it.
    pub(super) previous_names: Vec<(String, HeaderValue)>,
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
    /// Set by [`with_cookie_name`](Self::with_cookie_name); else the name
    /// is [`CookieSettings::default_name`].
    cookie_name_given: bool,
    previous_names: Vec<String>,
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
        if !self.cookie_name_given {
            self.cookie.name = self.cookie.default_name();
            // The default name before it took its prefix: a deploy that
            // moves to the prefixed name keeps everyone signed in.
            self.previous_names.push(cookie::BASE_NAME.to_owned());
        }
        cookie::check(&self.cookie, secure_from)?;
        let mut previous_names = Vec::new();
        for name in self.previous_names {
            if name == self.cookie.name || previous_names.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let old = CookieSettings {
                name: name.clone(),
                ..self.cookie.clone()
            };
            cookie::check_characters(&old)?;
            let removal = HeaderValue::try_from(self.cookie.removal(&name)).map_err(|_| {
                ConfigError::CookieAttribute {
                    field: "previous name",
                    value: name.clone(),
                }
            })?;
            previous_names.push((name, removal));
        }
        let lifetimes = self.lifetimes.check()?;
        let limits = self.limits.check()?;
        let keyring = environment::keyring(self.keyring, self.random_dev_key, env.secret)?;
        if !self.cookie.secure {
            environment::warn_not_secure(secure_from);
        }
        Ok(Settings {
            keyring: Arc::new(keyring),
            fixed_attributes: FixedAttributes::of(&self.cookie),
            previous_names,
            cookie: self.cookie,
            lifetimes,
            limits,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
        })
    }
}

// The cookie (checked in `cookie`).
impl Settings {
    /// The cookie's attributes.
    pub fn cookie(&self) -> &CookieSettings {
        &self.cookie
    }

    /// The cookie's attributes as `Set-Cookie` writes them.
    pub(crate) fn fixed_attributes(&self) -> &FixedAttributes {
        &self.fixed_attributes
    }

    /// The names the cookie had before
    /// ([`SettingsBuilder::with_previous_cookie_name`], and `session` when
    /// the name is the default), read when a request has no cookie of the
    /// current name; each with the `Set-Cookie` that removes it.
    pub(crate) fn previous_names(&self) -> &[(String, HeaderValue)] {
        &self.previous_names
    }

    /// The names the cookie had before, still read when a request has no
    /// cookie of the current name
    /// ([`SettingsBuilder::with_previous_cookie_name`]; `session` when the
    /// name is the default): a backend that authenticates the name in its
    /// values accepts these too.
    pub fn previous_cookie_names(&self) -> impl Iterator<Item = &str> {
        self.previous_names.iter().map(|(name, _)| name.as_str())
    }
}

// The cookie (checked in `cookie`).
impl SettingsBuilder {
    /// The cookie's name. By default `__Host-session` when the cookie is
    /// `Secure`, its path `/` and no domain is set; `__Secure-session` when
    /// it is `Secure` otherwise; `session` without `Secure` (plain-http
    /// development). A `__Host-` name also needs `Secure`, path `/` and no
    /// domain; a `__Secure-` name needs `Secure`.
    ///
    /// A request that carries no cookie of this name but one of a
    /// [previous name](Self::with_previous_cookie_name) is served from
    /// that one, and its response moves the session to this name and
    /// removes the old cookie; with the default name, `session` is such a
    /// previous name.
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie.name = name.into();
        self.cookie_name_given = true;
        self
    }

    /// A name the session cookie had before: still read, so a deploy that
    /// renames the cookie signs nobody out. A session found under it is
    /// sent again under the current name, and the old cookie removed.
    /// Keep it until every such cookie has expired.
    pub fn with_previous_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.previous_names.push(name.into());
        self
    }

    /// The cookie's `Path` (default `/`).
    pub fn with_cookie_path(mut self, path: impl Into<String>) -> Self {
        self.cookie.path = path.into();
        self
    }

    /// The cookie's `Domain` (default none: only the host that set it).
    pub fn with_cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.cookie.domain = Some(domain.into());
        self
    }

    /// The cookie's `SameSite` (default `Lax`).
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.cookie.same_site = same_site;
        self
    }

    /// The cookie's `Secure` flag (default on, or as
    /// `SESSION_COOKIE_SECURE` says). Called, it decides on its own:
    /// [`build`](Self::build) then ignores `SESSION_COOKIE_SECURE`, so code
    /// that says `with_secure(true)` cannot be weakened by the environment.
    /// For local development prefer `SESSION_COOKIE_SECURE=false`, which
    /// leaves the code as it runs in production.
    ///
    /// # Security
    ///
    /// Off, the browser sends the cookie over plain HTTP, where anyone on
    /// the path can read and replay it. Turn it off only for local
    /// development over `http://localhost`; [`build`](Self::build) logs a
    /// warning when it is off.
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = Some(secure);
        self
    }

    /// The cookie's `HttpOnly` flag (default on).
    ///
    /// # Security
    ///
    /// Off, any script on the page (including an injected one) can read the
    /// session cookie.
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.cookie.http_only = http_only;
        self
    }
}

// What the environment decides (read in `environment`).
impl Settings {
    /// The defaults, with the key from `SESSION_SECRET` and the cookie's
    /// `Secure` attribute from `SESSION_COOKIE_SECURE` (on unless it is
    /// `false` or `0`; see [`SettingsBuilder::build`]).
    ///
    /// ```sh
    /// # production: Secure on, the key from the secret store
    /// SESSION_SECRET="$(openssl rand -base64 48)" ./app
    /// # local development over http://localhost: a warning is logged
    /// SESSION_COOKIE_SECURE=false SESSION_SECRET="$(openssl rand -base64 48)" ./app
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::MissingSecret`] if `SESSION_SECRET` is not set (for a
    /// throwaway key in development, use
    /// [`SettingsBuilder::with_random_dev_key`]); [`ConfigError::Env`] if it
    /// is shorter than 32 bytes; [`ConfigError::SecureEnv`] if
    /// `SESSION_COOKIE_SECURE` is set to anything but `true`, `1`, `false`
    /// or `0`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder().build()
    }
}

// What the environment decides (read in `environment`).
impl SettingsBuilder {
    /// Without a keyring and without `SESSION_SECRET`, makes a random key
    /// (and logs a warning) instead of refusing to build with
    /// [`ConfigError::MissingSecret`]. A keyring, then `SESSION_SECRET`,
    /// still come first: this only fills the gap, for local development,
    /// demos and tests.
    ///
    /// # Security
    ///
    /// The key lives and dies with the process. Every restart logs everyone
    /// out, and instances of the application cannot read each other's
    /// cookies, so behind a load balancer visitors lose their session
    /// whenever they reach another instance. In production set
    /// `SESSION_SECRET` (at least 32 random bytes, for example
    /// `openssl rand -base64 48`) on every instance.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::Settings;
    ///
    /// // SESSION_SECRET when it is set, else a key for this process only.
    /// let settings = Settings::builder().with_random_dev_key().build()?;
    /// # let _ = settings;
    /// # Ok::<(), http_sessions_core::ConfigError>(())
    /// ```
    pub fn with_random_dev_key(mut self) -> Self {
        self.random_dev_key = true;
        self
    }
}

// How long sessions live (checked in `lifetimes`).
impl Settings {
    /// The longest idle timeout or absolute lifetime
    /// [`build`](SettingsBuilder::build) accepts: 400 days, the most a
    /// browser keeps a cookie whatever its `Max-Age` (RFC 6265bis section
    /// 5.6.2). It also keeps every deadline far from the end of
    /// [`UnixTime`](crate::store::UnixTime).
    pub const MAX_LIFETIME: Duration = lifetimes::MAX_LIFETIME;

    /// The longest lifetime a handler may give a session with
    /// [`Session::set_expiry`](crate::Session::set_expiry), unless
    /// configured: 30 days, the usual "remember me".
    pub const DEFAULT_MAX_EXPIRY: Duration = lifetimes::DEFAULT_MAX_EXPIRY;

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

// How long sessions live (checked in `lifetimes`).
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

// What bounds a request's work (checked in `limits`).
impl Settings {
    /// How long one store call may take unless configured: 2 seconds.
    pub const DEFAULT_STORE_TIMEOUT: Duration = limits::DEFAULT_STORE_TIMEOUT;

    /// The longest store timeout [`build`](SettingsBuilder::build) accepts:
    /// one hour. A timer past it would only hold a request open that the
    /// client gave up long before; a bound keeps the deadline arithmetic
    /// of the stores (`Instant` plus timeout) in range.
    pub const MAX_STORE_TIMEOUT: Duration = limits::MAX_STORE_TIMEOUT;

    /// The largest session a server-side store is asked to keep, unless
    /// configured: 64 KiB of keys, values and flash messages, far more
    /// than a normal application keeps, and small enough that no session
    /// slows the store for everyone else.
    pub const DEFAULT_MAX_SESSION_SIZE: usize = limits::DEFAULT_MAX_SESSION_SIZE;

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

    /// The most sessions one user may have at once, if capped (see
    /// [`SettingsBuilder::with_max_sessions_per_user`]).
    pub fn max_sessions_per_user(&self) -> Option<usize> {
        self.limits.max_sessions_per_user
    }

    /// What a binding past [`max_sessions_per_user`](Self::max_sessions_per_user) does.
    pub fn over_cap(&self) -> OverCap {
        self.limits.over_cap
    }
}

// What bounds a request's work (checked in `limits`).
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

    /// The most sessions one user may have at once (OWASP ASVS 7.1.2; by
    /// default there is no cap). When a request binds a session to a user
    /// ([`Session::bind_user`](crate::Session::bind_user)) who already has
    /// `max`, what [`with_over_cap`](Self::with_over_cap) says happens:
    /// the least recently used sessions end, or the binding is refused.
    /// At least 1, checked by [`build`](Self::build). Server-side stores
    /// that keep an index of users' sessions only: a binding on any other
    /// backend fails with
    /// [`StoreError::Unsupported`](crate::StoreError::Unsupported).
    ///
    /// The layer counts the user's sessions after it stored the binding,
    /// and ends those past the cap, the least recently used first, so that
    /// concurrent logins of one user leave no more than `max`. A binding
    /// costs one more store call then (two with
    /// [`OverCap::Refuse`], which also counts before it writes), and a
    /// call to end each session past the cap; other requests cost nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use http_sessions_core::{Key, Keyring, OverCap, Settings};
    ///
    /// let settings = Settings::builder()
    ///     .with_keyring(Keyring::new(Key::generate()?)?)
    ///     .with_max_sessions_per_user(3)
    ///     .with_over_cap(OverCap::Refuse)
    ///     .build()?;
    /// assert_eq!(settings.max_sessions_per_user(), Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_max_sessions_per_user(mut self, max: usize) -> Self {
        self.limits.max_sessions_per_user = Some(max);
        self
    }

    /// What a binding past
    /// [`with_max_sessions_per_user`](Self::with_max_sessions_per_user)
    /// does (default [`OverCap::EndLeastRecent`]).
    pub fn with_over_cap(mut self, over: OverCap) -> Self {
        self.limits.over_cap = over;
        self
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
pub(crate) mod tests;
