//! The demo's routes: the seed page's examples (`/login`, `/logout`, `/`,
//! `/hello`, `/tea`) and `/counter`, `/renew`, `/destroy`. The HTTP tests
//! run these same routes.

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use sessions::{FlashLevel, Session, ValueError};

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
