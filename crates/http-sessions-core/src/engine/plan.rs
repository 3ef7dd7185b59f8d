//! The commit plan: what a finished request does with its session, decided
//! by one pure function from the session's state, the time and the
//! lifetimes, so every case can be tested without a store. The manager
//! then executes the plan.

use std::time::Duration;

use crate::session::expiry::Expiry;
use crate::session::time::UnixTime;
use crate::session::{Lifecycle, Origin, State};

/// What the store is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// No store call.
    Nothing,
    /// Store the session under a new id.
    Create,
    /// Apply the changes (and the new expiry) to the stored session.
    Update,
    /// Store the session under a new id, then retire the old one.
    Renew,
    /// Delete the stored session.
    Delete,
    /// Delete the stored session, then store the values set after
    /// `destroy()` as a new one.
    Replace,
    /// Nothing may be saved: the session was renewed by another request.
    Refuse,
}

/// What the response does with the cookie once the action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CookiePlan {
    /// Leave it.
    Keep,
    /// Send the cookie of the session as now stored: a new id's token, a
    /// token issued again under the current key, or a resealed cookie.
    Send,
    /// Expire it.
    Remove,
    /// Expire it if the update left the session empty (a concurrent
    /// request may have set a value meanwhile); else leave it.
    RemoveIfEmptied,
}

/// The decision for one commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) action: Action,
    pub(crate) cookie: CookiePlan,
    /// The start of the absolute lifetime of the session as stored.
    pub(crate) created: UnixTime,
    /// Its expiry as stored: the earlier of the idle and the absolute
    /// deadline.
    pub(crate) expires: UnixTime,
}

/// The lifetimes a plan applies: the settings', or a session's own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    pub(crate) idle: Duration,
    pub(crate) absolute: Duration,
    /// The share of the idle timeout the idle deadline must move by before
    /// a request that changed nothing writes the move.
    pub(crate) refresh_fraction: f64,
    /// The longest lifetime a session's own expiry may ask for.
    pub(crate) max: Duration,
    /// Whether the cookie has a `Max-Age` (not a browser session's).
    pub(crate) persistent: bool,
}

impl Lifetimes {
    /// The lifetimes of a session whose expiry is `expiry`: its own, each
    /// cut to the maximum, or these.
    pub(crate) fn of(&self, expiry: Expiry) -> Self {
        match expiry {
            Expiry::Default => *self,
            Expiry::BrowserSession => Self {
                persistent: false,
                ..*self
            },
            Expiry::Lifetimes { idle, absolute } => {
                let idle = idle.clamp(Duration::from_secs(1), self.max);
                Self {
                    idle,
                    absolute: absolute.clamp(Duration::from_secs(1), self.max),
                    ..*self
                }
            }
        }
    }

    /// How far the idle deadline must move before a request that changed
    /// nothing writes the move.
    pub(crate) fn refresh_after(&self) -> Duration {
        self.idle.mul_f64(self.refresh_fraction)
    }

    /// The expiry of a session created at `created` and active at `now`.
    pub(crate) fn deadline(&self, created: UnixTime, now: UnixTime) -> UnixTime {
        (now + self.idle).min(created + self.absolute)
    }

    /// The cookie's `Max-Age` for a session created at `created`: until
    /// its absolute deadline, or none for a browser session. Idle expiry
    /// is the server's alone.
    pub(crate) fn max_age(&self, created: UnixTime, now: UnixTime) -> Option<Duration> {
        self.persistent
            .then(|| (created + self.absolute).saturating_since(now))
    }
}

/// Whether the backend can send a cookie without a store write: a
/// server-side store's token names an id and can be issued again on its
/// own; a cookie backend's value holds the expiry and must be resealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Server,
    Cookie,
}

