//! Gear.lock and the platform end to end, on the real engine with the test registry: a base
//! pinned on the first build stays put when its tag moves, `update` moves it on purpose and
//! only its dependents rebuild; a wrong digest and `--locked` without an entry fail before
//! anything is built; a base for another platform is refused before anything is built on it.

use std::path::Path;
use std::time::Duration;

use cargo_gear::progress::Outcome;

use crate::scratch::{self, Build, Out};
use crate::support;

const TIMEOUT: Duration = Duration::from_secs(300);

/// `cargo gear ARGS` in the `--root` tree `root`.
fn gear(root: &Path, args: &[&str]) -> Out {
    scratch::run_to_end(scratch::gear_command(root, args, &[]), TIMEOUT)
}

/// `cargo gear build --message-format json ARGS` in `root`.
fn build(root: &Path, args: &[&str]) -> Build {
    let mut all = vec!["build", "--message-format", "json"];
    all.extend_from_slice(args);
    Build::parse(gear(root, &all))
}

/// A tree with the external `base` (`image`), `mid` on it, `top` on `mid`, and an unrelated
/// chain `other-base` (busybox) → `other`; built images carry the test's label.
fn workspace(root: &Path, id: &str, image: &str, base_extra: &str) {
    let layer = |name: &str, from: &str| {
        format!(
            "[layer]\nname = \"{name}\"\nfrom = \"{from}\"\nimage = \"{}{name}\"\n{}run = [\"echo {name} > /{name}\"]\n",
            scratch::image_prefix(id),
            scratch::labels_line(id)
        )
    };
    let files = [
        (
            "base/Gear.toml",
            format!("[layer]\nname = \"base\"\nimage = \"{image}\"\n{base_extra}"),
        ),
        ("mid/Gear.toml", layer("mid", "base")),
        ("top/Gear.toml", layer("top", "mid")),
        (
            "other-base/Gear.toml",
            format!(
                "[layer]\nname = \"other-base\"\nimage = \"{}\"\n",
                support::BUSYBOX
            ),
        ),
        ("other/Gear.toml", layer("other", "other-base")),
    ];
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        scratch::write(&path, &text);
    }
    // A git root, so that the tree is found from inside it.
    std::fs::create_dir_all(root.join(".git")).unwrap();
}

/// The `digest = "…"` of the Gear.lock entry of `image`.
fn locked_digest(root: &Path, image: &str) -> String {
    let text = scratch::read(&root.join("Gear.lock"));
    let lock: toml_edit::DocumentMut = text.parse().unwrap();
    let entry = lock["base"]
        .as_array_of_tables()
        .unwrap()
        .iter()
        .find(|b| b["image"].as_str() == Some(image))
        .unwrap_or_else(|| panic!("no entry for {image} in {text}"));
    entry["digest"].as_str().unwrap().to_string()
}

