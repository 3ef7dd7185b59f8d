//! The tower middleware: [`SessionLayer`] wraps a service in a
//! [`SessionService`], which puts a [`LazySession`] in each request and
//! commits the session, if it was loaded, when the response is ready.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::config::settings::Settings;
use crate::engine::manager::{Backend, SessionManager};
use crate::error::StoreError;
use crate::http::body::ResponseBody;
use crate::http::cookies;
use crate::http::failure::SessionFailure;
use crate::session::Session;
use crate::store::{CookieCodec, SessionStore};

/// Adds sessions to a service: an axum `Router`, or any tower service of
/// `http::Request` to `http::Response` (`examples/tower.rs` serves one with
/// hyper alone).
///
/// # Response bodies
///
/// Any body type the inner service returns will do. The layer's responses
/// carry a [`ResponseBody`], which is the inner body, frame by frame, or,
/// when the store failed, the plain-text message of the 409, 500 or 503
/// the layer answered with in place of the handler (see
/// [`SessionFailure`]). It is a body wherever the inner one is and its
/// data can be made from a `&'static str`, as `Bytes` can.
///
/// # Examples
///
/// ```
/// use http_sessions_core::{SessionLayer, Settings, Key, Keyring};
/// # use http_sessions_core::StoreError;
/// # use http_sessions_core::store::{Loaded, Record, SessionId, SessionStore, UnixTime, Update, Updated};
/// # #[derive(Debug)] struct MyStore;
/// # #[async_trait::async_trait] impl SessionStore for MyStore {
/// #   async fn load(&self, _: &SessionId, _: UnixTime) -> Result<Option<Loaded>, StoreError> { Ok(None) }
/// #   async fn create(&self, _: &SessionId, _: &Record, _: UnixTime) -> Result<(), StoreError> { Ok(()) }
/// #   async fn update(&self, _: &SessionId, _: Update<'_>) -> Result<Updated, StoreError> { Err(StoreError::Gone) }
/// #   async fn retire(&self, _: &SessionId, _: UnixTime, _: UnixTime, _: Option<&str>) -> Result<(), StoreError> { Err(StoreError::Gone) }
/// #   async fn delete(&self, _: &SessionId, _: Option<&str>) -> Result<(), StoreError> { Ok(()) }
/// # }
///
/// let settings = Settings::builder()
///     .with_keyring(Keyring::new(Key::generate()?)?)
///     .build()?;
/// let layer = SessionLayer::new(MyStore, &settings);
/// // router.layer(layer)
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SessionLayer {
    manager: Arc<SessionManager>,
}

impl SessionLayer {
    /// A layer keeping sessions in a server-side `store`, configured by
    /// `settings`.
    pub fn new(store: impl SessionStore, settings: &Settings) -> Self {
        Self::from_manager(SessionManager::new(Backend::server(store), settings))
    }

    /// A layer keeping each session in its cookie, sealed by `codec`.
    pub fn in_cookie(codec: impl CookieCodec, settings: &Settings) -> Self {
        Self::from_manager(SessionManager::new(Backend::cookie(codec), settings))
    }

    /// How many store calls this layer made, and how many failed (see
    /// [`SessionStats`](crate::SessionStats)); shared by its clones.
    pub fn stats(&self) -> crate::engine::stats::SessionStats {
        self.manager.stats()
    }

    /// The sessions of each user bound with
    /// [`Session::bind_user`](crate::Session::bind_user): list them, end
    /// one or all. Give it to the handlers (in the router's state, say).
    pub fn user_sessions(&self) -> crate::engine::users::UserSessions {
        crate::engine::users::UserSessions::new(self.manager.clone())
    }

    /// A layer around a manager built by hand.
    pub fn from_manager(manager: SessionManager) -> Self {
        let room = cookies::max_value_len(manager.settings());
        Self {
            manager: Arc::new(manager.with_max_value_len(room)),
        }
    }

    /// Runs `check` on every session loaded from a cookie, before the
    /// handler sees it: one it refuses is ended. How sessions kept in the
    /// cookie are logged out everywhere; see [`SessionCheck`](crate::SessionCheck).
    pub fn with_check(self, check: impl crate::engine::check::SessionCheck) -> Self {
        Self::from_manager(SessionManager::clone(&self.manager).with_check(check))
    }

    /// Sends the sessions' [lifecycle events](crate::events) to `hook`
    /// rather than to `tracing` (where, without a hook, they go at INFO
    /// under [`EVENTS_TARGET`](crate::events::EVENTS_TARGET)).
    pub fn with_events(self, hook: impl crate::events::SessionEvents) -> Self {
        Self::from_manager(SessionManager::clone(&self.manager).with_events(hook))
    }

    /// The manager behind the layer.
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> SessionService<S> {
        SessionService {
            inner,
            manager: self.manager.clone(),
        }
    }
}

/// The service made by [`SessionLayer`].
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    manager: Arc<SessionManager>,
}

/// A request's session, loaded on first use.
///
/// The layer puts one in every request's extensions; nothing is read from
/// the store until [`load`](Self::load) is called, which the axum
/// extractor does. Outside axum, take it from the extensions yourself.
#[derive(Clone)]
pub struct LazySession {
    slot: Arc<Slot>,
}

