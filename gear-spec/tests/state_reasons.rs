//! Why a layer is stale: each kind of change between a build record and the current plan
//! is named precisely.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gear_spec::LayerGraph;
use gear_spec::gear_lock::{BaseKey, GearLock, ImageDigest, LockedBase};
use gear_spec::plan::{self, Plan, PlanOptions};
use gear_spec::platform::Platform;
use gear_spec::state::{ImageState, Reason, Record, Status, explain};

struct Tree(tempfile::TempDir);

impl Tree {
    fn new() -> Tree {
        let t = Tree(tempfile::tempdir().unwrap());
        t.write(
            "base/Gear.toml",
            "[layer]\nname = \"base\"\nimage = \"debian:bookworm\"\n",
        );
        t.write(
            "mid/Gear.toml",
            "[layer]\nname = \"mid\"\nfrom = \"base\"\nimage = \"x/mid\"\npackages = [\"jq\"]\n",
        );
        t.write(
            "g/Gear.toml",
            "[gear]\nname = \"g\"\nfrom = \"mid\"\nimage = \"x/g\"\nversion = \"1.0.0\"\nlabel = \"G\"\ndescription = \"A gear\"\nauthor = \"Lab\"\nlicense = \"MIT\"\n\n[gear.config.n]\ntype = \"integer\"\ndefault = 1\n",
        );
        t.write("g/run.py", "print(1)\n");
        t.write("g/app/main.py", "x = 1\n");
        t
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.0.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn edit(&self, rel: &str, from: &str, to: &str) {
        let p = self.0.path().join(rel);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{rel} lacks {from}");
        std::fs::write(p, text.replace(from, to)).unwrap();
    }

    fn plan(&self, substitutions: &[(&str, &str)]) -> Plan {
        let substitutions: BTreeMap<String, String> = substitutions
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        self.plan_with(PlanOptions {
            substitutions,
            ..PlanOptions::default()
        })
    }

    fn plan_with(&self, opts: PlanOptions) -> Plan {
        let root: &Path = self.0.path();
        let dirs: Vec<PathBuf> = ["base", "mid", "g"].iter().map(|d| root.join(d)).collect();
        let graph = LayerGraph::load(&dirs, root).unwrap();
        let all = graph.build_order().to_vec();
        plan::plan(&graph, &all, &opts).unwrap()
    }
}

/// Records every built layer of `plan` as if it had just been built.
fn records(plan: &Plan) -> BTreeMap<String, Record> {
    plan.layers
        .iter()
        .filter_map(|l| {
            let built = l.built()?;
            let parent = &plan.layers[built.parent];
            Some((
                l.name.clone(),
                Record::new(l, built, parent, "sha256:built"),
            ))
        })
        .collect()
}

fn reasons(plan: &Plan, records: &BTreeMap<String, Record>, name: &str) -> Vec<String> {
    let layer = plan.get(name).unwrap();
    match explain(
        layer,
        plan.parent(layer),
        records.get(name),
        ImageState::Missing,
    ) {
        Status::Stale(r) => r.iter().map(ToString::to_string).collect(),
        other => panic!("{name} is {other:?}"),
    }
}

#[test]
fn file_changes_are_named() {
    let t = Tree::new();
    let before = records(&t.plan(&[]));
    t.write("g/app/main.py", "x = 2\n");
    t.write("g/utils/x.py", "y = 1\n");
    std::fs::remove_file(t.0.path().join("g/run.py")).unwrap();
    let after = t.plan(&[]);
    assert_eq!(
        reasons(&after, &before, "g"),
        [
            "file app/main.py changed",
            "file utils/x.py added",
            "file run.py removed"
        ]
    );
    assert_eq!(
        reasons(&after, &before, "mid"),
        ["image missing from engine"]
    );
}

#[test]
fn parent_and_dockerfile_sections() {
    let t = Tree::new();
    let before = records(&t.plan(&[]));
    t.edit(
        "mid/Gear.toml",
        "packages = [\"jq\"]",
        "packages = [\"jq\", \"curl\"]",
    );
    let after = t.plan(&[]);
    assert_eq!(
        reasons(&after, &before, "mid"),
        ["Dockerfile changed (packages)"]
    );
    assert_eq!(reasons(&after, &before, "g"), ["parent mid changed"]);
}

#[test]
fn substitution_and_manifest() {
    let t = Tree::new();
    let before = records(&t.plan(&[]));
    let after = t.plan(&[("debian:bookworm", "mirror.local/debian:bookworm")]);
    assert_eq!(reasons(&after, &before, "mid"), ["substitution changed"]);
    t.edit("g/Gear.toml", "default = 1", "default = 2");
    let after = t.plan(&[]);
    assert_eq!(reasons(&after, &before, "g"), ["manifest changed (config)"]);
}

#[test]
fn never_built_fresh_without_record_and_unknown() {
    let t = Tree::new();
    let plan = t.plan(&[]);
    let g = plan.get("g").unwrap();
    let mid = plan.get("mid");
    assert_eq!(
        explain(g, mid, None, ImageState::Missing),
        Status::Stale(vec![Reason::NeverBuilt])
    );
    assert_eq!(
        explain(g, mid, None, ImageState::Present),
        Status::Fresh { recorded: false }
    );
    let recs = records(&plan);
    assert_eq!(
        explain(g, mid, recs.get("g"), ImageState::Present),
        Status::Fresh { recorded: true }
    );
    assert_eq!(explain(g, mid, None, ImageState::Unknown), Status::Unknown);
}

#[test]
fn records_round_trip_atomically() {
    let t = Tree::new();
    let plan = t.plan(&[]);
    let rec = records(&plan).remove("g").unwrap();
    let dir = t.0.path().join("state");
    rec.save(&dir).unwrap();
    assert_eq!(Record::load(&dir, "g"), Some(rec));
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers, ["g.json"]);
    Record::remove(&dir, "g").unwrap();
    assert_eq!(Record::load(&dir, "g"), None);
}

