//! The demo in a real browser: [`Demo`] runs the demo binary, [`Driver`]
//! runs chromedriver, and each [`Browser`] is a headless Chromium on a
//! [`Profile`] of its own, driven over WebDriver. The cases are in
//! `tests/demo.rs`; `cargo xtask test-all` builds the demo, passes its path
//! in `DEMO_BIN`, and runs them.
//!
//! A missing demo, Chromium or chromedriver is an error that says what to
//! build or install, never a skipped test.
//!
//! # Layout
//!
//! - `demo`: [`Demo`], the demo binary on a port of its own, memory backend.
//! - `chromium`: [`Driver`], [`Profile`] and [`Browser`]: chromedriver on a
//!   free port, a user-data directory kept across browser restarts, and one
//!   browser's pages, cookies and scripts.
//! - `process`: what both need of a child process: found on the `PATH`,
//!   waited for with a deadline, stopped with what it started.

mod chromium;
mod demo;
mod process;

pub use chromium::{Browser, Driver, Profile};
pub use demo::Demo;

/// What can go wrong while setting up or driving a browser: a message that
/// says what failed and, where it can, what to do about it.
pub type Error = String;
