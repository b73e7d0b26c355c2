//! `mispdash._mispdash`: the dashboard as a Python extension module. Everything is the Rust
//! dashboard's own code: the configuration loader and the error messages of `mispdash run`,
//! the HTTP routes called in-process ([`mispdash_core::web::embed`]), the subscribers and the
//! dispatcher of `mispdash run`, and the command line itself. The Python package around it
//! (`python/mispdash`) adds the friendly signatures; this module stays small.
//!
//! Threads: every call that waits (a request, a stream's next event, Redis) is made with the
//! interpreter detached (`Python::detach`), so a WSGI server's other threads run meanwhile and
//! an open live stream costs one waiting thread, nothing more.
//!
//! Forks: the runtime behind the routes is made on first use in the process that serves, and
//! again in a child after a fork (mod_wsgi and other pre-fork servers import before forking;
//! threads do not survive a fork, so the parent's runtime is left alone, never dropped, there).

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Method, Request};
use mispdash_core::app::{self, RunOptions};
use mispdash_core::clock::Clock;
use mispdash_core::config::Config;
use mispdash_core::web::conn::ArrivedOverTls;
use mispdash_core::web::embed::Embedded;
use mispdash_core::web::WebOptions;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

create_exception!(
    _mispdash,
    MispdashError,
    PyException,
    "What `mispdash run` would say and stop on: a configuration that cannot be read or is wrong, a Redis that cannot be reached, a server that cannot start."
);

/// The most a request body may hold: the login form is the only route that reads one, and
/// takes 8 KiB at most.
const MAX_BODY: usize = 64 * 1024;

/// Characters a path keeps percent-encoded when it is rebuilt from WSGI's decoded `PATH_INFO`.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

