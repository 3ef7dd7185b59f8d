//! Tests of `lifetimes`: the settings it checks, through the builder.

use std::time::Duration;

use crate::config::settings::tests::{assert_out_of_range, base};
use crate::config::settings::{Settings, SettingsBuilder};

#[test]
fn every_out_of_range_lifetime_is_refused_alike() {
    let half_a_second = Duration::from_millis(500);
    let over = Settings::MAX_LIFETIME + Duration::from_secs(1);
    type Set = fn(SettingsBuilder, Duration) -> SettingsBuilder;
    let cases: [(&str, Set); 3] = [
        (
            "SettingsBuilder::with_idle_timeout",
            SettingsBuilder::with_idle_timeout,
        ),
        (
            "SettingsBuilder::with_absolute_lifetime",
            SettingsBuilder::with_absolute_lifetime,
        ),
        (
            "SettingsBuilder::with_max_expiry",
            SettingsBuilder::with_max_expiry,
        ),
    ];
    for (setting, set) in cases {
        for value in [Duration::ZERO, half_a_second, over, Duration::MAX] {
            assert_out_of_range(set(base(), value), setting, &format!("{value:?}"));
        }
        assert!(set(base(), Duration::from_secs(1)).build().is_ok());
        assert!(set(base(), Settings::MAX_LIFETIME).build().is_ok());
    }
    for fraction in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
        assert_out_of_range(
            base().with_refresh_fraction(fraction),
            "SettingsBuilder::with_refresh_fraction",
            &format!("{fraction:?}"),
        );
    }
    for fraction in [0.0, 1.0] {
        assert!(base().with_refresh_fraction(fraction).build().is_ok());
    }
}

#[test]
fn the_bounds_keep_the_arithmetic_in_range() {
    let s = base()
        .with_store_timeout(Settings::MAX_STORE_TIMEOUT)
        .with_idle_timeout(Settings::MAX_LIFETIME)
        .with_absolute_lifetime(Settings::MAX_LIFETIME)
        .with_refresh_fraction(1.0)
        .build()
        .unwrap();
    // What the layer and the stores compute from them, today and in
    // two thousand years: no saturation, no panic.
    use crate::session::time::{Clock, SystemClock, UnixTime};
    for now in [
        SystemClock.now(),
        UnixTime::from_secs(SystemClock.now().as_secs() + 2_000 * 366 * 24 * 60 * 60),
    ] {
        let deadline = now + s.idle_timeout();
        assert_eq!(deadline.saturating_since(now), Settings::MAX_LIFETIME);
        let end = now + s.absolute_lifetime();
        assert_eq!(end.saturating_since(now), Settings::MAX_LIFETIME);
    }
    assert_eq!(
        s.idle_timeout().mul_f64(s.refresh_fraction()),
        Settings::MAX_LIFETIME
    );
    assert!(
        std::time::Instant::now()
            .checked_add(s.store_timeout())
            .is_some()
    );
}
