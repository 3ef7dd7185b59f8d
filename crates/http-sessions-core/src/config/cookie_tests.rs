//! Tests of `cookie`: the settings it checks, through the builder.

use crate::config::error::ConfigError;
use crate::config::settings::tests::base;

use super::*;

#[test]
fn defaults_are_the_safe_ones() {
    let s = base().build().unwrap();
    let c = s.cookie();
    assert_eq!((c.name.as_str(), c.path.as_str()), ("__Host-session", "/"));
    assert!(c.secure && c.http_only && c.domain.is_none());
    assert_eq!(c.same_site, SameSite::Lax);
}

#[test]
fn the_default_name_takes_the_strictest_prefix_its_attributes_allow() {
    let name =
        |b: crate::config::settings::SettingsBuilder| b.build().unwrap().cookie().name.clone();
    assert_eq!(name(base()), "__Host-session");
    assert_eq!(
        name(base().with_cookie_domain("example.com")),
        "__Secure-session"
    );
    assert_eq!(name(base().with_cookie_path("/app")), "__Secure-session");
    assert_eq!(name(base().with_secure(false)), "session");
    assert_eq!(name(base().with_cookie_name("sid")), "sid");
    // The bare name is read as a previous one, and removed once moved.
    let settings = base().build().unwrap();
    let previous: Vec<_> = settings
        .previous_names()
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(previous, ["session"]);
    assert_eq!(
        settings.previous_names()[0].1,
        "session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax"
    );
    assert!(
        base()
            .with_secure(false)
            .build()
            .unwrap()
            .previous_names()
            .is_empty()
    );
    let renamed = base()
        .with_cookie_name("sid")
        .with_previous_cookie_name("old")
        .with_previous_cookie_name("sid")
        .build()
        .unwrap();
    let previous: Vec<_> = renamed
        .previous_names()
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(previous, ["old"]);
    assert!(base().with_previous_cookie_name("a;b").build().is_err());
}

#[test]
fn bad_names_paths_and_domains_are_refused() {
    for name in [
        "", "a;b", "a=b", "a b", "a\tb", "a\u{7f}", "é", "a,b", "a\"b",
    ] {
        let e = base().with_cookie_name(name).build().unwrap_err();
        assert!(
            matches!(e, ConfigError::CookieAttribute { field: "name", .. }),
            "{name:?}"
        );
    }
    for path in ["", "a", "/a;b", "/a b", "/\n", "/a\u{0}"] {
        let e = base().with_cookie_path(path).build().unwrap_err();
        assert!(
            matches!(e, ConfigError::CookieAttribute { field: "path", .. }),
            "{path:?}"
        );
    }
    for domain in ["", "a;b", "a=b", "a b", "ex\rample.com"] {
        let e = base().with_cookie_domain(domain).build().unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::CookieAttribute {
                    field: "domain",
                    ..
                }
            ),
            "{domain:?}"
        );
    }
    assert!(base().with_cookie_domain("example.com").build().is_ok());
    assert!(base().with_cookie_path("/app/v1").build().is_ok());
}

#[test]
fn host_prefix_rules_are_checked() {
    assert!(base().with_cookie_name("__Host-s").build().is_ok());
    for b in [
        base().with_cookie_name("__Host-s").with_secure(false),
        base().with_cookie_name("__Host-s").with_cookie_path("/a"),
        base()
            .with_cookie_name("__Host-s")
            .with_cookie_domain("example.com"),
        base().with_cookie_name("__Secure-s").with_secure(false),
        base().with_same_site(SameSite::None).with_secure(false),
    ] {
        assert!(matches!(b.build(), Err(ConfigError::CookiePrefix { .. })));
    }
}

#[test]
fn the_fixed_attributes_are_written_once_from_the_cookie() {
    let s = base()
        .with_cookie_name("sid")
        .with_cookie_domain("example.com")
        .with_same_site(SameSite::Strict)
        .with_http_only(false)
        .build()
        .unwrap();
    let fixed = s.fixed_attributes();
    assert_eq!(fixed.head, "sid=");
    assert_eq!(fixed.scope, "; Path=/; Domain=example.com");
    assert_eq!(fixed.flags, "; Secure; SameSite=Strict");
}
