//! The load generator: [`start`] opens keep-alive HTTP/1.1 connections, one
//! visitor each, and sends one request at a time on each (no pipelining)
//! for a warm-up and then a measured window, timing every response.
//!
//! Written on raw TCP so the client costs little and the same for every
//! variant: requests are formatted into a reused buffer, responses parsed
//! with httparse (status line, headers, a `Content-Length` body), and each
//! connection keeps the cookies its `Set-Cookie`s give it, as a browser
//! would. Every response is checked, so a variant that lost sessions or
//! answered errors cannot look fast.
//!
//! Visitors are set up before the window as each route needs them: for
//! `/untouched`, one `/counter` first (a real session cookie, ignored by the
//! route); for `/counter-signed-in`, one `/counter` and then a sign-in as a
//! user of its own (`user-N`), so the measured requests go on counting from
//! the 1 of that first visit in a signed-in session.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::Error;
use crate::variants::{Route, sign_in_path};

/// A response slower than this is an error, and its connection stops.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Headers read from one response at most.
const MAX_HEADERS: usize = 32;
/// Longest response accepted (these routes answer a few hundred bytes).
const MAX_RESPONSE: usize = 64 * 1024;

/// The number of the next user a visitor signs in as: every visitor of the
/// run is a user of its own, so no user's index grows over the rounds.
static NEXT_USER: AtomicU64 = AtomicU64::new(0);

/// One measurement: a route, a server, how many visitors and how long.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    pub(crate) addr: SocketAddr,
    pub(crate) route: Route,
    pub(crate) connections: usize,
    pub(crate) warmup: Duration,
    pub(crate) measure: Duration,
}

/// What one connection measured.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Latency in microseconds of each response completed in the window.
    pub(crate) latencies_us: Vec<u32>,
    /// Responses that were wrong or missing.
    pub(crate) errors: u64,
    /// The first of them, described.
    pub(crate) first_error: Option<String>,
}

impl Outcome {
    fn error(&mut self, what: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what());
        }
    }

    /// Adds `other`'s figures to these.
    pub(crate) fn merge(&mut self, other: Outcome) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// The measured window, for the caller to sample CPU time at its edges.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) start: Instant,
    pub(crate) end: Instant,
}

/// Connects every visitor, then spawns one task each on the current
/// runtime. Returns the window the tasks will measure and their handles.
///
/// # Errors
///
/// A connection that cannot be opened, or (for `/untouched` and
/// `/counter-signed-in`) a visitor who could not be set up first.
pub(crate) async fn start(
    load: &Load,
) -> Result<(Window, Vec<tokio::task::JoinHandle<Outcome>>), Error> {
    let mut visitors = Vec::with_capacity(load.connections);
    for _ in 0..load.connections {
        let mut conn = Connection::open(load.addr).await?;
        let mut last_count = None;
        match load.route {
            Route::Untouched => {
                // A returning visitor: a real session cookie, ignored by the route.
                prime(&mut conn, Route::Counter.path()).await?;
            }
            Route::SignedInCounter => {
                // A returning visitor who then signs in: the session of its
                // first `/counter` goes on, signed in (under a new id).
                let first = prime(&mut conn, Route::Counter.path()).await?;
                check(Route::Counter, &first, &mut last_count)
                    .map_err(|why| format!("priming a visitor: {why}"))?;
                let user = NEXT_USER.fetch_add(1, Ordering::Relaxed);
                prime(&mut conn, &sign_in_path(user)).await?;
            }
            Route::Counter | Route::New => {}
        }
        visitors.push((conn, last_count));
    }
    let start = Instant::now() + load.warmup;
    let window = Window {
        start,
        end: start + load.measure,
    };
    let route = load.route;
    let handles = visitors
        .into_iter()
        .map(|(conn, last_count)| tokio::spawn(visit(conn, route, last_count, window)))
        .collect();
    Ok((window, handles))
}

/// Sends `path` with the visitor's cookies before the window; the answer
/// must be a 200 that leaves the visitor holding a cookie.
async fn prime(conn: &mut Connection, path: &str) -> Result<Reply, Error> {
    let reply = conn.get(path, true).await?;
    if reply.status != 200 || conn.cookies.is_empty() {
        return Err(format!(
            "priming a visitor with {path} gave status {} and {} cookie(s)",
            reply.status,
            conn.cookies.len()
        )
        .into());
    }
    Ok(reply)
}

