//! Sessions without axum: a plain hyper 1 server whose service is built
//! with `tower::ServiceBuilder`, the session layer around a `service_fn`.
//!
//! ```sh
//! cargo run -p http-sessions --example tower   # then open http://127.0.0.1:8080/
//! ```
//!
//! The layer puts a [`LazySession`] in each request's extensions; the
//! handler loads it (one store read, on first use) and the layer saves it
//! and sets the cookie once the response is ready. The service's body type
//! is its own choice: here a `BoxBody`, as hyper services that mix body
//! types often use. The layer's responses wrap it in a
//! [`ResponseBody`](http_sessions::ResponseBody), which is the handler's
//! body or, when the store fails, the layer's own 409, 500 or 503 text.
//!
//! `ADDR` picks the address to listen on (default `127.0.0.1:8080`); the
//! first line printed says where it listens.

use std::convert::Infallible;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use http_sessions::{LazySession, SessionFailure, Settings};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;

/// The body type of this service's responses.
type Body = BoxBody<Bytes, Infallible>;

/// A plain-text response.
fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    response
}

/// Counts this visitor's requests in their session.
async fn visits(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let Some(lazy) = request.extensions().get::<LazySession>() else {
        return Ok(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no session layer: add the session layer around this service",
        ));
    };
    // A store that does not answer: the same 503 the axum extractor gives.
    let session = match lazy.load(request.headers()).await {
        Ok(session) => session,
        Err(error) => {
            eprintln!("session not loaded: {error}");
            let failure = SessionFailure::NotLoaded;
            return Ok(text(failure.status(), failure.message()));
        }
    };
    let counted = session
        .get::<u64>("visits")
        .map(|n| n.unwrap_or(0) + 1)
        .and_then(|n| session.insert("visits", n).map(|_| n));
    Ok(match counted {
        Ok(n) => text(StatusCode::OK, format!("visits = {n}")),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SESSION_SECRET when set; else, for development only, a random key.
    let settings = Settings::builder()
        .with_random_dev_key()
        .with_secure(false) // plain http on localhost
        .build()?;
    let service = ServiceBuilder::new()
        .layer(http_sessions::memory::session_layer(&settings))
        .service_fn(visits);

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        // hyper calls services by `&self`; the adapter clones ours per call.
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = connection {
                eprintln!("connection failed: {error}");
            }
        });
    }
}
