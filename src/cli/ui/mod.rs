//! `runstore ui`: a read-only web viewer over a store, served on localhost.
//!
//! The pieces, top to bottom: this file parses the command, opens the store and runs the
//! server until Ctrl-C (or SIGTERM); `http` accepts connections and turns each request into a
//! response (limits, the Host check, security headers, routing); `api` answers the JSON routes
//! from the store; `view` keeps the store handle fresh beside a writer; `params` decodes query
//! strings; `assets` holds the page's HTML, JS and CSS, embedded in the binary.
//!
//! The server is hyper's HTTP/1 on a small tokio runtime, in the binary only (feature `ui`):
//! the library other tools embed has no HTTP or async dependency. Store reads are synchronous
//! (redb, mapped columns), so each API request runs on tokio's blocking pool under a time
//! limit.

mod api;
mod assets;
mod http;
mod params;
mod view;

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::open::open_read;

/// Serve a read-only web viewer of a store (projects, runs, charts, tables, comparisons).
///
/// Prints the viewer's address (`http://HOST:PORT/`) on the first line of stdout. Runs
/// beside a process writing the store and shows its commits as they land; Ctrl-C stops it.
///
/// Example: runstore ui demo.runs --open
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
    /// The address to listen on. Anything but a loopback address exposes the store, without
    /// authentication, to whoever can reach it.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The port to listen on; 0 lets the system choose one (printed on the first line).
    #[arg(long, default_value_t = 8321)]
    port: u16,
    /// Open the viewer in a web browser.
    #[arg(long)]
    open: bool,
}

/// Runs `ui` until Ctrl-C or SIGTERM.
pub fn run(args: Args, out: &mut impl Write) -> Result<ExitCode> {
    let Args {
        path,
        host,
        port,
        open,
    } = args;
    let store = open_read(&path)?;
    let listener = TcpListener::bind((host.as_str(), port))
        .with_context(|| format!("listening on {host} port {port}"))?;
    listener
        .set_nonblocking(true)
        .context("setting up the listening socket")?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let url = base_url(&host, bound);
    writeln!(out, "{url}")?;
    out.flush()?;
    if !bound.ip().is_loopback() {
        eprintln!(
            "runstore ui: warning: listening on {bound}, not a loopback address: anyone who \
             can reach it can read this store (there is no authentication)"
        );
    }
    eprintln!(
        "runstore ui: serving {} read-only at {url} (Ctrl-C stops)",
        path.display()
    );
    if open {
        open_browser(&url);
    }
    let view = view::View::new(path, store);
    let allowed = http::AllowedHosts::new(&host, bound);
    http::serve(listener, view, allowed)?;
    eprintln!("runstore ui: stopped");
    Ok(ExitCode::SUCCESS)
}

/// `http://HOST:PORT/` as a browser would be given it: the host as typed (a name such as
/// `localhost` stays a name), an IPv6 address in brackets, the port the socket got.
fn base_url(host: &str, bound: SocketAddr) -> String {
    let host = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(address)) => format!("[{address}]"),
        Ok(IpAddr::V4(address)) => address.to_string(),
        Err(_) => host.to_string(),
    };
    format!("http://{host}:{}/", bound.port())
}

/// Starts the system's browser on `url` ($BROWSER, else xdg-open or macOS's open); says so
/// when none starts, and goes on serving.
fn open_browser(url: &str) {
    let mut candidates: Vec<String> = Vec::new();
    if let Ok(browser) = std::env::var("BROWSER") {
        candidates.extend(
            browser
                .split(':')
                .filter(|b| !b.is_empty())
                .map(String::from),
        );
    }
    candidates.extend(["xdg-open".to_string(), "open".to_string()]);
    for program in &candidates {
        let started = std::process::Command::new(program)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(mut child) = started {
            // Reaped in the background: xdg-open returns at once, a browser may not.
            std::thread::spawn(move || child.wait());
            return;
        }
    }
    eprintln!(
        "runstore ui: could not start a browser (tried {}); open {url}",
        candidates.join(", ")
    );
}
