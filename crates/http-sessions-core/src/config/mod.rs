//! Configuration: the [`settings`] a layer is built with, and the
//! [`keys`] that sign and encrypt, and the [`error`] of both.

pub(crate) mod error;
pub(crate) mod keys;
pub(crate) mod settings;
