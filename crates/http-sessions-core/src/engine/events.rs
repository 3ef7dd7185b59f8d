//! Lifecycle events: what happened to a session, told once the store has
//! confirmed it, to the application's [`SessionEvents`] hook or, without
//! one, to `tracing` at INFO under [`EVENTS_TARGET`]. An event names its
//! session by a [`SessionTag`], a keyed hash of the id: logs and monitoring
//! can follow a session without holding anything that opens it.

use std::fmt;
use std::sync::Arc;

use ring::hmac;

use crate::config::keys::Keyring;
use crate::session::id::SessionId;
use crate::session::record::Record;

/// The `tracing` target of the events sent when no hook is installed, at
/// INFO: `RUST_LOG=http_sessions::events=info` shows them alone.
pub const EVENTS_TARGET: &str = "http_sessions::events";

/// What the [`HKDF`](crate::keys::TrustedKey::sub_key) purpose of the tag
/// key is called; no other key shares it.
const TAG_PURPOSE: &[u8] = b"http-sessions event tag";

/// Bytes of HMAC-SHA256 a tag keeps: 128 bits, as unguessable as an id.
const TAG_LEN: usize = 16;

/// Which deadline ended a session found expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// It went unused for its idle timeout.
    Idle,
    /// It reached its absolute lifetime.
    Absolute,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A new session was stored.
    Created,
    /// A session was renewed at login
    /// ([`Session::renew_on_login`](crate::Session::renew_on_login)): the
    /// tag is the new id's.
    LoggedIn,
    /// A session moved to a new id
    /// ([`Session::renew`](crate::Session::renew)): the tag is the new id's.
    Renewed,
    /// A session was ended by its request
    /// ([`Session::destroy`](crate::Session::destroy)), or emptied.
    Destroyed,
    /// A session was ended through
    /// [`UserSessions::end`](crate::UserSessions::end).
    Ended,
    /// A user's sessions were ended through
    /// [`UserSessions::end_all`](crate::UserSessions::end_all); no tag,
    /// the count of sessions ended.
    EndedAll {
        /// How many sessions ended.
        sessions: usize,
    },
    /// A session ended because its user went past the most sessions one
    /// user may have ([`SettingsBuilder::with_max_sessions_per_user`](crate::SettingsBuilder::with_max_sessions_per_user)):
    /// it was the least recently used.
    EndedOverCap,
    /// A cookie named a session that had expired.
    Expired(Deadline),
    /// A [`SessionCheck`](crate::SessionCheck) refused the session; it is
    /// ended.
    Refused,
    /// A request carried session cookies that failed to verify (a forged,
    /// tampered or foreign value, or one signed by a key no longer
    /// trusted); no tag. Counted so that guessing can be seen.
    CookiesRejected {
        /// How many of the request's cookies failed.
        count: usize,
    },
}

impl EventKind {
    /// A short stable name: the `event` field of the `tracing` events.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::LoggedIn => "logged_in",
            EventKind::Renewed => "renewed",
            EventKind::Destroyed => "destroyed",
            EventKind::Ended => "ended",
            EventKind::EndedAll { .. } => "ended_all",
            EventKind::EndedOverCap => "ended_over_cap",
            EventKind::Expired(Deadline::Idle) => "expired_idle",
            EventKind::Expired(Deadline::Absolute) => "expired_absolute",
            EventKind::Refused => "refused",
            EventKind::CookiesRejected { .. } => "cookies_rejected",
        }
    }
}

/// A keyed hash of a session id (HMAC-SHA256 under a key derived from the
/// current key, 128 bits, in hex): the same session gives the same tag, and
/// the tag gives nothing that loads the session. Tags change when the
/// current key does.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionTag([u8; TAG_LEN]);

impl fmt::Display for SessionTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for SessionTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionTag({self})")
    }
}

/// One lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionEvent<'a> {
    /// What happened.
    pub kind: EventKind,
    /// The session's tag, when the event is about one session.
    pub session: Option<SessionTag>,
    /// The user the session is bound to, if any.
    pub user: Option<&'a str>,
    /// The session's label, if any.
    pub label: Option<&'a str>,
}

