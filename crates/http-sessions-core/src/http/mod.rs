//! The HTTP face: the tower [`layer`] and the [`body`] of its responses,
//! reading and writing the session [`cookies`], the answers the layer
//! makes itself on a store's [`failure`], and the axum [`extract`]or.

pub(crate) mod body;
pub mod cookies;
#[cfg(feature = "axum")]
pub(crate) mod extract;
pub(crate) mod failure;
pub(crate) mod layer;
