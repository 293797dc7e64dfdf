//! A file edited between planning and building must never end up in an image under the
//! planned fingerprint's tag (issue "Hardening", item 1).
//!
//! Deterministic: the test plans through the library, rewrites a context file, then builds
//! that plan. The build must fail naming the file, tag and record nothing; once the file is
//! back, `plan` must call the layer stale (not fresh), and the next build must hold the
//! planned bytes. Before hashing-while-streaming, the edited bytes were built and tagged
//! under the old fingerprint, and `plan` called the layer fresh after the file was restored.

use crate::support;

use std::path::Path;

use cargo_gear::cli::{Cargo, Selection};
use cargo_gear::error::CliError;
use cargo_gear::output::Output;
use cargo_gear::progress::Reporter;
use cargo_gear::request::Session;
use cargo_gear::schedule::{self, BuildOptions};
use clap::Parser;

const ORIGINAL: &str = "the planned contents\n";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A `--root` tree: the busybox fixture and one layer copying `data/payload.txt`.
fn workspace(root: &Path, repo: &str, id: &str) {
    crate::scratch::write_busybox_base(root);
    write(
        &root.join("mid/Gear.toml"),
        &format!(
            "[layer]\nname = \"mid\"\nfrom = \"base\"\nimage = \"{repo}\"\ncopy = [\"data\"]\n\
             labels = {{ \"{}\" = \"{id}\" }}\n",
            support::TEST_LABEL
        ),
    );
    write(&root.join("mid/data/payload.txt"), ORIGINAL);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_edited_after_planning_is_never_tagged_under_the_planned_fingerprint() {
    let Some(engine) = support::engine().await else {
        return;
    };
    support::require_fixture(&engine, support::BUSYBOX).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    let id = support::unique("race");
    let repo = format!("cargo-gear-test/{id}-mid");
    workspace(&root, &repo, &id);

    // Lock the base as `build` would before planning, then plan, then edit the file the plan
    // fingerprinted, then build that plan.
    let locked = support::cargo_gear(&root, &["update"]);
    assert!(locked.status.success(), "{locked:?}");
    let Cargo::Gear(args) =
        Cargo::try_parse_from(["cargo", "gear", "--root", root.to_str().unwrap(), "build"])
            .unwrap();
    let session = Session::load(&args.global, &root).unwrap();
    let selected = session.select(&Selection::default()).unwrap();
    let plan = session.plan(&selected).unwrap();
    let mid = plan.get("mid").unwrap();
    let content_tag = mid.built().unwrap().content_tag.clone();
    let payload = root.join("mid/data/payload.txt");
    write(&payload, "edited while the build was on its way\n");

    let opts = BuildOptions {
        jobs: 1,
        force: vec![false; plan.layers.len()],
        ..Default::default()
    };
    let logs = session.build_paths().logs;
    let reporter = Reporter::new(false, Output::new(None, true), logs.clone());
    let result = schedule::build_locked(&engine, &session, &plan, &opts, &reporter).await;
    assert!(
        matches!(result, Err(CliError::BuildFailed { failed: 1, .. })),
        "{result:?}"
    );
    let log = std::fs::read_to_string(logs.join("mid.log")).unwrap();
    assert!(
        log.contains("payload.txt") && log.contains("changed after the build was planned"),
        "the failure names the file and why: {log}"
    );
    assert!(
        engine.image(&content_tag).await.unwrap().is_none(),
        "nothing may carry the planned tag {content_tag}"
    );
    assert!(
        !session.build_paths().state.join("mid.json").exists(),
        "no record for a layer that was not built as planned"
    );

    // With the file back, the planned fingerprint is not fresh, and the next build holds
    // exactly the planned bytes.
    write(&payload, ORIGINAL);
    let (tag, status, _) = support::planned(&root, "mid");
    assert_eq!(tag, content_tag);
    assert_eq!(status, "stale");
    let built = support::cargo_gear(&root, &["build"]);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let (code, payload) = support::sh(&engine, &content_tag, "cat /data/payload.txt").await;
    assert_eq!((code, payload.as_str()), (0, ORIGINAL));

    engine.remove_image(&content_tag, true).await.unwrap();
}
