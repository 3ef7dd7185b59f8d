//! The environment's part of building settings: each test passes the
//! variables' values rather than set them, since every thread of the
//! process shares the environment.

use super::*;
use crate::config::cookie::SameSite;
use crate::config::settings::tests::base;
use crate::config::settings::{Settings, SettingsBuilder};

/// An environment with neither variable set.
fn no_env() -> EnvValues {
    EnvValues {
        secret: None,
        cookie_secure: None,
    }
}

fn secret_env(secret: Option<OsString>) -> EnvValues {
    EnvValues {
        secret,
        cookie_secure: None,
    }
}

fn secure_env(value: &str) -> EnvValues {
    EnvValues {
        secret: None,
        cookie_secure: Some(value.into()),
    }
}

#[test]
fn secret_from_env_is_checked() {
    let short = keyring_from_secret(Some("too short".into()));
    assert!(matches!(short, Err(ConfigError::Env(msg)) if msg.contains("at least 32")));
    let a = keyring_from_secret(Some("x".repeat(32).into())).unwrap();
    let b = keyring_from_secret(Some("x".repeat(32).into())).unwrap();
    assert_eq!(a.current().id(), b.current().id(), "same secret, same keys");
}

#[test]
fn a_missing_secret_is_refused_with_how_to_set_one() {
    let err = Settings::builder().build_with_env(no_env()).unwrap_err();
    assert!(matches!(err, ConfigError::MissingSecret), "{err:?}");
    let message = err.to_string();
    for hint in [
        "SESSION_SECRET",
        "at least 32 random bytes",
        "openssl rand -base64 48",
        "with_keyring",
        "with_random_dev_key",
    ] {
        assert!(message.contains(hint), "{hint:?} missing from {message:?}");
    }
    assert!(matches!(
        keyring_from_secret(None),
        Err(ConfigError::MissingSecret)
    ));
}

#[test]
fn a_random_dev_key_is_made_only_when_asked_and_nothing_else_is_set() {
    let dev = || Settings::builder().with_random_dev_key();
    let r1 = dev().build_with_env(no_env()).unwrap();
    let r2 = dev().build_with_env(no_env()).unwrap();
    assert_ne!(
        r1.keyring().current().id(),
        r2.keyring().current().id(),
        "a random key each time"
    );
    // SESSION_SECRET, then a keyring, come first.
    let secret = || Some("s".repeat(32).into());
    let from_env = keyring_from_secret(secret()).unwrap();
    let with_env = dev().build_with_env(secret_env(secret())).unwrap();
    assert_eq!(with_env.keyring().current().id(), from_env.current().id());
    let fixed = Keyring::new(Key::from_bytes(&[1; 32]).unwrap()).unwrap();
    let fixed_id = fixed.current().id();
    let with_keyring = dev()
        .with_keyring(fixed)
        .build_with_env(secret_env(secret()))
        .unwrap();
    assert_eq!(with_keyring.keyring().current().id(), fixed_id);
    // A bad SESSION_SECRET is still refused, dev key or not.
    let short = dev().build_with_env(secret_env(Some("short".into())));
    assert!(matches!(short, Err(ConfigError::Env(_))));
}