/// Decides what the request does with its session.
pub(crate) fn plan(state: &State, now: UnixTime, life: &Lifetimes, kind: Kind) -> Plan {
    let record = &state.record;
    let life = &life.of(record.expiry);
    let wrote = !state.changes.is_empty();
    let has_values = !record.is_empty();
    let new_session = Plan {
        action: Action::Create,
        cookie: CookiePlan::Send,
        created: now,
        expires: life.deadline(now, now),
    };
    let nothing = Plan {
        action: Action::Nothing,
        cookie: CookiePlan::Keep,
        created: record.created,
        expires: record.expires,
    };
    let delete = Plan {
        action: Action::Delete,
        cookie: CookiePlan::Remove,
        ..nothing
    };
    let remove_cookie = Plan {
        cookie: CookiePlan::Remove,
        ..nothing
    };
    match (state.origin, state.lifecycle) {
        (Origin::Renewed, lifecycle) => {
            renewed(lifecycle, wrote && has_values, wrote, nothing, new_session)
        }
        (Origin::New, Lifecycle::Destroy) if wrote && has_values => new_session,
        // Nothing stored to delete; the client's cookie goes all the same.
        (Origin::New, Lifecycle::Destroy) => remove_cookie,
        (Origin::New, _) if wrote && has_values => new_session,
        (Origin::New, _) => nothing,
        (Origin::Stored { .. }, Lifecycle::Destroy) if wrote && has_values => Plan {
            action: Action::Replace,
            ..new_session
        },
        (Origin::Stored { .. }, Lifecycle::Destroy) => delete,
        // Emptied by this request's changes: the store applies them and
        // deletes the session only if nothing a concurrent request set is
        // left. A cookie holds no one else's values: it is simply deleted.
        (Origin::Stored { .. }, Lifecycle::Keep) if !has_values && kind == Kind::Server => {
            match life.deadline(record.created, now) {
                expires if expires <= now => delete,
                expires => Plan {
                    action: Action::Update,
                    cookie: CookiePlan::RemoveIfEmptied,
                    created: record.created,
                    expires,
                },
            }
        }
        (Origin::Stored { .. }, _) if !has_values => delete,
        (Origin::Stored { .. }, Lifecycle::Renew { restart }) => {
            let created = if restart { now } else { record.created };
            match life.deadline(created, now) {
                expires if expires <= now => delete,
                expires => Plan {
                    action: Action::Renew,
                    cookie: CookiePlan::Send,
                    created,
                    expires,
                },
            }
        }
        (Origin::Stored { reissue, .. }, Lifecycle::Keep) => {
            kept(state, now, life, kind, reissue).unwrap_or(delete)
        }
    }
}

/// The request carried an id that another request renewed while it ran.
/// It may read (an empty session); a login or a logout is the user's own
/// word and starts afresh; anything else must neither reach the store nor
/// replace the renewed session's cookie.
fn renewed(lifecycle: Lifecycle, stores: bool, wrote: bool, nothing: Plan, new: Plan) -> Plan {
    match lifecycle {
        Lifecycle::Renew { restart: true } | Lifecycle::Destroy if stores => new,
        Lifecycle::Destroy => Plan {
            cookie: CookiePlan::Remove,
            ..nothing
        },
        Lifecycle::Keep if !wrote => nothing,
        _ => Plan {
            action: Action::Refuse,
            ..nothing
        },
    }
}

