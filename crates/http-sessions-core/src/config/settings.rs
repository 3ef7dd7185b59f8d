//! Configuration: [`Settings`] and its [`SettingsBuilder`], with the
//! cookie attributes ([`CookieSettings`]), expiry, flash and key settings,
//! checked once when built.

use std::sync::Arc;
use std::time::Duration;

use crate::config::error::ConfigError;
use crate::config::keys::{Key, Keyring};
use crate::session::flash::{DEFAULT_FLASH_CAPACITY, FlashLevel};

/// The environment variable holding the secret key (its raw bytes).
pub const SECRET_ENV: &str = "SESSION_SECRET";

/// The environment variable that turns the cookie's `Secure` attribute off
/// for local development over plain http: `false` or `0` turn it off;
/// `true`, `1` or unset keep it on; anything else is refused. Read by
/// [`Settings::from_env`] and [`SettingsBuilder::build`] unless the code
/// calls [`SettingsBuilder::with_secure`].
pub const SECURE_ENV: &str = "SESSION_COOKIE_SECURE";

/// The `SameSite` cookie attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Also sent on top-level navigations from other sites (the default:
    /// blocks cross-site form posts, keeps inbound links logged in).
    #[default]
    Lax,
    /// Sent with every request; needs `Secure`.
    None,
}

impl SameSite {
    /// The attribute's value as written in `Set-Cookie`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// The attributes of the session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    /// Cookie name; default `session`.
    pub name: String,
    /// `Path`; default `/`.
    pub path: String,
    /// `Domain`; default none (host-only, the narrowest scope).
    pub domain: Option<String>,
    /// `SameSite`; default `Lax`.
    pub same_site: SameSite,
    /// `Secure`; default on.
    pub secure: bool,
    /// `HttpOnly`; default on.
    pub http_only: bool,
}

/// The parts of the session cookie's `Set-Cookie` that the settings fix,
/// written once when they are built; a response adds the value, its
/// `Max-Age` and, on a removal, `Expires` between them.
#[derive(Debug, Clone)]
pub(crate) struct FixedAttributes {
    /// `name=`.
    pub(crate) head: String,
    /// `; Path=…`, and `; Domain=…` if one is set.
    pub(crate) scope: String,
    /// `; HttpOnly` and `; Secure` if on, and `; SameSite=…`.
    pub(crate) flags: String,
}

impl FixedAttributes {
    fn of(cookie: &CookieSettings) -> Self {
        let mut scope = format!("; Path={}", cookie.path);
        if let Some(domain) = &cookie.domain {
            scope.push_str("; Domain=");
            scope.push_str(domain);
        }
        let mut flags = String::new();
        if cookie.http_only {
            flags.push_str("; HttpOnly");
        }
        if cookie.secure {
            flags.push_str("; Secure");
        }
        flags.push_str("; SameSite=");
        flags.push_str(cookie.same_site.as_str());
        Self {
            head: format!("{}=", cookie.name),
            scope,
            flags,
        }
    }
}

impl Default for CookieSettings {
    fn default() -> Self {
        Self {
            name: "session".to_owned(),
            path: "/".to_owned(),
            domain: None,
            same_site: SameSite::Lax,
            // Secure and HttpOnly on: OWASP Session Management Cheat Sheet,
            // "Cookies"; RFC 6265 sections 4.1.2.5 and 4.1.2.6.
            secure: true,
            http_only: true,
        }
    }
}

/// Everything the session layer and the stores are configured by.
///
/// Cheap to clone: the keyring is shared.
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
    cookie: CookieSettings,
    fixed_attributes: FixedAttributes,
    idle_timeout: Duration,
    absolute_lifetime: Duration,
    refresh_fraction: f64,
    flash_min_level: FlashLevel,
    flash_capacity: usize,
    store_timeout: Duration,
    max_session_size: usize,
    save_on_server_error: bool,
    max_expiry: Duration,
}

impl Settings {
    /// The longest idle timeout or absolute lifetime
    /// [`build`](SettingsBuilder::build) accepts: 400 days, the most a
    /// browser keeps a cookie whatever its `Max-Age` (RFC 6265bis section
    /// 5.6.2). It also keeps every deadline far from the end of
    /// [`UnixTime`](crate::UnixTime).
    pub const MAX_LIFETIME: Duration = Duration::from_secs(400 * 24 * 60 * 60);

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

