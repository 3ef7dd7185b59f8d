//! "Log out everywhere" on a `MemoryStore` under real concurrency: a
//! `SessionManager` and `UserSessions` on a multi-threaded runtime, with
//! `end_all` racing a client that renews in a loop, logins in flight, and
//! a session being bound to another user. Tasks meet at barriers and
//! channels, never sleeps; each case runs many rounds, each one more
//! chance for the two sides to interleave differently.
// The helpers below are test code too.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_sessions_core::store::{StoreError, UnixTime};
use http_sessions_core::{
    Key, Keyring, Session, Settings, UserSessions, seams::Backend, seams::CookieUpdate,
    seams::ManualClock, seams::SessionManager,
};
use http_sessions_memory::MemoryStore;
use tokio::sync::{Barrier, oneshot};

const ROUNDS: usize = 20;
const START: UnixTime = UnixTime::from_secs(1_700_000_000);

/// A manager on a fresh store and a manual clock, and its users' sessions.
struct Rig {
    manager: Arc<SessionManager>,
    users: UserSessions,
    clock: ManualClock,
    store: MemoryStore,
}

impl Rig {
    fn new() -> Self {
        let clock = ManualClock::new(START);
        let settings = Settings::builder()
            .with_keyring(Keyring::new(Key::from_bytes(&[7; 32]).unwrap()).unwrap())
            .with_clock(clock.clone())
            .build()
            .unwrap();
        let store = MemoryStore::new();
        let manager = Arc::new(SessionManager::new(
            Backend::server(store.clone()),
            &settings,
        ));
        Self {
            users: UserSessions::new(manager.clone()),
            manager,
            clock,
            store,
        }
    }

    async fn load(&self, token: Option<&str>) -> Session {
        self.manager.load_cookie(token).await.unwrap()
    }

    /// A new session of `user` with one value; its token.
    async fn login(&self, user: &str) -> String {
        let s = self.load(None).await;
        s.bind_user(user).unwrap();
        s.insert("k", "v").unwrap();
        match self.manager.commit(&s).await.unwrap() {
            CookieUpdate::Set { value, .. } => value,
            other => panic!("a login set no cookie: {other:?}"),
        }
    }

    /// Whether `token` loads a session bound to `user`.
    async fn is_users(&self, token: &str, user: &str) -> bool {
        self.load(Some(token)).await.user().as_deref() == Some(user)
    }
}

