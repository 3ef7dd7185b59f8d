//! Reading the session cookie from a request and writing `Set-Cookie`,
//! `Vary` and `Cache-Control` on the response.

use cookie::Cookie;
use http::header::{CACHE_CONTROL, COOKIE, Entry, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue};

use crate::config::settings::Settings;
use crate::engine::manager::MAX_COOKIE_VALUE_LEN;
use crate::session::changes::CookieUpdate;

/// The values of every cookie called `name`, in header order.
///
/// Browsers send the cookie with the longest matching path first (RFC 6265
/// section 5.4), but a sibling subdomain can plant a cookie of the same
/// name that comes first; the manager takes the first value that verifies.
/// Each `name=value` pair is parsed by the `cookie` crate; the header is
/// split at `;` as bytes, so a pair that is not UTF-8 is skipped without
/// losing the others (it would name no session).
pub fn session_cookies<'h>(
    headers: &'h HeaderMap,
    name: &'h str,
) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|header| header.as_bytes().split(|&b| b == b';'))
        .filter_map(move |pair| {
            let cookie = Cookie::parse(std::str::from_utf8(pair).ok()?).ok()?;
            if cookie.name() != name {
                return None;
            }
            cookie.value_raw()
        })
}

/// The value of the first cookie called `name`, in header order.
pub fn find_cookie<'h>(headers: &'h HeaderMap, name: &'h str) -> Option<&'h str> {
    session_cookies(headers, name).next()
}

/// The most a `Set-Cookie` may hold, name, value and attributes together
/// (RFC 6265 section 6.1: the least a browser must keep per cookie).
pub const MAX_SET_COOKIE_LEN: usize = 4096;

/// The room left for the value in a `Set-Cookie` of at most
/// [`MAX_SET_COOKIE_LEN`] bytes with `settings`' attributes, counting
/// `Max-Age` at its longest.
pub fn max_value_len(settings: &Settings) -> usize {
    let longest = CookieUpdate::Set {
        value: String::new(),
        max_age: Some(settings.absolute_lifetime().max(settings.max_expiry())),
    };
    let overhead = set_cookie_value(settings, &longest).map_or(MAX_SET_COOKIE_LEN, |v| v.len());
    MAX_SET_COOKIE_LEN
        .saturating_sub(overhead)
        .min(MAX_COOKIE_VALUE_LEN)
}

/// The `Set-Cookie` value for an update, or `None` for
/// [`CookieUpdate::Keep`]. The attributes come from `settings`: `Path`,
/// `Domain`, `Max-Age`, `Expires` (on a removal only), `HttpOnly`, `Secure`
/// and `SameSite`, in this order.
///
/// Written here rather than by the `cookie` crate, whose writer puts the
/// attributes in an order of its own (`HttpOnly`, `SameSite`, `Secure`,
/// `Path`, ...), so it cannot write the bytes browsers already hold, and
/// costs about 1,000 more instructions per response; see docs/benchmarks.md.
pub fn set_cookie_value(settings: &Settings, update: &CookieUpdate) -> Option<HeaderValue> {
    let (value, max_age) = match update {
        CookieUpdate::Keep => return None,
        CookieUpdate::Set { value, max_age } => (value.as_str(), max_age.map(|a| a.as_secs())),
        CookieUpdate::Remove => ("", Some(0)),
    };
    let fixed = settings.fixed_attributes();
    let mut digits = [0u8; 20];
    let parts = [
        fixed.head.as_str(),
        value,
        fixed.scope.as_str(),
        // None for a browser session's cookie, forgotten when it closes.
        if max_age.is_some() { "; Max-Age=" } else { "" },
        match max_age {
            Some(seconds) => decimal(seconds, &mut digits),
            None => "",
        },
        // For clients that predate Max-Age (RFC 6265 section 5.3 step 3).
        if max_age == Some(0) {
            "; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        } else {
            ""
        },
        fixed.flags.as_str(),
    ];
    // Sized exactly, so the header takes the buffer as it is.
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    // Names, paths and domains were checked when the settings were built,
    // and store tokens are base64url, so this only fails on a faulty store.
    HeaderValue::try_from(out).ok()
}

