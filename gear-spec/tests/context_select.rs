//! Build context selection on real directories: ignore files, exclusions, symlinks, `copy`
//! subsets, `files` placement, run files, and every problem `context::select` reports.

use std::fs;
use std::path::Path;

use gear_spec::context::{self, Context};
use gear_spec::{Layer, Problem};

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[cfg(unix)]
fn chmod(dir: &Path, rel: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.join(rel), fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
fn symlink(dir: &Path, target: &str, link: &str) {
    std::os::unix::fs::symlink(target, dir.join(link)).unwrap();
}

/// A workspace root with one layer directory `name`, holding `gear_toml`.
fn layer_dir(gear_toml: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("g");
    write(&dir, "Gear.toml", gear_toml);
    (root, dir)
}

fn load(root: &tempfile::TempDir, dir: &Path) -> Layer {
    Layer::load(dir, root.path()).unwrap()
}

fn tar_paths(cx: &Context) -> Vec<&str> {
    cx.files.iter().map(|f| f.tar_path.as_str()).collect()
}

/// The text a problem's span covers.
fn span_text(p: &Problem) -> &str {
    let span = p.span.expect("problem has a span");
    &p.file.as_ref().unwrap().text()[span.offset()..span.offset() + span.len()]
}

const GEAR: &str = r#"[gear]
name = "g"
from = "base"
image = "x/g"
version = "1"
"#;

/// A gear directory with everything `select` must sort out.
#[cfg(unix)]
fn populate(dir: &Path) {
    write(
        dir,
        ".gearignore",
        "# comments are fine\n*.log\ntests/\n!keep.log\n",
    );
    write(dir, ".dockerignore", "secret.txt\n/docs/draft.md\n");
    write(dir, "manifest.json", "{}");
    write(dir, "run.py", "print('run')\n");
    write(dir, "tool.sh", "#!/bin/sh\n");
    chmod(dir, "tool.sh", 0o755);
    write(dir, "README.md", "# g\n");
    write(dir, "app/main.py", "main\n");
    write(dir, "app/util/helpers.py", "helpers\n");
    write(dir, "app/debug.log", "noise\n");
    write(dir, "app/keep.log", "kept by a negated pattern\n");
    write(
        dir,
        "app/target/keep.txt",
        "only the top-level target/ is excluded\n",
    );
    write(dir, "app/Gear.toml", "# never copied, wherever it is\n");
    write(dir, "app/manifest.json", "{\"nested\": \"kept\"}\n");
    write(dir, "docs/draft.md", "draft\n");
    write(dir, "docs/guide.md", "guide\n");
    write(dir, "tests/test_main.py", "test\n");
    write(dir, "secret.txt", "secret\n");
    write(dir, "target/debug/out", "build output\n");
    write(dir, ".git/HEAD", "ref: refs/heads/main\n");
    write(dir, ".cargo-gear/state", "state\n");
    symlink(dir, "app/main.py", "main-link.py");
    symlink(dir, "app/util", "util-link");
    symlink(dir, "tests", "tests-link"); // target ignored as tests/, but the link name is not
}

#[cfg(unix)]
#[test]
fn whole_gear_directory() {
    let (root, dir) = layer_dir(GEAR);
    populate(&dir);
    let cx = context::select(&load(&root, &dir)).unwrap();
    assert_eq!(
        tar_paths(&cx),
        [
            "copy/README.md",
            "copy/app/keep.log",
            "copy/app/main.py",
            "copy/app/manifest.json",
            "copy/app/target/keep.txt",
            "copy/app/util/helpers.py",
            "copy/docs/guide.md",
            "copy/main-link.py",
            "copy/run.py",
            "copy/tests-link/test_main.py",
            "copy/tool.sh",
            "copy/util-link/helpers.py",
        ]
    );
    assert_eq!(cx.copy_dest.as_deref(), Some("/flywheel/v0"));
    assert_eq!(cx.run_file.as_deref(), Some("copy/run.py"));
    assert!(cx.placed.is_empty());

    let canon = dir.canonicalize().unwrap();
    let f = |p: &str| cx.get(p).unwrap();
    // A symlink: the link's path, the target's content.
    assert_eq!(f("copy/main-link.py").source, canon.join("app/main.py"));
    assert_eq!(
        f("copy/util-link/helpers.py").source,
        canon.join("app/util/helpers.py")
    );
    // Executable: on-disk bit, or the run file.
    assert!(f("copy/tool.sh").executable);
    assert!(f("copy/run.py").executable);
    assert!(!f("copy/app/main.py").executable);
    assert!(cx.files.iter().all(|f| f.source.is_absolute()));
}

#[cfg(unix)]
#[test]
fn copy_subset() {
    let (root, dir) = layer_dir(&format!(
        "{GEAR}copy = [\"app/util\", \"./run.py\", \"tests\", \"secret.txt\", \"app/util/helpers.py\", \"Gear.toml\"]\n"
    ));
    populate(&dir);
    let cx = context::select(&load(&root, &dir)).unwrap();
    // Ignored entries stay ignored even when named; duplicates collapse.
    assert_eq!(tar_paths(&cx), ["copy/app/util/helpers.py", "copy/run.py"]);
    assert_eq!(cx.run_file.as_deref(), Some("copy/run.py"));
    assert_eq!(cx.copy_dest.as_deref(), Some("/flywheel/v0"));
}

#[cfg(unix)]
#[test]
fn gear_run_file_choice() {
    // Default: the first of run, run.py, run.sh that exists.
    let (root, dir) = layer_dir(GEAR);
    write(&dir, "run.sh", "#!/bin/sh\n");
    write(&dir, "run", "#!/bin/sh\n");
    let cx = context::select(&load(&root, &dir)).unwrap();
    assert_eq!(cx.run_file.as_deref(), Some("copy/run"));
    assert!(cx.get("copy/run").unwrap().executable);
    assert!(!cx.get("copy/run.sh").unwrap().executable);

    // Declared.
    let (root, dir) = layer_dir(&format!("{GEAR}run-file = \"bin/start\"\n"));
    write(&dir, "bin/start", "#!/bin/sh\n");
    write(&dir, "run.py", "");
    let cx = context::select(&load(&root, &dir)).unwrap();
    assert_eq!(cx.run_file.as_deref(), Some("copy/bin/start"));
    assert!(cx.get("copy/bin/start").unwrap().executable);
    assert!(!cx.get("copy/run.py").unwrap().executable);

    // None at all.
    let (root, dir) = layer_dir(GEAR);
    write(&dir, "main.py", "");
    let cx = context::select(&load(&root, &dir)).unwrap();
    assert_eq!(cx.run_file, None);
}

#[test]
fn plain_layer_copies_nothing_by_default_and_places_files() {
    let toml = r#"[layer]
name = "l"
from = "base"
image = "x/l"
files = { "/usr/local/freesurfer/license.txt" = "license.txt", "/opt/conf" = "conf", "/etc/again.txt" = "./license.txt" }
"#;
    let (root, dir) = layer_dir(toml);
    write(&dir, "license.txt", "license\n");
    write(&dir, "conf/a.yml", "a\n");
    write(&dir, "conf/sub/b.yml", "b\n");
    write(&dir, ".gearignore", "license.txt\nconf/\n"); // ignore files do not apply to `files`
    write(&dir, "other.txt", "not copied\n");
    let cx = context::select(&load(&root, &dir)).unwrap();
    assert_eq!(
        tar_paths(&cx),
        [
            "files/conf/a.yml",
            "files/conf/sub/b.yml",
            "files/license.txt"
        ]
    );
    assert_eq!(cx.copy_dest, None);
    assert_eq!(cx.run_file, None);
    assert_eq!(
        cx.placed,
        [
            (
                "/usr/local/freesurfer/license.txt".to_string(),
                "files/license.txt".to_string()
            ),
            ("/opt/conf".to_string(), "files/conf".to_string()),
            (
                "/etc/again.txt".to_string(),
                "files/license.txt".to_string()
            ),
        ]
    );
}

#[test]
fn plain_layer_copy_goes_to_workdir() {
    let toml = "[layer]\nname = \"l\"\nfrom = \"base\"\nimage = \"x/l\"\nworkdir = \"/srv\"\ncopy = [\"src\"]\n";
    let (root, dir) = layer_dir(toml);
    write(&dir, "src/a.py", "a\n");
    write(&dir, "src/a.pyc", "compiled\n");
    write(&dir, ".dockerignore", "*.pyc\n");
    let cx = context::select(&load(&root, &dir)).unwrap();
    assert_eq!(tar_paths(&cx), ["copy/src/a.py"]);
    assert_eq!(cx.copy_dest.as_deref(), Some("/srv"));

    let toml = "[layer]\nname = \"l\"\nfrom = \"base\"\nimage = \"x/l\"\ncopy = [\"src\"]\n";
    let (root, dir) = layer_dir(toml);
    write(&dir, "src/a.py", "a\n");
    assert_eq!(
        context::select(&load(&root, &dir))
            .unwrap()
            .copy_dest
            .as_deref(),
        Some("/")
    );

    // An empty copy list, or one whose files are all ignored, copies nothing.
    let toml = "[layer]\nname = \"l\"\nfrom = \"base\"\nimage = \"x/l\"\ncopy = []\n";
    let (root, dir) = layer_dir(toml);
    assert_eq!(
        context::select(&load(&root, &dir)).unwrap(),
        Context::default()
    );
}

#[test]
fn external_layer_has_no_context() {
    let (root, dir) = layer_dir("[layer]\nname = \"e\"\nimage = \"debian:12\"\n");
    write(&dir, "stuff.txt", "x");
    assert_eq!(
        context::select(&load(&root, &dir)).unwrap(),
        Context::default()
    );
}

#[test]
fn the_example_monorepo() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/monorepo")
        .canonicalize()
        .unwrap();
    let recon = Layer::load(&root.join("gears/recon-all"), &root).unwrap();
    let cx = context::select(&recon).unwrap();
    let paths = tar_paths(&cx);
    assert!(paths.contains(&"copy/run.py"), "{paths:?}");
    assert!(
        !paths
            .iter()
            .any(|p| p.starts_with("copy/tests/") || p.ends_with(".pyc")),
        "{paths:?}"
    );
    assert!(!paths.contains(&"copy/manifest.json") && !paths.contains(&"copy/Gear.toml"));
    assert_eq!(cx.run_file.as_deref(), Some("copy/run.py"));

    let fw = Layer::load(&root.join("layers/fw-freesurfer"), &root).unwrap();
    let cx = context::select(&fw).unwrap();
    assert_eq!(tar_paths(&cx), ["files/license.txt"]);
    assert_eq!(
        cx.placed,
        [(
            "/usr/local/freesurfer/license.txt".to_string(),
            "files/license.txt".to_string()
        )]
    );
}

