//! The whole session in an encrypted cookie (AES-256-GCM), with key
//! rotation: nothing is stored on the server, and the visitor can neither
//! read nor change what the cookie holds.
//!
//! ```sh
//! SESSION_SECRET=$(openssl rand -base64 48) \
//!     cargo run -p http-sessions --example cookie_encrypted
//! ```
//!
//! # Rotating the key
//!
//! `SESSION_SECRET` is the current key: it seals every cookie the server
//! sends. `SESSION_SECRET_OLD`, if set, only opens cookies. To rotate:
//!
//! 1. deploy with `SESSION_SECRET=<new>` and `SESSION_SECRET_OLD=<old>`:
//!    cookies sealed under the old key still open, and each one is
//!    resealed under the new key on its holder's next request;
//! 2. once every cookie sealed under the old key has expired (the
//!    absolute lifetime, or the longest `set_expiry`), remove
//!    `SESSION_SECRET_OLD`: the old key opens nothing any more.
//!
//! Each secret is at least 32 bytes. `ADDR` picks the address to listen on
//! (default `127.0.0.1:8080`); the first line printed says where it
//! listens.

use axum::{Router, routing::get};
use http_sessions::cookie::encrypted_session_layer;
use http_sessions::{Key, Keyring, Session, Settings, ValueError};

/// The keys from `SESSION_SECRET` (current) and `SESSION_SECRET_OLD`
/// (verify-only, optional).
fn keyring() -> Result<Keyring, Box<dyn std::error::Error>> {
    let current = std::env::var("SESSION_SECRET")
        .map_err(|_| "set SESSION_SECRET to at least 32 random bytes")?;
    let mut keyring = Keyring::new(Key::from_bytes(current.as_bytes())?)?;
    if let Ok(old) = std::env::var("SESSION_SECRET_OLD") {
        keyring = keyring.with_verify_only(Key::from_bytes(old.as_bytes())?)?;
    }
    Ok(keyring)
}

/// Counts this visitor's requests in their session.
async fn visits(session: Session) -> Result<String, ValueError> {
    let n = session.get::<u64>("visits")?.unwrap_or(0) + 1;
    session.insert("visits", n)?;
    Ok(format!("visits = {n}"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::builder()
        .with_keyring(keyring()?)
        .with_secure(false) // plain http on localhost
        .build()?;
    let app = Router::new()
        .route("/", get(visits))
        .layer(encrypted_session_layer(&settings));

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
