//! The cases of a store's index of users' sessions ([`UserIndex`](http_sessions_core::store::UserIndex)): "log
//! out everywhere" is final against a client renewing in a loop and a
//! login in flight, `keep` survives it, and nothing ever ends another
//! user's session. Each case returns at once, and says so in its docs,
//! only where there is no index to test: a cookie backend, or a store
//! whose [`users`](SessionStore::users) is `None`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_sessions_core::store::{EndAll, Loaded, Record, SessionId, SessionStore, StoreError};
use http_sessions_core::{seams::CookieUpdate, seams::SessionManager};
use tokio::sync::mpsc;

use crate::{ABSOLUTE, Harness, Rig, START, fresh_id};

/// How many times the renewing client races `end_all`: each round is one
/// chance for the two to interleave differently.
const ROUNDS: usize = 8;

/// "Log out everywhere" is final against a client that renews its session
/// in a loop on another task while `end_all` runs: once it returns, the
/// client's latest token loads no session, no renew begun after it is
/// stored, and the last record the client held cannot be stored again
/// under a new id. Nothing to test without an index.
pub async fn end_all_is_final_against_a_renewing_client<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let Some(store) = rig.server_store() else {
        return;
    };
    if store.users().is_none() {
        return;
    }
    let users = rig.users();
    for round in 0..ROUNDS {
        let user = format!("renewer-{round}");
        let (token, _) = rig.login(&user, "laptop").await;
        let (renewed, mut renews) = mpsc::unbounded_channel();
        let returned = Arc::new(AtomicBool::new(false));
        let client = tokio::spawn(renew_until_refused(
            rig.manager.clone(),
            store.clone(),
            token,
            renewed,
            returned.clone(),
        ));
        // A few renews first, then end_all while the client goes on.
        for _ in 0..3 {
            renews
                .recv()
                .await
                .expect("the client stopped renewing before end_all ran");
        }
        users.end_all(&user, None).await.unwrap();
        returned.store(true, Ordering::SeqCst);
        let (latest, held) = client.await.unwrap();

        let s = rig.load(Some(&latest)).await;
        assert!(
            s.is_empty() && s.user().is_none(),
            "round {round}: the client's latest token still loads {s}"
        );
        let listed = users.list(&user).await.unwrap();
        assert!(listed.is_empty(), "round {round}: still listed: {listed:?}");
        // A further renew of what the client held: its binding is of the
        // ended generation.
        let id = fresh_id();
        let result = store.create(&id, &held, START + ABSOLUTE).await;
        assert!(
            matches!(result, Err(StoreError::Gone)),
            "round {round}: a renew of an ended session was answered {result:?}"
        );
        assert_eq!(store.load(&id, rig.manager.now()).await.unwrap(), None);
    }
}

/// The client of [`end_all_is_final_against_a_renewing_client`]: loads its
/// session, renews it and takes the new token, until a load finds nothing
/// or a renew is refused; sends `()` on `renewed` after each renew. Returns
/// its latest token and the last record it loaded.
async fn renew_until_refused(
    manager: Arc<SessionManager>,
    store: Arc<dyn SessionStore>,
    mut token: String,
    renewed: mpsc::UnboundedSender<()>,
    returned: Arc<AtomicBool>,
) -> (String, Record) {
    let mut held = None;
    loop {
        let after = returned.load(Ordering::SeqCst);
        let s = manager.load_cookie(Some(&token)).await.unwrap();
        let Some(id) = s.id() else {
            break;
        };
        assert!(!after, "a session loaded after end_all returned");
        let id = SessionId::from_base64(&id).unwrap();
        if let Some(Loaded::Live(record)) = store.load(&id, manager.now()).await.unwrap() {
            held = Some(record);
        }
        s.renew();
        match manager.commit(&s).await {
            Ok(CookieUpdate::Set { value, .. }) => {
                token = value;
                // The test stops listening once it has seen a few.
                let _ = renewed.send(());
            }
            Err(StoreError::Gone) => break,
            other => panic!("a renew was answered {other:?}"),
        }
    }
    (token, held.expect("the client loaded its session once"))
}

/// A login under way while `end_all` runs (the session loaded anonymous,
/// bound, and committed after `end_all` returned) is refused, or stored
/// ended: it never loads as the user's session; here for a user signed in
/// elsewhere since before. A login after `end_all` is of the new
/// generation and works. Nothing to test without an index.
pub async fn a_login_in_flight_is_refused<H: Harness>(h: &H) {
    login_in_flight(h, "judy", true).await;
}

