//! From cookie to store and back: the [`manager`] loads a session from the
//! request's cookies (asking the application's [`check`], if any) and
//! executes the commit [`plan`]; [`token`] is the
//! signed id that server-side stores' cookies carry; [`stats`] counts and
//! traces the store calls; [`events`] tells the application what happened
//! to its sessions; [`users`] lists and ends a user's sessions.

pub(crate) mod cap;
pub(crate) mod check;
pub(crate) mod events;
pub(crate) mod manager;
pub(crate) mod plan;
pub(crate) mod stats;
pub(crate) mod token;
pub(crate) mod users;
