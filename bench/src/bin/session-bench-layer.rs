//! `session-bench-layer`: one variant's routes served in process, without
//! sockets, for counting the instructions a request costs under
//! `valgrind --tool=callgrind`: a figure that does not move with the load
//! on the machine, unlike the HTTP bench's requests per second.
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect=session_bench_layer::measured \
//!     session-bench-layer --variant memory --route counter --requests 2000
//! ```
//!
//! The request is what a returning visitor sends (its session cookie, got
//! from a first request to `/counter`, and for `counter-signed-in` from the
//! sign-in after it); every response's status is checked. Only [`measured`] runs the requests, so collecting in it
//! alone and dividing by the count gives instructions per request, the
//! setup left out.

use std::process::ExitCode;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt as _;

#[allow(dead_code)]
#[path = "../variants.rs"]
mod variants;

use variants::{Route, Variant, sign_in_path};

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: session-bench-layer --variant V --route untouched|counter|counter-signed-in|new \
     --requests N";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("session-bench-layer: {e}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Error> {
    let mut variant = None;
    let mut route = None;
    let mut requests = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--variant" => variant = Variant::parse(&value),
            "--route" => route = Route::parse(&value),
            "--requests" => requests = value.parse::<u64>().ok(),
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    let (Some(variant), Some(route), Some(requests)) = (variant, route, requests) else {
        return Err("--variant, --route and --requests are all needed".into());
    };
    if variant.uses_redis() || variant.is_sql() {
        return Err(
            "Redis and SQL variants keep sessions outside the process: use the HTTP bench".into(),
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (router, resources, cookie) = runtime.block_on(setup(variant, route))?;
    measured(&runtime, router, route, cookie.as_deref(), requests)?;
    runtime.block_on(resources.close());
    Ok(())
}

/// The variant's routes, and the cookie a returning visitor sends.
async fn setup(
    variant: Variant,
    route: Route,
) -> Result<(axum::Router, variants::Resources, Option<String>), Error> {
    let (router, resources) = variants::router(variant, variants::Backends::default()).await?;
    // A returning visitor: the cookie its first visit was given.
    let first = router
        .clone()
        .oneshot(get(Route::Counter.path(), None)?)
        .await?;
    let mut cookie = session_cookie(&first).ok_or("the first visit got no cookie")?;
    if route == Route::SignedInCounter {
        // Signed in after that visit: the cookie of the renewed session
        // (the baseline signs the same cookie in and sends none).
        let path = sign_in_path(0);
        let signed_in = router.clone().oneshot(get(&path, Some(&cookie))?).await?;
        if signed_in.status() != StatusCode::OK {
            return Err(format!("{path} answered {}", signed_in.status()).into());
        }
        if let Some(renewed) = session_cookie(&signed_in) {
            cookie = renewed;
        }
    }
    Ok((router, resources, (route != Route::New).then_some(cookie)))
}

/// The `name=value` of the response's first `Set-Cookie`.
fn session_cookie(response: &axum::response::Response) -> Option<String> {
    response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// `requests` requests to `route`, each answer checked: all that is
/// counted. Never inlined, so callgrind can collect in it by name.
#[inline(never)]
fn measured(
    runtime: &tokio::runtime::Runtime,
    router: axum::Router,
    route: Route,
    cookie: Option<&str>,
    requests: u64,
) -> Result<(), Error> {
    runtime.block_on(requests_to(router, route, cookie, requests))
}

async fn requests_to(
    router: axum::Router,
    route: Route,
    cookie: Option<&str>,
    requests: u64,
) -> Result<(), Error> {
    for _ in 0..requests {
        let response = router.clone().oneshot(get(route.path(), cookie)?).await?;
        if response.status() != StatusCode::OK {
            return Err(format!("{} answered {}", route.path(), response.status()).into());
        }
        axum::body::to_bytes(response.into_body(), 1024).await?;
    }
    Ok(())
}

fn get(path: &str, cookie: Option<&str>) -> Result<Request<Body>, Error> {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    Ok(request.body(Body::empty())?)
}
