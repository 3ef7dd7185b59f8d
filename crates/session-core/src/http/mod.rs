//! The HTTP face: the tower [`layer`], reading and writing the session
//! [`cookies`], and the axum [`extract`]or.

pub mod cookies;
#[cfg(feature = "axum")]
pub(crate) mod extract;
pub(crate) mod layer;