/// A stored session that stays under its id: updated when it was
/// written, when its idle deadline is due for a move, or when its cookie
/// must be sent again; `None` when it ended already.
fn kept(state: &State, now: UnixTime, life: &Lifetimes, kind: Kind, reissue: bool) -> Option<Plan> {
    let record = &state.record;
    let expires = life.deadline(record.created, now);
    if expires <= now {
        return None;
    }
    let wrote = !state.changes.is_empty();
    let extension = expires.saturating_since(record.expires);
    let refresh_due = !extension.is_zero() && extension >= life.refresh_after();
    if !wrote && !refresh_due && !reissue {
        return Some(Plan {
            action: Action::Nothing,
            cookie: CookiePlan::Keep,
            created: record.created,
            expires: record.expires,
        });
    }
    // A new expiry changes the cookie's own lifetime (its `Max-Age`, or
    // none for a browser session): the browser must hear of it.
    let cookie = if reissue || kind == Kind::Cookie || state.changes.expiry {
        CookiePlan::Send
    } else {
        CookiePlan::Keep
    };
    Some(Plan {
        action: Action::Update,
        cookie,
        created: record.created,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::flash::FlashLevel;
    use crate::session::id::SessionId;
    use crate::session::record::Record;
    use crate::session::value::Value;

    const T0: UnixTime = UnixTime::from_secs(1_000_000);
    const IDLE: Duration = Duration::from_secs(600);
    const ABSOLUTE: Duration = Duration::from_secs(3600);
    const LIFE: Lifetimes = Lifetimes {
        idle: IDLE,
        absolute: ABSOLUTE,
        refresh_fraction: 0.25,
        max: Duration::from_secs(7200),
        persistent: true,
    };

    fn stored(reissue: bool) -> Origin {
        Origin::Stored {
            id: Some(SessionId::from_bytes([1; 16])),
            reissue,
        }
    }

    /// A session created at T0 and last written at `written`, with one value.
    fn state(origin: Origin, written: UnixTime) -> State {
        let mut record = Record::empty(T0, LIFE.deadline(T0, written), 4);
        record.data.insert("k".into(), Value::encode("v").unwrap());
        State::new(record, origin, FlashLevel::Info)
    }

    fn write(state: &mut State) {
        state
            .record
            .data
            .insert("n".into(), Value::encode(&1).unwrap());
        state.changes.mark("n".into());
    }

    fn at(secs: u64) -> UnixTime {
        T0 + Duration::from_secs(secs)
    }

    fn decide(state: &State, now: UnixTime) -> (Action, CookiePlan) {
        let p = plan(state, now, &LIFE, Kind::Server);
        (p.action, p.cookie)
    }

    #[test]
    fn a_read_writes_nothing_until_the_refresh_is_due() {
        let s = state(stored(false), T0);
        assert_eq!(decide(&s, at(149)), (Action::Nothing, CookiePlan::Keep));
        let p = plan(&s, at(150), &LIFE, Kind::Server);
        assert_eq!((p.action, p.cookie), (Action::Update, CookiePlan::Keep));
        assert_eq!(p.expires, at(750));
        // A cookie backend keeps the expiry in the cookie: it reseals.
        let p = plan(&s, at(150), &LIFE, Kind::Cookie);
        assert_eq!((p.action, p.cookie), (Action::Update, CookiePlan::Send));
    }

    #[test]
    fn a_session_of_its_own_expiry_lives_by_it_up_to_the_maximum() {
        let mut s = state(stored(false), T0);
        s.record.expiry = Expiry::Lifetimes {
            idle: IDLE * 2,
            absolute: Duration::from_secs(400 * 24 * 60 * 60),
        };
        // Past the settings' idle deadline, within its own: still live,
        // and a read refreshes it after a quarter of its own idle window.
        s.record.expires = at(1200);
        assert_eq!(decide(&s, at(299)), (Action::Nothing, CookiePlan::Keep));
        let p = plan(&s, at(700), &LIFE, Kind::Server);
        assert_eq!((p.action, p.expires), (Action::Update, at(1900)));
        // The absolute lifetime asked for is cut to the maximum: two hours.
        let p = plan(&s, at(7000), &LIFE, Kind::Server);
        assert_eq!(p.expires, at(7200));
        assert_eq!(
            LIFE.of(s.record.expiry).max_age(T0, at(7000)),
            Some(Duration::from_secs(200))
        );
        assert_eq!(decide(&s, at(7200)), (Action::Delete, CookiePlan::Remove));
    }

    #[test]
    fn a_browser_session_has_the_settings_lifetimes_and_no_max_age() {
        let life = LIFE.of(Expiry::BrowserSession);
        assert_eq!((life.idle, life.absolute), (IDLE, ABSOLUTE));
        assert_eq!(life.max_age(T0, at(5)), None);
        assert_eq!(
            LIFE.max_age(T0, at(5)),
            Some(ABSOLUTE - Duration::from_secs(5))
        );
    }

    #[test]
    fn a_write_updates_and_keeps_the_cookie() {
        let mut s = state(stored(false), T0);
        write(&mut s);
        assert_eq!(decide(&s, at(1)), (Action::Update, CookiePlan::Keep));
    }

    #[test]
    fn a_change_of_expiry_sends_the_cookie_with_its_new_lifetime() {
        for expiry in [
            Expiry::BrowserSession,
            Expiry::Lifetimes {
                idle: IDLE,
                absolute: ABSOLUTE * 2,
            },
        ] {
            let mut s = state(stored(false), T0);
            s.record.expiry = expiry;
            s.changes.expiry = true;
            let p = plan(&s, at(1), &LIFE, Kind::Server);
            assert_eq!((p.action, p.cookie), (Action::Update, CookiePlan::Send));
            // The lifetime the cookie is sent with is the new one's.
            let max_age = LIFE.of(expiry).max_age(p.created, at(1));
            assert_eq!(
                max_age,
                (expiry != Expiry::BrowserSession).then(|| ABSOLUTE * 2 - Duration::from_secs(1))
            );
        }
    }

    #[test]
    fn a_session_with_only_a_user_is_stored() {
        let mut s = State::new(Record::empty(T0, T0, 4), Origin::New, FlashLevel::Info);
        s.record.user = Some("ada".into());
        s.changes.binding = true;
        let p = plan(&s, at(5), &LIFE, Kind::Server);
        assert_eq!((p.action, p.cookie), (Action::Create, CookiePlan::Send));
    }

    #[test]
    fn an_old_key_reissues_the_cookie() {
        let s = state(stored(true), T0);
        assert_eq!(decide(&s, at(1)), (Action::Update, CookiePlan::Send));
    }

    #[test]
    fn new_sessions_are_stored_only_when_written() {
        let mut s = State::new(Record::empty(T0, T0, 4), Origin::New, FlashLevel::Info);
        assert_eq!(decide(&s, at(5)), (Action::Nothing, CookiePlan::Keep));
        write(&mut s);
        let p = plan(&s, at(5), &LIFE, Kind::Server);
        assert_eq!((p.action, p.cookie), (Action::Create, CookiePlan::Send));
        assert_eq!((p.created, p.expires), (at(5), at(605)));
        // Written, then emptied again: nothing to keep.
        s.record.data.remove("n");
        assert_eq!(decide(&s, at(5)), (Action::Nothing, CookiePlan::Keep));
    }

    #[test]
    fn an_emptied_or_ended_session_is_deleted() {
        let mut s = state(stored(false), T0);
        s.record.data.remove("k");
        s.changes.mark("k".into());
        assert_eq!(
            decide(&s, at(1)),
            (Action::Update, CookiePlan::RemoveIfEmptied)
        );
        let p = plan(&s, at(1), &LIFE, Kind::Cookie);
        assert_eq!((p.action, p.cookie), (Action::Delete, CookiePlan::Remove));
        let s = state(stored(false), at(3500));
        assert_eq!(decide(&s, at(3600)), (Action::Delete, CookiePlan::Remove));
    }

    #[test]
    fn renew_keeps_the_absolute_deadline() {
        let mut s = state(stored(false), at(3000));
        s.lifecycle = Lifecycle::Renew { restart: false };
        let p = plan(&s, at(3300), &LIFE, Kind::Server);
        assert_eq!((p.action, p.cookie), (Action::Renew, CookiePlan::Send));
        assert_eq!(p.created, T0, "renew restarted the lifetime");
        assert_eq!(p.expires, at(3600));
        // Past the absolute deadline, a renew ends the session instead.
        assert_eq!(decide(&s, at(3600)), (Action::Delete, CookiePlan::Remove));
    }

    #[test]
    fn renew_on_login_starts_a_new_lifetime() {
        let mut s = state(stored(false), at(3000));
        s.lifecycle = Lifecycle::Renew { restart: true };
        let p = plan(&s, at(3300), &LIFE, Kind::Server);
        assert_eq!(p.action, Action::Renew);
        assert_eq!((p.created, p.expires), (at(3300), at(3900)));
    }

    #[test]
    fn destroy_deletes_and_values_after_it_start_a_new_session() {
        let mut s = state(stored(false), T0);
        s.lifecycle = Lifecycle::Destroy;
        s.record.data.clear();
        assert_eq!(decide(&s, at(1)), (Action::Delete, CookiePlan::Remove));
        write(&mut s);
        let p = plan(&s, at(1), &LIFE, Kind::Server);
        assert_eq!((p.action, p.cookie), (Action::Replace, CookiePlan::Send));
        assert_eq!(p.created, at(1));
        // With nothing stored, destroy still expires the client's cookie.
        let mut s = State::new(Record::empty(T0, T0, 4), Origin::New, FlashLevel::Info);
        s.lifecycle = Lifecycle::Destroy;
        assert_eq!(decide(&s, at(1)), (Action::Nothing, CookiePlan::Remove));
    }

    #[test]
    fn a_renewed_id_may_read_but_never_write_nor_touch_the_cookie() {
        let mut s = State::new(Record::empty(T0, T0, 4), Origin::Renewed, FlashLevel::Info);
        assert_eq!(decide(&s, at(1)), (Action::Nothing, CookiePlan::Keep));
        s.lifecycle = Lifecycle::Renew { restart: false };
        assert_eq!(decide(&s, at(1)), (Action::Refuse, CookiePlan::Keep));
        s.lifecycle = Lifecycle::Keep;
        write(&mut s);
        assert_eq!(decide(&s, at(1)), (Action::Refuse, CookiePlan::Keep));
    }

    #[test]
    fn on_a_renewed_id_a_login_or_a_logout_starts_afresh() {
        let mut s = State::new(Record::empty(T0, T0, 4), Origin::Renewed, FlashLevel::Info);
        s.lifecycle = Lifecycle::Destroy;
        assert_eq!(decide(&s, at(1)), (Action::Nothing, CookiePlan::Remove));
        s.lifecycle = Lifecycle::Renew { restart: true };
        write(&mut s);
        assert_eq!(decide(&s, at(1)), (Action::Create, CookiePlan::Send));
    }
}
