//! The demo's routes: the seed page's examples (`/login`, `/logout`, `/`,
//! `/hello`, `/tea`), `/counter`, `/renew`, `/destroy`, and a signed-in
//! user's: `/remember` (a 30-day login bound to the user `demo`),
//! `/signin` (the same login until the browser closes), `/whoami` (who is
//! signed in), `/sessions` (their sessions), `/cap` (how many of the
//! most allowed they have), `/logout-everywhere`, and
//! `/waiting` (flash messages counted, not read). On the cookie backends, which keep
//! no sessions on the server, `/sessions` and `/logout-everywhere` answer
//! 500 with the reason and what to use instead. The HTTP tests run these
//! same routes.

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use http_sessions::{
    Expiry, FlashLevel, Session, SessionRejection, StoreError, UserSessions, ValueError,
};

/// The one user of the demo's remembered logins.
pub(crate) const DEMO_USER: &str = "demo";

/// How long `/remember` keeps a login: idle and in all.
pub(crate) const REMEMBER: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The most sessions `demo` may have at once on a server-side store: a
/// login past it ends the one used least recently.
pub(crate) const CAP: usize = 3;

/// Every route, without a session layer.
pub(crate) fn router() -> Router {
    Router::new()
        .route("/login", get(login))
        .route("/logout", get(logout))
        .route("/", get(hello))
        .route("/hello", get(hello))
        .route("/tea", get(tea))
        .route("/counter", get(counter))
        .route("/renew", get(renew))
        .route("/destroy", get(destroy))
        .route("/remember", get(remember))
        .route("/signin", get(signin))
        .route("/whoami", get(whoami))
        .route("/cap", get(cap))
        .route("/sessions", get(list_sessions))
        .route("/logout-everywhere", get(logout_everywhere))
        .route("/waiting", get(waiting))
}

pub(crate) async fn login(session: Session) -> Result<Html<&'static str>, ValueError> {
    // A new id and a new lifetime for the signed-in session: an id planted
    // before login is worthless after it (docs/security.md).
    session.renew_on_login();
    session.insert("flywind", "123")?;
    session.insert("ordontfly", "345")?;
    Ok(Html("<h1>Hello, Prologue!</h1>"))
}

pub(crate) async fn logout(session: Session) -> String {
    session.to_string()
}

pub(crate) async fn hello(session: Session) -> &'static str {
    session.flash("Please retry again!");
    "Hello, world"
}

pub(crate) async fn tea(session: Session) -> String {
    session
        .flashed(FlashLevel::Info)
        .unwrap_or_else(|| "My tea".to_owned())
}

pub(crate) async fn counter(session: Session) -> Result<String, ValueError> {
    let n = session.get::<u64>("counter")?.unwrap_or(0) + 1;
    session.insert("counter", n)?;
    Ok(format!("counter = {n}"))
}

pub(crate) async fn renew(session: Session) -> &'static str {
    session.renew();
    "renewed: same data, new session id"
}

pub(crate) async fn destroy(session: Session) -> &'static str {
    session.destroy();
    "destroyed"
}

/// Signs `demo` in for 30 days ("remember me"), labelled with the
/// browser's `User-Agent`.
pub(crate) async fn remember(session: Session, headers: HeaderMap) -> Result<String, ValueError> {
    session.renew_on_login();
    session.bind_user(DEMO_USER)?;
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    session.set_label(agent.unwrap_or("unknown browser"));
    session.set_expiry(Expiry::Lifetimes {
        idle: REMEMBER,
        absolute: REMEMBER,
    });
    session.insert("user", DEMO_USER)?;
    Ok(format!("{DEMO_USER} is remembered for 30 days"))
}

/// Signs `demo` in until the browser closes: the cookie has no `Max-Age`,
/// so the browser forgets it when it quits.
pub(crate) async fn signin(session: Session) -> Result<String, ValueError> {
    session.renew_on_login();
    session.bind_user(DEMO_USER)?;
    session.set_expiry(Expiry::BrowserSession);
    session.insert("user", DEMO_USER)?;
    Ok(format!("{DEMO_USER} is signed in until the browser closes"))
}

/// Who is signed in, if anyone.
pub(crate) async fn whoami(session: Session) -> String {
    match session.user() {
        Some(user) => format!("signed in as {user}"),
        None => "not signed in".to_owned(),
    }
}

/// The signed-in user's sessions, one per line, the current one marked.
pub(crate) async fn list_sessions(
    session: Session,
    users: UserSessions,
) -> Result<String, Response> {
    let Some(user) = session.user() else {
        return Ok("not signed in: /remember first".to_owned());
    };
    let current = session.id();
    let mut page = String::new();
    for info in users.list(&user).await.map_err(refused)? {
        let mark = if Some(&info.id) == current.as_ref() {
            " (this one)"
        } else {
            ""
        };
        let label = info.label.as_deref().unwrap_or("-");
        page.push_str(&format!("{} {label}{mark}\n", info.id));
    }
    Ok(page)
}

/// How many sessions the signed-in user has, of the most allowed.
pub(crate) async fn cap(session: Session, users: UserSessions) -> Result<String, Response> {
    let Some(user) = session.user() else {
        return Ok(format!(
            "not signed in: /remember first; {DEMO_USER} may have {CAP} sessions at once"
        ));
    };
    let n = users.list(&user).await.map_err(refused)?.len();
    Ok(format!(
        "{user} has {n} of at most {CAP} sessions; a login past {CAP} ends the one used \
         least recently"
    ))
}

/// Ends every session of the signed-in user, this one included.
pub(crate) async fn logout_everywhere(
    session: Session,
    users: UserSessions,
) -> Result<String, Response> {
    let Some(user) = session.user() else {
        return Ok("not signed in".to_owned());
    };
    let ended = users.end_all(&user, None).await.map_err(refused)?;
    session.destroy();
    Ok(format!("ended {ended} sessions of {user}"))
}

/// The answer when the user's sessions cannot be listed or ended: on a
/// backend that keeps none on the server (the cookie backends) a 500 that
/// says why and what to use instead, since no retry would help (never a
/// 503); any other failure as the layer answers it.
fn refused(error: StoreError) -> Response {
    match error {
        StoreError::Unsupported(why) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "This page cannot work here: {why}.
                 Run the demo with --backend memory or --backend redis to list and end sessions.
"
            ),
        )
            .into_response(),
        other => SessionRejection::Store(other).into_response(),
    }
}

/// How many flash messages wait, without reading them.
pub(crate) async fn waiting(session: Session) -> String {
    format!("{} waiting", session.flash_count())
}