    /// The longest lifetime a handler may give a session with
    /// [`Session::set_expiry`](crate::Session::set_expiry), unless
    /// configured: 30 days, the usual "remember me".
    pub const DEFAULT_MAX_EXPIRY: Duration = Duration::from_secs(30 * 24 * 60 * 60);

    /// A builder with the defaults.
    pub fn builder() -> SettingsBuilder {
        SettingsBuilder::default()
    }

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

    /// The trusted keys.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The cookie's attributes.
    pub fn cookie(&self) -> &CookieSettings {
        &self.cookie
    }

    /// The cookie's attributes as `Set-Cookie` writes them.
    pub(crate) fn fixed_attributes(&self) -> &FixedAttributes {
        &self.fixed_attributes
    }

    /// How long a session lives without a request.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// How long a session lives at most, however active.
    pub fn absolute_lifetime(&self) -> Duration {
        self.absolute_lifetime
    }

    /// The share of the idle window that must pass before a request that
    /// changed nothing extends the session.
    pub fn refresh_fraction(&self) -> f64 {
        self.refresh_fraction
    }

    /// Flash messages below this level are dropped.
    pub fn flash_min_level(&self) -> FlashLevel {
        self.flash_min_level
    }

    /// The most flash messages a session holds.
    pub fn flash_capacity(&self) -> usize {
        self.flash_capacity
    }

    /// The longest any one store call may take.
    pub fn store_timeout(&self) -> Duration {
        self.store_timeout
    }

    /// The largest session, in encoded bytes of keys, values and flash
    /// messages, that a server-side store is asked to keep.
    pub fn max_session_size(&self) -> usize {
        self.max_session_size
    }

    /// The longest idle timeout or absolute lifetime a session may be
    /// given with [`Session::set_expiry`](crate::Session::set_expiry)
    /// (default [`Settings::DEFAULT_MAX_EXPIRY`], 30 days).
    pub fn max_expiry(&self) -> Duration {
        self.max_expiry
    }

    /// Whether a response with a 5xx status still saves what its handler
    /// changed in the session (by default it does not; see
    /// [`SettingsBuilder::with_save_on_server_error`]).
    pub fn save_on_server_error(&self) -> bool {
        self.save_on_server_error
    }
}

/// Builds [`Settings`]; every value is checked by [`build`](Self::build).
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct SettingsBuilder {
    keyring: Option<Keyring>,
    cookie: CookieSettings,
    idle_timeout: Option<Duration>,
    absolute_lifetime: Option<Duration>,
    refresh_fraction: Option<f64>,
    flash_min_level: Option<FlashLevel>,
    flash_capacity: Option<usize>,
    store_timeout: Option<Duration>,
    max_session_size: Option<usize>,
    save_on_server_error: bool,
    max_expiry: Option<Duration>,
    random_dev_key: bool,
    /// `Some` once [`with_secure`](Self::with_secure) is called: the code's
    /// word, which `SESSION_COOKIE_SECURE` does not override.
    secure: Option<bool>,
}

/// Idle timeout: OWASP Session Management Cheat Sheet, "Idle Timeout",
/// suggests 15 to 30 minutes for low-risk applications.
const DEFAULT_IDLE: Duration = Duration::from_secs(30 * 60);
/// Absolute lifetime: the same sheet suggests 4 to 8 hours for an office
/// day; 12 hours covers a long one.
const DEFAULT_ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);
const DEFAULT_REFRESH_FRACTION: f64 = 0.25;
const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(2);

impl SettingsBuilder {
    /// Uses this keyring instead of `SESSION_SECRET`.
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

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

    /// The cookie's name (default `session`). A `__Host-` name also needs
    /// `Secure`, path `/` and no domain; a `__Secure-` name needs `Secure`.
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie.name = name.into();
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

