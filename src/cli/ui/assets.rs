//! The page's static files, embedded in the binary: one HTML shell for every view, the
//! viewer's script and style sheet, and uPlot (vendored from the npm registry; version,
//! licence and checksum in `assets/VENDORED.md`). Nothing is fetched from the network.
//!
//! `RUNSTORE_UI_ASSETS=DIR` serves the same names from DIR instead, read at each request: for
//! working on the page without rebuilding the binary.

use std::borrow::Cow;

/// An asset's name (its path under `/assets/`), content type and embedded bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

static ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: HTML,
        bytes: include_bytes!("assets/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: JS,
        bytes: include_bytes!("assets/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: CSS,
        bytes: include_bytes!("assets/app.css"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: JS,
        bytes: include_bytes!("assets/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: CSS,
        bytes: include_bytes!("assets/uPlot.min.css"),
    },
];

/// The asset `name` (no directories), as its content type and bytes.
pub(super) fn get(name: &str) -> Option<(&'static str, Cow<'static, [u8]>)> {
    let asset = ASSETS.iter().find(|asset| asset.name == name)?;
    if let Some(dir) = std::env::var_os("RUNSTORE_UI_ASSETS") {
        // Only the names above, so no path from the request reaches the file system.
        if let Ok(bytes) = std::fs::read(std::path::Path::new(&dir).join(asset.name)) {
            return Some((asset.content_type, Cow::Owned(bytes)));
        }
    }
    Some((asset.content_type, Cow::Borrowed(asset.bytes)))
}

/// The HTML shell every page route serves.
pub(super) fn page() -> (&'static str, Cow<'static, [u8]>) {
    get("index.html").unwrap_or((HTML, Cow::Borrowed(b"")))
}
