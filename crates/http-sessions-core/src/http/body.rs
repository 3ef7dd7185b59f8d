//! The body of every response that passes the layer: the handler's own,
//! or the layer's plain-text answer when the store failed it. Wrapping
//! lets the layer answer under any tower stack, whatever body type the
//! service inside it returns.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The response body of [`SessionService`](crate::layer::SessionService):
    /// the inner service's body, passed through frame by frame, or the
    /// message of a [`SessionFailure`](crate::SessionFailure) the layer
    /// answered with.
    ///
    /// It is a [`Body`] whenever the inner one is and its data can be made
    /// from a `&'static str` (as `Bytes` can), so axum, hyper and tower
    /// take it as they take the inner body.
    #[derive(Debug)]
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        // `None` once sent.
        Failure { message: Option<&'static str> },
    }
}

impl<B> ResponseBody<B> {
    /// The inner service's body, unchanged.
    pub fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    /// A body of `message` alone.
    pub fn failure(message: &'static str) -> Self {
        Self {
            kind: Kind::Failure {
                message: Some(message),
            },
        }
    }
}

/// The layer's own answers are made this way.
impl<B> From<&'static str> for ResponseBody<B> {
    fn from(message: &'static str) -> Self {
        Self::failure(message)
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
    B::Data: From<&'static str>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Failure { message } => {
                Poll::Ready(message.take().map(|text| Ok(Frame::data(text.into()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Failure { message } => message.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Failure { message } => {
                SizeHint::with_exact(message.map_or(0, |text| text.len() as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, Full};

    use super::*;

    #[tokio::test]
    async fn the_inner_body_passes_through() {
        let body = ResponseBody::inner(Full::new(Bytes::from_static(b"handler")));
        assert_eq!(body.size_hint().exact(), Some(7));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, "handler");
    }

    #[tokio::test]
    async fn a_failure_is_its_message_once() {
        let mut body = ResponseBody::<Empty<Bytes>>::failure("try again");
        assert_eq!(body.size_hint().exact(), Some(9));
        assert!(!body.is_end_stream());
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "try again");
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
        assert!(body.frame().await.is_none());
    }
}