struct Slot {
    manager: Arc<SessionManager>,
    session: OnceLock<Session>,
    /// The previous cookie name the session was read under, if not the
    /// current one: the response removes that cookie.
    renamed: OnceLock<usize>,
}

impl LazySession {
    /// The request's session, loaded from the store on the first call and
    /// shared by every later one.
    ///
    /// Two loads of one request that run at the same time (a handler that
    /// spawns its own extraction) may both read the store; the first to
    /// finish is the request's session, and both callers get it.
    ///
    /// # Errors
    ///
    /// The store's error if it cannot answer; the response should be a
    /// 503, and the client's cookie is left alone.
    pub async fn load(&self, headers: &HeaderMap) -> Result<Session, StoreError> {
        let slot = &self.slot;
        if let Some(session) = slot.session.get() {
            return Ok(session.clone());
        }
        let settings = slot.manager.settings();
        let name = &settings.cookie().name;
        let mut values = cookies::session_cookies(headers, name).peekable();
        let previous = settings.previous_names();
        let old = match values.peek() {
            Some(_) => None,
            None => (previous.iter().enumerate())
                .find(|(_, (old, _))| cookies::find_cookie(headers, old).is_some()),
        };
        let loaded = match old {
            None => slot.manager.load_from(values, false).await?,
            Some((at, (old, _))) => {
                let _ = slot.renamed.set(at);
                let values = cookies::session_cookies(headers, old);
                slot.manager.load_from(values, true).await?
            }
        };
        Ok(slot.session.get_or_init(|| loaded).clone())
    }

    /// The session if it has been loaded.
    pub fn get(&self) -> Option<&Session> {
        self.slot.session.get()
    }

    /// The sessions of each user, through the layer's store.
    pub fn user_sessions(&self) -> crate::engine::users::UserSessions {
        crate::engine::users::UserSessions::new(self.slot.manager.clone())
    }
}

impl fmt::Debug for LazySession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazySession")
            .field("loaded", &self.slot.session.get().is_some())
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let lazy = LazySession {
            slot: Arc::new(Slot {
                manager: self.manager.clone(),
                session: OnceLock::new(),
                renamed: OnceLock::new(),
            }),
        };
        req.extensions_mut().insert(lazy.clone());
        ResponseFuture {
            state: State::Inner {
                future: self.inner.call(req),
                lazy: Some(lazy),
            },
        }
    }
}

type CommitFuture<B> = Pin<Box<dyn Future<Output = Response<ResponseBody<B>>> + Send>>;

pin_project! {
    /// The response future of [`SessionService`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Inner { #[pin] future: F, lazy: Option<LazySession> },
        Commit { future: CommitFuture<B> },
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Send + 'static,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Inner { future, lazy } => {
                    let response = ready!(future.poll(cx))?.map(ResponseBody::inner);
                    // `None` only if polled again after completion.
                    let Some(lazy) = lazy.take() else {
                        return Poll::Ready(Ok(response));
                    };
                    let Some(session) = lazy.get().cloned() else {
                        // The handler never asked for its session: no store
                        // I/O, no headers.
                        return Poll::Ready(Ok(response));
                    };
                    let manager = lazy.slot.manager.clone();
                    if response.status().is_server_error()
                        && !manager.settings().save_on_server_error()
                        && !session.is_destroyed()
                    {
                        // The handler failed: nothing it changed since its
                        // last `save` is saved. Its answer still depended
                        // on the cookie, and carries one a `save` set.
                        let update = manager.discard(&session);
                        let set_cookie = cookies::set_cookie_value(manager.settings(), &update);
                        let mut response = response;
                        cookies::mark_response(response.headers_mut(), set_cookie);
                        remove_renamed(&lazy, response.headers_mut());
                        return Poll::Ready(Ok(response));
                    }
                    this.state.set(State::Commit {
                        future: Box::pin(commit(manager, session, response, lazy)),
                    });
                }
                StateProj::Commit { future } => {
                    return future.as_mut().poll(cx).map(Ok);
                }
            }
        }
    }
}

/// Removes the cookie of a previous name the session was read under: the
/// response has sent it under the current one.
fn remove_renamed(lazy: &LazySession, headers: &mut http::HeaderMap) {
    let settings = lazy.slot.manager.settings();
    if let Some((_, removal)) =
        (lazy.slot.renamed.get()).and_then(|&at| settings.previous_names().get(at))
    {
        headers.append(http::header::SET_COOKIE, removal.clone());
    }
}

