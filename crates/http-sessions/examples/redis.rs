//! Sessions in Redis, shared by every instance of the application: the
//! same visit counter as `examples/memory.rs`, one import changed.
//!
//! ```sh
//! docker run --rm -p 6379:6379 redis:7
//! REDIS_URL=redis://127.0.0.1:6379 SESSION_SECRET=$(openssl rand -base64 48) \
//!     cargo run -p http-sessions --features redis --example redis
//! ```
//!
//! `REDIS_URL` names the server (default `redis://127.0.0.1:6379`). The
//! connection is made on first use: the server starts while Redis is down,
//! and its requests answer 503 until Redis is back. `ADDR` picks the
//! address to listen on (default `127.0.0.1:8080`); the first line printed
//! says where it listens.

use axum::{Router, routing::get};
use http_sessions::redis::session_layer;
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
        .layer(session_layer(&settings)?); // REDIS_URL

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