/// One visitor's loop: requests until the window ends, latencies of those
/// that complete inside it. `last_count` is the counter the visitor's
/// session already holds, if any.
async fn visit(
    mut conn: Connection,
    route: Route,
    mut last_count: Option<u64>,
    window: Window,
) -> Outcome {
    let mut out = Outcome {
        // Enough for ~100k requests/s shared by 64 visitors for 3 s.
        latencies_us: Vec::with_capacity(8192),
        ..Outcome::default()
    };
    loop {
        let sent = Instant::now();
        if sent >= window.end {
            break;
        }
        let send_cookies = route != Route::New;
        let reply =
            match tokio::time::timeout(REQUEST_TIMEOUT, conn.get(route.path(), send_cookies)).await
            {
                Ok(Ok(reply)) => reply,
                Ok(Err(e)) => {
                    out.error(|| format!("{}: {e}", route.path()));
                    break;
                }
                Err(_) => {
                    out.error(|| format!("{}: no answer in {REQUEST_TIMEOUT:?}", route.path()));
                    break;
                }
            };
        let done = Instant::now();
        if let Err(why) = check(route, &reply, &mut last_count) {
            out.error(|| why);
        }
        if route == Route::New {
            // Every request is a new visitor: nothing is ever sent back.
            conn.cookies.clear();
        }
        if done >= window.start && done < window.end {
            let us = done.duration_since(sent).as_micros();
            out.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
        }
    }
    out
}

/// Whether `reply` is what `route` must answer. For `/counter` and
/// `/counter-signed-in`, the count goes up by one on every request of a
/// visitor: a session that was lost (or never stored) starts again at 1,
/// and a signed-in one that was lost answers 401.
fn check(route: Route, reply: &Reply, last_count: &mut Option<u64>) -> Result<(), String> {
    if reply.status != 200 {
        return Err(format!("{}: status {}", route.path(), reply.status));
    }
    match route {
        Route::Untouched => Ok(()),
        Route::New if reply.set_cookie => Ok(()),
        Route::New => Err("/new: the new visitor got no cookie".to_owned()),
        Route::Counter | Route::SignedInCounter => {
            let path = route.path();
            let count = std::str::from_utf8(&reply.body)
                .ok()
                .and_then(|b| b.strip_prefix("counter = "))
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| format!("{path}: unexpected body {:?}", reply.body))?;
            let expected = last_count.map_or(1, |n| n + 1);
            *last_count = Some(count);
            if count == expected {
                Ok(())
            } else {
                Err(format!(
                    "{path}: the session was lost, count {count} where {expected} was due"
                ))
            }
        }
    }
}

/// What the load generator keeps of a response.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Vec<u8>,
    /// At least one `Set-Cookie` came.
    set_cookie: bool,
}

