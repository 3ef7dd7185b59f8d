//! Tests of `limits`: the settings it checks, through the builder.

use std::time::Duration;

use crate::config::settings::Settings;
use crate::config::settings::tests::{assert_out_of_range, base};

#[test]
fn every_out_of_range_limit_is_refused_alike() {
    for timeout in [
        Duration::ZERO,
        Settings::MAX_STORE_TIMEOUT + Duration::from_nanos(1),
        Duration::MAX,
    ] {
        assert_out_of_range(
            base().with_store_timeout(timeout),
            "SettingsBuilder::with_store_timeout",
            &format!("{timeout:?}"),
        );
    }
    for size in [0, 1, 1023] {
        assert_out_of_range(
            base().with_max_session_size(size),
            "SettingsBuilder::with_max_session_size",
            &size.to_string(),
        );
    }
    assert_out_of_range(
        base().with_flash_capacity(0),
        "SettingsBuilder::with_flash_capacity",
        "0",
    );
}

#[test]
fn each_limit_accepts_its_bounds_and_has_a_default() {
    let s = base().build().unwrap();
    assert_eq!(s.store_timeout(), Settings::DEFAULT_STORE_TIMEOUT);
    assert_eq!(s.max_session_size(), Settings::DEFAULT_MAX_SESSION_SIZE);
    assert_eq!(s.flash_capacity(), crate::store::DEFAULT_FLASH_CAPACITY);
    let s = base()
        .with_store_timeout(Duration::from_nanos(1))
        .with_max_session_size(1024)
        .with_flash_capacity(1)
        .build()
        .unwrap();
    assert_eq!(s.store_timeout(), Duration::from_nanos(1));
    assert_eq!(s.max_session_size(), 1024);
    assert_eq!(s.flash_capacity(), 1);
    let longest = base().with_store_timeout(Settings::MAX_STORE_TIMEOUT);
    assert!(longest.build().is_ok());
}
