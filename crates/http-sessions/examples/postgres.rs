//! Sessions in PostgreSQL, in the application's own database: the same
//! visit counter as `examples/memory.rs`, one import changed, and the
//! tables made at start-up.
//!
//! ```sh
//! DATABASE_URL=postgres://app@127.0.0.1/app SESSION_SECRET=$(openssl rand -base64 48) \
//!     cargo run -p http-sessions --features postgres --example postgres
//! ```
//!
//! `ADDR` picks the address to listen on (default `127.0.0.1:8080`); the
//! first line printed says where it listens.

use axum::{Router, routing::get};
use http_sessions::postgres::session_layer;
use http_sessions::{Session, Settings, ValueError};

/// Counts this visitor's requests in their session.
async fn visits(session: Session) -> Result<String, ValueError> {
    let n = session.get::<u64>("visits")?.unwrap_or(0) + 1;
    session.insert("visits", n)?;
    Ok(format!("visits = {n}"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Every instance must share SESSION_SECRET to read each other's
    // cookies; without it, a random key for this process only.
    let settings = Settings::builder()
        .with_random_dev_key()
        .with_secure(false) // plain http on localhost
        .build()?;
    let app = Router::new()
        .route("/", get(visits))
        .layer(session_layer(&settings).await?); // DATABASE_URL, tables made

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