#[test]
fn a_moved_tag_changes_nothing_until_update_and_then_only_its_dependents() {
    let Some(registries) = support::registry() else {
        return;
    };
    let Some((rt, engine)) = scratch::connect() else {
        return;
    };
    rt.block_on(support::require_fixture(&engine, support::BUSYBOX));
    rt.block_on(support::require_fixture(&engine, support::DEBIAN_PYTHON));
    let id = support::unique("lock");
    let repo = format!("{}/cargo-gear-test/{id}-upstream", registries.open);
    let image = format!("{repo}:1");
    let publish = |local: &str| {
        rt.block_on(async {
            engine.tag(local, &repo, "1").await.unwrap();
            engine.push(&image, None, &mut |_| {}).await.unwrap();
        });
    };
    publish(support::BUSYBOX);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    workspace(&root, &id, &image, "");

    // The first build creates the lock with the registry digest and builds on it.
    let first = build(&root, &[]);
    first.assert_success();
    assert_eq!(
        first.with_outcome(Outcome::Built),
        scratch::names(&["mid", "top", "other"])
    );
    let d1 = locked_digest(&root, &image);
    assert!(d1.starts_with("sha256:"), "{d1}");
    let dockerfile = gear(&root, &["dockerfile", "-p", "mid"]);
    assert!(
        dockerfile.stdout.contains(&format!("FROM {image}@{d1}")),
        "{}",
        dockerfile.stdout
    );

    // Upstream moves the tag: nothing changes here, and CI's --locked build is content.
    publish(support::DEBIAN_PYTHON);
    let plan = scratch::Plan::parse(&gear(&root, &["plan", "--format", "json"]).stdout);
    assert!(plan.stale().is_empty(), "{:?}", plan.statuses());
    let locked = build(&root, &["--locked"]);
    locked.assert_success();
    assert_eq!(locked.counts(), [0, 5, 0, 0, 0]);

    // `update` moves the pin on purpose, says so, and only base's dependents are stale.
    let update = gear(&root, &["update"]);
    assert_eq!(update.code, Some(0), "{}", update.stderr);
    let d2 = locked_digest(&root, &image);
    assert_ne!(d1, d2);
    assert!(
        update.message().contains(&format!("{d1} -> {d2}")),
        "{}",
        update.stderr
    );
    let plan = scratch::Plan::parse(&gear(&root, &["plan", "--format", "json"]).stdout);
    assert_eq!(plan.stale(), ["mid", "top"].into());
    let moved = format!("base {image} moved to {d2}");
    assert_eq!(plan.status("mid"), ("stale", vec![moved.as_str()]));
    let rebuilt = build(&root, &[]);
    rebuilt.assert_success();
    assert_eq!(
        rebuilt.with_outcome(Outcome::Built),
        scratch::names(&["mid", "top"])
    );

    // A hand-edited digest the registry lacks: the layer fails, naming Gear.lock and the fix.
    let lock_path = root.join("Gear.lock");
    let wrong = format!("sha256:{}", "0".repeat(64));
    scratch::write(&lock_path, &scratch::read(&lock_path).replace(&d2, &wrong));
    let failed = build(&root, &[]);
    failed.assert_code(1);
    assert_eq!(failed.outcome("base"), Outcome::Failed);
    assert_eq!(failed.outcome("mid"), Outcome::Skipped);
    let message = failed.out.message();
    assert!(
        message.contains(&format!("Gear.lock pins `{image}` to {wrong}"))
            && message.contains("cargo gear update -p base"),
        "{message}"
    );

    // --locked with no entry fails before anything is built or pulled.
    std::fs::remove_file(&lock_path).unwrap();
    let refused = gear(&root, &["build", "--locked"]);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    let message = refused.message();
    assert!(
        message.contains("Gear.lock has no entry for")
            && message.contains("(layer `base`)")
            && !message.contains("Building"),
        "{message}"
    );
    assert!(!lock_path.exists());

    rt.block_on(async {
        scratch::remove_labelled_images(engine.docker(), &id).await;
        for digest in [&d1, &d2] {
            let _ = engine
                .remove_image(&format!("{repo}@{digest}"), false)
                .await;
        }
        let _ = engine.remove_image(&image, false).await;
    });
}

#[test]
fn a_base_for_another_platform_is_refused_before_anything_is_built_on_it() {
    let Some((rt, engine)) = scratch::connect() else {
        return;
    };
    rt.block_on(support::require_fixture(&engine, support::BUSYBOX));
    rt.block_on(support::require_fixture(&engine, support::BUSYBOX_ARM64));
    let id = support::unique("platform");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    workspace(&root, &id, support::BUSYBOX_ARM64, "");

    let refused = build(&root, &[]);
    refused.assert_code(1);
    assert_eq!(refused.outcome("base"), Outcome::Failed);
    assert_eq!(refused.outcome("mid"), Outcome::Skipped);
    assert_eq!(
        refused.outcome("other"),
        Outcome::Skipped,
        "stopped at the failure"
    );
    let message = refused.out.message();
    assert!(
        message.contains(&format!(
            "layer `base`: image {} is for linux/arm64, but the layer is for linux/amd64",
            support::BUSYBOX_ARM64
        )) && message.contains("platform = \"linux/arm64\""),
        "{message}"
    );
    let plan = scratch::Plan::parse(&gear(&root, &["plan", "--format", "json"]).stdout);
    assert_eq!(plan.layer("mid")["platform"], "linux/amd64");

    // Declared as what it is (a local arm64 chain), it builds, every layer of its chain for
    // that platform; the engine's images say so.
    workspace(
        &root,
        &id,
        support::BUSYBOX_ARM64,
        "platform = \"linux/arm64\"\n",
    );
    let built = build(&root, &["--keep-going"]);
    built.assert_success();
    assert_eq!(
        built.with_outcome(Outcome::Built),
        scratch::names(&["mid", "top", "other"])
    );
    let plan = scratch::Plan::parse(&gear(&root, &["plan", "--format", "json"]).stdout);
    assert_eq!(plan.layer("top")["platform"], "linux/arm64");
    assert_eq!(plan.layer("other")["platform"], "linux/amd64");
    let top = rt
        .block_on(engine.image(plan.content_tag("top")))
        .unwrap()
        .unwrap();
    assert_eq!(top.architecture, "arm64");

    rt.block_on(scratch::remove_labelled_images(engine.docker(), &id));
}

