//! From cookie to store and back: the [`manager`] loads a session from the
//! request's cookies and executes the commit [`plan`]; [`token`] is the
//! signed id that server-side stores' cookies carry; [`stats`] counts and
//! traces the store calls.

pub(crate) mod manager;
pub(crate) mod plan;
pub(crate) mod stats;
pub(crate) mod token;
