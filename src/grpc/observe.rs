//! Every gRPC call counted and timed, by service, method and status code, and its status
//! recorded on the request's span. A tower layer around the services: the status of a failed
//! call is in the response headers (trailers-only), that of a call that answered is in the
//! trailers at the end of the body, so the body is wrapped to see them. Written here because
//! the `metrics` facade has no gRPC middleware, and tower-http's classifier reports failures
//! only, not the OK an error ratio needs. Metric names: docs/operations.md.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame};
use tower::{Layer, Service};

/// Adds `Observed` around a service.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observed<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observed { inner }
    }
}

/// A service whose calls are counted, timed and given their status on the span.
#[derive(Debug, Clone)]
pub struct Observed<S> {
    inner: S,
}

/// What one call has told so far; recorded once, when the status is known or the call is
/// dropped unanswered.
struct Call {
    service: String,
    method: String,
    started: Instant,
    span: tracing::Span,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: &str) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let labels = [
            ("service", self.service.clone()),
            ("method", self.method.clone()),
        ];
        metrics::histogram!("pertinent_grpc_request_duration_seconds", &labels)
            .record(self.started.elapsed().as_secs_f64());
        let mut with_code = labels.to_vec();
        with_code.push(("code", code.to_owned()));
        metrics::counter!("pertinent_grpc_requests_total", &with_code).increment(1);
        metrics::gauge!("pertinent_grpc_requests_in_flight").decrement(1.0);
        self.span.record("rpc.grpc.status_code", code_number(code));
        self.span.record(
            "otel.status_code",
            if code == "OK" { "OK" } else { "ERROR" },
        );
    }

    /// The status in `headers`, if there is one.
    fn status_in(&mut self, headers: &HeaderMap) -> bool {
        match headers.get("grpc-status") {
            Some(value) => {
                let code = value
                    .to_str()
                    .ok()
                    .and_then(|v| v.parse::<i32>().ok())
                    .map(tonic::Code::from_i32)
                    .unwrap_or(tonic::Code::Unknown);
                self.finish(code_name(code));
                true
            }
            None => false,
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The client went away, or the body ended without trailers.
        self.finish("CANCELLED");
    }
}

impl<S, B, R> Service<Request<B>> for Observed<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    R: Body,
{
    type Response = Response<ObservedBody<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path();
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("unknown", "unknown"));
        let (service, method) = (service.to_owned(), method.to_owned());
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            // Polled inside the request's span (tonic enters it around the future, not the
            // call), so this is the span the status belongs on.
            metrics::gauge!("pertinent_grpc_requests_in_flight").increment(1.0);
            let mut call = Call {
                service,
                method,
                started,
                span: tracing::Span::current(),
                done: false,
            };
            let response = match answer.await {
                Ok(response) => response,
                Err(e) => {
                    call.finish("UNKNOWN");
                    return Err(e);
                }
            };
            let (parts, body) = response.into_parts();
            let call = (!call.status_in(&parts.headers)).then_some(call);
            Ok(Response::from_parts(parts, ObservedBody { body, call }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that records the call when its trailers pass.
    pub struct ObservedBody<B> {
        #[pin]
        body: B,
        call: Option<Call>,
    }
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.body.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(trailers) = frame.trailers_ref()
            && let Some(call) = this.call.as_mut()
        {
            call.status_in(trailers);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The canonical name of a gRPC status code, as Prometheus labels and dashboards use it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The number of a code name (the `rpc.grpc.status_code` span attribute is the number).
fn code_number(name: &str) -> i64 {
    (0..=16)
        .find(|n| code_name(tonic::Code::from_i32(*n)) == name)
        .map_or(2, i64::from)
}
