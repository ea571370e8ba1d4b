//! A request body left unread must close its connection.
//!
//! When a handler answers before reading the whole body (a 401 for a bad
//! key, a 413, a 408, a 404), actix-http decides after the response whether
//! to close the connection or to drain the rest of the body and keep it
//! alive. It drains a chunked body whose reader is gone — with no deadline,
//! so a client that sends one chunk and then nothing would hold the
//! connection forever. Here the request's body stream is shared: handlers
//! read it through one handle, and the response body keeps the other until
//! it has been sent. A body still unread at that moment is then seen as
//! unread, and the connection is closed. A body read to its end changes
//! nothing.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::web::Bytes;
use actix_web::HttpMessage;
use futures_util::{Stream, StreamExt};

/// One handle on a request's body stream.
#[derive(Clone)]
pub(crate) struct HeldBody(Rc<RefCell<Payload>>);

impl Stream for HeldBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.borrow_mut().poll_next_unpin(cx)
    }
}

impl HeldBody {
    /// Shares the body of `req`, if it has one: the request reads through a
    /// handle, and the returned one is for [`HeldBody::keep_until_sent`].
    pub(crate) fn share(req: &mut ServiceRequest) -> Option<Self> {
        let headers = req.headers();
        let has_body = headers.contains_key(TRANSFER_ENCODING)
            || headers
                .get(CONTENT_LENGTH)
                .is_some_and(|length| length.as_bytes() != b"0");
        if !has_body {
            return None;
        }
        let held = Self(Rc::new(RefCell::new(req.take_payload())));
        req.set_payload(Payload::Stream {
            payload: Box::pin(held.clone()),
        });
        Some(held)
    }
}

/// `response`, holding `held` (the request body, if it had one) until the
/// last byte of the response body has been sent.
pub(crate) fn hold_until_sent<B: MessageBody>(
    response: ServiceResponse<B>,
    held: Option<HeldBody>,
) -> ServiceResponse<EitherBody<B, Holding<B>>> {
    match held {
        None => response.map_into_left_body(),
        Some(held) => response.map_body(|_, body| EitherBody::right(Holding { body, _held: held })),
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps the request body alive while it is sent.
    pub(crate) struct Holding<B> {
        #[pin]
        body: B,
        _held: HeldBody,
    }
}

impl<B: MessageBody> MessageBody for Holding<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.project().body.poll_next(cx)
    }
}
