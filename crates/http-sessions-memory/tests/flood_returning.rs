//! Anonymous visitors who come back, through the session layer of an axum
//! app, many at once: however often each returns, the signed-in users who
//! sat idle through the flood are still signed in after it, and the store
//! says it evicted none of them.
#![allow(clippy::unwrap_used)]

use axum::Router;
use axum::routing::get;
use http_sessions_conformance::http::{Reply, cookie, get as send};
use http_sessions_core::{Key, Keyring, Session, SessionLayer, Settings};
use http_sessions_memory::MemoryStore;

/// A store this small, so that the flood fills it many times over.
const CAPACITY: usize = 1_000;
const USERS: usize = 50;
const VISITORS: usize = 8_000;
/// Requests at once: each task sends its share of the flood.
const TASKS: usize = 8;

/// Signs `user` in as the demo's `/remember` does: a new id, bound, with
/// a value (an empty session is not kept).
async fn remember(
    session: Session,
    axum::extract::Path(user): axum::extract::Path<String>,
) -> String {
    session.renew_on_login();
    if let Err(e) = session.bind_user(&user) {
        return e.to_string();
    }
    match session.insert("user", &user) {
        Ok(()) => user,
        Err(e) => e.to_string(),
    }
}

async fn me(session: Session) -> String {
    session.user().unwrap_or_else(|| "anonymous".to_owned())
}

async fn hello(session: Session) -> &'static str {
    session.flash("Please retry again!");
    "Hello, world"
}

async fn waiting(session: Session) -> String {
    format!("{} waiting", session.flash_count())
}

fn app(store: &MemoryStore) -> Result<Router, Box<dyn std::error::Error>> {
    let settings = Settings::builder()
        .with_cookie_name("session")
        .with_keyring(Keyring::new(Key::from_bytes(&[7; 32])?)?)
        .build()?;
    Ok(Router::new()
        .route("/remember/{user}", get(remember))
        .route("/me", get(me))
        .route("/hello", get(hello))
        .route("/waiting", get(waiting))
        .layer(SessionLayer::new(store.clone(), &settings)))
}

fn token(reply: &Reply) -> Option<String> {
    reply.cookie_value("session").map(str::to_owned)
}

/// How many of `users` are still signed in as themselves.
async fn signed_in(app: &Router, users: &[(String, String)]) -> usize {
    let mut kept = 0;
    for (name, token) in users {
        let reply = send(app, "/me", Some(cookie("session", token))).await;
        kept += usize::from(reply.body == *name);
    }
    kept
}

/// `VISITORS` anonymous visitors, `TASKS` at a time, each making a first
/// request and `returns` more with its cookie; the signed-in users are
/// idle meanwhile.
async fn flood_keeps_signed_in_users(returns: usize) -> Result<(), Box<dyn std::error::Error>> {
    let store = MemoryStore::with_capacity(CAPACITY).unwrap();
    let app = app(&store)?;
    let mut users = Vec::with_capacity(USERS);
    for n in 0..USERS {
        let name = format!("user-{n}");
        let reply = send(&app, &format!("/remember/{name}"), None).await;
        let token = token(&reply).ok_or("no session cookie after sign-in")?;
        users.push((name, token));
    }
    assert_eq!(signed_in(&app, &users).await, USERS, "before the flood");

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let app = app.clone();
        tasks.spawn(async move {
            for _ in 0..VISITORS / TASKS {
                let reply = send(&app, "/hello", None).await;
                let Some(token) = token(&reply) else {
                    return Err("the flash made no session".to_owned());
                };
                for _ in 0..returns {
                    let reply = send(&app, "/waiting", Some(cookie("session", &token))).await;
                    if !reply.status.is_success() {
                        return Err(format!("a return answered {}", reply.status));
                    }
                }
            }
            Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    assert!(store.len() <= CAPACITY);
    assert!(store.evictions() >= (VISITORS + USERS - CAPACITY) as u64);

    assert_eq!(
        signed_in(&app, &users).await,
        USERS,
        "signed-in users kept after a flood of visitors who each came back {returns} times"
    );
    assert_eq!(store.signed_in_evictions(), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_in_users_survive_visitors_who_come_back_once()
-> Result<(), Box<dyn std::error::Error>> {
    flood_keeps_signed_in_users(1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_in_users_survive_visitors_who_come_back_several_times()
-> Result<(), Box<dyn std::error::Error>> {
    flood_keeps_signed_in_users(3).await
}