    /// How long a session lives without a request (default 30 minutes);
    /// from one second to [`Settings::MAX_LIFETIME`] (400 days), checked by
    /// [`build`](Self::build).
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = Some(idle);
        self
    }

    /// How long a session lives at most (default 12 hours); from one second
    /// to [`Settings::MAX_LIFETIME`] (400 days), checked by
    /// [`build`](Self::build).
    pub fn with_absolute_lifetime(mut self, lifetime: Duration) -> Self {
        self.absolute_lifetime = Some(lifetime);
        self
    }

    /// The share of the idle window, from 0 to 1, after which a request that
    /// changed nothing still extends the session (default 0.25). Lower means
    /// more writes; 0 rewrites on every request.
    pub fn with_refresh_fraction(mut self, fraction: f64) -> Self {
        self.refresh_fraction = Some(fraction);
        self
    }

    /// Flash messages below `level` are dropped (default `Info`).
    pub fn with_flash_min_level(mut self, level: FlashLevel) -> Self {
        self.flash_min_level = Some(level);
        self
    }

    /// The most flash messages kept; the oldest go first (default 16).
    pub fn with_flash_capacity(mut self, capacity: usize) -> Self {
        self.flash_capacity = Some(capacity);
        self
    }

    /// The longest a store call may take before the request gets a 503
    /// (default 2 seconds); above zero and at most
    /// [`Settings::MAX_STORE_TIMEOUT`] (one hour), checked by
    /// [`build`](Self::build).
    pub fn with_store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = Some(timeout);
        self
    }

    /// The largest session a server-side store is asked to keep, in
    /// encoded bytes of keys, values and flash messages (default
    /// [`Settings::DEFAULT_MAX_SESSION_SIZE`], 64 KiB). A save past it
    /// fails with [`StoreError::TooLarge`](crate::StoreError::TooLarge)
    /// before anything is sent, as a cookie past 4096 bytes does. At least
    /// 1 KiB, checked by [`build`](Self::build).
    pub fn with_max_session_size(mut self, bytes: usize) -> Self {
        self.max_session_size = Some(bytes);
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
        self.max_expiry = Some(longest);
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
        self.save_on_server_error = save;
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
    /// rules are broken, `SameSite=None` without `Secure`, a zero duration
    /// or one over its bound ([`Settings::MAX_LIFETIME`],
    /// [`Settings::MAX_STORE_TIMEOUT`]), a `SESSION_SECRET` shorter than
    /// 32 bytes, a `SESSION_COOKIE_SECURE` other than `true`, `1`, `false`
    /// or `0` ([`ConfigError::SecureEnv`]), or no key at all:
    /// [`ConfigError::MissingSecret`] without a keyring, `SESSION_SECRET` or
    /// [`with_random_dev_key`](Self::with_random_dev_key).
    pub fn build(self) -> Result<Settings, ConfigError> {
        self.build_with_env(EnvValues::read())
    }

    /// [`build`](Self::build), with the environment's values passed in:
    /// tests pass them rather than change the environment, which every
    /// thread of the process shares.
    fn build_with_env(mut self, env: EnvValues) -> Result<Settings, ConfigError> {
        let secure_from = match self.secure {
            Some(secure) => {
                if env.cookie_secure.is_some() {
                    tracing::info!(
                        "{SECURE_ENV} is ignored: the application sets the cookie's Secure \
                         attribute itself with `with_secure`"
                    );
                }
                self.cookie.secure = secure;
                SecureFrom::Code
            }
            None => {
                self.cookie.secure = parse_secure_env(env.cookie_secure.as_deref())?;
                SecureFrom::Env
            }
        };
        validate_cookie(&self.cookie, secure_from)?;
        let idle_timeout = self.idle_timeout.unwrap_or(DEFAULT_IDLE);
        let absolute_lifetime = self.absolute_lifetime.unwrap_or(DEFAULT_ABSOLUTE);
        let store_timeout = self.store_timeout.unwrap_or(DEFAULT_STORE_TIMEOUT);
        if idle_timeout.as_secs() == 0 || absolute_lifetime.as_secs() == 0 {
            return Err(ConfigError::Duration(
                "idle timeout and absolute lifetime must be at least one second",
            ));
        }
        if idle_timeout > Settings::MAX_LIFETIME || absolute_lifetime > Settings::MAX_LIFETIME {
            return Err(ConfigError::Duration(
                "idle timeout and absolute lifetime must be at most 400 days \
                 (Settings::MAX_LIFETIME)",
            ));
        }
        if store_timeout.is_zero() {
            return Err(ConfigError::Duration("the store timeout must not be zero"));
        }
        if store_timeout > Settings::MAX_STORE_TIMEOUT {
            return Err(ConfigError::Duration(
                "the store timeout must be at most one hour (Settings::MAX_STORE_TIMEOUT)",
            ));
        }
        let max_expiry = self.max_expiry.unwrap_or(Settings::DEFAULT_MAX_EXPIRY);
        if max_expiry.as_secs() == 0 || max_expiry > Settings::MAX_LIFETIME {
            return Err(ConfigError::Duration(
                "the longest expiry a session may be given must be between one second \
                 and 400 days (Settings::MAX_LIFETIME)",
            ));
        }
        let max_session_size = self
            .max_session_size
            .unwrap_or(Settings::DEFAULT_MAX_SESSION_SIZE);
        if max_session_size < 1024 {
            return Err(ConfigError::Size(
                "the largest session size must be at least 1 KiB",
            ));
        }
        let refresh_fraction = self.refresh_fraction.unwrap_or(DEFAULT_REFRESH_FRACTION);
        if !(0.0..=1.0).contains(&refresh_fraction) {
            return Err(ConfigError::Duration(
                "the refresh fraction must be between 0 and 1",
            ));
        }
        let keyring = match self.keyring {
            Some(k) => k,
            None => match keyring_from_secret(env.secret) {
                Err(ConfigError::MissingSecret) if self.random_dev_key => random_dev_keyring()?,
                keyring => keyring?,
            },
        };
        if !self.cookie.secure {
            warn_not_secure(secure_from);
        }
        Ok(Settings {
            keyring: Arc::new(keyring),
            fixed_attributes: FixedAttributes::of(&self.cookie),
            cookie: self.cookie,
            idle_timeout,
            absolute_lifetime,
            refresh_fraction,
            flash_min_level: self.flash_min_level.unwrap_or(FlashLevel::Info),
            flash_capacity: self.flash_capacity.unwrap_or(DEFAULT_FLASH_CAPACITY).max(1),
            store_timeout,
            max_session_size,
            save_on_server_error: self.save_on_server_error,
            max_expiry,
        })
    }
}

