//! The viewer's HTTP side: accepting connections, limits, the Host check, security headers,
//! and routing each request to a page, an asset or the JSON API.
//!
//! hyper's HTTP/1 server on a tokio runtime of two workers. Limits: at most
//! [`CONNECTIONS_MAX`] connections at once (more are closed at accept), a request's head
//! within [`HEAD_BYTES_MAX`] bytes and [`HEAD_TIMEOUT`], no request body (the viewer is GET
//! only), a URI within [`URI_BYTES_MAX`], and an API answer within [`ANSWER_TIMEOUT`]
//! (computed on tokio's blocking pool, at most [`BLOCKING_THREADS`] at once).
//!
//! Security: requests whose Host header names another host are refused (a DNS-rebinding page
//! cannot read the store through the viewer); every response carries a Content-Security-Policy
//! that allows only the viewer's own scripts, styles and requests, `nosniff`, no referrer and
//! no framing. The pages insert every string from the store as text (assets/app.js).

use std::borrow::Cow;
use std::convert::Infallible;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{mpsc, Semaphore};

use super::api::{self, ApiError, Reply};
use super::assets;
use super::params::Params;
use super::view::View;

/// Most connections served at once.
const CONNECTIONS_MAX: usize = 256;
/// Longest request head (request line and headers) accepted.
const HEAD_BYTES_MAX: usize = 64 * 1024;
/// Time a client has to send a request's head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest request URI accepted.
const URI_BYTES_MAX: usize = 32 * 1024;
/// Time an API answer may take before the client gets a 503.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Threads answering API requests at once.
const BLOCKING_THREADS: usize = 8;
/// Bytes per chunk of a streamed blob.
const BLOB_CHUNK: usize = 256 * 1024;

/// The page routes: each serves the HTML shell, whose script draws the view the path names.
const PAGES: [&str; 5] = ["/", "/project", "/run", "/table", "/compare"];

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The hosts a request's Host header may name.
pub(super) struct AllowedHosts {
    names: Vec<String>,
    /// Bound to every address (0.0.0.0 or ::): any IP address literal is this machine.
    any_address: bool,
}

impl AllowedHosts {
    /// The bound host as given, the address bound, and the loopback names.
    pub(super) fn new(host: &str, bound: SocketAddr) -> AllowedHosts {
        let mut names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "[::1]".to_string(),
            host.to_ascii_lowercase(),
            match bound.ip() {
                IpAddr::V4(address) => address.to_string(),
                IpAddr::V6(address) => format!("[{address}]"),
            },
        ];
        if let Ok(IpAddr::V6(address)) = host.parse::<IpAddr>() {
            names.push(format!("[{address}]"));
        }
        let any_address = bound.ip().is_unspecified();
        if any_address {
            if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
                names.push(name.trim().to_ascii_lowercase());
            }
        }
        AllowedHosts { names, any_address }
    }

    /// Whether a Host header's value (host, optionally `:port`) names this server.
    fn allows(&self, value: &str) -> bool {
        let value = value.trim().to_ascii_lowercase();
        let host = if value.starts_with('[') {
            match value.find(']') {
                Some(end) => &value[..=end],
                None => return false,
            }
        } else {
            value.rsplit_once(':').map_or(value.as_str(), |(h, _)| h)
        };
        if self.names.iter().any(|name| name == host) {
            return true;
        }
        self.any_address
            && host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok()
    }
}

/// What every connection shares.
struct Shared {
    view: View,
    allowed: AllowedHosts,
}

/// Serves `listener` until Ctrl-C or SIGTERM, then stops accepting and gives open
/// connections a second to finish.
pub(super) fn serve(
    listener: std::net::TcpListener,
    view: View,
    allowed: AllowedHosts,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_name("runstore-ui")
        .enable_io()
        .enable_time()
        .build()
        .context("starting the server's runtime")?;
    let shared = Arc::new(Shared { view, allowed });
    let result = runtime.block_on(accept_until_stopped(listener, shared));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn accept_until_stopped(listener: std::net::TcpListener, shared: Arc<Shared>) -> Result<()> {
    let listener =
        tokio::net::TcpListener::from_std(listener).context("setting up the listening socket")?;
    let connections = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            result = &mut stop => return result,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors, say: wait, then go on serving.
                        eprintln!("runstore ui: accepting a connection: {error}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    continue; // Too many at once: close this one.
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(respond(&shared, request).await) }
                    });
                    let mut http = hyper::server::conn::http1::Builder::new();
                    http.timer(TokioTimer::new())
                        .header_read_timeout(HEAD_TIMEOUT)
                        .max_buf_size(HEAD_BYTES_MAX);
                    // A client that goes away mid-request is its own business.
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    drop(permit);
                });
            }
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn stop_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt()).context("handling Ctrl-C")?;
        let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("handling Ctrl-C")
    }
}

/// A response body: bytes in memory, or a blob streamed from a blocking reader.
pub(super) enum Payload {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<std::io::Result<Bytes>>),
}

impl hyper::body::Body for Payload {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            Payload::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Payload::Stream(receiver) => receiver
                .poll_recv(cx)
                .map(|next| next.map(|chunk| chunk.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Payload::Full(None))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            Payload::Full(Some(bytes)) => http_body::SizeHint::with_exact(bytes.len() as u64),
            Payload::Full(None) => http_body::SizeHint::with_exact(0),
            Payload::Stream(_) => http_body::SizeHint::default(),
        }
    }
}

