//! The core of `sessions`: the [`Session`] handle and its flash messages,
//! [`Settings`] and [`Keyring`], the store contract ([`store`]), and the
//! tower [`SessionLayer`] (with an axum extractor behind the `axum`
//! feature).
//!
//! Most applications use the facade crate `sessions`, which picks a
//! backend; this crate is for writing backends and for the layer itself.
//!
//! # Layout
//!
//! One request runs top to bottom through these:
//!
//! - `layer`: [`SessionLayer`], [`SessionService`], [`LazySession`]; and
//!   `cookies`, which reads the session cookies and writes `Set-Cookie`,
//!   `Vary` and `Cache-Control`; `extract` (feature `axum`): the extractor.
//! - `manager`: [`SessionManager`] turns cookies into a session (tokens are
//!   verified here, stores see ids) and executes the commit plan.
//! - `plan`: the pure decision of what a finished request does.
//! - `token`: the `id.mac` cookie of server-side stores.
//! - [`store`]: the [`SessionStore`] trait on ids and records, and the
//!   [`CookieCodec`](store::CookieCodec) of the cookie backend.
//! - `session`: the [`Session`] handle and what changed (`changes`), on the
//!   session's data: `record`, `session_data`, `data_key`, `flash`, `id`.
//! - `settings`, `keys`, `time`, `error`: configuration and the ground
//!   everything stands on.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod changes;
pub mod cookies;
mod data_key;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod flash;
mod id;
mod keys;
mod layer;
mod manager;
mod plan;
mod record;
mod session;
mod session_data;
mod settings;
pub mod store;
mod time;
mod token;

pub use changes::CookieUpdate;
pub use error::{BoxError, ConfigError, StoreError, ValueError};
#[cfg(feature = "axum")]
pub use extract::SessionRejection;
pub use flash::{DEFAULT_FLASH_CAPACITY, FLASH_MAX_BYTES, Flash, FlashLevel, FlashQueue};
pub use keys::{Key, KeyError, KeyId, Keyring, MIN_KEY_LEN, SUB_KEY_LEN, SubKey, TrustedKey};
pub use layer::{LazySession, ResponseFuture, SessionLayer, SessionService};
pub use manager::{Backend, MAX_COOKIE_VALUE_LEN, MAX_SET_COOKIE_LEN, SessionManager};
pub use session::Session;
pub use settings::{CookieSettings, SECRET_ENV, SameSite, Settings, SettingsBuilder};
pub use time::{Clock, ManualClock, SystemClock, UnixTime};
