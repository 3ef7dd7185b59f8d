//! The answers the layer makes itself, in place of the handler's, when the
//! store fails it: each carries a [`SessionFailure`] in its extensions, so
//! an application can give them pages of its own.

use http::{Response, StatusCode};

use crate::error::StoreError;
use crate::http::cookies;

/// Why the session layer answered in place of the handler. The answer
/// carries it in its extensions; a middleware outside the layer can swap
/// the plain-text body for a page of the application's own.
///
/// # Examples
///
/// With axum, a `map_response` added after the session layer (so that it
/// wraps it) sees every answer the layer made:
///
/// ```
/// # #[cfg(feature = "axum")] {
/// use axum::Router;
/// use axum::middleware::map_response;
/// use axum::response::{Html, IntoResponse, Response};
/// use http_sessions_core::SessionFailure;
///
/// async fn pages(response: Response) -> Response {
///     match response.extensions().get::<SessionFailure>().copied() {
///         Some(failure) => {
///             let page = format!("<h1>Sorry</h1><p>{}</p>", failure.message());
///             // The headers the layer set (no-store, Vary) stay.
///             let (mut parts, _) = response.into_parts();
///             parts.headers.remove(http::header::CONTENT_TYPE);
///             (parts, Html(page)).into_response()
///         }
///         None => response,
///     }
/// }
///
/// fn with_pages(app: Router) -> Router {
///     app.layer(map_response(pages))
/// }
/// # let _ = with_pages;
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionFailure {
    /// 503: the store did not answer the load; the handler did not run.
    NotLoaded,
    /// 503: the store did not confirm the save; it may or may not have
    /// happened.
    NotConfirmed,
    /// 409: the session ended, or was renewed by another request, while
    /// this one ran; nothing was saved.
    Ended,
    /// 500: the session could not be saved: it outgrew the size bound, or
    /// a value would not encode.
    NotSaved,
    /// 409: the session was to be bound to a user who already has the most
    /// sessions allowed, and the settings refuse it
    /// ([`OverCap::Refuse`](crate::OverCap::Refuse)); nothing was saved.
    TooManySessions,
}

impl SessionFailure {
    /// The failure a save that failed with `error` answers with.
    pub(crate) fn of_save(error: &StoreError) -> Self {
        match error {
            StoreError::Gone => Self::Ended,
            StoreError::TooManySessions { .. } => Self::TooManySessions,
            StoreError::TooLarge { .. } | StoreError::Corrupt(_) | StoreError::Unsupported(_) => {
                Self::NotSaved
            }
            // A write that failed or timed out may still have reached the
            // store: never say that nothing was saved.
            _ => Self::NotConfirmed,
        }
    }

    /// The status the layer answers with.
    ///
    /// # Examples
    ///
    /// ```
    /// use http::StatusCode;
    /// use http_sessions_core::SessionFailure;
    ///
    /// assert_eq!(SessionFailure::Ended.status(), StatusCode::CONFLICT);
    /// ```
    pub fn status(self) -> StatusCode {
        match self {
            Self::NotLoaded | Self::NotConfirmed => StatusCode::SERVICE_UNAVAILABLE,
            Self::Ended | Self::TooManySessions => StatusCode::CONFLICT,
            Self::NotSaved => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The plain-text body the layer answers with, for the visitor.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotLoaded => "The session store is unavailable. Please try again shortly.",
            Self::NotConfirmed => {
                "The session store did not confirm the change; it may not have been saved. \
                 Please try again shortly."
            }
            Self::Ended => {
                "Your session ended or was renewed while this request ran; nothing was saved. \
                 Please try again."
            }
            Self::NotSaved => "The session could not be saved.",
            Self::TooManySessions => {
                "You are signed in on as many devices as allowed; nothing was saved. \
                 Sign out on one of them, then try again."
            }
        }
    }

    /// The layer's answer: its status and message, headers that keep it
    /// out of every cache, and `self` in its extensions. The client's
    /// cookie is left as it is: it still names the session as stored, or
    /// one that is gone for good.
    pub(crate) fn answer<B: From<&'static str>>(self) -> Response<B> {
        let mut response = Response::new(B::from(self.message()));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        cookies::mark_own_answer(response.headers_mut());
        response.extensions_mut().insert(self);
        response
    }
}
