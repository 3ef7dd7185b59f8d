//! Configuration: the [`settings`] a layer is built with, split by concern
//! ([`cookie`], [`lifetimes`], [`limits`], and what the [`environment`]
//! decides), the [`keys`] that sign and encrypt, and the [`error`] of all.

pub(crate) mod cookie;
pub(crate) mod environment;
pub(crate) mod error;
pub(crate) mod keys;
pub(crate) mod lifetimes;
pub(crate) mod limits;
pub(crate) mod settings;
