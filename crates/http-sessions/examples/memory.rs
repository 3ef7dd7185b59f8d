//! The quick start as a whole program: axum, sessions in process memory,
//! a visit counter on `/` and a logout on `/logout`.
//!
//! ```sh
//! cargo run -p http-sessions --example memory   # then open http://127.0.0.1:8080/
//! ```
//!
//! `ADDR` picks the address to listen on (default `127.0.0.1:8080`); the
//! first line printed says where it listens.

use axum::{Router, routing::get};
use http_sessions::memory::session_layer;
use http_sessions::{Session, Settings, ValueError};

/// Counts this visitor's requests in their session.
async fn visits(session: Session) -> Result<String, ValueError> {
    let n = session.get::<u64>("visits")?.unwrap_or(0) + 1;
    session.insert("visits", n)?;
    Ok(format!("visits = {n}"))
}

/// Ends the session: the store forgets it and the cookie is removed.
async fn logout(session: Session) -> &'static str {
    session.destroy();
    "logged out"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SESSION_SECRET when set; else, for development only, a random key.
    // Plain http on localhost: a `Secure` cookie would never come back.
    let settings = Settings::builder()
        .with_random_dev_key()
        .with_secure(false)
        .build()?;
    let app = Router::new()
        .route("/", get(visits))
        .route("/logout", get(logout))
        .layer(session_layer(&settings));

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