#[test]
fn secure_env_values_are_parsed_strictly() {
    assert!(parse_secure_env(None).unwrap(), "unset keeps Secure on");
    for on in ["true", "1"] {
        assert!(parse_secure_env(Some(on.as_ref())).unwrap(), "{on:?}");
    }
    for off in ["false", "0"] {
        assert!(!parse_secure_env(Some(off.as_ref())).unwrap(), "{off:?}");
    }
    for bad in [
        "", "no", "off", "False", "TRUE", " false", "false ", "00", "yes", "2",
    ] {
        let err = parse_secure_env(Some(bad.as_ref())).unwrap_err();
        assert!(
            matches!(&err, ConfigError::SecureEnv { value } if value == bad),
            "{bad:?}: {err:?}"
        );
        let message = err.to_string();
        for hint in ["SESSION_COOKIE_SECURE", "`false`", "`0`", "`true`", "`1`"] {
            assert!(message.contains(hint), "{hint:?} missing from {message:?}");
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let not_utf8 = std::ffi::OsStr::from_bytes(b"f\xffalse");
        assert!(matches!(
            parse_secure_env(Some(not_utf8)),
            Err(ConfigError::SecureEnv { .. })
        ));
    }
}

#[test]
fn the_environment_sets_secure_unless_the_code_does() {
    let secure = |b: SettingsBuilder, env| b.build_with_env(env).map(|s| s.cookie().secure);
    // The environment alone.
    assert!(secure(base(), no_env()).unwrap());
    assert!(secure(base(), secure_env("1")).unwrap());
    assert!(!secure(base(), secure_env("false")).unwrap());
    assert!(!secure(base(), secure_env("0")).unwrap());
    assert!(matches!(
        secure(base(), secure_env("maybe")),
        Err(ConfigError::SecureEnv { .. })
    ));
    // `with_secure` wins either way, and a bad value is then not read.
    for env in ["false", "0", "true", "maybe"] {
        assert!(secure(base().with_secure(true), secure_env(env)).unwrap());
        assert!(!secure(base().with_secure(false), secure_env(env)).unwrap());
    }
    assert!(!secure(base().with_secure(false), no_env()).unwrap());
    // The last call counts.
    let b = base().with_secure(false).with_secure(true);
    assert!(secure(b, secure_env("false")).unwrap());
}

#[test]
fn secure_off_by_the_environment_still_obeys_the_cookie_rules() {
    for (b, rule) in [
        (base().with_cookie_name("__Host-s"), "__Host-"),
        (base().with_cookie_name("__Secure-s"), "__Secure-"),
        (base().with_same_site(SameSite::None), "SameSite=None"),
    ] {
        let err = b.build_with_env(secure_env("false")).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, ConfigError::CookiePrefix { .. }),
            "{rule}: {err:?}"
        );
        assert!(
            message.contains(rule) && message.contains("SESSION_COOKIE_SECURE=false"),
            "{message:?}"
        );
    }
    // Secure from the environment's "true" satisfies them.
    let host = base()
        .with_cookie_name("__Host-s")
        .with_same_site(SameSite::None);
    assert!(host.build_with_env(secure_env("true")).is_ok());
}

/// The warnings logged on this thread while `f` runs.
fn warnings_during(f: impl FnOnce()) -> Vec<String> {
    use std::sync::Mutex;
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    #[derive(Default)]
    struct Warnings(Mutex<Vec<String>>);
    struct Message<'a>(&'a mut String);
    impl Visit for Message<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                *self.0 = format!("{value:?}");
            }
        }
    }
    impl Subscriber for Warnings {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            if *event.metadata().level() == Level::WARN {
                let mut message = String::new();
                event.record(&mut Message(&mut message));
                self.0.lock().unwrap().push(message);
            }
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    let warnings = std::sync::Arc::new(Warnings::default());
    tracing::subscriber::with_default(warnings.clone(), f);
    warnings.0.lock().unwrap().clone()
}

#[test]
fn secure_off_is_warned_about_once_with_the_way_back() {
    let by_env = warnings_during(|| {
        base().build_with_env(secure_env("false")).unwrap();
    });
    assert_eq!(by_env.len(), 1, "{by_env:?}");
    for hint in [
        "plain http",
        "local development only",
        "unset SESSION_COOKIE_SECURE",
    ] {
        assert!(by_env[0].contains(hint), "{hint:?} missing from {by_env:?}");
    }
    let by_code = warnings_during(|| {
        base().with_secure(false).build_with_env(no_env()).unwrap();
    });
    assert_eq!(by_code.len(), 1, "{by_code:?}");
    for hint in [
        "plain http",
        "local development only",
        "remove `with_secure(false)`",
    ] {
        assert!(
            by_code[0].contains(hint),
            "{hint:?} missing from {by_code:?}"
        );
    }
    // Secure on: nothing to say. Refused: the error says it instead.
    let none = warnings_during(|| {
        base().build_with_env(no_env()).unwrap();
        base().build_with_env(secure_env("1")).unwrap();
        base()
            .with_secure(true)
            .build_with_env(secure_env("false"))
            .unwrap();
        base()
            .with_same_site(SameSite::None)
            .build_with_env(secure_env("false"))
            .unwrap_err();
    });
    assert!(none.is_empty(), "{none:?}");
}