#[cfg(unix)]
#[test]
fn every_problem_is_reported_at_its_entry() {
    let toml = r#"[gear]
name = "g"
from = "base"
image = "x/g"
version = "1"
copy = ["/etc", "../sibling", "ap", "app/mian.py", "out-link", "app", "broken-link"]
files = { "relative/dest" = "license.txt", "/opt/x" = "../../etc/passwd", "/opt/y" = "licnse.txt", "/opt/z" = "license.txt" }
run-file = "rnu.py"
"#;
    let (root, dir) = layer_dir(toml);
    write(&dir, "app/main.py", "");
    write(&dir, "license.txt", "");
    write(&dir, "run.py", "");
    write(root.path(), "outside.txt", "secret");
    symlink(&dir, "../outside.txt", "out-link");
    symlink(&dir, "../../", "app/up"); // a directory outside, reached while walking `app`
    symlink(&dir, "nowhere", "broken-link");
    let problems = context::select(&load(&root, &dir)).unwrap_err().into_vec();
    let got: Vec<(&str, &str)> = problems.iter().map(|p| (p.code, span_text(p))).collect();
    assert_eq!(
        got,
        [
            ("gear::path-escape", "\"/etc\""),
            ("gear::path-escape", "\"../sibling\""),
            ("gear::path-missing", "\"ap\""),
            ("gear::path-missing", "\"app/mian.py\""),
            ("gear::symlink-escape", "\"out-link\""),
            ("gear::symlink-escape", "\"app\""),
            ("gear::symlink-broken", "\"broken-link\""),
            ("gear::dest-not-absolute", "\"relative/dest\""),
            ("gear::path-escape", "\"../../etc/passwd\""),
            ("gear::path-missing", "\"licnse.txt\""),
            ("gear::path-missing", "\"rnu.py\""),
        ]
    );
    let by_entry = |text: &str| problems.iter().find(|p| span_text(p) == text).unwrap();
    assert_eq!(
        by_entry("\"ap\"").help.as_deref(),
        Some("did you mean `app`?")
    );
    assert_eq!(
        by_entry("\"app/mian.py\"").help.as_deref(),
        Some("did you mean `app/main.py`?")
    );
    assert_eq!(
        by_entry("\"licnse.txt\"").help.as_deref(),
        Some("did you mean `license.txt`?")
    );
    assert_eq!(
        by_entry("\"rnu.py\"").help.as_deref(),
        Some("did you mean `run.py`?")
    );
    let escape = by_entry("\"app\"");
    assert!(escape.message.contains("g/app/up"), "{}", escape.message);
    assert_eq!(escape.label.as_deref(), Some("copying `app`"));
    for p in &problems {
        assert!(p.help.is_some() && p.label.is_some(), "{p:?}");
        assert!(
            p.location().unwrap().starts_with("g/Gear.toml:"),
            "{:?}",
            p.location()
        );
    }
}