fn err(e: impl std::fmt::Display) -> PyErr {
    MispdashError::new_err(e.to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere never leaves these in a state worth refusing.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The routes of this process (see the module's note on forks).
struct Routes {
    pid: u32,
    embedded: Arc<Embedded>,
}

/// Subscribers and dispatcher running in background threads.
struct Ingest {
    pid: u32,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

struct Inner {
    cfg: Config,
    clock: Clock,
    /// The host's request threads (mod_wsgi's `threads`), which live streams must share.
    threads: Option<usize>,
    routes: Mutex<Option<Routes>>,
    ingest: Mutex<Option<Ingest>>,
}

impl Inner {
    fn routes(&self, py: Python<'_>) -> PyResult<Arc<Embedded>> {
        let pid = std::process::id();
        let mut slot = lock(&self.routes);
        if let Some(r) = slot.as_ref() {
            if r.pid == pid {
                return Ok(r.embedded.clone());
            }
        }
        // A fork's child: the parent's runtime has no threads here; leave it be.
        if let Some(old) = slot.take() {
            std::mem::forget(old);
        }
        let cfg = self.cfg.clone();
        let clock = self.clock;
        let opts = WebOptions {
            host_threads: self.threads,
            ..WebOptions::default()
        };
        let embedded = py
            .detach(move || Embedded::new(&cfg, opts, clock))
            .map_err(err)?;
        let embedded = Arc::new(embedded);
        *slot = Some(Routes {
            pid,
            embedded: embedded.clone(),
        });
        Ok(embedded)
    }
}

/// The dashboard of one `config.cfg`.
#[pyclass(module = "mispdash._mispdash", frozen)]
struct Dashboard {
    inner: Arc<Inner>,
}

#[pymethods]
impl Dashboard {
    /// Reads `config_path` (else `MISPDASH_CONFIG`, else `config/config.cfg`, else built-in
    /// defaults) as `mispdash run` does. Raises `MispdashError` with `mispdash run`'s message.
    /// `threads`: the WSGI server's threads per process (the shim passes mod_wsgi's), which
    /// bounds the live streams so that they leave threads for page requests.
    #[new]
    #[pyo3(signature = (config_path=None, threads=None))]
    fn new(py: Python<'_>, config_path: Option<PathBuf>, threads: Option<usize>) -> PyResult<Self> {
        let path = config_path.or_else(|| std::env::var_os("MISPDASH_CONFIG").map(PathBuf::from));
        let (cfg, _) = py
            .detach(|| mispdash_cli::load_config(path.as_deref()))
            .map_err(|e| err(mispdash_cli::describe(&e)))?;
        let clock = Clock::from_env().map_err(err)?;
        Ok(Dashboard {
            inner: Arc::new(Inner {
                cfg,
                clock,
                threads: threads.filter(|t| *t > 0),
                routes: Mutex::new(None),
                ingest: Mutex::new(None),
            }),
        })
    }

    /// The WSGI application: every route and page of the server.
    #[getter]
    fn application(&self) -> Application {
        Application {
            inner: self.inner.clone(),
        }
    }

    /// Makes the routes ready now (checks the configuration the server needs, e.g. the
    /// session secret when login is on) instead of at the first request.
    fn prepare(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.routes(py).map(|_| ())
    }

    /// Starts the subscribers (one per `misp_instances` entry) and the dispatcher in
    /// background threads. Idempotent; after a fork, the child starts its own.
    #[pyo3(signature = (subscribe=true, dispatch=true))]
    fn start(&self, subscribe: bool, dispatch: bool) -> PyResult<()> {
        let pid = std::process::id();
        let mut slot = lock(&self.inner.ingest);
        if let Some(i) = slot.as_ref() {
            if i.pid == pid && !i.thread.is_finished() {
                return Ok(());
            }
        }
        if let Some(old) = slot.take() {
            if old.pid != pid {
                std::mem::forget(old);
            }
        }
        let cfg = self.inner.cfg.clone();
        let clock = self.inner.clock;
        let stop = Arc::new(AtomicBool::new(false));
        let opts = RunOptions {
            dispatch,
            subscribe,
            demo: false,
            data_dir: app::default_data_dir(),
            manage_redis: false,
            dispatch_opts: Default::default(),
            web: None,
        };
        // What would stop `app::run` at once is checked here, so that it is an exception
        // rather than a line in a log.
        app::load_ranking(&cfg).map_err(err)?;
        let stop_t = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mispdash-ingest".into())
            .spawn(move || {
                if let Err(e) = app::run(&cfg, &opts, clock, stop_t) {
                    tracing::error!("ingest stopped: {e}");
                }
            })
            .map_err(err)?;
        *slot = Some(Ingest { pid, stop, thread });
        Ok(())
    }

    /// Stops what `start` started and waits for it. Idempotent.
    fn stop(&self, py: Python<'_>) {
        let taken = lock(&self.inner.ingest).take();
        if let Some(i) = taken {
            if i.pid == std::process::id() {
                i.stop.store(true, Ordering::Relaxed);
                py.detach(|| {
                    let _ = i.thread.join();
                });
            } else {
                std::mem::forget(i);
            }
        }
    }

    /// Whether `start` runs in this process.
    #[getter]
    fn running(&self) -> bool {
        lock(&self.inner.ingest)
            .as_ref()
            .is_some_and(|i| i.pid == std::process::id() && !i.thread.is_finished())
    }

    /// The status JSON (as `/status` gives it), as a JSON string.
    fn status_json(&self, py: Python<'_>) -> PyResult<String> {
        let routes = self.inner.routes(py)?;
        Ok(py.detach(move || routes.status().to_string()))
    }

    /// One GET of a JSON route, asked by this program (no login needed): the answer's status
    /// and body.
    fn get(&self, py: Python<'_>, path_and_query: &str) -> PyResult<(u16, String)> {
        let routes = self.inner.routes(py)?;
        let req = Request::builder()
            .method(Method::GET)
            .uri(path_and_query)
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .map_err(|e| PyValueError::new_err(format!("bad path {path_and_query:?}: {e}")))?;
        py.detach(move || {
            let r = routes.call_in_process(req);
            let status = r.status().as_u16();
            let body = routes.collect(r.into_body()).map_err(|e| e.to_string())?;
            Ok::<_, String>((status, String::from_utf8_lossy(&body).into_owned()))
        })
        .map_err(err)
    }

    /// Hands one MISP message to the buffer, as a subscriber named `feed` would.
    #[pyo3(signature = (topic, payload, feed="python"))]
    fn ingest(&self, py: Python<'_>, topic: &str, payload: &str, feed: &str) -> PyResult<()> {
        if topic.is_empty() || topic.contains(char::is_whitespace) {
            return Err(PyValueError::new_err(format!(
                "a MISP topic is one word (misp_json, misp_json_attribute, ...), not {topic:?}"
            )));
        }
        serde_json::from_str::<serde_json::Value>(payload)
            .map_err(|e| PyValueError::new_err(format!("the payload is not JSON: {e}")))?;
        let cfg = &self.inner.cfg;
        let target = mispdash_core::redis_util::RedisTarget::from_config(&cfg.redis);
        let content = format!("{topic} {payload}");
        py.detach(|| {
            mispdash_core::feed::ingest_one(
                &target,
                cfg.redis.list_db,
                &cfg.redis.list_name,
                feed,
                &content,
            )
        })
        .map_err(|e| err(format!("cannot reach Redis at {target}: {e}")))
    }
}

/// The WSGI callable (PEP 3333).
#[pyclass(module = "mispdash._mispdash", frozen)]
struct Application {
    inner: Arc<Inner>,
}

fn environ_str(environ: &Bound<'_, PyDict>, key: &str) -> PyResult<Option<String>> {
    match environ.get_item(key)? {
        Some(v) if !v.is_none() => Ok(Some(v.extract::<String>()?)),
        _ => Ok(None),
    }
}

/// WSGI's strings carry bytes as Latin-1 (PEP 3333): back to the bytes.
fn latin1_bytes(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| if (c as u32) < 256 { c as u8 } else { b'?' })
        .collect()
}

/// The path and query the client asked for. mod_wsgi keeps them as sent in `REQUEST_URI`;
/// otherwise `PATH_INFO` is decoded and is encoded again.
fn target_of(environ: &Bound<'_, PyDict>) -> PyResult<String> {
    let script = environ_str(environ, "SCRIPT_NAME")?.unwrap_or_default();
    if script.is_empty() {
        if let Some(uri) = environ_str(environ, "REQUEST_URI")? {
            if uri.starts_with('/') {
                return Ok(uri);
            }
        }
    }
    let path = environ_str(environ, "PATH_INFO")?.unwrap_or_else(|| "/".into());
    let bytes = latin1_bytes(&path);
    let text = String::from_utf8_lossy(&bytes);
    let mut out: String = utf8_percent_encode(&text, PATH).to_string();
    if out.is_empty() {
        out.push('/');
    }
    if let Some(q) = environ_str(environ, "QUERY_STRING")?.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(&q);
    }
    Ok(out)
}

fn peer_of(environ: &Bound<'_, PyDict>) -> PyResult<SocketAddr> {
    let ip = environ_str(environ, "REMOTE_ADDR")?
        .and_then(|a| a.parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let port = environ_str(environ, "REMOTE_PORT")?
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(0);
    Ok(SocketAddr::new(ip, port))
}

/// Headers a WSGI application must not set: the server owns the connection.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailers"
            | "transfer-encoding"
            | "upgrade"
    )
}

fn request_of(environ: &Bound<'_, PyDict>) -> PyResult<Result<Request<Body>, String>> {
    let method = environ_str(environ, "REQUEST_METHOD")?.unwrap_or_else(|| "GET".into());
    let uri = target_of(environ)?;
    let mut req = Request::builder().method(method.as_str()).uri(uri.as_str());
    for (k, v) in environ.iter() {
        let Ok(key) = k.extract::<String>() else {
            continue;
        };
        let name = match key.as_str() {
            "CONTENT_TYPE" => "content-type".to_string(),
            "CONTENT_LENGTH" => "content-length".to_string(),
            _ => match key.strip_prefix("HTTP_") {
                Some(rest) => rest.replace('_', "-").to_ascii_lowercase(),
                None => continue,
            },
        };
        let Ok(value) = v.extract::<String>() else {
            continue;
        };
        if value.is_empty() && name.starts_with("content-") {
            continue;
        }
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&latin1_bytes(&value)),
        ) {
            (Ok(n), Ok(v)) => req = req.header(n, v),
            _ => return Ok(Err(format!("the header {name} cannot be passed on"))),
        }
    }
    let length = environ_str(environ, "CONTENT_LENGTH")?
        .and_then(|l| l.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        return Ok(Err(format!(
            "413 a request body of {length} bytes; at most {MAX_BODY}"
        )));
    }
    let mut body = Vec::new();
    if length > 0 {
        if let Some(input) = environ.get_item("wsgi.input")? {
            let data = input.call_method1("read", (length,))?;
            body = data.extract::<Vec<u8>>()?;
        }
    }
    // Apache (or another WSGI server) terminated the TLS: it says so here, and the cookies'
    // `Secure` flag depends on it.
    let tls = environ_str(environ, "wsgi.url_scheme")?
        .is_some_and(|s| s.eq_ignore_ascii_case("https"))
        || environ_str(environ, "HTTPS")?.is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "on" | "1" | "yes" | "true")
        });
    Ok(req
        .extension(ArrivedOverTls(tls))
        .body(Body::from(body))
        .map_err(|e| e.to_string()))
}

