//! Driving a service that has the session layer, one request at a time,
//! for HTTP-level tests of the layer and of each backend.

use bytes::Bytes;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use tower::{Service, ServiceExt};

/// What a `tracing` subscriber writes, kept for the test to read: the
/// subscriber's writer is a clone (`with_writer(move || captured.clone())`).
#[derive(Debug, Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// What was written since the last call, as text.
    pub fn take(&self) -> String {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8(bytes).unwrap()
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body, as text.
    pub body: String,
}

impl Reply {
    /// The `Set-Cookie` header, if there is one.
    pub fn set_cookie(&self) -> Option<&str> {
        self.headers
            .get(SET_COOKIE)
            .map(|v| v.to_str().expect("Set-Cookie is ASCII"))
    }

    /// The value the `Set-Cookie` header gives the cookie `name`.
    pub fn cookie_value(&self, name: &str) -> Option<&str> {
        let pair = self.set_cookie()?.split(';').next()?;
        pair.strip_prefix(name)?.strip_prefix('=')
    }

    /// Whether the response removes the cookie (`Max-Age=0`).
    pub fn removes_cookie(&self) -> bool {
        self.set_cookie().is_some_and(|c| c.contains("Max-Age=0"))
    }
}

/// Sends `GET path`, with a `Cookie` header if one is given.
pub async fn get<S, B>(service: &S, path: &str, cookie: Option<HeaderValue>) -> Reply
where
    S: Service<Request<Empty<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let request = request.body(Empty::new()).expect("a valid request");
    let response = service.clone().oneshot(request).await.expect("a response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("a readable body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).expect("a UTF-8 body"),
    }
}

/// `name=value`, as a `Cookie` header.
pub fn cookie(name: &str, value: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{name}={value}")).expect("a valid cookie header")
}