/// `n` in decimal, written into `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut start = buf.len();
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(buf.get(start..).unwrap_or_default()).unwrap_or_default()
}

/// Marks a response that depended on the session cookie: `Vary: Cookie`,
/// and, when it sets or removes the cookie, `Cache-Control: private` unless
/// the handler's own `Cache-Control` already keeps shared caches out (a bare
/// `private` or `no-store`). Each header is looked up once, through its
/// entry.
pub fn mark_response(headers: &mut HeaderMap, set_cookie: Option<HeaderValue>) {
    match headers.entry(VARY) {
        Entry::Occupied(mut vary) => {
            if !vary.iter().any(varies_on_cookie) {
                vary.append(HeaderValue::from_static("cookie"));
            }
        }
        Entry::Vacant(vary) => {
            vary.insert(HeaderValue::from_static("cookie"));
        }
    }
    if let Some(cookie) = set_cookie {
        headers.append(SET_COOKIE, cookie);
        // A shared cache must not hand one user's cookie to another
        // (RFC 9111 section 5.2.2.7), whatever the handler asked for: its
        // own caching stands only if it already keeps shared caches out.
        let private = HeaderValue::from_static("private");
        match headers.entry(CACHE_CONTROL) {
            Entry::Occupied(mut cache) => {
                if !cache.iter().any(keeps_shared_caches_out) {
                    cache.insert(private);
                }
            }
            Entry::Vacant(cache) => {
                cache.insert(private);
            }
        }
    }
}

/// Marks an answer the layer makes itself (a 503, 409 or 500 in place of
/// the handler's): it depends on the cookie, and no cache may keep it.
pub(crate) fn mark_own_answer(headers: &mut HeaderMap) {
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    mark_response(headers, None);
}

/// Whether a `Vary` value already names `Cookie` (or `*`).
fn varies_on_cookie(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|text| {
        text.split(',')
            .map(str::trim)
            .any(|t| t.eq_ignore_ascii_case("cookie") || t == "*")
    })
}