/// The application's hook for lifecycle events
/// ([`SessionLayer::with_events`](crate::SessionLayer::with_events)):
/// called on the request's task once the store has confirmed what the
/// event says, so keep it quick (send to a channel to do more). With a
/// hook, the events are not also sent to `tracing`.
///
/// # Examples
///
/// ```
/// use http_sessions_core::events::{EventKind, SessionEvent, SessionEvents};
///
/// #[derive(Debug)]
/// struct Audit;
///
/// impl SessionEvents for Audit {
///     fn event(&self, event: &SessionEvent<'_>) {
///         if let EventKind::CookiesRejected { count } = event.kind {
///             eprintln!("{count} forged session cookies");
///         }
///     }
/// }
/// ```
pub trait SessionEvents: Send + Sync + fmt::Debug + 'static {
    /// Takes one event.
    fn event(&self, event: &SessionEvent<'_>);
}

/// Where a manager sends its events, and the key of their tags.
#[derive(Clone)]
pub(crate) struct Events {
    hook: Option<Arc<dyn SessionEvents>>,
    tag_key: Option<Arc<hmac::Key>>,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("hook", &self.hook)
            .finish_non_exhaustive()
    }
}

impl Events {
    /// Events to `tracing`, tagged under `keys`' current key. A key that
    /// cannot be derived (HKDF refuses only lengths it is never asked)
    /// leaves events untagged rather than failing the layer.
    pub(crate) fn new(keys: &Keyring) -> Self {
        let tag_key = keys
            .current()
            .sub_key(TAG_PURPOSE)
            .ok()
            .map(|k| Arc::new(hmac::Key::new(hmac::HMAC_SHA256, k.as_bytes())));
        Self {
            hook: None,
            tag_key,
        }
    }

    pub(crate) fn with_hook(mut self, hook: Arc<dyn SessionEvents>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Whether anyone takes events: checked before an event is built, so
    /// that without a hook or an INFO subscriber they cost one check.
    #[inline]
    pub(crate) fn wanted(&self) -> bool {
        self.hook.is_some() || tracing::enabled!(target: EVENTS_TARGET, tracing::Level::INFO)
    }

    /// The tag of `id`.
    pub(crate) fn tag(&self, id: &SessionId) -> Option<SessionTag> {
        let key = self.tag_key.as_deref()?;
        let mac = hmac::sign(key, id.as_bytes());
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(mac.as_ref().get(..TAG_LEN)?);
        Some(SessionTag(tag))
    }

    /// Sends `kind` about the session under `id` (if one) holding `record`
    /// (for its user and label), if anyone takes events.
    pub(crate) fn send(&self, kind: EventKind, id: Option<&SessionId>, record: &Record) {
        self.send_parts(kind, id, record.user.as_deref(), record.label.as_deref());
    }

    /// Sends `kind` about the session under `id`, of `user`, labelled
    /// `label`; no session, user or label for an event about none.
    pub(crate) fn send_parts(
        &self,
        kind: EventKind,
        id: Option<&SessionId>,
        user: Option<&str>,
        label: Option<&str>,
    ) {
        if !self.wanted() {
            return;
        }
        self.deliver(&SessionEvent {
            kind,
            session: id.and_then(|id| self.tag(id)),
            user,
            label,
        });
    }

    fn deliver(&self, event: &SessionEvent<'_>) {
        if let Some(hook) = &self.hook {
            hook.event(event);
            return;
        }
        let count = match event.kind {
            EventKind::EndedAll { sessions } => Some(sessions),
            EventKind::CookiesRejected { count } => Some(count),
            _ => None,
        };
        tracing::info!(
            target: EVENTS_TARGET,
            event = event.kind.as_str(),
            session = event.session.map(tracing::field::display),
            user = event.user,
            label = event.label,
            count,
            "session {}",
            event.kind.as_str(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keys::Key;

    fn keys(byte: u8) -> Keyring {
        Keyring::new(Key::from_bytes(&[byte; 32]).unwrap()).unwrap()
    }

    #[test]
    fn a_tag_is_stable_per_key_and_holds_nothing_of_the_id() {
        let id = SessionId::from_bytes([7; crate::session::id::ID_LEN]);
        let events = Events::new(&keys(1));
        let tag = events.tag(&id).unwrap();
        assert_eq!(events.tag(&id), Some(tag));
        assert_ne!(Events::new(&keys(2)).tag(&id), Some(tag));
        let shown = tag.to_string();
        assert_eq!(shown.len(), 2 * TAG_LEN);
        assert!(!shown.contains(&id.to_base64()));
        assert!(!shown.contains(&"07".repeat(4)));
    }
}