/// As [`a_login_in_flight_is_refused`], for a user with no session stored
/// before: `end_all` must remember the user's generation even so (an
/// administrator's "log out everywhere" after a password reset, while a
/// login with the old password is under way).
pub async fn a_first_login_in_flight_is_refused<H: Harness>(h: &H) {
    login_in_flight(h, "ivan", false).await;
}

/// The login-in-flight cases: `signed_in`, `user` has a session already.
async fn login_in_flight<H: Harness>(h: &H, user: &str, signed_in: bool) {
    let rig = Rig::new(h).await;
    if rig.index().is_none() {
        return;
    }
    let users = rig.users();
    let earlier = match signed_in {
        true => Some(rig.login(user, "laptop").await.0),
        false => None,
    };
    rig.clock.advance(Duration::from_secs(5));
    let login = rig.load(None).await;
    login.bind_user(user).unwrap();
    login.set_label("phone");
    login.insert("k", "v").unwrap();
    rig.clock.advance(Duration::from_secs(1));
    users.end_all(user, None).await.unwrap();
    match rig.manager.commit(&login).await {
        Err(StoreError::Gone) => {}
        Ok(CookieUpdate::Set { value, .. }) => {
            let s = rig.load(Some(&value)).await;
            assert!(
                s.is_empty() && s.user().is_none(),
                "{user}: a login in flight during end_all was stored live: {s}"
            );
        }
        other => panic!("{user}: a login in flight was answered {other:?}"),
    }
    assert!(users.list(user).await.unwrap().is_empty(), "{user}");
    if let Some(earlier) = earlier {
        assert_eq!(rig.len(&earlier).await, 0, "{user}: the earlier session");
    }

    // The next second's login is of the new generation.
    rig.clock.advance(Duration::from_secs(1));
    let (after, _) = rig.login(user, "desktop").await;
    assert_eq!(rig.len(&after).await, 1, "{user}: a login after end_all");
    assert_eq!(users.list(user).await.unwrap().len(), 1, "{user}");
}

/// At the store: once `end_all` has run, a `create` of a new id with a
/// record of the ended generation (a renew, as it loaded the record) is
/// `Gone` and stores nothing, and so is an `update` that binds another
/// session to the user with it. Nothing to test without an index.
pub async fn a_renew_of_an_ended_generation_is_refused<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let Some(store) = rig.server_store() else {
        return;
    };
    let Some(index) = store.users() else {
        return;
    };
    let old = fresh_id();
    store
        .create(&old, &crate::bound("kate", "k"), START + ABSOLUTE)
        .await
        .unwrap();
    let Some(Loaded::Live(loaded)) = store.load(&old, START).await.unwrap() else {
        panic!("the bound session was not stored");
    };
    assert_ne!(loaded.generation, 0, "a stored binding has a generation");
    assert_eq!(loaded.user.as_deref(), Some("kate"));
    let end = EndAll {
        keep: None,
        now: START,
        floor: START.as_secs() * 1000 + 1,
        remember_until: START + ABSOLUTE,
    };
    assert_eq!(index.end_all("kate", end).await.unwrap().sessions, 1);
    assert_eq!(store.load(&old, START).await.unwrap(), None, "ended");

    let renewed = fresh_id();
    let result = store.create(&renewed, &loaded, START + ABSOLUTE).await;
    assert!(matches!(result, Err(StoreError::Gone)), "{result:?}");
    assert_eq!(store.load(&renewed, START).await.unwrap(), None);

    // An anonymous session bound to the user with the old generation.
    let other = fresh_id();
    let (anonymous, _) = crate::one_value("k");
    store
        .create(&other, &anonymous, START + ABSOLUTE)
        .await
        .unwrap();
    let binding = http_sessions_core::store::Changes {
        binding: true,
        ..Default::default()
    };
    let update = crate::update_of(&loaded, &binding, None);
    let result = store.update(&other, update).await;
    assert!(matches!(result, Err(StoreError::Gone)), "{result:?}");
    let Some(Loaded::Live(after)) = store.load(&other, START).await.unwrap() else {
        panic!("the refused update ended the session");
    };
    assert_eq!(after.user, None, "the refused binding was written");
    assert!(index.list("kate", START).await.unwrap().is_empty());
}

