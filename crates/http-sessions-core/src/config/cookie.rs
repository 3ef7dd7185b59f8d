//! The session cookie's attributes: [`CookieSettings`], [`SameSite`], and
//! the checks of RFC 6265 and its
//! prefixes run when the settings are built.

use crate::config::environment::SecureFrom;
use crate::config::error::ConfigError;

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

/// The cookie name's base, which the default name prefixes.
pub(crate) const BASE_NAME: &str = "session";

/// The attributes of the session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    /// Cookie name; by default `__Host-session` when the cookie is
    /// `Secure`, its path `/` and no domain is set, `__Secure-session`
    /// when it is `Secure` otherwise, and `session` without `Secure`.
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
            name: BASE_NAME.to_owned(),
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

impl CookieSettings {
    /// The name the cookie gets when none is given: the strictest prefix
    /// its attributes allow (RFC 6265bis section 4.1.3; OWASP ASVS 3.3.1
    /// and 3.3.3), so that no other host or plain-http page can set it.
    pub(crate) fn default_name(&self) -> String {
        match (self.secure, self.path == "/" && self.domain.is_none()) {
            (true, true) => format!("__Host-{BASE_NAME}"),
            (true, false) => format!("__Secure-{BASE_NAME}"),
            (false, _) => BASE_NAME.to_owned(),
        }
    }

    /// The `Set-Cookie` value that removes a cookie called `name` with
    /// these attributes: for a name the session cookie no longer has.
    pub(crate) fn removal(&self, name: &str) -> String {
        let attributes = FixedAttributes::of(self);
        format!(
            "{name}={}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT{}",
            attributes.scope, attributes.flags
        )
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

pub(super) fn check_characters(c: &CookieSettings) -> Result<(), ConfigError> {
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
#[path = "cookie_tests.rs"]
mod tests;