#[cfg(unix)]
#[test]
fn problems_while_walking_the_whole_gear_point_at_the_table() {
    let (root, dir) = layer_dir(GEAR);
    write(&dir, "run.py", "");
    write(root.path(), "outside/x.txt", "x");
    symlink(&dir, "../outside", "ext");
    symlink(&dir, ".", "self"); // a loop
    let problems = context::select(&load(&root, &dir)).unwrap_err().into_vec();
    let got: Vec<(&str, &str)> = problems.iter().map(|p| (p.code, span_text(p))).collect();
    assert_eq!(
        got,
        [
            ("gear::symlink-escape", "[gear]"),
            ("gear::symlink-loop", "[gear]")
        ]
    );
    assert_eq!(
        problems[0].label.as_deref(),
        Some("this gear copies its whole directory")
    );
}

#[cfg(unix)]
#[test]
fn ignored_escaping_symlinks_are_fine() {
    let (root, dir) = layer_dir(GEAR);
    write(&dir, "run.py", "");
    write(&dir, ".gearignore", "ext\n");
    symlink(&dir, "/", "ext");
    let cx = context::select(&load(&root, &dir)).unwrap();
    assert_eq!(tar_paths(&cx), ["copy/run.py"]);
}

#[cfg(unix)]
#[test]
fn unreadable_directory() {
    let (root, dir) = layer_dir(GEAR);
    write(&dir, "locked/x", "");
    chmod(&dir, "locked", 0o000);
    // root can read anything: only meaningful as a normal user.
    if fs::read_dir(dir.join("locked")).is_ok() {
        chmod(&dir, "locked", 0o755);
        eprintln!("skipped: running with permission to read anything");
        return;
    }
    let problems = context::select(&load(&root, &dir)).unwrap_err().into_vec();
    chmod(&dir, "locked", 0o755);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].code, "gear::read");
    assert!(
        problems[0].message.contains("g/locked"),
        "{}",
        problems[0].message
    );
}

