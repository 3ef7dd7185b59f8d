//! The session cookie's attributes: [`CookieSettings`], [`SameSite`], the
//! builder methods that set them, and the checks of RFC 6265 and its
//! prefixes run when the settings are built.

use crate::config::environment::SecureFrom;
use crate::config::error::ConfigError;
use crate::config::settings::{Settings, SettingsBuilder};

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
    pub(super) fn of(cookie: &CookieSettings) -> Self {
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

impl Settings {
    /// The cookie's attributes.
    pub fn cookie(&self) -> &CookieSettings {
        &self.cookie
    }

    /// The cookie's attributes as `Set-Cookie` writes them.
    pub(crate) fn fixed_attributes(&self) -> &FixedAttributes {
        &self.fixed_attributes
    }
}

impl SettingsBuilder {
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
}

/// RFC 6265 section 4.1.1: a cookie name is a token (RFC 2616 section 2.2).
fn is_token_char(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

/// Refuses a name, path or domain a cookie cannot carry, and a prefix
/// whose rules the other attributes break; `secure_from` says who turned
/// `Secure` off, so the message names what to change.
pub(super) fn check(c: &CookieSettings, secure_from: SecureFrom) -> Result<(), ConfigError> {
    check_characters(c)?;
    check_prefix_rules(c, secure_from == SecureFrom::Env)
}

fn check_characters(c: &CookieSettings) -> Result<(), ConfigError> {
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
    Ok(())
}

/// RFC 6265bis section 4.1.3, and `SameSite=None`'s need of `Secure`;
/// `by_env`: `Secure` was turned off by `SESSION_COOKIE_SECURE`.
fn check_prefix_rules(c: &CookieSettings, by_env: bool) -> Result<(), ConfigError> {
    let prefix = |rule| ConfigError::CookiePrefix {
        name: c.name.clone(),
        rule,
    };
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
    use crate::config::error::ConfigError;
    use crate::config::settings::tests::base;

    use super::*;

    #[test]
    fn defaults_are_the_safe_ones() {
        let s = base().build().unwrap();
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
    fn the_fixed_attributes_are_written_once_from_the_cookie() {
        let s = base()
            .with_cookie_name("sid")
            .with_cookie_domain("example.com")
            .with_same_site(SameSite::Strict)
            .with_http_only(false)
            .build()
            .unwrap();
        let fixed = s.fixed_attributes();
        assert_eq!(fixed.head, "sid=");
        assert_eq!(fixed.scope, "; Path=/; Domain=example.com");
        assert_eq!(fixed.flags, "; Secure; SameSite=Strict");
    }
}
