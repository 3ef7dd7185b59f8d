//! A flood of anonymous requests that flash a message, through the session
//! layer of an axum app: the signed-in users who came back before it are
//! still signed in after it.
#![allow(clippy::unwrap_used)]

use axum::Router;
use axum::routing::get;
use http_sessions_conformance::http::{Reply, cookie, get as send};
use http_sessions_core::{Key, Keyring, Session, SessionLayer, Settings};
use http_sessions_memory::MemoryStore;

/// A store this small, so that a flood of a few thousand requests fills it
/// many times over.
const CAPACITY: usize = 2_000;
const USERS: usize = 100;
const FLOOD: usize = 20_000;

async fn sign_in(
    session: Session,
    axum::extract::Path(user): axum::extract::Path<String>,
) -> String {
    match session.insert("user", &user) {
        Ok(()) => user,
        Err(e) => e.to_string(),
    }
}

async fn me(session: Session) -> String {
    match session.get::<String>("user") {
        Ok(Some(user)) => user,
        Ok(None) => "anonymous".to_owned(),
        Err(e) => e.to_string(),
    }
}

async fn thanks(session: Session) -> &'static str {
    session.flash("Thanks for your visit");
    "thanks"
}

fn settings() -> Result<Settings, Box<dyn std::error::Error>> {
    Ok(Settings::builder()
        .with_cookie_name("session")
        .with_keyring(Keyring::new(Key::from_bytes(&[7; 32])?)?)
        .build()?)
}

fn token(reply: &Reply) -> Option<String> {
    reply.cookie_value("session").map(str::to_owned)
}

#[tokio::test]
async fn signed_in_users_survive_a_flood_of_anonymous_flashes()
-> Result<(), Box<dyn std::error::Error>> {
    let store = MemoryStore::with_capacity(CAPACITY).unwrap();
    let app = Router::new()
        .route("/login/{user}", get(sign_in))
        .route("/me", get(me))
        .route("/thanks", get(thanks))
        .layer(SessionLayer::new(store.clone(), &settings()?));

    let mut users = Vec::with_capacity(USERS);
    for n in 0..USERS {
        let name = format!("user-{n}");
        let reply = send(&app, &format!("/login/{name}"), None).await;
        let token = token(&reply).ok_or("no session cookie after sign-in")?;
        // A few more requests: they come back.
        for _ in 0..3 {
            let reply = send(&app, "/me", Some(cookie("session", &token))).await;
            assert_eq!(reply.body, name);
        }
        users.push((name, token));
    }

    for _ in 0..FLOOD {
        let reply = send(&app, "/thanks", None).await;
        assert!(token(&reply).is_some(), "the flash made a session");
    }
    assert!(store.len() <= CAPACITY);
    assert!(store.evictions() >= (FLOOD + USERS - CAPACITY) as u64);

    let mut signed_in = 0;
    for (name, token) in &users {
        let reply = send(&app, "/me", Some(cookie("session", token))).await;
        if reply.body == *name {
            signed_in += 1;
        }
    }
    assert_eq!(signed_in, USERS, "users still signed in after the flood");
    Ok(())
}