/// The values [`SettingsBuilder::build`] reads from the environment.
struct EnvValues {
    /// `SESSION_SECRET`.
    secret: Option<std::ffi::OsString>,
    /// `SESSION_COOKIE_SECURE`.
    cookie_secure: Option<std::ffi::OsString>,
}

impl EnvValues {
    fn read() -> Self {
        Self {
            secret: std::env::var_os(SECRET_ENV),
            cookie_secure: std::env::var_os(SECURE_ENV),
        }
    }
}

/// Who decided the cookie's `Secure` attribute: the messages say what to
/// change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecureFrom {
    /// [`SettingsBuilder::with_secure`].
    Code,
    /// `SESSION_COOKIE_SECURE`, or its absence.
    Env,
}

/// `SESSION_COOKIE_SECURE`'s value as the `Secure` attribute. Only an
/// explicit `false` or `0` turns it off; a typo is refused rather than
/// read as either, since reading it as "off" would weaken the cookie and
/// reading it as "on" would leave a developer wondering why the cookie
/// never comes back over http.
fn parse_secure_env(value: Option<&std::ffi::OsStr>) -> Result<bool, ConfigError> {
    let Some(value) = value else {
        return Ok(true);
    };
    match value.to_str() {
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        _ => Err(ConfigError::SecureEnv {
            value: value.to_string_lossy().into_owned(),
        }),
    }
}

