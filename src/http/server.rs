//! Running the HTTP API of one node: binding its listener and starting actix-web's workers.
//!
//! The node runtime (`cli::serve`) calls [`bind`] and [`start`], spawns the returned
//! [`Server`] on its actix system, and stops it through [`Server::handle`] on shutdown:
//! `stop(true)` stops accepting, lets requests in progress finish for up to
//! [`SHUTDOWN_GRACE`], then closes what remains (open tails and long-polls included). The
//! server does not watch for signals itself; the runtime does, once for the whole process.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::HttpServer;

use super::context::HttpContext;
use super::service::LogService;

/// How long a stopping server waits for requests in progress before closing them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Binds `addr` for HTTP, with an error that says what was being bound.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot listen for HTTP on {addr}: {error}"),
        )
    })
}

/// Starts serving the API on `listener` with `workers` threads. Each worker calls
/// `make_service` once and serves all its requests with that service; for a service that is
/// `Send + Sync`, `move || service.clone()` shares one. Must be called inside an actix system;
/// the returned server runs once spawned (or awaited).
pub fn start<F>(
    listener: TcpListener,
    workers: usize,
    context: HttpContext,
    make_service: F,
) -> io::Result<Server>
where
    F: Fn() -> Arc<dyn LogService> + Send + Clone + 'static,
{
    let server = HttpServer::new(move || super::app(make_service(), context.clone()))
        .workers(workers.max(1))
        // Answers are small and latency is the point: with Nagle's algorithm an answer that
        // leaves in two writes (a head, then a streamed body or an SSE event) would wait for
        // the client's delayed ACK, up to 200 ms on Linux.
        .tcp_nodelay(true)
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
        .listen(listener)?
        .run();
    Ok(server)
}
