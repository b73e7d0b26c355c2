//! Embeds the dashboard's pages (`web/dist/`, built by `npm run build` in `core/web`, which
//! `scripts/setup.sh` runs) with memory-serve: compressed at build time, served with ETags.
//!
//! A fresh clone must build with plain `cargo build` before anyone ran npm: then a one-page
//! placeholder that says how to build the pages is embedded instead.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dist = manifest.join("web/dist");
    println!("cargo::rerun-if-changed={}", dist.display());
    let dir = if dist.join("status.html").is_file() {
        dist
    } else {
        let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("ui-missing");
        std::fs::create_dir_all(&out).expect("create the placeholder directory");
        std::fs::write(out.join("status.html"), PLACEHOLDER).expect("write the placeholder page");
        out
    };
    // One line per file at every build is noise; problems still show.
    std::env::set_var("MEMORY_SERVE_QUIET", "1");
    memory_serve::load_directory(dir);
}

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mispdash: pages not built</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body><main><h1>The dashboard's pages were not built</h1>
<p>This mispdash binary was built before its web pages. Build them and then the binary:</p>
<pre>scripts/setup.sh run      # installs Node.js packages and builds core/web
cargo build --release</pre>
<p>or simply run <code>./scripts/run.sh</code>. The JSON API and the live streams work meanwhile.</p>
</main></body></html>
"#;
