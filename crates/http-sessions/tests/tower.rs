//! The layer under a plain tower stack served by hyper, without axum, over
//! real sockets: the service's body type (`BoxBody`) is one the layer could
//! not build itself, and the layer's own answers still reach the client.
#![cfg(feature = "memory")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::sync::atomic::Ordering;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use http_sessions::{Key, Keyring, LazySession, SessionFailure, SessionLayer, Settings};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

mod flaky;
mod wire;

use flaky::Flaky;

type Body = BoxBody<Bytes, Infallible>;

fn settings() -> Settings {
    Settings::builder()
        .with_cookie_name("session")
        .with_keyring(Keyring::new(Key::from_bytes(&[21; 32]).unwrap()).unwrap())
        .build()
        .unwrap()
}

/// Counts the visitor's requests in their session.
async fn count(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let lazy = request.extensions().get::<LazySession>().unwrap();
    let session = lazy.load(request.headers()).await.unwrap();
    let n = session.get::<u64>("visits").unwrap().unwrap_or(0) + 1;
    session.insert("visits", n).unwrap();
    let body = Full::new(Bytes::from(format!("visits = {n}"))).boxed();
    Ok(Response::new(body))
}

/// Serves `count` behind `layer` with hyper on a free port; its address.
async fn serve(layer: SessionLayer) -> String {
    let service = ServiceBuilder::new().layer(layer).service_fn(count);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(service.clone());
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::spawn(connection);
        }
    });
    addr
}

#[tokio::test]
async fn a_service_with_a_boxed_body_keeps_sessions() {
    let addr = serve(http_sessions::memory::session_layer(&settings())).await;
    let first = wire::get(&addr, "/", None).await;
    assert_eq!((first.status, first.body.as_str()), (200, "visits = 1"));
    let cookie = first.cookie().expect("a session cookie");
    let second = wire::get(&addr, "/", Some(&cookie)).await;
    assert_eq!((second.status, second.body.as_str()), (200, "visits = 2"));
}

#[tokio::test]
async fn a_failed_save_answers_the_layers_text_in_place_of_the_handlers() {
    let store = Flaky::default();
    let addr = serve(SessionLayer::new(store.clone(), &settings())).await;
    // A new visitor: nothing to load, so the store is first asked to save.
    store.down.store(true, Ordering::SeqCst);
    let reply = wire::get(&addr, "/", None).await;
    let failure = SessionFailure::NotConfirmed;
    assert_eq!(reply.status, failure.status().as_u16(), "{reply:?}");
    assert_eq!(reply.body, failure.message());
    assert_eq!(reply.set_cookie, None, "no cookie for a session not saved");
    assert_eq!(
        StatusCode::from_u16(reply.status).unwrap(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}
