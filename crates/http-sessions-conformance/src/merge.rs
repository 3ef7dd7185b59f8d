//! What concurrent requests leave in one session, and what a request that
//! changes only who or how long is kept: the size bound held on the
//! merged session, flash messages shown once and never lost, a login
//! that only binds stored, and a change of expiry sent to the browser.

use std::sync::Arc;
use std::time::Duration;

use http_sessions_core::store::{Loaded, StoreError, Value};
use http_sessions_core::{
    Expiry, FlashLevel, Session, SettingsBuilder, seams::CookieUpdate, seams::SessionManager,
};

use crate::{ABSOLUTE, Harness, Ids, Rig, START, keyring};

/// The size bound of the cases here.
const BOUND: usize = 64 * 1024;

fn bounded_settings() -> SettingsBuilder {
    crate::settings_with(keyring(1)).with_max_session_size(BOUND)
}

/// Commits every session at once, each on its own task.
async fn commit_all(
    manager: &Arc<SessionManager>,
    sessions: Vec<Session>,
) -> Vec<Result<CookieUpdate, StoreError>> {
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|s| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.commit(&s).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// Eight requests that loaded one session each set a distinct 60 KiB key
/// and save at once: each passes the bound on its own view, but the store
/// merges them, so only what fits lands and the others are refused with
/// `TooLarge`. The session stays within the bound and takes later writes.
pub async fn the_size_bound_holds_on_the_merged_session<H: Harness>(h: &H) {
    let rig = Rig::with(h, bounded_settings(), Ids::default()).await;
    if !rig.server_side() {
        return;
    }
    let token = rig.create("base", "0").await;
    let mut sessions = Vec::new();
    for i in 0..8 {
        let s = rig.load(Some(&token)).await;
        s.insert(format!("big{i}"), "x".repeat(60 * 1024)).unwrap();
        sessions.push(s);
    }
    let results = commit_all(&rig.manager, sessions).await;
    let landed = results.iter().filter(|r| r.is_ok()).count();
    for result in &results {
        assert!(
            matches!(result, Ok(_) | Err(StoreError::TooLarge { .. })),
            "{result:?}"
        );
    }
    assert_eq!(
        landed, 1,
        "two 60 KiB values cannot fit in 64 KiB: {results:?}"
    );
    let loaded = rig.load(Some(&token)).await;
    assert_eq!(loaded.len(), 2, "base and one big value: {loaded}");
    let id = rig.ids.last().expect("a stored session has an id");
    let Ok(Some(Loaded::Live(record))) = rig.store().unwrap().load(&id, START).await else {
        panic!("the session was not stored");
    };
    assert!(record.encoded_len() <= BOUND, "{}", record.encoded_len());
    // The session still takes a small write.
    loaded.insert("small", 1u8).unwrap();
    rig.commit(&loaded).await;
    assert_eq!(rig.len(&token).await, 3);
}

/// A session stored over the bound (by an older release, or before the
/// bound was lowered) still loads; a write that shrinks it lands, one
/// that grows it is refused.
pub async fn an_oversized_session_loads_and_can_shrink<H: Harness>(h: &H) {
    let rig = Rig::with(h, bounded_settings(), Ids::default()).await;
    let Some(store) = rig.store() else {
        return;
    };
    let token = rig.create("a", "0").await;
    let Some(id) = rig.ids.last() else {
        panic!("a stored session has an id");
    };
    // Rewritten over the bound, behind the manager's back.
    let Ok(Some(Loaded::Live(mut record))) = store.load(&id, START).await else {
        panic!("the session was not stored");
    };
    store.delete(&id, None).await.unwrap();
    for key in ["b", "c"] {
        let big = Value::encode(&"y".repeat(40 * 1024)).unwrap();
        record.data.insert(key.into(), big);
    }
    assert!(record.encoded_len() > BOUND);
    store.create(&id, &record, START + ABSOLUTE).await.unwrap();

    let s = rig.load(Some(&token)).await;
    assert_eq!(s.len(), 3, "an oversized session still loads");
    s.insert("d", "more").unwrap();
    assert!(
        matches!(s.save().await, Err(StoreError::TooLarge { .. })),
        "a write that grows it past the bound is refused"
    );
    let s = rig.load(Some(&token)).await;
    s.remove("b");
    rig.commit(&s).await;
    let s = rig.load(Some(&token)).await;
    assert_eq!(s.len(), 2, "the shrinking write landed");
    s.insert("d", "more").unwrap();
    rig.commit(&s).await;
    assert_eq!(rig.len(&token).await, 3, "and it takes writes again");
}

/// A session stored far over the bound shrinks by a smaller value
/// written over a large one, even while it stays over the bound: only a
/// write that would leave it larger than it was is refused.
pub async fn an_oversized_session_shrinks_by_a_smaller_value<H: Harness>(h: &H) {
    let rig = Rig::with(h, bounded_settings(), Ids::default()).await;
    let Some(store) = rig.store() else {
        return;
    };
    let token = rig.create("a", "0").await;
    let Some(id) = rig.ids.last() else {
        panic!("a stored session has an id");
    };
    let Ok(Some(Loaded::Live(mut record))) = store.load(&id, START).await else {
        panic!("the session was not stored");
    };
    store.delete(&id, None).await.unwrap();
    for key in ["b", "c", "e"] {
        let big = Value::encode(&"y".repeat(40 * 1024)).unwrap();
        record.data.insert(key.into(), big);
    }
    store.create(&id, &record, START + ABSOLUTE).await.unwrap();

    let s = rig.load(Some(&token)).await;
    // Two 40 KiB values stay: the request's view is still over the bound.
    s.insert("b", "small").unwrap();
    rig.commit(&s).await;
    let s = rig.load(Some(&token)).await;
    assert_eq!(s.get::<String>("b").unwrap().as_deref(), Some("small"));
    assert_eq!(s.len(), 4);
}

/// A page reads message 1 while a concurrent request, which loaded before
/// it, pushes message 2 and saves after: the next page shows message 2
/// alone. A message read once is never shown again.
pub async fn a_flash_read_is_not_shown_again<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    if !rig.server_side() {
        return;
    }
    let token = rig.create("k", "v").await;
    let s = rig.load(Some(&token)).await;
    s.flash("m1");
    rig.commit(&s).await;

    let reader = rig.load(Some(&token)).await;
    let pusher = rig.load(Some(&token)).await;
    assert_eq!(reader.flashed(FlashLevel::Info).as_deref(), Some("m1"));
    pusher.flash("m2");
    rig.commit(&reader).await;
    rig.commit(&pusher).await;

    let next = rig.load(Some(&token)).await;
    let shown: Vec<String> = next.take_flashes().into_iter().map(|f| f.message).collect();
    assert_eq!(shown, ["m2"]);
    rig.commit(&next).await;
    assert!(rig.load(Some(&token)).await.take_flashes().is_empty());
}

