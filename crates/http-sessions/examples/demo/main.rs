//! The seed page's examples as a server: `/login`, `/logout`, `/`, `/hello`
//! and `/tea`, plus `/counter`, `/renew` and `/destroy`, and a signed-in
//! user's pages: `/remember`, `/signin`, `/whoami`, `/sessions`,
//! `/logout-everywhere` and `/waiting` (each described in `routes.rs`).
//!
//! ```sh
//! cargo run -p http-sessions --example demo -- --addr 127.0.0.1:8080 --backend memory
//! cargo run -p http-sessions --example demo -- --backend redis   # REDIS_URL, default redis://127.0.0.1:6379
//! cargo run -p http-sessions --example demo -- --backend postgres   # DATABASE_URL=postgres://...
//! cargo run -p http-sessions --example demo -- --backend sqlite     # DATABASE_URL=sqlite://sessions.db
//! cargo run -p http-sessions --example demo -- --backend mysql      # DATABASE_URL=mysql://...
//! SESSION_COOKIE_SECURE=true cargo run -p http-sessions --example demo   # behind an https proxy
//! ```
//!
//! The demo serves plain http, so unless `SESSION_COOKIE_SECURE` is set it
//! sends its cookie without `Secure`, as `SESSION_COOKIE_SECURE=false`
//! would, and the settings log a warning saying so.

use std::net::SocketAddr;

use http_sessions::{SessionLayer, Settings};
use http_sessions_sql::{MySqlStore, PostgresStore, SqliteStore, Sweeper};

mod routes;

const USAGE: &str = "usage: demo [--addr HOST:PORT] \
                     [--backend memory|cookie|cookie-encrypted|redis|postgres|sqlite|mysql]\n\
                     env: SESSION_BACKEND, SESSION_SECRET (at least 32 bytes), REDIS_URL,\n\
                     DATABASE_URL (postgres, sqlite and mysql; for SQLite a file URL such as\n\
                     sqlite://sessions.db, the file made if missing),\n\
                     SESSION_COOKIE_SECURE (true or 1 for a Secure cookie; default here false)";

struct Args {
    addr: SocketAddr,
    backend: String,
}

fn parse_args() -> Result<Args, String> {
    let mut addr: SocketAddr = ([127, 0, 0, 1], 8080).into();
    let mut backend = std::env::var("SESSION_BACKEND").unwrap_or_else(|_| "memory".to_owned());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let v = args.next().ok_or("--addr needs HOST:PORT")?;
                addr = v.parse().map_err(|e| format!("--addr {v:?}: {e}"))?;
            }
            "--backend" => backend = args.next().ok_or("--backend needs a name")?,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Args { addr, backend })
}

/// The layer of `backend`, and for a SQL store the sweeper that deletes its
/// expired rows while the demo runs.
async fn layer(
    backend: &str,
    settings: &Settings,
) -> Result<(SessionLayer, Option<Sweeper>), Box<dyn std::error::Error>> {
    let layer = match backend {
        "memory" => http_sessions::memory::session_layer(settings),
        "cookie" => http_sessions::cookie::session_layer(settings),
        "cookie-encrypted" => http_sessions::cookie::encrypted_session_layer(settings),
        // What `http_sessions::redis::session_layer` is with the `redis` feature;
        // the demo reaches it directly so it runs without feature flags.
        "redis" => http_sessions_redis::session_layer(settings)?,
        // Likewise for `http_sessions::postgres` and the others.
        // Each SQL store makes or upgrades its tables, and sweeps them.
        "postgres" => {
            let store = PostgresStore::from_url(&database_url()?)?;
            store.migrate().await?;
            return Ok((
                SessionLayer::new(store.clone(), settings),
                Some(store.sweeper()),
            ));
        }
        "sqlite" => {
            let store = SqliteStore::from_url(&database_url()?)?;
            store.migrate().await?;
            return Ok((
                SessionLayer::new(store.clone(), settings),
                Some(store.sweeper()),
            ));
        }
        "mysql" => {
            let store = MySqlStore::from_url(&database_url()?)?;
            store.migrate().await?;
            return Ok((
                SessionLayer::new(store.clone(), settings),
                Some(store.sweeper()),
            ));
        }
        other => {
            return Err(format!(
                "unknown backend {other:?}; choose memory, cookie, cookie-encrypted, redis, \
                 postgres, sqlite or mysql"
            )
            .into());
        }
    };
    Ok((layer, None))
}

fn database_url() -> Result<String, String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        _ => Err(
            "DATABASE_URL is not set: set it to the database to keep sessions in \
                  (postgres://..., sqlite://sessions.db or mysql://...)"
                .into(),
        ),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    // The key is SESSION_SECRET's; without it, a random one, so the demo
    // runs with no setup (its sessions end when it stops).
    let mut settings = Settings::builder().with_random_dev_key();
    // Plain http on localhost, where a Secure cookie would not come back:
    // without SESSION_COOKIE_SECURE, the demo does what
    // SESSION_COOKIE_SECURE=false does, and `build` warns about it. Set,
    // the variable decides, as it does in any application.
    if std::env::var_os("SESSION_COOKIE_SECURE").is_none() {
        settings = settings.with_secure(false);
    }
    // A server-side store counts each user's sessions; the cookie
    // backends keep none to count.
    if !args.backend.starts_with("cookie") {
        settings = settings.with_max_sessions_per_user(routes::CAP);
    }
    let settings = match settings.build() {
        Ok(settings) => settings,
        Err(e) => {
            // The message says what to change; `?` would print its Debug.
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let (layer, _sweeper) = layer(&args.backend, &settings).await?;
    let app = routes::router().layer(layer);
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    println!(
        "sessions demo on http://{} with the {} backend; cookie Secure: {}",
        listener.local_addr()?,
        args.backend,
        if settings.cookie().secure {
            "on (browsers send it back over https only)"
        } else {
            "off, for plain http (SESSION_COOKIE_SECURE=true turns it on)"
        }
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
