//! The cases of the cap on sessions per user
//! ([`with_max_sessions_per_user`](http_sessions_core::SettingsBuilder::with_max_sessions_per_user)):
//! a login past it ends the least recently used session, or is refused,
//! and concurrent logins of one user leave no more than the cap. A
//! backend without an index of users' sessions refuses a capped binding
//! as unsupported, which the cases check instead.

use std::collections::HashSet;
use std::time::Duration;

use http_sessions_core::store::StoreError;
use http_sessions_core::{OverCap, SettingsBuilder};

use crate::{Harness, Ids, Rig, keyring, settings_with};

/// How many logins of one user run at once.
const LOGINS: usize = 8;

fn capped(max: usize, over: OverCap) -> SettingsBuilder {
    settings_with(keyring(1))
        .with_max_sessions_per_user(max)
        .with_over_cap(over)
}

/// A login of `user` through `rig`'s manager: the commit's result, and the
/// session's token if it stored one.
async fn try_login<H: Harness>(
    rig: &Rig<'_, H>,
    user: &str,
    label: &str,
) -> Result<Option<String>, StoreError> {
    let s = rig.load(None).await;
    s.renew_on_login();
    s.bind_user(user).unwrap();
    s.set_label(label);
    s.insert("k", "v").unwrap();
    match rig.manager.commit(&s).await? {
        http_sessions_core::seams::CookieUpdate::Set { value, .. } => Ok(Some(value)),
        _ => Ok(None),
    }
}

/// Without an index, a capped binding fails as unsupported, and nothing
/// is stored; true if so (the case has nothing more to test).
async fn without_index<H: Harness>(rig: &Rig<'_, H>) -> bool {
    if rig.index().is_some() {
        return false;
    }
    let refused = try_login(rig, "ada", "laptop").await;
    assert!(
        matches!(refused, Err(StoreError::Unsupported(_))),
        "a capped binding without an index must be refused as unsupported, got {refused:?}"
    );
    true
}

/// The labels of `user`'s live sessions.
async fn labels<H: Harness>(rig: &Rig<'_, H>, user: &str) -> HashSet<String> {
    let listed = rig.users().list(user).await.unwrap();
    listed.into_iter().filter_map(|info| info.label).collect()
}

/// With a cap of 2, a third login ends the session used least recently,
/// which need not be the oldest: the first session, used again, stays.
pub async fn cap_ends_the_least_recently_used_session<H: Harness>(h: &H) {
    let rig = Rig::with(h, capped(2, OverCap::EndLeastRecent), Ids::default()).await;
    if without_index(&rig).await {
        return;
    }
    let step = Duration::from_secs(200);
    let laptop = try_login(&rig, "ada", "laptop").await.unwrap().unwrap();
    rig.clock.advance(step);
    let phone = try_login(&rig, "ada", "phone").await.unwrap().unwrap();
    rig.clock.advance(step);
    // The laptop is used again, past the refresh fraction: it is now the
    // more recent of the two.
    let s = rig.load(Some(&laptop)).await;
    assert_eq!(s.len(), 1);
    let laptop = rig.commit_kept(&s, laptop).await;
    rig.clock.advance(step);
    let tablet = try_login(&rig, "ada", "tablet").await.unwrap().unwrap();

    let expected: HashSet<String> = ["laptop".into(), "tablet".into()].into();
    assert_eq!(labels(&rig, "ada").await, expected);
    assert_eq!(
        rig.len(&phone).await,
        0,
        "the least recently used session lives on"
    );
    assert_eq!(rig.len(&laptop).await, 1);
    assert_eq!(rig.len(&tablet).await, 1);
}

/// With [`OverCap::Refuse`], a login past the cap fails with
/// [`StoreError::TooManySessions`] and leaves the user's sessions as they
/// were; once one of them ends, a login works again.
pub async fn cap_refuses_a_new_binding_when_set_to<H: Harness>(h: &H) {
    let rig = Rig::with(h, capped(1, OverCap::Refuse), Ids::default()).await;
    if without_index(&rig).await {
        return;
    }
    let laptop = try_login(&rig, "ada", "laptop").await.unwrap().unwrap();
    let refused = try_login(&rig, "ada", "phone").await;
    assert!(
        matches!(refused, Err(StoreError::TooManySessions { limit: 1 })),
        "a login past the cap must be refused, got {refused:?}"
    );
    assert_eq!(labels(&rig, "ada").await, ["laptop".to_owned()].into());
    assert_eq!(rig.len(&laptop).await, 1);
    // Another user is not counted against ada's cap.
    assert!(try_login(&rig, "grace", "phone").await.unwrap().is_some());

    let s = rig.load(Some(&laptop)).await;
    s.destroy();
    rig.commit(&s).await;
    let phone = try_login(&rig, "ada", "phone").await.unwrap().unwrap();
    assert_eq!(rig.len(&phone).await, 1);
    assert_eq!(labels(&rig, "ada").await, ["phone".to_owned()].into());
}

/// Many logins of one user at once, on two threads, with either setting:
/// exactly the cap's number of sessions survive, each of a login that
/// answered success, and every other login either ended or was refused.
pub async fn cap_holds_under_concurrent_logins<H: Harness>(h: &H) {
    for over in [OverCap::EndLeastRecent, OverCap::Refuse] {
        let rig = Rig::with(h, capped(2, over), Ids::default()).await;
        if without_index(&rig).await {
            return;
        }
        // Sessions from before: the cap counts them too.
        try_login(&rig, "ada", "old").await.unwrap().unwrap();
        rig.clock.advance(Duration::from_secs(1));
        let logins = (0..LOGINS).map(|n| {
            let manager = rig.manager.clone();
            tokio::spawn(async move {
                let s = manager.load_cookie(None).await.unwrap();
                s.renew_on_login();
                s.bind_user("ada").unwrap();
                s.set_label(format!("device {n}"));
                s.insert("k", n).unwrap();
                manager.commit(&s).await
            })
        });
        let mut answered = Vec::new();
        for login in logins.collect::<Vec<_>>() {
            answered.push(login.await.unwrap());
        }
        for result in &answered {
            assert!(
                matches!(
                    result,
                    Ok(_) | Err(StoreError::Gone | StoreError::TooManySessions { .. })
                ),
                "{over:?}: a login failed otherwise: {result:?}"
            );
        }
        let live = labels(&rig, "ada").await;
        assert_eq!(live.len(), 2, "{over:?}: {live:?} survive a cap of 2");
        let succeeded = answered.iter().filter(|r| r.is_ok()).count();
        assert!(succeeded >= 1, "{over:?}: no login answered success");
        for token in answered.iter().filter_map(|r| match r {
            Ok(http_sessions_core::seams::CookieUpdate::Set { value, .. }) => Some(value),
            _ => None,
        }) {
            // A session that survived is one of the live ones; the others
            // load as none.
            let s = rig.load(Some(token)).await;
            let label = s.label();
            assert!(
                label.is_none() || label.as_ref().is_some_and(|l| live.contains(l)),
                "{over:?}: session {label:?} outlived the cap"
            );
        }
    }
}
