//! Tests of `settings`: building, the defaults, and every setting read back.

use std::time::Duration;

use super::*;
use crate::config::cookie::SameSite;
use crate::config::keys::Key;
use crate::session::flash::FlashLevel;
use crate::session::time::{ManualClock, UnixTime};

/// A builder with a fixed key, so that only what a test sets can fail.
pub(crate) fn base() -> SettingsBuilder {
    Settings::builder().with_keyring(Keyring::new(Key::from_bytes(&[1; 32]).unwrap()).unwrap())
}

/// `builder` is refused with the one out-of-range kind, naming
/// `setting` and `value`, in a message that says what to change.
pub(crate) fn assert_out_of_range(builder: SettingsBuilder, setting: &str, value: &str) {
    let error = builder.build().unwrap_err();
    let message = error.to_string();
    match &error {
        ConfigError::OutOfRange {
            setting: named,
            value: refused,
            allowed,
        } => {
            assert_eq!((*named, refused.as_str()), (setting, value), "{message}");
            for part in [setting, value, allowed] {
                assert!(message.contains(part), "{part:?} missing from {message:?}");
            }
        }
        other => panic!("{setting} = {value}: not OutOfRange but {other:?}"),
    }
}

#[test]
fn every_setting_reads_back_as_it_was_given() {
    let clock = ManualClock::new(UnixTime::from_secs(5_000));
    let keyring = Keyring::new(Key::from_bytes(&[7; 32]).unwrap()).unwrap();
    let key_id = keyring.current().id();
    let s = Settings::builder()
        .with_keyring(keyring)
        .with_cookie_name("sid")
        .with_cookie_path("/app")
        .with_cookie_domain("example.com")
        .with_same_site(SameSite::Strict)
        .with_secure(true)
        .with_http_only(false)
        .with_idle_timeout(Duration::from_secs(600))
        .with_absolute_lifetime(Duration::from_secs(7_200))
        .with_refresh_fraction(0.5)
        .with_max_expiry(Duration::from_secs(86_400))
        .with_store_timeout(Duration::from_millis(750))
        .with_max_session_size(4_096)
        .with_flash_capacity(3)
        .with_flash_min_level(FlashLevel::Warning)
        .with_save_on_server_error(true)
        .with_clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(s.keyring().current().id(), key_id);
    assert_eq!(
        s.cookie(),
        &CookieSettings {
            name: "sid".into(),
            path: "/app".into(),
            domain: Some("example.com".into()),
            same_site: SameSite::Strict,
            secure: true,
            http_only: false,
        }
    );
    assert_eq!(s.idle_timeout(), Duration::from_secs(600));
    assert_eq!(s.absolute_lifetime(), Duration::from_secs(7_200));
    assert_eq!(s.refresh_fraction(), 0.5);
    assert_eq!(s.max_expiry(), Duration::from_secs(86_400));
    assert_eq!(s.store_timeout(), Duration::from_millis(750));
    assert_eq!(s.max_session_size(), 4_096);
    assert_eq!(s.flash_capacity(), 3);
    assert_eq!(s.flash_min_level(), FlashLevel::Warning);
    assert!(s.save_on_server_error());
    clock.advance(Duration::from_secs(1));
    assert_eq!(s.clock().now(), UnixTime::from_secs(5_001));
    // A clone shares the clock and keeps every value.
    let clone = s.clone();
    assert_eq!(clone.cookie(), s.cookie());
    assert_eq!(
        (clone.lifetimes, clone.limits),
        (s.lifetimes, s.limits),
        "a clone keeps every value"
    );
}

#[test]
fn without_a_clock_the_system_tells_the_time() {
    let s = base().build().unwrap();
    let system = SystemClock.now();
    assert!(s.clock().now().as_secs().abs_diff(system.as_secs()) <= 1);
}
