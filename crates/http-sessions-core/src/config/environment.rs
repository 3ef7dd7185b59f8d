//! What the environment decides: the key from `SESSION_SECRET`, the
//! cookie's `Secure` attribute from `SESSION_COOKIE_SECURE`, and the
//! random development key asked for with
//! [`with_random_dev_key`](crate::SettingsBuilder::with_random_dev_key).

use std::ffi::{OsStr, OsString};

use crate::config::error::ConfigError;
use crate::config::keys::{Key, Keyring};

/// The environment variable holding the secret key (its raw bytes).
pub(crate) const SECRET_ENV: &str = "SESSION_SECRET";

/// The environment variable that turns the cookie's `Secure` attribute off
/// for local development over plain http: `false` or `0` turn it off;
/// `true`, `1` or unset keep it on; anything else is refused. Read by
/// [`Settings::from_env`](crate::Settings::from_env) and [`SettingsBuilder::build`](crate::SettingsBuilder::build) unless the code
/// calls [`SettingsBuilder::with_secure`](crate::SettingsBuilder::with_secure).
pub(crate) const SECURE_ENV: &str = "SESSION_COOKIE_SECURE";

/// The values [`SettingsBuilder::build`](crate::SettingsBuilder::build) reads from the environment.
pub(super) struct EnvValues {
    /// `SESSION_SECRET`.
    pub(super) secret: Option<OsString>,
    /// `SESSION_COOKIE_SECURE`.
    pub(super) cookie_secure: Option<OsString>,
}

impl EnvValues {
    pub(super) fn read() -> Self {
        Self {
            secret: std::env::var_os(SECRET_ENV),
            cookie_secure: std::env::var_os(SECURE_ENV),
        }
    }
}

/// Who decided the cookie's `Secure` attribute: the messages say what to
/// change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SecureFrom {
    /// [`SettingsBuilder::with_secure`](crate::SettingsBuilder::with_secure).
    Code,
    /// `SESSION_COOKIE_SECURE`, or its absence.
    Env,
}

/// The cookie's `Secure` attribute: the code's word if it gave one
/// (`SESSION_COOKIE_SECURE` is then only noted as ignored), else the
/// environment's; and who decided it.
pub(super) fn secure(
    code: Option<bool>,
    env: Option<&OsStr>,
) -> Result<(bool, SecureFrom), ConfigError> {
    match code {
        Some(secure) => {
            if env.is_some() {
                tracing::info!(
                    "{SECURE_ENV} is ignored: the application sets the cookie's Secure \
                     attribute itself with `with_secure`"
                );
            }
            Ok((secure, SecureFrom::Code))
        }
        None => Ok((parse_secure_env(env)?, SecureFrom::Env)),
    }
}

/// `SESSION_COOKIE_SECURE`'s value as the `Secure` attribute. Only an
/// explicit `false` or `0` turns it off; a typo is refused rather than
/// read as either, since reading it as "off" would weaken the cookie and
/// reading it as "on" would leave a developer wondering why the cookie
/// never comes back over http.
fn parse_secure_env(value: Option<&OsStr>) -> Result<bool, ConfigError> {
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
pub(super) fn warn_not_secure(from: SecureFrom) {
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

/// The keyring: the one given, else `SESSION_SECRET`'s, else, only if
/// asked for, a random one.
pub(super) fn keyring(
    given: Option<Keyring>,
    random_dev_key: bool,
    secret: Option<OsString>,
) -> Result<Keyring, ConfigError> {
    match given {
        Some(keyring) => Ok(keyring),
        None => match keyring_from_secret(secret) {
            Err(ConfigError::MissingSecret) if random_dev_key => random_dev_keyring(),
            keyring => keyring,
        },
    }
}

/// The keyring for `SESSION_SECRET`'s value; without one, no keyring: a
/// random key must be asked for ([`random_dev_keyring`]), never assumed.
fn keyring_from_secret(secret: Option<OsString>) -> Result<Keyring, ConfigError> {
    let secret = secret.ok_or(ConfigError::MissingSecret)?;
    let key = Key::from_bytes(&secret.into_encoded_bytes())
        .map_err(|e| ConfigError::Env(e.to_string()))?;
    Ok(Keyring::new(key)?)
}

/// A random key for [`SettingsBuilder::with_random_dev_key`](crate::SettingsBuilder::with_random_dev_key), said out
/// loud.
fn random_dev_keyring() -> Result<Keyring, ConfigError> {
    tracing::warn!(
        "{SECRET_ENV} is not set: using a random development key, so every session ends when \
         this process stops and other instances cannot read its cookies"
    );
    Ok(Keyring::new(Key::generate()?)?)
}

#[cfg(test)]
#[path = "environment_tests.rs"]
mod tests;
