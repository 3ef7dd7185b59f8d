//! The session handle and its data: what a handler holds ([`Session`]),
//! what it changed ([`changes`]), and what a store keeps ([`record`]): values,
//! keys, flash messages, ids and time. Nothing here knows of stores,
//! cookies or HTTP.

pub(crate) mod changes;
pub mod codec;
pub(crate) mod data_key;
pub(crate) mod expiry;
pub(crate) mod flash;
mod handle;
pub(crate) mod id;
pub(crate) mod record;
pub(crate) mod session_data;
pub(crate) mod time;
pub(crate) mod value;

pub use handle::Session;
pub(crate) use handle::{Lifecycle, Origin, SaveHook, State};