/// The one warning for a cookie without `Secure`, naming how to turn it
/// back on.
fn warn_not_secure(from: SecureFrom) {
    match from {
        SecureFrom::Env => tracing::warn!(
            "{SECURE_ENV} is false: session cookies are sent without Secure and travel over \
             plain http, where anyone on the network can read them. This is for local \
             development only; unset {SECURE_ENV} (or set it to true) to turn Secure back on"
        ),
        SecureFrom::Code => tracing::warn!(
            "`with_secure(false)`: session cookies are sent without Secure and travel over \
             plain http, where anyone on the network can read them. This is for local \
             development only; remove `with_secure(false)` to turn Secure back on"
        ),
    }
}

/// The keyring for `SESSION_SECRET`'s value; without one, no keyring: a
/// random key must be asked for ([`random_dev_keyring`]), never assumed.
fn keyring_from_secret(secret: Option<std::ffi::OsString>) -> Result<Keyring, ConfigError> {
    let secret = secret.ok_or(ConfigError::MissingSecret)?;
    let key = Key::from_bytes(&secret.into_encoded_bytes())
        .map_err(|e| ConfigError::Env(e.to_string()))?;
    Ok(Keyring::new(key)?)
}

/// A random key for [`SettingsBuilder::with_random_dev_key`], said out
/// loud.
fn random_dev_keyring() -> Result<Keyring, ConfigError> {
    tracing::warn!(
        "{SECRET_ENV} is not set: using a random development key, so every session ends when \
         this process stops and other instances cannot read its cookies"
    );
    Ok(Keyring::new(Key::generate()?)?)
}