/// Renews the session of `token` until a load finds it ended or a renew
/// is refused; waits at `started` after its second renew. Returns the
/// token it holds last. Panics if it loads the session once `returned`
/// was set before the load began.
async fn renew_until_ended(
    manager: Arc<SessionManager>,
    mut token: String,
    started: Arc<Barrier>,
    returned: Arc<AtomicBool>,
) -> String {
    let mut renews = 0;
    loop {
        let after = returned.load(Ordering::SeqCst);
        let s = manager.load_cookie(Some(&token)).await.unwrap();
        if s.user().is_none() {
            assert!(s.is_empty(), "an ended session kept its values: {s}");
            return token;
        }
        assert!(!after, "a session loaded after end_all returned: {s}");
        s.renew();
        match manager.commit(&s).await {
            Ok(CookieUpdate::Set { value, .. }) => token = value,
            Err(StoreError::Gone) => return token,
            other => panic!("a renew was answered {other:?}"),
        }
        renews += 1;
        if renews == 2 {
            started.wait().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_all_is_final_against_a_client_renewing_in_a_loop() {
    for round in 0..ROUNDS {
        let rig = Rig::new();
        let token = rig.login("ada").await;
        let other = rig.login("ada").await;
        let started = Arc::new(Barrier::new(2));
        let returned = Arc::new(AtomicBool::new(false));
        let client = tokio::spawn(renew_until_ended(
            rig.manager.clone(),
            token,
            started.clone(),
            returned.clone(),
        ));
        // The client has renewed twice and goes on while end_all runs.
        started.wait().await;
        let ended = rig.users.end_all("ada", None).await.unwrap();
        returned.store(true, Ordering::SeqCst);
        let latest = client.await.unwrap();

        // The other session and the client's, twice if end_all ran between
        // a renew's create and its retire.
        assert!((2..=3).contains(&ended), "round {round}: ended {ended}");
        let s = rig.load(Some(&latest)).await;
        assert!(
            s.is_empty() && s.user().is_none(),
            "round {round}: the client's next request found {s}"
        );
        assert!(!rig.is_users(&other, "ada").await, "round {round}");
        assert!(rig.users.list("ada").await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_in_flight_during_end_all_is_refused_or_unusable() {
    const LOGINS: usize = 4;
    for round in 0..ROUNDS {
        let rig = Arc::new(Rig::new());
        // Every other round the user is signed in elsewhere already.
        let earlier = match round % 2 {
            0 => Some(rig.login("ada").await),
            _ => None,
        };
        let bound = Arc::new(Barrier::new(LOGINS + 1));
        let mut logins = Vec::new();
        let mut go = Vec::new();
        for _ in 0..LOGINS {
            let (send, ended) = oneshot::channel::<()>();
            go.push(send);
            let (rig, bound) = (rig.clone(), bound.clone());
            logins.push(tokio::spawn(async move {
                let s = rig.load(None).await;
                s.bind_user("ada").unwrap();
                s.insert("k", "v").unwrap();
                bound.wait().await;
                ended.await.unwrap();
                rig.manager.commit(&s).await
            }));
        }
        // Loaded and bound before end_all began, committed after it
        // returned.
        bound.wait().await;
        rig.clock.advance(Duration::from_secs(1));
        rig.users.end_all("ada", None).await.unwrap();
        for send in go {
            send.send(()).unwrap();
        }
        for login in logins {
            match login.await.unwrap() {
                Err(StoreError::Gone) => {}
                Ok(CookieUpdate::Set { value, .. }) => assert!(
                    !rig.is_users(&value, "ada").await,
                    "round {round}: a login in flight was stored live"
                ),
                other => panic!("round {round}: a login in flight was answered {other:?}"),
            }
        }
        assert!(rig.users.list("ada").await.unwrap().is_empty());
        if let Some(earlier) = earlier {
            assert!(!rig.is_users(&earlier, "ada").await, "round {round}");
        }
        assert_eq!(
            rig.store.len(),
            0,
            "round {round}: a refused login was stored"
        );
        // A login after it works.
        rig.clock.advance(Duration::from_secs(1));
        let after = rig.login("ada").await;
        assert!(rig.is_users(&after, "ada").await, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_rebound_during_end_all_of_its_old_user_is_never_ended() {
    for round in 0..ROUNDS {
        let rig = Arc::new(Rig::new());
        let moving = rig.login("alice").await;
        let alices = rig.login("alice").await;
        let bobs = rig.login("bob").await;
        let loaded = Arc::new(Barrier::new(2));
        let rebind = tokio::spawn({
            let (rig, loaded, moving) = (rig.clone(), loaded.clone(), moving.clone());
            async move {
                let s = rig.load(Some(&moving)).await;
                loaded.wait().await;
                s.bind_user("bob").unwrap();
                rig.manager.commit(&s).await
            }
        });
        loaded.wait().await;
        let ended = rig.users.end_all("alice", None).await.unwrap();
        match rebind.await.unwrap() {
            // Rebound first: bob's now, and alice's end_all left it alone.
            Ok(_) => {
                assert_eq!(ended, 1, "round {round}");
                assert!(rig.is_users(&moving, "bob").await, "round {round}");
                assert_eq!(rig.users.list("bob").await.unwrap().len(), 2);
            }
            // Ended as alice's first: the rebind found it gone.
            Err(StoreError::Gone) => {
                assert_eq!(ended, 2, "round {round}");
                assert!(rig.load(Some(&moving)).await.is_empty(), "round {round}");
                assert_eq!(rig.users.list("bob").await.unwrap().len(), 1);
            }
            Err(other) => panic!("round {round}: the rebind was answered {other}"),
        }
        assert!(!rig.is_users(&alices, "alice").await, "round {round}");
        assert!(rig.is_users(&bobs, "bob").await, "round {round}");
        assert!(rig.users.list("alice").await.unwrap().is_empty());
    }
}
