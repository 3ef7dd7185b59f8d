//! The axum extractor for [`Session`] and its [`SessionRejection`]; also
//! lets a [`ValueError`] be returned from a handler.

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::engine::users::UserSessions;
use crate::error::{StoreError, ValueError};
use crate::http::failure::SessionFailure;
use crate::http::layer::LazySession;
use crate::session::Session;

/// Why a handler could not get its [`Session`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The router has no session layer.
    #[error(
        "no session layer: add `session_layer(&settings)?` (or `SessionLayer::new`) to the router with `.layer(...)`"
    )]
    MissingLayer,
    /// The store could not load the session.
    #[error("the session store could not load the session: {0}")]
    Store(#[from] StoreError),
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        match &self {
            SessionRejection::MissingLayer => {
                tracing::error!(error = %self, "session extractor used without its layer");
                (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
            }
            SessionRejection::Store(error @ StoreError::Unsupported(_)) => {
                // A programming error: no retry mends it, so never a 503.
                tracing::error!(%error, "session backend asked for what it cannot do; answering 500");
                (StatusCode::INTERNAL_SERVER_ERROR, UNSUPPORTED).into_response()
            }
            SessionRejection::Store(error) => {
                tracing::error!(%error, "session not loaded; answering 503");
                // The client's cookie is left alone: the session may well
                // still be there when the store is back.
                SessionFailure::NotLoaded.answer()
            }
        }
    }
}

/// The visitor's text of a 500 for a backend asked for what it cannot do;
/// the log has the reason.
const UNSUPPORTED: &str = "The session backend of this server cannot do this.";

/// Loads the request's session: the first extraction reads the store,
/// later ones in the same request share the result.
impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let lazy = parts
            .extensions
            .get::<LazySession>()
            .cloned()
            .ok_or(SessionRejection::MissingLayer)?;
        Ok(lazy.load(&parts.headers).await?)
    }
}

/// The layer's [`UserSessions`], for a handler that lists or ends a
/// user's sessions.
impl<S: Send + Sync> FromRequestParts<S> for UserSessions {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<LazySession>()
            .map(LazySession::user_sessions)
            .ok_or(SessionRejection::MissingLayer)
    }
}

/// A value that cannot be encoded or decoded answers 500 and is logged.
impl IntoResponse for ValueError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, "session value error");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "A session value could not be read or written.",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CACHE_CONTROL, VARY};
    use std::time::Duration;

    #[test]
    fn an_unsupported_call_answers_500_not_503() {
        let response = SessionRejection::Store(StoreError::Unsupported("no index")).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_failed_load_answers_503_that_no_cache_keeps() {
        let response =
            SessionRejection::Store(StoreError::Timeout(Duration::from_secs(2))).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let headers = response.headers();
        assert_eq!(
            headers.get(VARY).map(|v| v.as_bytes()),
            Some(&b"cookie"[..])
        );
        assert_eq!(
            headers.get(CACHE_CONTROL).map(|v| v.as_bytes()),
            Some(&b"no-store"[..])
        );
    }
}
