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
//! - `http`: the tower [`SessionLayer`] and its [`SessionService`],
//!   [`LazySession`] and [`ResponseBody`]; [`cookies`], which reads the
//!   session cookies and writes `Set-Cookie`, `Vary` and `Cache-Control`;
//!   the axum extractor (feature `axum`).
//! - `engine`: the [`SessionManager`] turns cookies into a session (tokens
//!   are verified here; stores see ids), and executes the `plan`, the pure
//!   decision of what a finished request does.
//! - [`store`]: the [`SessionStore`](store::SessionStore) trait on ids and
//!   records, and the [`CookieCodec`](store::CookieCodec) of the cookie
//!   backend.
//! - `session`: the [`Session`] handle, what changed, and the session's
//!   data: records, values, keys, flash messages, ids, time.
//! - `config`: [`Settings`] and the [`Keyring`]; `error`: the errors.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod engine;
mod error;
mod http;
mod session;
pub mod store;

pub use config::cookie::{CookieSettings, SameSite};
pub use config::environment::{SECRET_ENV, SECURE_ENV};
pub use config::error::ConfigError;
pub use config::keys::{
    Key, KeyError, KeyId, Keyring, MIN_KEY_LEN, SUB_KEY_LEN, SubKey, TrustedKey,
};
pub use config::settings::{Settings, SettingsBuilder};
pub use engine::check::SessionCheck;
pub use engine::manager::{Backend, MAX_COOKIE_VALUE_LEN, SessionManager};
pub use engine::stats::SessionStats;
pub use engine::users::{SessionInfo, UserSessions};
pub use error::{BoxError, StoreError, ValueError};
pub use http::body::ResponseBody;
pub use http::cookies::{self, MAX_SET_COOKIE_LEN};
#[cfg(feature = "axum")]
pub use http::extract::SessionRejection;
pub use http::failure::SessionFailure;
pub use http::layer::{LazySession, ResponseFuture, SessionLayer, SessionService};
pub use session::Session;
pub use session::changes::CookieUpdate;
pub use session::expiry::Expiry;
pub use session::flash::{DEFAULT_FLASH_CAPACITY, FLASH_MAX_BYTES, Flash, FlashLevel, FlashQueue};
pub use session::time::UnixTime;
/// The clock seam: what tells the time, and a clock tests move by hand.
#[doc(hidden)]
pub use session::time::{Clock, ManualClock, SystemClock};
