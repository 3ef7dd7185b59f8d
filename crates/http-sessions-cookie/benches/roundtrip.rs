//! The full round trip of a cookie session (serialize, protect, verify,
//! deserialize) at 100 B, 1 KB and 3 KB of session data, in both modes,
//! side by side with the `cookie` crate's signed and private jars holding
//! the same data as JSON.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;

use cookie::{Cookie, CookieJar};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http_sessions_cookie::CookieStore;
use http_sessions_core::store::{Record, UnixTime, Value};
use http_sessions_core::{Key, Keyring, Settings};

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

/// String pairs whose JSON is about `bytes` long.
fn data(bytes: usize) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut size = 2;
    let mut i = 0;
    while size < bytes {
        let k = format!("key{i:03}");
        let v = "v".repeat(20);
        size += k.len() + v.len() + 6;
        map.insert(k, v);
        i += 1;
    }
    map
}

fn record(map: &BTreeMap<String, String>) -> Record {
    let mut r = Record::empty(NOW, NOW + std::time::Duration::from_secs(3600), 16);
    for (k, v) in map {
        r.data.insert(k.into(), Value::encode(v).unwrap());
    }
    r
}

#[derive(Clone, Copy)]
enum Jar {
    Signed,
    Private,
}

/// The `cookie` crate's side: JSON into a signed or private jar, out as the
/// cookie value, back in through a fresh jar, and parsed.
fn jar_round_trip(map: &BTreeMap<String, String>, key: &cookie::Key, jar: Jar) -> usize {
    let json = serde_json::to_string(black_box(map)).unwrap();
    let mut outgoing = CookieJar::new();
    match jar {
        Jar::Signed => outgoing.signed_mut(key).add(Cookie::new("session", json)),
        Jar::Private => outgoing.private_mut(key).add(Cookie::new("session", json)),
    }
    let value = outgoing.delta().next().unwrap().value().to_owned();
    let mut incoming = CookieJar::new();
    incoming.add_original(Cookie::new("session", value));
    let read = match jar {
        Jar::Signed => incoming.signed(key).get("session"),
        Jar::Private => incoming.private(key).get("session"),
    }
    .unwrap();
    let back: BTreeMap<String, String> = serde_json::from_str(read.value()).unwrap();
    black_box(back.len())
}

/// How many bytes the HMAC of a signed cookie value covers: the decoded
/// value less its 32-byte tag, plus the authenticated cookie name (a
/// two-byte length and `session`).
fn authenticated_len(value: &str) -> usize {
    value.len() * 3 / 4 - 32 + 2 + "session".len()
}

fn bench(c: &mut Criterion) {
    let settings = Settings::builder()
        .with_keyring(Keyring::new(Key::from_bytes(&[7; 64]).unwrap()).unwrap())
        .build()
        .unwrap();
    let signed = CookieStore::signed(&settings);
    let encrypted = CookieStore::encrypted(&settings);
    let cookie_key = cookie::Key::from(&[7; 64]);

    for size in [100usize, 1024, 3 * 1024] {
        let map = data(size);
        let rec = record(&map);
        let mut group = c.benchmark_group(format!("cookie round trip {size} B"));
        for (name, store) in [
            ("sessions signed", &signed),
            ("sessions encrypted", &encrypted),
        ] {
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| {
                    let value = store.seal(black_box(&rec), NOW).unwrap();
                    let back = store.open(&value, NOW).unwrap();
                    black_box(back.record.data.len())
                })
            });
        }
        // What signed mode cannot do without: one HMAC-SHA256 to sign and
        // one to verify, over as many bytes as our cookie authenticates.
        let signed_len = authenticated_len(&signed.seal(&rec, NOW).unwrap());
        let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[7; 32]);
        let bytes = vec![0x5a; signed_len];
        group.bench_function(
            BenchmarkId::from_parameter("HMAC-SHA256 sign + verify alone"),
            |b| {
                b.iter(|| {
                    let tag = ring::hmac::sign(&mac, black_box(&bytes));
                    ring::hmac::verify(&mac, black_box(&bytes), tag.as_ref()).unwrap();
                })
            },
        );
        group.bench_function(
            BenchmarkId::from_parameter("cookie SignedJar + serde_json"),
            |b| b.iter(|| jar_round_trip(&map, &cookie_key, Jar::Signed)),
        );
        group.bench_function(
            BenchmarkId::from_parameter("cookie PrivateJar + serde_json"),
            |b| b.iter(|| jar_round_trip(&map, &cookie_key, Jar::Private)),
        );
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
