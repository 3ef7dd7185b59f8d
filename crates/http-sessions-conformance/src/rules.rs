//! The rules of one stored session, asked of the store directly (the
//! rules `Entry` keeps in the core): a create never overwrites, an update
//! of a dead id is `Gone` and writes nothing, and a retired id loads as
//! renewed until its time. Server-side stores only: a cookie backend has
//! no store to ask.

use std::time::Duration;

use http_sessions_core::store::{Loaded, StoreError, Updated};

use crate::{ABSOLUTE, Harness, IDLE, Rig, START, fresh_id, one_value, update_of};

/// A `create` on an id that holds anything, a live session or a renewed
/// id's marker, is `Exists` and changes neither.
pub async fn create_never_overwrites<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let Some(store) = rig.server_store() else {
        return;
    };
    let (first, _) = one_value("first");
    let (second, _) = one_value("second");
    let live = fresh_id();
    store.create(&live, &first, START + ABSOLUTE).await.unwrap();
    let result = store.create(&live, &second, START + ABSOLUTE).await;
    assert!(matches!(result, Err(StoreError::Exists)), "{result:?}");
    assert_eq!(
        store.load(&live, START).await.unwrap(),
        Some(Loaded::Live(first.clone())),
        "the live session was overwritten"
    );

    let renewed = fresh_id();
    store
        .create(&renewed, &first, START + ABSOLUTE)
        .await
        .unwrap();
    store
        .retire(&renewed, START, START + Duration::from_secs(60), None)
        .await
        .unwrap();
    let result = store.create(&renewed, &second, START + ABSOLUTE).await;
    assert!(matches!(result, Err(StoreError::Exists)), "{result:?}");
    assert_eq!(
        store.load(&renewed, START).await.unwrap(),
        Some(Loaded::Renewed),
        "the marker was overwritten"
    );
}

/// An `update` of an id holding no live session (expired at the update's
/// `now`, renewed, or never stored) is `Gone` and writes nothing: no
/// expiry extended, no marker replaced, no session made.
pub async fn update_of_a_dead_id_is_gone<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let Some(store) = rig.server_store() else {
        return;
    };
    let (record, changes) = one_value("k");
    let extend = |now| {
        let mut update = update_of(&record, &changes, None);
        update.now = now;
        update.expires = now + IDLE;
        update
    };

    let expired = fresh_id();
    store
        .create(&expired, &record, START + ABSOLUTE)
        .await
        .unwrap();
    let result = store.update(&expired, extend(START + IDLE)).await;
    assert!(
        matches!(result, Err(StoreError::Gone)),
        "expired: {result:?}"
    );
    let found = store.load(&expired, START + IDLE).await.unwrap();
    assert!(
        matches!(found, None | Some(Loaded::Expired(_))),
        "the expired session was extended: {found:?}"
    );

    let renewed = fresh_id();
    store
        .create(&renewed, &record, START + ABSOLUTE)
        .await
        .unwrap();
    store
        .retire(&renewed, START, START + Duration::from_secs(60), None)
        .await
        .unwrap();
    let result = store.update(&renewed, extend(START)).await;
    assert!(
        matches!(result, Err(StoreError::Gone)),
        "renewed: {result:?}"
    );
    assert_eq!(
        store.load(&renewed, START).await.unwrap(),
        Some(Loaded::Renewed)
    );

    let absent = fresh_id();
    let result = store.update(&absent, extend(START)).await;
    assert!(
        matches!(result, Err(StoreError::Gone)),
        "absent: {result:?}"
    );
    assert_eq!(store.load(&absent, START).await.unwrap(), None);
}

/// A retired id loads as `Renewed` until the time given, then as nothing;
/// a retire of an id with no live session is `Gone`.
pub async fn retire_leaves_a_marker_until_its_time<H: Harness>(h: &H) {
    let rig = Rig::new(h).await;
    let Some(store) = rig.server_store() else {
        return;
    };
    let (record, changes) = one_value("k");
    let id = fresh_id();
    store.create(&id, &record, START + ABSOLUTE).await.unwrap();
    let until = START + Duration::from_secs(60);
    store.retire(&id, START, until, None).await.unwrap();
    for at in [START, START + Duration::from_secs(59)] {
        assert_eq!(
            store.load(&id, at).await.unwrap(),
            Some(Loaded::Renewed),
            "at {at:?}"
        );
    }
    assert_eq!(store.load(&id, until).await.unwrap(), None, "past its time");
    let again = store.retire(&id, START, until, None).await;
    assert!(matches!(again, Err(StoreError::Gone)), "{again:?}");
    let absent = store.retire(&fresh_id(), START, until, None).await;
    assert!(matches!(absent, Err(StoreError::Gone)), "{absent:?}");
    // And an update of a live one still lands.
    let live = fresh_id();
    store
        .create(&live, &record, START + ABSOLUTE)
        .await
        .unwrap();
    let answer = store
        .update(&live, update_of(&record, &changes, None))
        .await;
    assert_eq!(answer.unwrap(), Updated::Kept);
}