/// A multi-platform base: the lock pins the index, the engine builds on the platform's image,
/// and an index without the platform fails that layer with what to do.
#[test]
fn a_multi_platform_base_is_locked_by_its_index_and_one_without_the_platform_is_refused() {
    let Some(registries) = support::registry() else {
        return;
    };
    let Some((rt, engine)) = scratch::connect() else {
        return;
    };
    rt.block_on(support::require_fixture(&engine, support::BUSYBOX));
    rt.block_on(support::require_fixture(&engine, support::BUSYBOX_ARM64));
    let id = support::unique("index");
    let name = format!("cargo-gear-test/{id}-upstream");
    let repo = format!("{}/{name}", registries.open);
    // The two platforms' images pushed under tags of one repository, then an index of both
    // and an index of arm64 only, put by hand (the test registry has no other way to get one).
    let entry = |local: &str, tag: &str, arch: &str| {
        rt.block_on(async {
            engine.tag(local, &repo, tag).await.unwrap();
            engine
                .push(&format!("{repo}:{tag}"), None, &mut |_| {})
                .await
                .unwrap();
            engine
                .remove_image(&format!("{repo}:{tag}"), false)
                .await
                .unwrap();
        });
        let head = support::http(
            "HEAD",
            &registries.open,
            &format!("/v2/{name}/manifests/{tag}"),
            None,
            None,
        );
        assert_eq!(head.status, 200, "{head:?}");
        serde_json::json!({
            "mediaType": head.header("Content-Type").unwrap(),
            "digest": head.header("Docker-Content-Digest").unwrap(),
            "size": head.header("Content-Length").unwrap().parse::<u64>().unwrap(),
            "platform": { "architecture": arch, "os": "linux" },
        })
    };
    let amd = entry(support::BUSYBOX, "amd", "amd64");
    let arm = entry(support::BUSYBOX_ARM64, "arm", "arm64");
    let index_type = "application/vnd.docker.distribution.manifest.list.v2+json";
    let put_index = |tag: &str, manifests: &[&serde_json::Value]| {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": index_type,
            "manifests": manifests,
        })
        .to_string();
        let put = support::http(
            "PUT",
            &registries.open,
            &format!("/v2/{name}/manifests/{tag}"),
            None,
            Some((index_type, &index)),
        );
        assert_eq!(put.status, 201, "{put:?}");
        put.header("Docker-Content-Digest").unwrap().to_string()
    };
    let both = put_index("multi", &[&arm, &amd]);
    put_index("armonly", &[&arm]);

    // Locked by the index's digest; built on its linux/amd64 image.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let image = format!("{repo}:multi");
    workspace(&root, &id, &image, "");
    let built = build(&root, &[]);
    built.assert_success();
    assert_eq!(locked_digest(&root, &image), both);
    let mid = scratch::Plan::parse(&gear(&root, &["plan", "--format", "json"]).stdout);
    let mid = rt
        .block_on(engine.image(mid.content_tag("mid")))
        .unwrap()
        .unwrap();
    assert_eq!(mid.architecture, "amd64");

    // An index without linux/amd64: that chain fails at its base, with the platform named.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    workspace(&root, &id, &format!("{repo}:armonly"), "");
    let refused = build(&root, &["--keep-going"]);
    refused.assert_code(1);
    assert_eq!(refused.outcome("base"), Outcome::Failed);
    assert_eq!(refused.outcome("mid"), Outcome::Skipped);
    // The other chain goes on (it is the first tree's, so already built).
    assert_eq!(refused.outcome("other"), Outcome::Fresh);
    let message = refused.out.message();
    assert!(
        message.contains("no matching manifest")
            && message.contains("has no image for linux/amd64"),
        "{message}"
    );

    rt.block_on(async {
        scratch::remove_labelled_images(engine.docker(), &id).await;
        let _ = engine.remove_image(&image, false).await;
        let _ = engine.remove_image(&format!("{repo}@{both}"), false).await;
    });
}
