//! [`Routes`]: routes gRPC calls to services by the service name in the
//! call's path (`/<service>/<method>`), so the SDK's servers need no router
//! (tonic's `router` feature would pull in axum). A call to a service no
//! route names is answered `UNIMPLEMENTED`, as gRPC servers do.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tonic::server::NamedService;

type Handler =
    Arc<dyn Fn(http::Request<Body>) -> BoxFuture<http::Response<Body>, Infallible> + Send + Sync>;

/// gRPC services by name.
#[derive(Clone, Default)]
pub(crate) struct Routes {
    services: HashMap<&'static str, Handler>,
}

impl Routes {
    pub(crate) fn new() -> Self {
        Routes::default()
    }

    /// Adds a tonic-generated service (always ready, so each call clones it
    /// and calls at once).
    pub(crate) fn add<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let handler: Handler = Arc::new(move |req| {
            let mut service = service.clone();
            Box::pin(service.call(req))
        });
        self.services.insert(S::NAME, handler);
        self
    }
}

/// The service name of a gRPC call path `/<service>/<method>`.
fn service_of(path: &str) -> Option<&str> {
    path.strip_prefix('/')?.split_once('/').map(|(s, _)| s)
}

impl Service<http::Request<Body>> for Routes {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<http::Response<Body>, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        match service_of(req.uri().path()).and_then(|s| self.services.get(s)) {
            Some(handler) => handler(req),
            None => {
                let path = req.uri().path().to_string();
                Box::pin(async move {
                    Ok(tonic::Status::unimplemented(format!("no service for {path}")).into_http())
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_come_from_the_path() {
        assert_eq!(service_of("/pb.Backend/Setup"), Some("pb.Backend"));
        assert_eq!(
            service_of("/grpc.health.v1.Health/Check"),
            Some("grpc.health.v1.Health")
        );
        assert_eq!(service_of("pb.Backend/Setup"), None);
        assert_eq!(service_of("/nothing"), None);
    }
}