/// Two requests that loaded the same session each push a message: both
/// land, in the order they were pushed.
pub async fn concurrent_flashes_both_land<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    if !rig.server_side() {
        return;
    }
    let token = rig.create("k", "v").await;
    // Both load before either saves; the second a moment later.
    let first = rig.load(Some(&token)).await;
    rig.clock.advance(Duration::from_secs(1));
    let second = rig.load(Some(&token)).await;
    first.flash("one");
    second.flash_with(FlashLevel::Warning, "two");
    let results = commit_all(&rig.manager, vec![second, first]).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let next = rig.load(Some(&token)).await;
    let shown: Vec<(FlashLevel, String)> = next
        .take_flashes()
        .into_iter()
        .map(|f| (f.level, f.message))
        .collect();
    assert_eq!(
        shown,
        [
            (FlashLevel::Info, "one".to_owned()),
            (FlashLevel::Warning, "two".to_owned())
        ]
    );
}

/// A login that only binds a user and labels the session, or only sets
/// its expiry, is stored and sends its cookie: such a session is not
/// empty.
pub async fn a_login_that_only_binds_is_stored<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let s = rig.load(None).await;
    s.renew_on_login();
    s.bind_user("ada").unwrap();
    s.set_label("phone");
    let token = rig.commit_token(&s).await;
    let back = rig.load(Some(&token)).await;
    assert_eq!(back.user().as_deref(), Some("ada"));
    assert_eq!(back.label().as_deref(), Some("phone"));

    let s = rig.load(None).await;
    s.set_expiry(Expiry::BrowserSession);
    let token = rig.commit_token(&s).await;
    assert_eq!(
        rig.load(Some(&token)).await.expiry(),
        Expiry::BrowserSession
    );
}

/// A change of expiry on a stored session, without a renew, sends the
/// cookie with its new lifetime: none for a browser session, the new
/// absolute lifetime for "remember me".
pub async fn a_change_of_expiry_sends_the_cookie<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let token = rig.create("k", "v").await;
    let s = rig.load(Some(&token)).await;
    s.set_expiry(Expiry::BrowserSession);
    let token = match rig.commit(&s).await {
        CookieUpdate::Set { value, max_age } => {
            assert_eq!(max_age, None, "a browser session's cookie has no Max-Age");
            value
        }
        other => panic!("the new expiry sent no cookie: {other:?}"),
    };
    let s = rig.load(Some(&token)).await;
    let remember = Expiry::Lifetimes {
        idle: ABSOLUTE,
        absolute: ABSOLUTE * 2,
    };
    s.set_expiry(remember);
    match rig.commit(&s).await {
        CookieUpdate::Set { max_age, .. } => assert_eq!(max_age, Some(ABSOLUTE * 2)),
        other => panic!("the new expiry sent no cookie: {other:?}"),
    }
}
