//! The HTTP face: the tower [`layer`], reading and writing the session
//! [`cookies`], the answers the layer makes itself on a store's
//! [`failure`], and the axum [`extract`]or.

pub mod cookies;
#[cfg(feature = "axum")]
pub(crate) mod extract;
pub(crate) mod failure;
pub(crate) mod layer;