#[pymethods]
impl Application {
    fn __call__(
        &self,
        py: Python<'_>,
        environ: &Bound<'_, PyDict>,
        start_response: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let routes = self.inner.routes(py)?;
        let req = match request_of(environ)? {
            Ok(r) => r,
            Err(why) => {
                let (status, text) = match why.strip_prefix("413 ") {
                    Some(rest) => ("413 Payload Too Large", rest.to_string()),
                    None => ("400 Bad Request", why),
                };
                let body = serde_json::json!({ "error": text }).to_string();
                let headers = PyList::new(py, [("Content-Type", "application/json")])?;
                start_response.call1((status, headers))?;
                return Ok(PyList::new(py, [PyBytes::new(py, body.as_bytes())])?
                    .into_any()
                    .unbind());
            }
        };
        let peer = peer_of(environ)?;
        let response = py.detach(|| routes.call(req, peer));
        let (parts, body) = response.into_parts();
        let reason = parts.status.canonical_reason().unwrap_or("");
        let status = format!("{} {reason}", parts.status.as_u16());
        let mut headers: Vec<(String, String)> = Vec::with_capacity(parts.headers.len());
        for (name, value) in &parts.headers {
            if hop_by_hop(name) {
                continue;
            }
            let v: String = value.as_bytes().iter().map(|&b| b as char).collect();
            headers.push((canonical(name.as_str()), v));
        }
        let streaming = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let headers = PyList::new(py, headers)?;
        start_response.call1((status, headers))?;
        if streaming {
            return Ok(Py::new(
                py,
                Stream {
                    routes,
                    body: Mutex::new(Some(body)),
                },
            )?
            .into_any());
        }
        let bytes = py.detach(|| routes.collect(body)).map_err(err)?;
        Ok(PyList::new(py, [PyBytes::new(py, &bytes)])?
            .into_any()
            .unbind())
    }
}