/// Saves the session and writes the cookie headers, or replaces the
/// response with an error one if the store failed: never a false success.
async fn commit<B>(
    manager: Arc<SessionManager>,
    session: Session,
    mut response: Response<ResponseBody<B>>,
    lazy: LazySession,
) -> Response<ResponseBody<B>> {
    match manager.commit(&session).await {
        Ok(update) => {
            let set_cookie = cookies::set_cookie_value(manager.settings(), &update);
            cookies::mark_response(response.headers_mut(), set_cookie);
            remove_renamed(&lazy, response.headers_mut());
            response
        }
        Err(error) => {
            let failure = SessionFailure::of_save(&error);
            tracing::error!(
                %error,
                status = failure.status().as_u16(),
                "session not saved; the handler's response was replaced"
            );
            failure.answer()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use tower::{Layer, ServiceExt, service_fn};

    use crate::config::keys::{Key, Keyring};
    use crate::config::settings::Settings;
    use crate::error::StoreError;
    use crate::store::{Loaded, Record, SessionId, SessionStore, UnixTime, Update, Updated};

    /// A store that is down.
    #[derive(Debug)]
    struct Down;

    #[async_trait::async_trait]
    impl SessionStore for Down {
        async fn load(&self, _: &SessionId, _: UnixTime) -> Result<Option<Loaded>, StoreError> {
            Err(StoreError::unavailable("down"))
        }
        async fn create(&self, _: &SessionId, _: &Record, _: UnixTime) -> Result<(), StoreError> {
            Err(StoreError::unavailable("down"))
        }
        async fn update(&self, _: &SessionId, _: Update<'_>) -> Result<Updated, StoreError> {
            Err(StoreError::unavailable("down"))
        }
        async fn retire(
            &self,
            _: &SessionId,
            _: UnixTime,
            _: UnixTime,
            _: Option<&str>,
        ) -> Result<(), StoreError> {
            Err(StoreError::unavailable("down"))
        }
        async fn delete(&self, _: &SessionId, _: Option<&str>) -> Result<(), StoreError> {
            Err(StoreError::unavailable("down"))
        }
    }

    /// A store that is down, and remembers the store timeout and the time
    /// of the settings it was given.
    #[derive(Debug, Default, Clone)]
    struct Learns(std::sync::Arc<std::sync::Mutex<Vec<(std::time::Duration, UnixTime)>>>);

    #[async_trait::async_trait]
    impl SessionStore for Learns {
        async fn load(&self, id: &SessionId, now: UnixTime) -> Result<Option<Loaded>, StoreError> {
            Down.load(id, now).await
        }
        async fn create(&self, id: &SessionId, r: &Record, e: UnixTime) -> Result<(), StoreError> {
            Down.create(id, r, e).await
        }
        async fn update(&self, id: &SessionId, update: Update<'_>) -> Result<Updated, StoreError> {
            Down.update(id, update).await
        }
        async fn retire(
            &self,
            id: &SessionId,
            now: UnixTime,
            until: UnixTime,
            user: Option<&str>,
        ) -> Result<(), StoreError> {
            Down.retire(id, now, until, user).await
        }
        async fn delete(&self, id: &SessionId, user: Option<&str>) -> Result<(), StoreError> {
            Down.delete(id, user).await
        }
        fn use_settings(&self, settings: &Settings) {
            let learned = (settings.store_timeout(), settings.clock().now());
            self.0.lock().unwrap().push(learned);
        }
    }

    /// A store learns the settings of every layer or manager built on it,
    /// once each, before any call: its deadlines and its time are the
    /// settings', never its own.
    #[test]
    fn a_store_learns_the_settings_of_the_layer_built_on_it() {
        let clock = crate::session::time::ManualClock::new(UnixTime::from_secs(42));
        let settings = |timeout| {
            Settings::builder()
                .with_keyring(Keyring::new(Key::generate().unwrap()).unwrap())
                .with_store_timeout(std::time::Duration::from_millis(timeout))
                .with_clock(clock.clone())
                .build()
                .unwrap()
        };
        let store = Learns::default();
        let layer = super::SessionLayer::new(store.clone(), &settings(750));
        let manager = crate::seams::SessionManager::new(
            crate::seams::Backend::server(store.clone()),
            &settings(250),
        );
        let learned = store.0.lock().unwrap().clone();
        let at = UnixTime::from_secs(42);
        assert_eq!(
            learned,
            [
                (std::time::Duration::from_millis(750), at),
                (std::time::Duration::from_millis(250), at)
            ]
        );
        // A layer around a manager already built asks nothing again.
        let _ = (layer, super::SessionLayer::from_manager(manager));
        assert_eq!(store.0.lock().unwrap().len(), 2);
    }

    /// A service whose body type cannot be made from text (`Empty`) still
    /// gets the layer's message when a save fails.
    #[tokio::test]
    async fn any_body_type_carries_the_failure_message() {
        let settings = Settings::builder()
            .with_keyring(Keyring::new(Key::generate().unwrap()).unwrap())
            .build()
            .unwrap();
        let layer = super::SessionLayer::new(Down, &settings);
        let service = layer.layer(service_fn(|request: http::Request<()>| async move {
            let lazy = request.extensions().get::<super::LazySession>().unwrap();
            // A new session: nothing to load, so the failure is the save's.
            let session = lazy.load(request.headers()).await.unwrap();
            session.insert("n", 1).unwrap();
            Ok::<_, Infallible>(http::Response::new(Empty::<Bytes>::new()))
        }));
        let response = service.oneshot(http::Request::new(())).await.unwrap();
        assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        let failure = *response
            .extensions()
            .get::<super::SessionFailure>()
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, failure.message());
    }
}