/// A session bound to A and then to B is B's alone: ending it as A's does
/// nothing, and A's `end_all` leaves it live and listed for B. Nothing to
/// test without an index.
pub async fn end_never_crosses_users<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    if rig.index().is_none() {
        return;
    }
    let users = rig.users();
    let (token, id) = rig.login("alice", "laptop").await;
    let s = rig.load(Some(&token)).await;
    s.bind_user("bob").unwrap();
    let token = rig.commit_kept(&s, token).await;
    let id = rig.load(Some(&token)).await.id().unwrap_or(id);

    assert!(!users.end("alice", &id).await.unwrap(), "ended as alice's");
    assert_eq!(users.end_all("alice", None).await.unwrap(), 0);
    let s = rig.load(Some(&token)).await;
    assert_eq!(s.user().as_deref(), Some("bob"), "bob's session ended: {s}");
    let listed = users.list("bob").await.unwrap();
    assert_eq!(
        listed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [id.as_str()]
    );
    assert!(users.list("alice").await.unwrap().is_empty());
}

/// The session `end_all` keeps moves to the new generation: the request
/// that asked renews it at once (a password change that also takes a new
/// id), a later request renews it again, and it stays listed, alone.
/// Nothing to test without an index.
pub async fn keep_survives_end_all_and_can_renew<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    if rig.index().is_none() {
        return;
    }
    let users = rig.users();
    let (laptop, laptop_id) = rig.login("mallory", "laptop").await;
    let (phone, _) = rig.login("mallory", "phone").await;
    rig.clock.advance(Duration::from_secs(2));

    // "Log out other devices" from the laptop, which then saves.
    let current = rig.load(Some(&laptop)).await;
    let keep = current.id().unwrap();
    assert_eq!(keep, laptop_id);
    assert_eq!(users.end_all("mallory", Some(&current)).await.unwrap(), 1);
    current.insert("devices", "logged out").unwrap();
    current.renew();
    let laptop = rig.commit_token(&current).await;
    assert_eq!(rig.len(&phone).await, 0, "the phone is logged out");

    // A later request renews it again.
    rig.clock.advance(Duration::from_secs(2));
    let later = rig.load(Some(&laptop)).await;
    assert_eq!(later.user().as_deref(), Some("mallory"), "kept: {later}");
    later.renew();
    let laptop = rig.commit_token(&later).await;
    let id = rig.load(Some(&laptop)).await.id().unwrap();
    let listed = users.list("mallory").await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|i| (i.id.as_str(), i.label.as_deref()))
            .collect::<Vec<_>>(),
        [(id.as_str(), Some("laptop"))]
    );
}

/// What a store's index lists follows its writes: a bound session is
/// listed after its `create`, and leaves the list with a `delete`, a
/// `retire` and an update that empties it. Nothing to test without an
/// index.
pub async fn the_index_follows_the_writes<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let Some(store) = rig.server_store() else {
        return;
    };
    let Some(index) = store.users() else {
        return;
    };
    let listed = |ids: Vec<(SessionId, Record)>| ids.into_iter().map(|(id, _)| id).collect();
    let record = crate::bound("niaj", "k");
    let (deleted, retired, emptied) = (fresh_id(), fresh_id(), fresh_id());
    for id in [deleted, retired, emptied] {
        store.create(&id, &record, START + ABSOLUTE).await.unwrap();
    }
    let mut all: Vec<SessionId> = listed(index.list("niaj", START).await.unwrap());
    all.sort_by_key(SessionId::to_base64);
    let mut expected = vec![deleted, retired, emptied];
    expected.sort_by_key(SessionId::to_base64);
    assert_eq!(all, expected, "listed after create");

    store.delete(&deleted, Some("niaj")).await.unwrap();
    store
        .retire(
            &retired,
            START,
            START + Duration::from_secs(60),
            Some("niaj"),
        )
        .await
        .unwrap();
    let Some(Loaded::Live(stored)) = store.load(&emptied, START).await.unwrap() else {
        panic!("the session was not stored");
    };
    // Its last value removed, its user and label gone: nothing is left.
    let mut empty = stored.clone();
    empty.data.clear();
    empty.user = None;
    empty.label = None;
    empty.generation = 0;
    let removed = http_sessions_core::store::Changes {
        keys: vec!["k".into()],
        binding: true,
        ..Default::default()
    };
    let answer = store
        .update(&emptied, crate::update_of(&empty, &removed, Some("niaj")))
        .await
        .unwrap();
    assert_eq!(answer, http_sessions_core::store::Updated::Emptied);
    let left: Vec<SessionId> = listed(index.list("niaj", START).await.unwrap());
    assert!(left.is_empty(), "still listed: {left:?}");
}