/// The response to one request, with the headers every response carries.
async fn respond(shared: &Arc<Shared>, request: Request<Incoming>) -> Response<Payload> {
    let mut response = route(shared, &request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn route(shared: &Arc<Shared>, request: &Request<Incoming>) -> Response<Payload> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{}: the viewer only reads (GET)", request.method()),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    match host {
        Some(host) if shared.allowed.allows(host) => {}
        Some(host) => {
            return error(
                StatusCode::FORBIDDEN,
                format!(
                    "Host {}: not this server's name (open the address runstore ui printed)",
                    serde_json::Value::from(host)
                ),
            )
        }
        None => return error(StatusCode::BAD_REQUEST, "no Host header".to_string()),
    }
    let has_body = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|length| length.as_bytes() != b"0")
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    if has_body {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the viewer takes no request body".to_string(),
        );
    }
    let uri = request.uri();
    if uri.to_string().len() > URI_BYTES_MAX {
        return error(
            StatusCode::URI_TOO_LONG,
            format!("the request URI is longer than {URI_BYTES_MAX} bytes"),
        );
    }
    let path = uri.path();
    if let Some(route) = path.strip_prefix("/api/") {
        return api_response(shared, route.to_string(), uri.query().map(str::to_string)).await;
    }
    if let Some(name) = path.strip_prefix("/assets/") {
        return match assets::get(name) {
            Some((content_type, bytes)) => ok(content_type, bytes, "no-cache"),
            None => error(StatusCode::NOT_FOUND, format!("no asset {name}")),
        };
    }
    if PAGES.contains(&path) {
        let (content_type, bytes) = assets::page();
        return ok(content_type, bytes, "no-cache");
    }
    error(StatusCode::NOT_FOUND, format!("no page {path}"))
}

/// An API answer, computed on the blocking pool within [`ANSWER_TIMEOUT`].
async fn api_response(
    shared: &Arc<Shared>,
    route: String,
    query: Option<String>,
) -> Response<Payload> {
    let params = match Params::parse(query.as_deref()) {
        Ok(params) => params,
        Err(e) => return api_error(e),
    };
    let worker = shared.clone();
    let task = tokio::task::spawn_blocking(move || {
        // A panic is a bug; contained here it costs one request, not the server.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            api::answer(&worker.view, &route, &params)
        }))
    });
    let answer = match tokio::time::timeout(ANSWER_TIMEOUT, task).await {
        Err(_) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the answer took longer than {} s; narrow the request",
                    ANSWER_TIMEOUT.as_secs()
                ),
            )
        }
        Ok(Err(_)) | Ok(Ok(Err(_))) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the viewer failed on this request (a bug: please report it)".to_string(),
            )
        }
        Ok(Ok(Ok(answer))) => answer,
    };
    match answer {
        Ok(Reply::Json(value)) => ok(
            "application/json",
            Cow::Owned(value.to_string().into_bytes()),
            "no-store",
        ),
        Ok(Reply::Blob {
            name,
            len,
            first,
            reader,
        }) => blob(name, len, first, reader),
        Err(e) => api_error(e),
    }
}

/// A blob download: `first` (read and checked before the answer), then the rest streamed
/// from a blocking reader, checksums checked chunk by chunk (a failing chunk ends the response
/// early, so the client sees a short download).
fn blob(
    name: String,
    len: u64,
    first: Vec<u8>,
    mut reader: runstore::BulkReader,
) -> Response<Payload> {
    let (sender, receiver) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        if !first.is_empty() && sender.blocking_send(Ok(Bytes::from(first))).is_err() {
            return; // The client went away.
        }
        loop {
            let mut chunk = vec![0u8; BLOB_CHUNK];
            let read = match reader.read(&mut chunk) {
                Ok(0) => return,
                Ok(read) => read,
                Err(e) => {
                    let _ = sender.blocking_send(Err(e));
                    return;
                }
            };
            chunk.truncate(read);
            if sender.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                return; // The client went away.
            }
        }
    });
    let mut response = Response::new(Payload::Stream(receiver));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(value) = HeaderValue::from_str(&content_disposition(&name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `attachment` with the blob's last path part as the file name: an ASCII stand-in and the
/// UTF-8 name percent-encoded (RFC 6266).
fn content_disposition(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    let ascii: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = base
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

fn ok(
    content_type: &'static str,
    bytes: Cow<'static, [u8]>,
    cache: &'static str,
) -> Response<Payload> {
    let bytes = match bytes {
        Cow::Borrowed(bytes) => Bytes::from_static(bytes),
        Cow::Owned(bytes) => Bytes::from(bytes),
    };
    let mut response = Response::new(Payload::Full(Some(bytes)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

fn api_error(error: ApiError) -> Response<Payload> {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    self::error(status, error.message)
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: String) -> Response<Payload> {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut response = ok(
        "application/json",
        Cow::Owned(body.into_bytes()),
        "no-store",
    );
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_must_name_this_server() {
        let bound: SocketAddr = "127.0.0.1:8321".parse().unwrap();
        let allowed = AllowedHosts::new("127.0.0.1", bound);
        for good in [
            "127.0.0.1:8321",
            "localhost:8321",
            "LOCALHOST",
            "[::1]:8321",
        ] {
            assert!(allowed.allows(good), "{good}");
        }
        for bad in [
            "evil.example:8321",
            "evil.example",
            "127.0.0.2:8321",
            "[::2]:1",
            "[::1",
        ] {
            assert!(!allowed.allows(bad), "{bad}");
        }
        let everywhere = AllowedHosts::new("0.0.0.0", "0.0.0.0:80".parse().unwrap());
        assert!(everywhere.allows("10.1.2.3:80"));
        assert!(everywhere.allows("[fe80::1]:80"));
        assert!(!everywhere.allows("rebind.example:80"));
    }

    #[test]
    fn downloads_are_named_safely() {
        assert_eq!(
            content_disposition("ckpt/model \"v1\".pt"),
            "attachment; filename=\"model__v1_.pt\"; filename*=UTF-8''model%20%22v1%22.pt"
        );
    }
}