/// One keep-alive connection and the cookies of its visitor.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    host: String,
    /// The request being written; reused.
    request: Vec<u8>,
    /// Bytes read and not yet consumed; reused.
    buf: Vec<u8>,
    /// Name and value of each cookie held, in the order first set.
    cookies: Vec<(String, String)>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Result<Self, Error> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        // Requests are one small write each: send them at once.
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            host: addr.to_string(),
            request: Vec::with_capacity(512),
            buf: Vec::with_capacity(4096),
            cookies: Vec::new(),
        })
    }

    /// Sends `GET path`, with the visitor's cookies if `send_cookies`, and
    /// reads the whole response; applies its `Set-Cookie`s.
    async fn get(&mut self, path: &str, send_cookies: bool) -> Result<Reply, Error> {
        self.write_request(path, send_cookies);
        self.stream.write_all(&self.request).await?;
        self.buf.clear();
        loop {
            if let Some(reply) = self.parse()? {
                return Ok(reply);
            }
            if self.buf.len() > MAX_RESPONSE {
                return Err(format!("response longer than {MAX_RESPONSE} bytes").into());
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err("the server closed the connection".into());
            }
        }
    }

    fn write_request(&mut self, path: &str, send_cookies: bool) {
        let r = &mut self.request;
        r.clear();
        r.extend_from_slice(b"GET ");
        r.extend_from_slice(path.as_bytes());
        r.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        r.extend_from_slice(self.host.as_bytes());
        r.extend_from_slice(b"\r\n");
        if send_cookies && !self.cookies.is_empty() {
            r.extend_from_slice(b"Cookie: ");
            for (i, (name, value)) in self.cookies.iter().enumerate() {
                if i > 0 {
                    r.extend_from_slice(b"; ");
                }
                r.extend_from_slice(name.as_bytes());
                r.push(b'=');
                r.extend_from_slice(value.as_bytes());
            }
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"\r\n");
    }

    /// The response in `buf`, if all of it has arrived.
    fn parse(&mut self) -> Result<Option<Reply>, Error> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(&self.buf)? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return Ok(None),
        };
        let status = response.code.unwrap_or(0);
        let mut content_length = None;
        let mut set_cookies = Vec::new();
        for h in response.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let text = std::str::from_utf8(h.value).unwrap_or("");
                content_length = Some(
                    text.trim()
                        .parse::<usize>()
                        .map_err(|_| format!("bad Content-Length {text:?}"))?,
                );
            } else if h.name.eq_ignore_ascii_case("set-cookie") {
                set_cookies.push(String::from_utf8_lossy(h.value).into_owned());
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(
                    "a chunked response: the load generator reads Content-Length bodies only"
                        .into(),
                );
            } else if h.name.eq_ignore_ascii_case("connection")
                && h.value.eq_ignore_ascii_case(b"close")
            {
                return Err("the server asked to close the keep-alive connection".into());
            }
        }
        let length = content_length.ok_or("a response without Content-Length")?;
        let end = head_len.saturating_add(length);
        if end > MAX_RESPONSE {
            return Err(format!("a body of {length} bytes: longer than {MAX_RESPONSE}").into());
        }
        let Some(body) = self.buf.get(head_len..end) else {
            return Ok(None);
        };
        if self.buf.len() > end {
            return Err("bytes after the response, which was not asked for".into());
        }
        let body = body.to_vec();
        let set_cookie = !set_cookies.is_empty();
        for line in &set_cookies {
            self.apply_set_cookie(line);
        }
        Ok(Some(Reply {
            status,
            body,
            set_cookie,
        }))
    }

    /// Keeps, replaces or (for an empty value or `Max-Age=0`) drops a cookie.
    fn apply_set_cookie(&mut self, line: &str) {
        let mut parts = line.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
            return;
        };
        let removed = value.is_empty()
            || parts.any(|a| {
                let a = a.trim();
                a.eq_ignore_ascii_case("max-age=0")
                    || a.to_ascii_lowercase()
                        .starts_with("expires=thu, 01 jan 1970")
            });
        self.cookies.retain(|(n, _)| n != name);
        if !removed {
            self.cookies.push((name.to_owned(), value.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_must_climb() {
        let reply = |body: &str| Reply {
            status: 200,
            body: body.as_bytes().to_vec(),
            set_cookie: false,
        };
        let mut last = None;
        assert!(check(Route::Counter, &reply("counter = 1"), &mut last).is_ok());
        assert!(check(Route::Counter, &reply("counter = 2"), &mut last).is_ok());
        assert!(check(Route::Counter, &reply("counter = 1"), &mut last).is_err());
        assert!(check(Route::Counter, &reply("nonsense"), &mut last).is_err());
        // A signed-in visitor goes on from the count of its first visit.
        let mut last = Some(1);
        assert!(check(Route::SignedInCounter, &reply("counter = 2"), &mut last).is_ok());
        let lost = check(Route::SignedInCounter, &reply("counter = 1"), &mut last);
        assert!(
            lost.unwrap_err()
                .starts_with("/counter-signed-in: the session was lost")
        );
        let mut fail = Reply {
            status: 503,
            body: Vec::new(),
            set_cookie: true,
        };
        assert!(check(Route::Untouched, &fail, &mut None).is_err());
        fail.status = 200;
        assert!(check(Route::New, &fail, &mut None).is_ok());
        fail.set_cookie = false;
        assert!(check(Route::New, &fail, &mut None).is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn responses_are_parsed_and_cookies_kept() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let answers: [&[u8]; 2] = [
                b"HTTP/1.1 200 OK\r\nset-cookie: session=abc; Path=/; HttpOnly\r\ncontent-length: 11\r\n\r\ncounter = 1",
                b"HTTP/1.1 200 OK\r\nset-cookie: session=; Max-Age=0\r\ncontent-length: 2\r\n\r\nok",
            ];
            for answer in answers {
                let mut buf = [0u8; 1024];
                let n = socket.read(&mut buf).await.unwrap();
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                // Split in two writes: the client must wait for the rest.
                let (a, b) = answer.split_at(20);
                socket.write_all(a).await.unwrap();
                socket.write_all(b).await.unwrap();
            }
            seen
        });
        let mut conn = Connection::open(addr).await.unwrap();
        let first = conn.get("/counter", true).await.unwrap();
        assert_eq!(first.status, 200);
        assert_eq!(first.body, b"counter = 1");
        assert_eq!(conn.cookies, [("session".to_owned(), "abc".to_owned())]);
        let second = conn.get("/counter", true).await.unwrap();
        assert_eq!(second.body, b"ok");
        assert!(conn.cookies.is_empty());
        let seen = server.await.unwrap();
        assert!(!seen[0].contains("Cookie:"));
        assert!(seen[1].contains("\r\nCookie: session=abc\r\n"));
    }
}
