//! The core of `sessions`: the [`Session`] handle and its flash messages,
//! [`Settings`] and [`Keyring`], the [`SessionStore`] contract every backend
//! implements, and the tower [`SessionLayer`] (with an axum extractor
//! behind the `axum` feature).
//!
//! Most applications use the facade crate `sessions`, which picks a
//! backend; this crate is for writing backends and for the layer itself.
//!
//! # Layout
//!
//! - [`session`](Session): the handle handlers use, and its change log.
//! - `flash`: [`FlashLevel`], [`Flash`], the bounded [`FlashQueue`].
//! - `record`: [`Record`], what a store keeps; [`Value`], one MessagePack value.
//! - `data_key`: [`DataKey`], the name a value is stored under.
//! - `session_data`: [`SessionData`], a session's values in key order.
//! - `settings`: [`Settings`] and its builder; cookie attributes are checked there.
//! - `keys`: [`Key`], [`Keyring`] and the HKDF sub-keys ([`DerivedKeys`]).
//! - `token`: `id.mac` tokens of server-side stores ([`SessionId`]).
//! - `store`: the [`SessionStore`] trait and its five-point contract.
//! - `manager`: [`SessionManager`], load and commit with expiry and timeouts.
//! - `cookies`: reading the cookie, writing `Set-Cookie`, `Vary`, `Cache-Control`.
//! - `layer`: [`SessionLayer`], [`SessionService`], [`LazySession`].
//! - `extract` (feature `axum`): the `Session` extractor, [`SessionRejection`].
//! - [`testing`] (feature `testing`): the conformance suite for stores.
//! - `time`: [`UnixTime`], [`Clock`], [`ManualClock`].
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod cookies;
mod data_key;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod flash;
mod keys;
mod layer;
mod manager;
mod record;
mod session;
mod session_data;
mod settings;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
pub mod token;

pub use data_key::DataKey;
pub use error::{BoxError, ConfigError, KeyError, StoreError, ValueError};
#[cfg(feature = "axum")]
pub use extract::SessionRejection;
pub use flash::{DEFAULT_FLASH_CAPACITY, FLASH_MAX_BYTES, Flash, FlashLevel, FlashQueue};
pub use keys::{DerivedKeys, Key, KeyId, Keyring, MIN_KEY_LEN};
pub use layer::{LazySession, ResponseFuture, SessionLayer, SessionService};
pub use manager::{
    CommitError, CookieUpdate, MAX_COOKIE_VALUE_LEN, MAX_SET_COOKIE_LEN, SessionManager,
};
pub use record::{Record, Value};
pub use session::Session;
pub use session_data::SessionData;
pub use settings::{CookieSettings, SECRET_ENV, SameSite, Settings, SettingsBuilder};
pub use store::{Capabilities, Changes, Context, Loaded, Save, SessionStore};
pub use time::{Clock, ManualClock, SystemClock, UnixTime};
pub use token::{IdSource, OpenedToken, RandomIds, SessionId};
