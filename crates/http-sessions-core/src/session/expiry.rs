//! A session's own [`Expiry`]: the settings' lifetimes, a browser session,
//! or lifetimes of its own ("remember me"), kept with the session so that
//! every later request, and the store, apply the same.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long one session lives, set by
/// [`Session::set_expiry`](crate::Session::set_expiry).
///
/// Its lifetimes are bounded by the settings' maximum
/// ([`Settings::max_expiry`](crate::Settings::max_expiry)), so no handler
/// can make a session immortal.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use http_sessions_core::{Expiry, Session};
///
/// const DAY: Duration = Duration::from_secs(24 * 60 * 60);
///
/// let session = Session::detached();
/// // "Remember me": idle for up to 30 days, and 90 days at most.
/// session.set_expiry(Expiry::Lifetimes { idle: 30 * DAY, absolute: 90 * DAY });
/// assert_eq!(session.expiry(), Expiry::Lifetimes { idle: 30 * DAY, absolute: 90 * DAY });
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Expiry {
    /// The settings' idle timeout and absolute lifetime; the cookie lives
    /// until the absolute deadline.
    #[default]
    Default,
    /// The settings' lifetimes on the server, and a cookie without
    /// `Max-Age`, which the browser forgets when it closes.
    BrowserSession,
    /// An idle timeout and an absolute lifetime of the session's own, each
    /// at most the settings' maximum; the cookie lives until the absolute
    /// deadline.
    Lifetimes {
        /// The session ends this long after the last request that saw it.
        idle: Duration,
        /// The session ends this long after it was created (or renewed
        /// with [`renew_on_login`](crate::Session::renew_on_login)).
        absolute: Duration,
    },
}

impl Expiry {
    /// The form stores keep it in: `None` for [`Expiry::Default`] (nothing
    /// to keep), `browser`, or `<idle>/<absolute>` in whole seconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use http_sessions_core::Expiry;
    ///
    /// let remember = Expiry::Lifetimes {
    ///     idle: Duration::from_secs(600),
    ///     absolute: Duration::from_secs(3600),
    /// };
    /// assert_eq!(remember.encode().as_deref(), Some("600/3600"));
    /// assert_eq!(Expiry::decode("600/3600"), Some(remember));
    /// assert_eq!(Expiry::Default.encode(), None);
    /// ```
    pub fn encode(self) -> Option<String> {
        match self {
            Expiry::Default => None,
            Expiry::BrowserSession => Some("browser".to_owned()),
            Expiry::Lifetimes { idle, absolute } => {
                Some(format!("{}/{}", idle.as_secs(), absolute.as_secs()))
            }
        }
    }

    /// The length of what [`encode`](Self::encode) writes, without writing
    /// it; 0 for the default.
    pub fn encoded_len(self) -> usize {
        fn digits(n: u64) -> usize {
            n.checked_ilog10().map_or(1, |d| d as usize + 1)
        }
        match self {
            Expiry::Default => 0,
            Expiry::BrowserSession => "browser".len(),
            Expiry::Lifetimes { idle, absolute } => {
                digits(idle.as_secs()) + 1 + digits(absolute.as_secs())
            }
        }
    }

    /// The expiry [`encode`](Self::encode) wrote; `None` for anything
    /// else.
    pub fn decode(text: &str) -> Option<Self> {
        if text == "browser" {
            return Some(Expiry::BrowserSession);
        }
        let (idle, absolute) = text.split_once('/')?;
        Some(Expiry::Lifetimes {
            idle: Duration::from_secs(idle.parse().ok()?),
            absolute: Duration::from_secs(absolute.parse().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_expiry_round_trips_and_garbage_does_not_decode() {
        for expiry in [
            Expiry::BrowserSession,
            Expiry::Lifetimes {
                idle: Duration::from_secs(1),
                absolute: Duration::from_secs(u64::MAX),
            },
        ] {
            assert_eq!(Expiry::decode(&expiry.encode().unwrap()), Some(expiry));
        }
        for garbage in ["", "browse", "1/", "/1", "a/b", "1/2/3", "-1/5"] {
            assert_eq!(Expiry::decode(garbage), None, "{garbage}");
        }
    }
}