/// Whether a `Cache-Control` value has a bare `private` or a `no-store`
/// directive. A qualified `private="..."` does not count: it lets a shared
/// cache keep the rest of the response.
fn keeps_shared_caches_out(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|text| {
        text.split(',').map(str::trim).any(|directive| {
            directive.eq_ignore_ascii_case("private") || directive.eq_ignore_ascii_case("no-store")
        })
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::cookie::SameSite;
    use crate::config::keys::{Key, Keyring};

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn finds_the_first_named_cookie_across_headers() {
        let h = headers(&["a=1; session=first", "session=second"]);
        assert_eq!(find_cookie(&h, "session"), Some("first"));
        let h = headers(&["x=1", "session = spaced ;y=2"]);
        assert_eq!(find_cookie(&h, "session"), Some("spaced"));
        assert_eq!(
            find_cookie(&headers(&["sessionx=1; xsession=2"]), "session"),
            None
        );
        assert_eq!(find_cookie(&headers(&["session"]), "session"), None);
        assert_eq!(find_cookie(&headers(&["session="]), "session"), Some(""));
    }

    #[test]
    fn every_named_cookie_is_a_candidate_in_order() {
        let h = headers(&["session=junk; a=1; session=good", "session=third"]);
        let all: Vec<_> = session_cookies(&h, "session").collect();
        assert_eq!(all, ["junk", "good", "third"]);
    }

    #[test]
    fn max_age_is_written_in_decimal() {
        for n in [0, 7, 10, 1800, 43_200, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string());
        }
    }

    /// A pair that is not UTF-8 names no session and is skipped; the rest
    /// of its header still counts.
    #[test]
    fn non_utf8_pair_is_skipped() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_bytes(b"session=\xff\xfe; session=good").unwrap(),
        );
        assert_eq!(find_cookie(&h, "session"), Some("good"));
        let all: Vec<_> = session_cookies(&h, "session").collect();
        assert_eq!(all, ["good"]);
    }

    /// What the `cookie` crate's parser gives for the odd pairs browsers
    /// and scripts send: values kept as sent (quotes, `=`, percent signs),
    /// whitespace around names and values dropped, nameless pairs ignored.
    #[test]
    fn odd_pairs_read_as_sent() {
        let h = headers(&[
            "=nameless; session=\"quoted\"; ; session=a=b;session=%41 ;  session  =  spaced  ",
        ]);
        let all: Vec<_> = session_cookies(&h, "session").collect();
        assert_eq!(all, ["\"quoted\"", "a=b", "%41", "spaced"]);
    }

    #[test]
    fn set_and_remove_carry_the_same_scope() {
        let c = Settings::builder()
            .with_keyring(Keyring::new(Key::from_bytes(&[1; 32]).unwrap()).unwrap())
            .with_cookie_domain("example.com")
            .with_cookie_path("/app")
            .with_secure(true)
            .build()
            .unwrap();
        let set = set_cookie_value(
            &c,
            &CookieUpdate::Set {
                value: "tok".into(),
                max_age: Some(Duration::from_secs(60)),
            },
        )
        .unwrap();
        assert_eq!(
            set,
            "__Secure-session=tok; Path=/app; Domain=example.com; Max-Age=60; HttpOnly; Secure; SameSite=Lax"
        );
        let gone = set_cookie_value(&c, &CookieUpdate::Remove).unwrap();
        assert_eq!(
            gone,
            "__Secure-session=; Path=/app; Domain=example.com; Max-Age=0; \
             Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax"
        );
        assert_eq!(set_cookie_value(&c, &CookieUpdate::Keep), None);
    }

    /// Every attribute the settings choose, against the header written
    /// out by hand: the fixed parts are built once, so each setting must
    /// still land in its place.
    #[test]
    fn each_attribute_setting_lands_in_its_place() {
        let base = || {
            Settings::builder()
                .with_keyring(Keyring::new(Key::from_bytes(&[1; 32]).unwrap()).unwrap())
        };
        let set = |max_age: Option<u64>| CookieUpdate::Set {
            value: "tok".into(),
            max_age: max_age.map(Duration::from_secs),
        };
        let cases = [
            (
                base().with_secure(false).with_http_only(false),
                set(Some(5)),
                "session=tok; Path=/; Max-Age=5; SameSite=Lax",
            ),
            (
                base()
                    .with_cookie_name("sid")
                    .with_same_site(SameSite::Strict)
                    .with_secure(true),
                set(None),
                "sid=tok; Path=/; HttpOnly; Secure; SameSite=Strict",
            ),
            (
                base()
                    .with_cookie_domain("example.com")
                    .with_same_site(SameSite::None)
                    .with_secure(true)
                    .with_http_only(false),
                CookieUpdate::Remove,
                "__Secure-session=; Path=/; Domain=example.com; Max-Age=0; \
                 Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; SameSite=None",
            ),
        ];
        for (builder, update, expected) in cases {
            let settings = builder.build().unwrap();
            assert_eq!(set_cookie_value(&settings, &update).unwrap(), expected);
        }
    }

    /// Today's `Set-Cookie` bytes for every flag combination the settings
    /// allow (`SameSite=None` needs `Secure`), with a `Max-Age`, without
    /// one (a browser session's cookie), and for the removal cookie.
    /// Browsers in the field hold these cookies; a change of writer must
    /// not change a byte.
    #[test]
    fn set_cookie_bytes_are_pinned_for_every_flag_combination() {
        let with_age = CookieUpdate::Set {
            value: "tok".into(),
            max_age: Some(Duration::from_secs(43_200)),
        };
        let browser_session = CookieUpdate::Set {
            value: "tok".into(),
            max_age: None,
        };
        #[rustfmt::skip]
        let cases: [(bool, bool, SameSite, [&str; 3]); 10] = [
            (true, true, SameSite::Lax, [
                "__Host-session=tok; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Lax",
                "__Host-session=tok; Path=/; HttpOnly; Secure; SameSite=Lax",
                "__Host-session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax",
            ]),
            (true, true, SameSite::Strict, [
                "__Host-session=tok; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Strict",
                "__Host-session=tok; Path=/; HttpOnly; Secure; SameSite=Strict",
                "__Host-session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Strict",
            ]),
            (true, true, SameSite::None, [
                "__Host-session=tok; Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=None",
                "__Host-session=tok; Path=/; HttpOnly; Secure; SameSite=None",
                "__Host-session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=None",
            ]),
            (true, false, SameSite::Lax, [
                "__Host-session=tok; Path=/; Max-Age=43200; Secure; SameSite=Lax",
                "__Host-session=tok; Path=/; Secure; SameSite=Lax",
                "__Host-session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; SameSite=Lax",
            ]),
            (true, false, SameSite::Strict, [
                "__Host-session=tok; Path=/; Max-Age=43200; Secure; SameSite=Strict",
                "__Host-session=tok; Path=/; Secure; SameSite=Strict",
                "__Host-session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; SameSite=Strict",
            ]),
            (true, false, SameSite::None, [
                "__Host-session=tok; Path=/; Max-Age=43200; Secure; SameSite=None",
                "__Host-session=tok; Path=/; Secure; SameSite=None",
                "__Host-session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; SameSite=None",
            ]),
            (false, true, SameSite::Lax, [
                "session=tok; Path=/; Max-Age=43200; HttpOnly; SameSite=Lax",
                "session=tok; Path=/; HttpOnly; SameSite=Lax",
                "session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax",
            ]),
            (false, true, SameSite::Strict, [
                "session=tok; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict",
                "session=tok; Path=/; HttpOnly; SameSite=Strict",
                "session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Strict",
            ]),
            (false, false, SameSite::Lax, [
                "session=tok; Path=/; Max-Age=43200; SameSite=Lax",
                "session=tok; Path=/; SameSite=Lax",
                "session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Lax",
            ]),
            (false, false, SameSite::Strict, [
                "session=tok; Path=/; Max-Age=43200; SameSite=Strict",
                "session=tok; Path=/; SameSite=Strict",
                "session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; SameSite=Strict",
            ]),
        ];
        for (secure, http_only, same_site, expected) in cases {
            let settings = Settings::builder()
                .with_keyring(Keyring::new(Key::from_bytes(&[1; 32]).unwrap()).unwrap())
                .with_secure(secure)
                .with_http_only(http_only)
                .with_same_site(same_site)
                .build()
                .unwrap();
            for (update, expected) in [&with_age, &browser_session, &CookieUpdate::Remove]
                .into_iter()
                .zip(expected)
            {
                assert_eq!(set_cookie_value(&settings, update).unwrap(), expected);
            }
        }
    }

    /// Today's bytes for each scope the settings allow: a name, a path and
    /// a domain of their own, and `Max-Age` from one second to the longest
    /// lifetime accepted.
    #[test]
    fn set_cookie_bytes_are_pinned_for_every_scope() {
        let base = || {
            Settings::builder()
                .with_keyring(Keyring::new(Key::from_bytes(&[1; 32]).unwrap()).unwrap())
        };
        let set = |max_age: Option<u64>| CookieUpdate::Set {
            value: "dGVzdA.dGFn-_".into(),
            max_age: max_age.map(Duration::from_secs),
        };
        #[rustfmt::skip]
        let cases = [
            (base().with_cookie_name("sid").with_cookie_path("/app"), set(Some(1)),
             "sid=dGVzdA.dGFn-_; Path=/app; Max-Age=1; HttpOnly; Secure; SameSite=Lax"),
            (base().with_cookie_domain("example.com"), set(Some(34_560_000)),
             "__Secure-session=dGVzdA.dGFn-_; Path=/; Domain=example.com; Max-Age=34560000; HttpOnly; Secure; SameSite=Lax"),
            (base().with_cookie_domain("example.com").with_cookie_path("/a/b"), set(None),
             "__Secure-session=dGVzdA.dGFn-_; Path=/a/b; Domain=example.com; HttpOnly; Secure; SameSite=Lax"),
            (base().with_cookie_domain("example.com").with_cookie_path("/a/b"), CookieUpdate::Remove,
             "__Secure-session=; Path=/a/b; Domain=example.com; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax"),
            (base().with_cookie_name("__Host-sid"), set(Some(600)),
             "__Host-sid=dGVzdA.dGFn-_; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=Lax"),
            (base().with_cookie_name("__Host-sid"), CookieUpdate::Remove,
             "__Host-sid=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax"),
            (base().with_cookie_name("__Secure-sid").with_cookie_domain("example.com"), set(Some(60)),
             "__Secure-sid=dGVzdA.dGFn-_; Path=/; Domain=example.com; Max-Age=60; HttpOnly; Secure; SameSite=Lax"),
        ];
        for (builder, update, expected) in cases {
            let settings = builder.build().unwrap();
            assert_eq!(set_cookie_value(&settings, &update).unwrap(), expected);
        }
    }

    /// The room for the value follows from the bytes above: 4096 less the
    /// longest header the settings can write around it.
    #[test]
    fn value_room_is_pinned() {
        let settings = Settings::builder()
            .with_keyring(Keyring::new(Key::from_bytes(&[1; 32]).unwrap()).unwrap())
            .build()
            .unwrap();
        // "__Host-session=" (15) + "; Path=/; Max-Age=2592000; HttpOnly;
        // Secure; SameSite=Lax" (57): the 30-day expiry outlasts the 12-hour
        // lifetime.
        assert_eq!(max_value_len(&settings), 4096 - 15 - 57);
    }

    #[test]
    fn vary_is_added_once_and_cache_control_respected() {
        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("Accept-Encoding, Cookie"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        mark_response(&mut h, Some(HeaderValue::from_static("session=x")));
        assert_eq!(h.get_all(VARY).iter().count(), 1);
        assert_eq!(h[CACHE_CONTROL], "no-store");
        let mut h = HeaderMap::new();
        mark_response(&mut h, Some(HeaderValue::from_static("session=x")));
        assert_eq!(h[VARY], "cookie");
        assert_eq!(h[CACHE_CONTROL], "private");
    }

    /// `Cache-Control` after [`mark_response`] on a response whose handler
    /// wrote `handler` (one header per item), with or without a cookie.
    fn cache_control_after(handler: &[&str], cookie: bool) -> Vec<String> {
        let mut h = HeaderMap::new();
        for value in handler {
            h.append(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        }
        let set = cookie.then(|| HeaderValue::from_static("session=x"));
        mark_response(&mut h, set);
        h.get_all(CACHE_CONTROL)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_response_that_sets_the_cookie_is_never_stored_by_a_shared_cache() {
        for (handler, expected) in [
            (&["public"][..], &["private"][..]),
            (&["public, max-age=60"], &["private"]),
            (&["Public", "max-age=60"], &["private"]),
            (&["s-maxage=600, max-age=60"], &["private"]),
            (&["private=\"set-cookie\", max-age=5"], &["private"]),
            // Quoted commas split into pieces that are not bare `private`.
            (&["private=\"a, private\""], &["private"]),
            // Already out of shared caches: the handler's words stand.
            (&["private, max-age=60"], &["private, max-age=60"]),
            (&["no-store"], &["no-store"]),
            (
                &["public, no-store, max-age=0"],
                &["public, no-store, max-age=0"],
            ),
            (&["NO-STORE", "S-MAXAGE=5"], &["NO-STORE", "S-MAXAGE=5"]),
        ] {
            assert_eq!(cache_control_after(handler, true), expected, "{handler:?}");
        }
        // No cookie set: the handler's caching is its own business (the
        // response still varies on the cookie).
        assert_eq!(
            cache_control_after(&["public, max-age=60"], false),
            ["public, max-age=60"]
        );
    }
}
