//! The core of `http-sessions`: the [`Session`] handle and its flash messages,
//! [`Settings`] and [`Keyring`], the store contract ([`store`]), and the
//! tower [`SessionLayer`] (with an axum extractor behind the `axum`
//! feature).
//!
//! Most applications use the facade crate `http-sessions`, which picks a
//! backend; this crate is for writing backends and for the layer itself.
//!
//! # Layout
//!
//! One request runs top to bottom through these folders, each importing
//! only those below it:
//!
//! - `http`: the tower [`SessionLayer`] and its service, body and
//!   request extension (public in [`layer`]); `cookies`, which reads the
//!   session cookies and writes `Set-Cookie`, `Vary` and `Cache-Control`;
//!   the axum extractor (feature `axum`).
//! - `engine`: the manager ([`seams::SessionManager`]) turns cookies into a session (tokens
//!   are verified here; stores see ids), and executes the `plan`, the pure
//!   decision of what a finished request does.
//! - [`store`]: the [`SessionStore`](store::SessionStore) trait on ids and
//!   records, and the [`CookieCodec`](store::CookieCodec) of the cookie
//!   backend.
//! - `session`: the [`Session`] handle, what changed, and the session's
//!   data: records, values, keys, flash messages, ids, time.
//! - `config`: [`Settings`] and the [`Keyring`] (key material for
//!   backends in [`keys`]); `error`: the errors.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod engine;
mod error;
mod http;
mod session;
pub mod store;

pub use config::cookie::{CookieSettings, SameSite};
pub use config::error::ConfigError;
pub use config::keys::{Key, KeyError, Keyring};
pub use config::limits::OverCap;
pub use config::settings::{Settings, SettingsBuilder};
pub use engine::check::SessionCheck;
pub use engine::stats::SessionStats;
pub use engine::users::{SessionInfo, UserSessions};
pub use error::{StoreError, ValueError};
#[cfg(feature = "axum")]
pub use http::extract::SessionRejection;
pub use http::failure::SessionFailure;
pub use http::layer::SessionLayer;
pub use session::Session;
pub use session::expiry::Expiry;
pub use session::flash::{Flash, FlashLevel};

/// Lifecycle events ([`SessionLayer::with_events`]): what happened to a
/// session, told once the store has confirmed it, naming the session by a
/// keyed hash of its id, never the id.
pub mod events {
    pub use crate::engine::events::{
        Deadline, EVENTS_TARGET, EventKind, SessionEvent, SessionEvents, SessionTag,
    };
}

/// The tower plumbing behind [`SessionLayer`]: the service it wraps, its
/// future and body, the request extension handlers take their session
/// from, and the cookie headers it reads and writes.
pub mod layer {
    pub use crate::http::body::ResponseBody;
    pub use crate::http::cookies;
    pub use crate::http::layer::{LazySession, ResponseFuture, SessionService};
}

/// Key material for backends that protect data of their own with the
/// keyring: each trusted key's public id and its derived sub-keys.
pub mod keys {
    pub use crate::config::keys::{
        Key, KeyError, KeyId, Keyring, MIN_KEY_LEN, SUB_KEY_LEN, SubKey, TrustedKey,
    };
}

/// Below the layer, for tests, benchmarks and integrations other than
/// tower: the manager that loads and commits sessions, its backend, what
/// a commit does with the cookie, and the clock (tests move a
/// [`ManualClock`](seams::ManualClock), given with
/// `SettingsBuilder::with_clock`).
pub mod seams {
    pub use crate::engine::manager::{Backend, SessionManager};
    pub use crate::session::changes::CookieUpdate;
    pub use crate::session::time::{Clock, ManualClock, SystemClock};
}