/// RFC 6265 section 4.1.1: a cookie name is a token (RFC 2616 section 2.2).
fn is_token_char(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

fn validate_cookie(c: &CookieSettings, secure_from: SecureFrom) -> Result<(), ConfigError> {
    let refuse = |field, value: &str| ConfigError::CookieAttribute {
        field,
        value: value.to_owned(),
    };
    if c.name.is_empty() || !c.name.bytes().all(is_token_char) {
        return Err(refuse("name", &c.name));
    }
    // A path is any printable run without ';' (RFC 6265 section 4.1.1,
    // path-value); we also refuse spaces, quotes and backslashes, and ask
    // for a leading '/' so the browser does not substitute its default.
    let path_ok = c.path.starts_with('/')
        && c.path
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b";,\"\\".contains(&b));
    if !path_ok {
        return Err(refuse("path", &c.path));
    }
    if let Some(domain) = &c.domain {
        let domain_ok = !domain.is_empty()
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !domain_ok {
            return Err(refuse("domain", domain));
        }
    }
    let prefix = |rule| ConfigError::CookiePrefix {
        name: c.name.clone(),
        rule,
    };
    // Secure off by SESSION_COOKIE_SECURE: say which variable did it.
    let by_env = secure_from == SecureFrom::Env;
    if c.name.starts_with("__Host-") {
        if !c.secure {
            return Err(prefix(if by_env {
                "a __Host- cookie must be Secure, and SESSION_COOKIE_SECURE=false turns Secure off"
            } else {
                "a __Host- cookie must be Secure"
            }));
        }
        if c.path != "/" {
            return Err(prefix("a __Host- cookie must have Path=/"));
        }
        if c.domain.is_some() {
            return Err(prefix("a __Host- cookie must not have a Domain"));
        }
    }
    if c.name.starts_with("__Secure-") && !c.secure {
        return Err(prefix(if by_env {
            "a __Secure- cookie must be Secure, and SESSION_COOKIE_SECURE=false turns Secure off"
        } else {
            "a __Secure- cookie must be Secure"
        }));
    }
    if c.same_site == SameSite::None && !c.secure {
        return Err(prefix(if by_env {
            "SameSite=None needs Secure, and SESSION_COOKIE_SECURE=false turns Secure off"
        } else {
            "SameSite=None needs Secure"
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SettingsBuilder {
        Settings::builder().with_keyring(Keyring::new(Key::from_bytes(&[1; 32]).unwrap()).unwrap())
    }

    /// An environment with neither variable set.
    fn no_env() -> EnvValues {
        EnvValues {
            secret: None,
            cookie_secure: None,
        }
    }

    fn secret_env(secret: Option<std::ffi::OsString>) -> EnvValues {
        EnvValues {
            secret,
            cookie_secure: None,
        }
    }

    fn secure_env(value: &str) -> EnvValues {
        EnvValues {
            secret: None,
            cookie_secure: Some(value.into()),
        }
    }

    #[test]
    fn defaults_are_the_safe_ones() {
        let s = base().build_with_env(no_env()).unwrap();
        let c = s.cookie();
        assert_eq!((c.name.as_str(), c.path.as_str()), ("session", "/"));
        assert!(c.secure && c.http_only && c.domain.is_none());
        assert_eq!(c.same_site, SameSite::Lax);
    }

    #[test]
    fn bad_names_paths_and_domains_are_refused() {
        for name in [
            "", "a;b", "a=b", "a b", "a\tb", "a\u{7f}", "é", "a,b", "a\"b",
        ] {
            let e = base().with_cookie_name(name).build().unwrap_err();
            assert!(
                matches!(e, ConfigError::CookieAttribute { field: "name", .. }),
                "{name:?}"
            );
        }
        for path in ["", "a", "/a;b", "/a b", "/\n", "/a\u{0}"] {
            let e = base().with_cookie_path(path).build().unwrap_err();
            assert!(
                matches!(e, ConfigError::CookieAttribute { field: "path", .. }),
                "{path:?}"
            );
        }
        for domain in ["", "a;b", "a=b", "a b", "ex\rample.com"] {
            let e = base().with_cookie_domain(domain).build().unwrap_err();
            assert!(
                matches!(
                    e,
                    ConfigError::CookieAttribute {
                        field: "domain",
                        ..
                    }
                ),
                "{domain:?}"
            );
        }
        assert!(base().with_cookie_domain("example.com").build().is_ok());
        assert!(base().with_cookie_path("/app/v1").build().is_ok());
    }

    #[test]
    fn host_prefix_rules_are_checked() {
        assert!(base().with_cookie_name("__Host-s").build().is_ok());
        for b in [
            base().with_cookie_name("__Host-s").with_secure(false),
            base().with_cookie_name("__Host-s").with_cookie_path("/a"),
            base()
                .with_cookie_name("__Host-s")
                .with_cookie_domain("example.com"),
            base().with_cookie_name("__Secure-s").with_secure(false),
            base().with_same_site(SameSite::None).with_secure(false),
        ] {
            assert!(matches!(b.build(), Err(ConfigError::CookiePrefix { .. })));
        }
    }

    #[test]
    fn secret_from_env_is_checked() {
        let short = keyring_from_secret(Some("too short".into()));
        assert!(matches!(short, Err(ConfigError::Env(msg)) if msg.contains("at least 32")));
        let a = keyring_from_secret(Some("x".repeat(32).into())).unwrap();
        let b = keyring_from_secret(Some("x".repeat(32).into())).unwrap();
        assert_eq!(a.current().id(), b.current().id(), "same secret, same keys");
    }

    #[test]
    fn out_of_range_durations_are_refused_at_build() {
        for (what, b) in [
            ("store timeout", base().with_store_timeout(Duration::MAX)),
            ("idle timeout", base().with_idle_timeout(Duration::MAX)),
            (
                "absolute lifetime",
                base().with_absolute_lifetime(Duration::MAX),
            ),
        ] {
            assert!(
                matches!(b.build(), Err(ConfigError::Duration(_))),
                "{what} of Duration::MAX was accepted"
            );
        }
    }

    #[test]
    fn the_bounds_are_inclusive_and_keep_the_arithmetic_in_range() {
        let one_more = Duration::from_secs(1);
        for b in [
            base().with_store_timeout(Settings::MAX_STORE_TIMEOUT + one_more),
            base().with_idle_timeout(Settings::MAX_LIFETIME + one_more),
            base().with_absolute_lifetime(Settings::MAX_LIFETIME + one_more),
        ] {
            assert!(matches!(b.build(), Err(ConfigError::Duration(_))));
        }
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

    #[test]
    fn a_missing_secret_is_refused_with_how_to_set_one() {
        let err = Settings::builder().build_with_env(no_env()).unwrap_err();
        assert!(matches!(err, ConfigError::MissingSecret), "{err:?}");
        let message = err.to_string();
        for hint in [
            "SESSION_SECRET",
            "at least 32 random bytes",
            "openssl rand -base64 48",
            "with_keyring",
            "with_random_dev_key",
        ] {
            assert!(message.contains(hint), "{hint:?} missing from {message:?}");
        }
        assert!(matches!(
            keyring_from_secret(None),
            Err(ConfigError::MissingSecret)
        ));
    }

    #[test]
    fn a_random_dev_key_is_made_only_when_asked_and_nothing_else_is_set() {
        let dev = || Settings::builder().with_random_dev_key();
        let r1 = dev().build_with_env(no_env()).unwrap();
        let r2 = dev().build_with_env(no_env()).unwrap();
        assert_ne!(
            r1.keyring().current().id(),
            r2.keyring().current().id(),
            "a random key each time"
        );
        // SESSION_SECRET, then a keyring, come first.
        let secret = || Some("s".repeat(32).into());
        let from_env = keyring_from_secret(secret()).unwrap();
        let with_env = dev().build_with_env(secret_env(secret())).unwrap();
        assert_eq!(with_env.keyring().current().id(), from_env.current().id());
        let fixed = Keyring::new(Key::from_bytes(&[1; 32]).unwrap()).unwrap();
        let fixed_id = fixed.current().id();
        let with_keyring = dev()
            .with_keyring(fixed)
            .build_with_env(secret_env(secret()))
            .unwrap();
        assert_eq!(with_keyring.keyring().current().id(), fixed_id);
        // A bad SESSION_SECRET is still refused, dev key or not.
        let short = dev().build_with_env(secret_env(Some("short".into())));
        assert!(matches!(short, Err(ConfigError::Env(_))));
    }

    #[test]
    fn zero_durations_are_refused() {
        assert!(base().with_idle_timeout(Duration::ZERO).build().is_err());
        assert!(base().with_store_timeout(Duration::ZERO).build().is_err());
        assert!(base().with_refresh_fraction(1.5).build().is_err());
    }

    #[test]
    fn the_session_size_bound_has_a_floor_and_a_default() {
        let s = base().build().unwrap();
        assert_eq!(s.max_session_size(), Settings::DEFAULT_MAX_SESSION_SIZE);
        assert!(matches!(
            base().with_max_session_size(1023).build(),
            Err(ConfigError::Size(_))
        ));
        let s = base().with_max_session_size(1024).build().unwrap();
        assert_eq!(s.max_session_size(), 1024);
    }

    #[test]
    fn secure_env_values_are_parsed_strictly() {
        assert!(parse_secure_env(None).unwrap(), "unset keeps Secure on");
        for on in ["true", "1"] {
            assert!(parse_secure_env(Some(on.as_ref())).unwrap(), "{on:?}");
        }
        for off in ["false", "0"] {
            assert!(!parse_secure_env(Some(off.as_ref())).unwrap(), "{off:?}");
        }
        for bad in [
            "", "no", "off", "False", "TRUE", " false", "false ", "00", "yes", "2",
        ] {
            let err = parse_secure_env(Some(bad.as_ref())).unwrap_err();
            assert!(
                matches!(&err, ConfigError::SecureEnv { value } if value == bad),
                "{bad:?}: {err:?}"
            );
            let message = err.to_string();
            for hint in ["SESSION_COOKIE_SECURE", "`false`", "`0`", "`true`", "`1`"] {
                assert!(message.contains(hint), "{hint:?} missing from {message:?}");
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let not_utf8 = std::ffi::OsStr::from_bytes(b"f\xffalse");
            assert!(matches!(
                parse_secure_env(Some(not_utf8)),
                Err(ConfigError::SecureEnv { .. })
            ));
        }
    }

    #[test]
    fn the_environment_sets_secure_unless_the_code_does() {
        let secure = |b: SettingsBuilder, env| b.build_with_env(env).map(|s| s.cookie().secure);
        // The environment alone.
        assert!(secure(base(), no_env()).unwrap());
        assert!(secure(base(), secure_env("1")).unwrap());
        assert!(!secure(base(), secure_env("false")).unwrap());
        assert!(!secure(base(), secure_env("0")).unwrap());
        assert!(matches!(
            secure(base(), secure_env("maybe")),
            Err(ConfigError::SecureEnv { .. })
        ));
        // `with_secure` wins either way, and a bad value is then not read.
        for env in ["false", "0", "true", "maybe"] {
            assert!(secure(base().with_secure(true), secure_env(env)).unwrap());
            assert!(!secure(base().with_secure(false), secure_env(env)).unwrap());
        }
        assert!(!secure(base().with_secure(false), no_env()).unwrap());
        // The last call counts.
        let b = base().with_secure(false).with_secure(true);
        assert!(secure(b, secure_env("false")).unwrap());
    }

    #[test]
    fn secure_off_by_the_environment_still_obeys_the_cookie_rules() {
        for (b, rule) in [
            (base().with_cookie_name("__Host-s"), "__Host-"),
            (base().with_cookie_name("__Secure-s"), "__Secure-"),
            (base().with_same_site(SameSite::None), "SameSite=None"),
        ] {
            let err = b.build_with_env(secure_env("false")).unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(err, ConfigError::CookiePrefix { .. }),
                "{rule}: {err:?}"
            );
            assert!(
                message.contains(rule) && message.contains("SESSION_COOKIE_SECURE=false"),
                "{message:?}"
            );
        }
        // Secure from the environment's "true" satisfies them.
        let host = base()
            .with_cookie_name("__Host-s")
            .with_same_site(SameSite::None);
        assert!(host.build_with_env(secure_env("true")).is_ok());
    }

    /// The warnings logged on this thread while `f` runs.
    fn warnings_during(f: impl FnOnce()) -> Vec<String> {
        use std::sync::Mutex;
        use tracing::field::{Field, Visit};
        use tracing::span::{Attributes, Id, Record};
        use tracing::{Event, Level, Metadata, Subscriber};

        #[derive(Default)]
        struct Warnings(Mutex<Vec<String>>);
        struct Message<'a>(&'a mut String);
        impl Visit for Message<'_> {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    *self.0 = format!("{value:?}");
                }
            }
        }
        impl Subscriber for Warnings {
            fn enabled(&self, _: &Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &Attributes<'_>) -> Id {
                Id::from_u64(1)
            }
            fn record(&self, _: &Id, _: &Record<'_>) {}
            fn record_follows_from(&self, _: &Id, _: &Id) {}
            fn event(&self, event: &Event<'_>) {
                if *event.metadata().level() == Level::WARN {
                    let mut message = String::new();
                    event.record(&mut Message(&mut message));
                    self.0.lock().unwrap().push(message);
                }
            }
            fn enter(&self, _: &Id) {}
            fn exit(&self, _: &Id) {}
        }

        let warnings = std::sync::Arc::new(Warnings::default());
        tracing::subscriber::with_default(warnings.clone(), f);
        warnings.0.lock().unwrap().clone()
    }

    #[test]
    fn secure_off_is_warned_about_once_with_the_way_back() {
        let by_env = warnings_during(|| {
            base().build_with_env(secure_env("false")).unwrap();
        });
        assert_eq!(by_env.len(), 1, "{by_env:?}");
        for hint in [
            "plain http",
            "local development only",
            "unset SESSION_COOKIE_SECURE",
        ] {
            assert!(by_env[0].contains(hint), "{hint:?} missing from {by_env:?}");
        }
        let by_code = warnings_during(|| {
            base().with_secure(false).build_with_env(no_env()).unwrap();
        });
        assert_eq!(by_code.len(), 1, "{by_code:?}");
        for hint in [
            "plain http",
            "local development only",
            "remove `with_secure(false)`",
        ] {
            assert!(
                by_code[0].contains(hint),
                "{hint:?} missing from {by_code:?}"
            );
        }
        // Secure on: nothing to say. Refused: the error says it instead.
        let none = warnings_during(|| {
            base().build_with_env(no_env()).unwrap();
            base().build_with_env(secure_env("1")).unwrap();
            base()
                .with_secure(true)
                .build_with_env(secure_env("false"))
                .unwrap();
            base()
                .with_same_site(SameSite::None)
                .build_with_env(secure_env("false"))
                .unwrap_err();
        });
        assert!(none.is_empty(), "{none:?}");
    }
}