/// A record that cannot be written names the directory or file and the cause, leaves no
/// temporary file behind, and leaves the previous record as it was.
#[test]
fn a_record_that_cannot_be_saved_names_the_path() {
    let t = Tree::new();
    let plan = t.plan(&[]);
    let rec = records(&plan).remove("g").unwrap();

    // The state directory is a file.
    let not_a_dir = t.0.path().join("state-file");
    std::fs::write(&not_a_dir, "").unwrap();
    let e = rec.save(&not_a_dir).unwrap_err();
    assert_eq!(e.path, not_a_dir);
    assert_eq!(
        e.to_string(),
        format!("cannot create the directory {}", not_a_dir.display())
    );
    assert_eq!(e.source.kind(), std::io::ErrorKind::AlreadyExists, "{e:?}");

    // The record's own path is a directory: the rename fails, the old entry stays, and
    // the temporary file is gone.
    let dir = t.0.path().join("state");
    std::fs::create_dir_all(dir.join("g.json")).unwrap();
    let e = rec.save(&dir).unwrap_err();
    assert_eq!(e.path, dir.join("g.json"));
    assert!(e.to_string().starts_with("cannot replace "), "{e}");
    assert!(dir.join("g.json").is_dir());
    let entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(entries, ["g.json"]);
}

/// A Gear.lock with `debian:bookworm` (linux/amd64) pinned to `sha256:` and 64 × `fill`.
fn locked(fill: char) -> GearLock {
    let digest: ImageDigest = format!("sha256:{}", fill.to_string().repeat(64))
        .parse()
        .unwrap();
    let mut lock = GearLock::default();
    lock.insert(
        BaseKey {
            image: "debian:bookworm".into(),
            substitute: None,
            platform: Platform::flywheel(),
        },
        LockedBase {
            digest: Some(digest.clone()),
            image_id: digest,
        },
    );
    lock
}

#[test]
fn a_locked_base_that_moves_is_named_and_builds_on_its_digest() {
    let t = Tree::new();
    let unlocked = t.plan(&[]);
    let a = t.plan_with(PlanOptions {
        lock: locked('a'),
        ..PlanOptions::default()
    });
    // Locking pins the reference and changes every fingerprint above it.
    let a_digest = format!("sha256:{}", "a".repeat(64));
    assert_eq!(
        a.get("base").unwrap().reference(),
        format!("debian:bookworm@{a_digest}")
    );
    assert!(
        a.get("mid")
            .unwrap()
            .built()
            .unwrap()
            .dockerfile
            .contains(&format!("FROM debian:bookworm@{a_digest}")),
    );
    for name in ["base", "mid", "g"] {
        assert_ne!(
            unlocked.get(name).unwrap().fingerprint,
            a.get(name).unwrap().fingerprint
        );
    }
    let before = records(&a);
    let b = t.plan_with(PlanOptions {
        lock: locked('b'),
        ..PlanOptions::default()
    });
    assert_eq!(
        reasons(&b, &before, "mid"),
        [format!(
            "base debian:bookworm moved to sha256:{}",
            "b".repeat(64)
        )]
    );
    assert_eq!(reasons(&b, &before, "g"), ["parent mid changed"]);
}

#[test]
fn a_digest_in_the_gear_toml_wins_over_the_lock() {
    let t = Tree::new();
    let pinned = format!("sha256:{}", "c".repeat(64));
    t.edit(
        "base/Gear.toml",
        "image = \"debian:bookworm\"",
        &format!("image = \"debian:bookworm\"\ndigest = \"{pinned}\""),
    );
    let with_lock = t.plan_with(PlanOptions {
        lock: locked('a'),
        ..PlanOptions::default()
    });
    let without = t.plan(&[]);
    assert_eq!(
        with_lock.get("base").unwrap().reference(),
        format!("debian:bookworm@{pinned}")
    );
    assert_eq!(
        with_lock.get("g").unwrap().fingerprint,
        without.get("g").unwrap().fingerprint
    );
}

#[test]
fn another_platform_makes_every_layer_stale() {
    let t = Tree::new();
    let amd = t.plan(&[]);
    let before = records(&amd);
    let arm = t.plan_with(PlanOptions {
        platform: "linux/arm64".parse().unwrap(),
        ..PlanOptions::default()
    });
    for name in ["base", "mid", "g"] {
        let layer = arm.get(name).unwrap();
        assert_eq!(layer.platform.to_string(), "linux/arm64");
        assert_ne!(
            layer.fingerprint,
            amd.get(name).unwrap().fingerprint,
            "{name}"
        );
    }
    assert_eq!(
        reasons(&arm, &before, "mid"),
        ["platform changed from linux/amd64 to linux/arm64"]
    );
    assert_eq!(
        reasons(&arm, &before, "g"),
        [
            "platform changed from linux/amd64 to linux/arm64",
            "parent mid changed"
        ]
    );
    // An external layer's own `platform` wins over the workspace's, for its whole chain.
    t.edit(
        "base/Gear.toml",
        "image = \"debian:bookworm\"",
        "image = \"debian:bookworm\"\nplatform = \"linux/arm64\"",
    );
    let declared = t.plan(&[]);
    for name in ["base", "mid", "g"] {
        assert_eq!(
            declared.get(name).unwrap().fingerprint,
            arm.get(name).unwrap().fingerprint,
            "{name}"
        );
    }
}
