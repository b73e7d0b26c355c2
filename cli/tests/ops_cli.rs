//! Shell completions and man pages come from the same clap definitions as `--help`, so every
//! administration command appears in them.

mod common;

use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mispdash"))
        .args(args)
        .output()
        .expect("run mispdash");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

const ADMIN: &[&str] = &["selftest", "clean", "rebuild-geo", "replay", "record"];

#[test]
fn completions_cover_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let (ok, text) = run(&["completions", shell]);
        assert!(ok, "completions {shell}");
        for sub in ADMIN {
            assert!(text.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let (_, bash) = run(&["completions", "bash"]);
    assert!(
        bash.contains("--brutal") && bash.contains("--dry-run"),
        "options complete too"
    );
    assert!(
        !run(&["completions", "tcsh-9"]).0,
        "an unknown shell is refused"
    );
}

#[test]
fn man_pages_document_the_commands() {
    let (ok, page) = run(&["man"]);
    assert!(ok);
    // roff spells a hyphen `\-`.
    let page = page.replace("\\-", "-");
    assert!(
        page.starts_with(".ie") || page.contains(".TH mispdash"),
        "{}",
        &page[..200.min(page.len())]
    );
    for sub in ADMIN {
        assert!(page.contains(sub), "man page lacks {sub}");
    }
    let dir = common::tmpdir("man");
    let (ok, _) = run(&["man", "--dir", dir.to_str().expect("utf-8")]);
    assert!(ok);
    for name in [
        "mispdash.1",
        "mispdash-selftest.1",
        "mispdash-clean.1",
        "mispdash-rebuild-geo.1",
    ] {
        let text =
            std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains(".TH"), "{name} is not a man page");
    }
    let clean = std::fs::read_to_string(dir.join("mispdash-clean.1"))
        .expect("clean page")
        .replace("\\-", "-");
    assert!(
        clean.contains("brutal") && clean.contains("confirmation"),
        "{clean}"
    );
}

#[test]
fn help_speaks_to_a_misp_admin() {
    let (ok, help) = run(&["selftest", "--help"]);
    assert!(ok);
    assert!(
        help.contains("keep-alive after 10 seconds without data"),
        "{help}"
    );
    let (_, top) = run(&["--help"]);
    for sub in ADMIN {
        assert!(top.contains(sub), "--help lacks {sub}");
    }
}
