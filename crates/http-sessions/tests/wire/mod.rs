//! A bare HTTP/1.1 client for the tests that talk to a real server: one
//! `GET` per connection, the answer read to its end.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// The bound on starting a server, and on one request.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// One response, as the client saw it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
    /// The session cookie's `Set-Cookie` header, if any.
    pub(crate) set_cookie: Option<String>,
}

impl Reply {
    /// The value the response set the session cookie to; `None` if it set
    /// none, or removed it.
    pub(crate) fn cookie(&self) -> Option<String> {
        let pair = self.set_cookie.as_deref()?.split(';').next()?;
        let value = pair.strip_prefix("session=")?;
        (!value.is_empty()).then(|| value.to_owned())
    }
}

/// `GET path` over a new HTTP/1.1 connection, with the session cookie
/// `cookie` if given.
pub(crate) async fn get(addr: &str, path: &str, cookie: Option<&str>) -> Reply {
    let cookie = cookie
        .map(|value| format!("Cookie: session={value}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie}Connection: close\r\n\r\n");
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = timeout(WAIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {path} on {addr}: no answer within {WAIT:?}"))
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let set_cookie = lines
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value.trim().to_owned())
        .find(|value| value.starts_with("session="));
    Reply {
        status: status.parse().unwrap(),
        body: body.to_owned(),
        set_cookie,
    }
}
