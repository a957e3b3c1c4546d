//! The HTTP API of a node (`../shared/API.md`): actix-web handlers that turn requests into
//! calls on a [`LogService`] and its answers into API.md's JSON. No Raft state lives here.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | the route table and the app of one worker ([`app`]) |
//! | [`service`] | the interface to the node: [`LogService`] and its types |
//! | [`wire`] | the JSON bodies, queries and answers |
//! | [`errors`] | every error's status, code and fields, in one place |
//! | [`records`] | append (JSON or raw) and read (with long-poll) |
//! | [`tail`] | the SSE tail, with `Last-Event-ID` resume |
//! | [`streams`] | the stream list and one stream's bounds |
//! | [`cluster`] | `/v1/cluster`, `/healthz`, `/readyz` |
//! | [`metrics`] | `/metrics` and the HTTP layer's measurements |
//! | [`openapi`] | `/openapi.json`, generated from the handlers |
//! | [`forward`] | passing a follower's request to the leader, one hop |
//! | [`limits`] | size limits and the gates that bound concurrent work |
//! | [`context`] | what the handlers of a node share |
//! | [`server`] | binding and running the server |
//!
//! Every answer that is not a success is API.md's error JSON, including those for unknown
//! routes, wrong methods and unparseable query strings, and no input makes a handler panic.

pub mod cluster;
pub mod context;
pub mod errors;
pub mod forward;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod records;
pub mod server;
pub mod service;
pub mod streams;
pub mod tail;
pub mod wire;

#[cfg(test)]
pub mod fake;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App, HttpRequest, HttpResponse};

pub use context::HttpContext;
pub use errors::ApiError;
pub use service::{
    AppendRequest, AppendResult, ClusterStatus, Consistency, LeaderInfo, LogService, MemberStatus,
    ReadRequest, ReadResult, Record, Role, ServiceError, StreamSummary,
};

/// The route table: every endpoint of API.md that this layer serves, with its handlers.
/// A method a path does not take gets 405 `method_not_allowed` with an `Allow` header.
pub fn routes(config: &mut web::ServiceConfig) {
    let resource = |path: &'static str, allow: &'static str| {
        web::resource(path)
            // Named here, where it is known, so that the request's measurement need not match
            // the path against the route table a second time. Resource data costs a request
            // nothing (a middleware here cost a layer and an extensions entry each).
            .app_data(metrics::Route(path))
            .default_service(web::to(move |request: HttpRequest| {
                method_not_allowed(request, allow)
            }))
    };
    // Tried in order, each dynamic pattern by a regex: the appends' route goes first.
    config
        .service(
            resource("/v1/streams/{stream}/records", "GET, POST")
                .route(web::post().to(records::append))
                .route(web::get().to(records::read)),
        )
        .service(resource("/v1/streams", "GET").route(web::get().to(streams::list)))
        .service(resource("/v1/streams/{stream}", "GET").route(web::get().to(streams::get)))
        .service(resource("/v1/streams/{stream}/tail", "GET").route(web::get().to(tail::tail)))
        .service(resource("/v1/cluster", "GET").route(web::get().to(cluster::cluster)))
        .service(resource("/v1/cluster/leader", "POST").route(web::post().to(cluster::transfer)))
        .service(resource("/healthz", "GET").route(web::get().to(cluster::healthz)))
        .service(resource("/readyz", "GET").route(web::get().to(cluster::readyz)))
        .service(resource("/metrics", "GET").route(web::get().to(metrics::metrics)))
        .service(resource("/openapi.json", "GET").route(web::get().to(openapi::openapi_json)));
}

/// The app one HTTP worker runs: the routes, the service and context they use, this worker's
/// forwarding client, JSON errors for everything actix would otherwise answer in plain text,
/// and a measurement of every request.
pub fn app(
    service: Arc<dyn LogService>,
    context: HttpContext,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let measurements = std::rc::Rc::new(metrics::RequestMetrics::new(context.node_id));
    let query_errors = web::QueryConfig::default().error_handler(|error, _| {
        ApiError::bad_request(format!("the query string is not valid: {error}")).into()
    });
    let path_errors = web::PathConfig::default().error_handler(|error, _| {
        ApiError::bad_request(format!("the path is not valid: {error}")).into()
    });
    App::new()
        .app_data(web::Data::from(service))
        .app_data(web::Data::new(context))
        .app_data(web::Data::new(forward::Forwarder::default()))
        .app_data(query_errors)
        .app_data(path_errors)
        .configure(routes)
        .default_service(web::to(not_found))
        .wrap_fn(move |request, service| {
            let started = Instant::now();
            let measurements = measurements.clone();
            let call = service.call(request);
            async move {
                let response = call.await?;
                let route = response
                    .request()
                    .app_data::<metrics::Route>()
                    .map_or("unmatched", |metrics::Route(path)| path);
                measurements.record(route, response.status().as_u16(), started.elapsed());
                Ok(response)
            }
        })
}

async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "there is no {} {}; see /openapi.json for the API",
        request.method(),
        request.path()
    )))
}

async fn method_not_allowed(
    request: HttpRequest,
    allow: &'static str,
) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed {
        message: format!("{} takes {allow}, not {}", request.path(), request.method()),
        allow,
    })
}
