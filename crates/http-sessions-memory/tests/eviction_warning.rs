//! The warning a full store logs says what it evicted: only anonymous
//! sessions through a flood of them, and signed-in users' sessions when
//! nothing anonymous was left.
#![allow(clippy::unwrap_used)]

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_sessions_core::store::{Loaded, Record, SessionId, SessionStore, UnixTime};
use http_sessions_core::{FlashLevel, seams::Clock, seams::SystemClock};
use http_sessions_memory::MemoryStore;

/// What the subscriber wrote, shared with the test.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl io::Write for Log {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        log.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        let log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&log).into_owned()
    }
}

/// Logs of this thread go to the returned `Log` until the guard drops
/// (the tests run on one thread: tokio's current-thread runtime).
fn capture() -> (Log, tracing::subscriber::DefaultGuard) {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (log, tracing::subscriber::set_default(subscriber))
}

fn id(n: u32) -> SessionId {
    let mut bytes = [3; 16];
    bytes[..4].copy_from_slice(&n.to_le_bytes());
    SessionId::from_bytes(bytes)
}

fn session(user: Option<String>, now: UnixTime) -> Record {
    let mut record = Record::empty(now, now + Duration::from_secs(1_800), 4);
    record.flash.push(FlashLevel::Info, "hello".into());
    record.user = user;
    record
}

#[tokio::test]
async fn a_flood_of_returning_visitors_warns_that_no_signed_in_user_was_evicted()
-> Result<(), Box<dyn std::error::Error>> {
    let (log, _guard) = capture();
    let store = MemoryStore::with_capacity(100).unwrap();
    let now = SystemClock.now();
    for n in 0..10 {
        let record = session(Some(format!("user-{n}")), now);
        store.create(&id(n), &record, record.expires).await?;
    }
    for n in 100..1_100 {
        let record = session(None, now);
        store.create(&id(n), &record, record.expires).await?;
        store.load(&id(n), now).await?;
    }
    for n in 0..10 {
        let loaded = store.load(&id(n), now).await?;
        assert!(matches!(loaded, Some(Loaded::Live(_))), "user {n} evicted");
    }
    let text = log.text();
    assert!(
        text.contains("no signed-in user's session was evicted"),
        "{text}"
    );
    assert!(text.contains("signed_in=0"), "{text}");
    assert!(!text.contains("logged out"), "{text}");
    Ok(())
}

#[tokio::test]
async fn a_store_full_of_signed_in_users_warns_that_users_were_logged_out()
-> Result<(), Box<dyn std::error::Error>> {
    let (log, _guard) = capture();
    let store = MemoryStore::with_capacity(10).unwrap();
    let now = SystemClock.now();
    for n in 0..11 {
        let record = session(Some(format!("user-{n}")), now);
        store.create(&id(n), &record, record.expires).await?;
    }
    let gone = store.load(&id(0), now).await?;
    assert_eq!(gone, None, "the oldest signed-in session was evicted");
    assert_eq!(store.signed_in_evictions(), 1);
    let text = log.text();
    assert!(
        text.contains("sessions bound to users were evicted and those users were logged out"),
        "{text}"
    );
    assert!(text.contains("signed_in=1"), "{text}");
    assert!(!text.contains("no signed-in"), "{text}");
    Ok(())
}