/// `Content-Type` rather than `content-type`: some WSGI servers compare names as written.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A live stream's body as a WSGI iterable: each item is the next event, waited for with the
/// interpreter detached. The server calls `close()` when the client is gone, which ends the
/// stream.
#[pyclass(module = "mispdash._mispdash")]
struct Stream {
    routes: Arc<Embedded>,
    body: Mutex<Option<Body>>,
}

#[pymethods]
impl Stream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyBytes>>> {
        let Some(mut body) = lock(&self.body).take() else {
            return Ok(None);
        };
        let routes = self.routes.clone();
        let (chunk, body) = py.detach(move || {
            let c = routes.next_chunk(&mut body);
            (c, body)
        });
        match chunk {
            Some(Ok(bytes)) => {
                *lock(&self.body) = Some(body);
                Ok(Some(PyBytes::new(py, &bytes).unbind()))
            }
            Some(Err(e)) => {
                tracing::debug!("live stream ended: {e}");
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn close(&self) {
        lock(&self.body).take();
    }
}

/// Runs the `mispdash` command line with `argv` (the program name first) and returns its exit
/// status: `python -m mispdash` and the `mispdash` console script.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| mispdash_cli::main_from(argv))
}

/// The version of the dashboard this module is.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _mispdash(m: &Bound<'_, PyModule>) -> PyResult<()> {
    mispdash_cli::tune_allocator();
    m.add_class::<Dashboard>()?;
    m.add_class::<Application>()?;
    m.add_class::<Stream>()?;
    m.add_function(wrap_pyfunction!(main, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add("MispdashError", m.py().get_type::<MispdashError>())?;
    // The log goes to stderr, which Apache writes to its error log; `MISPDASH_LOG` sets the
    // level as for the binary.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(mispdash_core::log_filter(
            std::env::var("MISPDASH_LOG").ok().as_deref(),
        ))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    Ok(())
}