#[test]
fn declared_run_file_must_be_copied() {
    let (root, dir) = layer_dir(&format!("{GEAR}copy = [\"app\"]\nrun-file = \"run.py\"\n"));
    write(&dir, "app/a.py", "");
    write(&dir, "run.py", "");
    let problems = context::select(&load(&root, &dir)).unwrap_err().into_vec();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].code, "gear::run-file-not-copied");
    assert_eq!(span_text(&problems[0]), "\"run.py\"");
}

#[test]
fn bad_ignore_pattern() {
    let (root, dir) = layer_dir(GEAR);
    write(&dir, ".gearignore", "ok.txt\nbad{a,b\n");
    let problems = context::select(&load(&root, &dir)).unwrap_err().into_vec();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].code, "gear::ignore-file");
    assert_eq!(span_text(&problems[0]), "bad{a,b");
    assert_eq!(problems[0].location().unwrap(), "g/.gearignore:2:1");
    assert!(
        problems[0].message.contains("unclosed alternate group"),
        "{}",
        problems[0].message
    );
}

#[test]
fn files_source_without_files() {
    let toml = "[layer]\nname = \"l\"\nfrom = \"base\"\nimage = \"x/l\"\nfiles = { \"/opt/empty\" = \"empty\" }\n";
    let (root, dir) = layer_dir(toml);
    fs::create_dir_all(dir.join("empty/nested")).unwrap();
    let problems = context::select(&load(&root, &dir)).unwrap_err().into_vec();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].code, "gear::path-empty");
    assert_eq!(span_text(&problems[0]), "\"empty\"");
}

#[test]
fn read_problems_for_any_user() {
    // An ignore file that cannot be read as text.
    let (root, dir) = layer_dir(GEAR);
    fs::write(dir.join(".dockerignore"), b"\xff\xfe not utf-8").unwrap();
    let problems = context::select(&load(&root, &dir)).unwrap_err().into_vec();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].code, "gear::read");
    assert!(
        problems[0]
            .message
            .starts_with("cannot read g/.dockerignore"),
        "{}",
        problems[0].message
    );
    assert_eq!(span_text(&problems[0]), "[gear]");

    // The layer directory vanished after it was loaded.
    let (root, dir) = layer_dir(GEAR);
    let layer = load(&root, &dir);
    fs::remove_dir_all(&dir).unwrap();
    let problems = context::select(&layer).unwrap_err().into_vec();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].code, "gear::read");
    assert_eq!(span_text(&problems[0]), "[gear]");
}

#[cfg(target_os = "linux")]
#[test]
fn non_utf8_file_names() {
    use std::os::unix::ffi::OsStrExt;
    let (root, dir) = layer_dir(GEAR);
    write(&dir, "run.py", "");
    fs::write(
        dir.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")),
        "latin-1 name",
    )
    .unwrap();
    let problems = context::select(&load(&root, &dir)).unwrap_err().into_vec();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].code, "gear::path-encoding");
    assert_eq!(span_text(&problems[0]), "[gear]");

    // Excluding it is the way out.
    write(&dir, ".gearignore", "caf*.txt\n");
    let cx = context::select(&load(&root, &dir)).unwrap();
    assert_eq!(tar_paths(&cx), ["copy/run.py"]);
}
