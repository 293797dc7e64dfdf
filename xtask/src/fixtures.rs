//! The base images the tests and the demo build on, made locally because no registry is reachable.
//!
//! Each is cached by tag in the engine, with the hash of its recipe in the label
//! `org.cargo-gear.fixture.recipe`: a tag whose label matches is left alone, any other is rebuilt.
//! The Debian root file system is also kept as a tarball under target/engine/cache/, so wiping the
//! engine's data costs an import, not a debootstrap. See xtask/fixtures/README.md.

pub mod host_config;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::engine::{Engine, Paths, log_tail};
use crate::{Result, Workspace, cmd, fnv1a, host, sys};

/// A busybox-static root file system: a shell and the usual tools in about 2 MB.
pub const BUSYBOX: &str = "cargo-gear-fixture/busybox:1";
/// [`BUSYBOX`] with a configuration that says `linux/arm64` (its binaries stay amd64: it is
/// never run), for the tests of the platform check.
pub const BUSYBOX_ARM64: &str = "cargo-gear-fixture/busybox-arm64:1";
/// Debian bookworm (debootstrap minbase) with python3, pip and venv; stands in for `python:3.12-slim`.
pub const DEBIAN_PYTHON: &str = "cargo-gear-fixture/debian-python:bookworm";
/// A stand-in for `freesurfer/freesurfer:7.3.2`, built from xtask/fixtures/freesurfer/.
pub const FREESURFER: &str = "cargo-gear-fixture/freesurfer:7.3.2";
/// [`DEBIAN_PYTHON`] with poetry and uv, built from xtask/fixtures/python-poetry/.
pub const PYTHON_POETRY: &str = "cargo-gear-fixture/python-poetry:bookworm";
/// The bare debootstrap import that [`DEBIAN_PYTHON`] adds the host's CA, apt and pip settings to.
const DEBIAN_ROOTFS: &str = "cargo-gear-fixture/debian-python:bookworm-rootfs";

const RECIPE_LABEL: &str = "org.cargo-gear.fixture.recipe";
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const SUITE: &str = "bookworm";
const DEBIAN_PACKAGES: &str = "python3,python3-pip,python3-venv,python-is-python3,ca-certificates";

/// Makes sure all fixture images exist and are current.
pub fn ensure(engine: &Engine, ws: &Workspace) -> Result {
    let paths = Paths::new(ws);
    fs::create_dir_all(&paths.cache)?;
    timed(BUSYBOX, || busybox(engine, &paths))?;
    timed(BUSYBOX_ARM64, || busybox_arm64(engine, &paths))?;
    timed(DEBIAN_PYTHON, || debian_python(engine, &paths))?;
    timed(FREESURFER, || {
        from_dockerfile(engine, FREESURFER, "freesurfer")
    })?;
    timed(PYTHON_POETRY, || {
        from_dockerfile(engine, PYTHON_POETRY, "python-poetry")
    })?;
    Ok(())
}

fn timed(tag: &str, make: impl FnOnce() -> Result<bool>) -> Result {
    let started = Instant::now();
    if make()? {
        eprintln!(
            "xtask: fixture {tag} made in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    } else {
        eprintln!("xtask: fixture {tag} is up to date");
    }
    Ok(())
}

/// True if `tag` exists with the given recipe hash.
fn current(engine: &Engine, tag: &str, recipe: &str) -> bool {
    let format = format!("{{{{index .Config.Labels \"{RECIPE_LABEL}\"}}}}");
    cmd::stdout(
        engine
            .docker()
            .args(["image", "inspect", "--format", &format, tag]),
    )
    .is_ok_and(|l| l == recipe)
}

fn hex(hash: u64) -> String {
    format!("{hash:016x}")
}

pub fn busybox(engine: &Engine, paths: &Paths) -> Result<bool> {
    if host::static_busybox().is_none() {
        host::require("busybox-static")?;
    }
    let binary =
        host::static_busybox().ok_or("no static busybox after installing busybox-static")?;
    let mut recipe_input = fs::read(&binary)?;
    recipe_input.extend_from_slice(b"layout 1: /bin/busybox, applet symlinks, /etc/passwd, /tmp");
    let recipe = hex(fnv1a(&recipe_input));
    if current(engine, BUSYBOX, &recipe) {
        return Ok(false);
    }
    let root = paths.cache.join("busybox-rootfs");
    reset_dir(&root)?;
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "proc", "sys", "dev", "var/tmp",
    ] {
        fs::create_dir_all(root.join(dir))?;
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::set_permissions(root.join("var/tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::set_permissions(root.join("root"), fs::Permissions::from_mode(0o700))?;
    fs::copy(&binary, root.join("bin/busybox"))?;
    fs::set_permissions(root.join("bin/busybox"), fs::Permissions::from_mode(0o755))?;
    // `--list-full` names each applet with its usual folder: bin/sh, usr/bin/awk, sbin/ifconfig …
    for applet in cmd::stdout(Command::new(&binary).arg("--list-full"))?.lines() {
        let link = root.join(applet.trim_start_matches('/'));
        if !link.exists() && !applet.ends_with("/busybox") {
            symlink("/bin/busybox", link)?;
        }
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    let mut tar = Command::new("tar");
    tar.args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&root)
        .args(["-cf", "-", "."]);
    let mut tar = tar.stdout(Stdio::piped()).spawn()?;
    let mut import = engine.docker();
    import
        .args([
            "import",
            "--change",
            &format!("ENV PATH={PATH}"),
            "--change",
            r#"CMD ["/bin/sh"]"#,
        ])
        .args([
            "--change",
            &format!("LABEL org.cargo-gear.fixture=base {RECIPE_LABEL}={recipe}"),
        ])
        .args(["-", BUSYBOX])
        .stdin(tar.stdout.take().expect("piped"))
        .stdout(Stdio::null());
    eprintln!(
        "xtask: $ tar -C {} -c . | {}",
        root.display(),
        cmd::display(&import)
    );
    let imported = cmd::status(&mut import);
    cmd::check(&Command::new("tar"), cmd::wait(&mut tar, "tar")?)?;
    cmd::check(&import, imported?)?;
    fs::remove_dir_all(&root)?;
    Ok(true)
}

/// [`BUSYBOX_ARM64`]: [`BUSYBOX`] saved, its configuration's `architecture` rewritten, loaded
/// under the new tag (`docker import --platform` is ignored by the engine Debian ships).
fn busybox_arm64(engine: &Engine, paths: &Paths) -> Result<bool> {
    let format = format!("{{{{index .Config.Labels \"{RECIPE_LABEL}\"}}}}");
    let base_recipe = cmd::stdout(
        engine
            .docker()
            .args(["image", "inspect", "--format", &format, BUSYBOX]),
    )?;
    let recipe = hex(fnv1a(
        format!("{base_recipe} architecture arm64").as_bytes(),
    ));
    if current(engine, BUSYBOX_ARM64, &recipe) {
        return Ok(false);
    }
    let dir = paths.cache.join("busybox-arm64");
    reset_dir(&dir)?;
    let archive = dir.join("busybox.tar");
    cmd::run(
        engine
            .docker()
            .args(["save", "-o"])
            .arg(&archive)
            .arg(BUSYBOX),
    )?;
    let unpacked = dir.join("image");
    fs::create_dir_all(&unpacked)?;
    cmd::run(
        Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked),
    )?;
    // manifest.json names the configuration file; only two values change in each, so a
    // textual replacement of the exact JSON the engine wrote is enough.
    let manifest_path = unpacked.join("manifest.json");
    let manifest = fs::read_to_string(&manifest_path)?;
    let config_name = manifest
        .split("\"Config\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or("no Config in the saved image's manifest.json")?;
    let config_path = unpacked.join(config_name);
    let config = fs::read_to_string(&config_path)?;
    let label = format!("\"{RECIPE_LABEL}\":\"{base_recipe}\"");
    if !config.contains("\"architecture\":\"amd64\"") || !config.contains(&label) {
        return Err(format!("{BUSYBOX}'s configuration is not the one expected: {config}").into());
    }
    let config = config
        .replace("\"architecture\":\"amd64\"", "\"architecture\":\"arm64\"")
        .replace(&label, &format!("\"{RECIPE_LABEL}\":\"{recipe}\""));
    fs::write(&config_path, config)?;
    fs::write(
        &manifest_path,
        manifest.replace(&format!("\"{BUSYBOX}\""), &format!("\"{BUSYBOX_ARM64}\"")),
    )?;
    let mut tar = Command::new("tar");
    tar.arg("-C").arg(&unpacked).args(["-cf", "-", "."]);
    let mut tar = tar.stdout(Stdio::piped()).spawn()?;
    let mut load = engine.docker();
    load.arg("load")
        .stdin(tar.stdout.take().expect("piped"))
        .stdout(Stdio::null());
    let loaded = cmd::status(&mut load);
    cmd::check(&Command::new("tar"), cmd::wait(&mut tar, "tar")?)?;
    cmd::check(&load, loaded?)?;
    fs::remove_dir_all(&dir)?;
    Ok(true)
}

fn debian_python(engine: &Engine, paths: &Paths) -> Result<bool> {
    let config = host_config::gather();
    let rootfs_recipe = hex(fnv1a(
        format!("debootstrap --variant=minbase --include={DEBIAN_PACKAGES} {SUITE}").as_bytes(),
    ));
    let mut recipe_input = rootfs_recipe.clone().into_bytes();
    for (path, content) in &config.files {
        recipe_input.extend_from_slice(path.as_bytes());
        recipe_input.extend_from_slice(content);
    }
    let recipe = hex(fnv1a(&recipe_input));
    if current(engine, DEBIAN_PYTHON, &recipe) {
        return Ok(false);
    }
    if !current(engine, DEBIAN_ROOTFS, &rootfs_recipe) {
        let tarball = paths
            .cache
            .join(format!("debian-{SUITE}-{rootfs_recipe}.tar"));
        if tarball.exists() {
            eprintln!(
                "xtask: reusing the cached root file system {}",
                tarball.display()
            );
        } else {
            debootstrap(paths, &config.debian_mirror, &tarball)?;
        }
        cmd::run_quiet(
            engine
                .docker()
                .args([
                    "import",
                    "--change",
                    &format!("ENV PATH={PATH}"),
                    "--change",
                    "ENV LANG=C.UTF-8",
                ])
                .args(["--change", r#"CMD ["/bin/bash"]"#])
                .args(["--change", &format!("LABEL {RECIPE_LABEL}={rootfs_recipe}")])
                .arg(&tarball)
                .arg(DEBIAN_ROOTFS),
        )?;
    }
    let context = paths.cache.join("debian-python-context");
    reset_dir(&context)?;
    for (path, content) in &config.files {
        let file = context.join(path);
        fs::create_dir_all(file.parent().expect("a file in the context"))?;
        fs::write(file, content)?;
    }
    build(engine, DEBIAN_PYTHON, &recipe, &context)?;
    fs::remove_dir_all(&context)?;
    Ok(true)
}

/// debootstrap into target/engine/cache/, then a tarball of the result (minus apt's caches).
fn debootstrap(paths: &Paths, mirror: &str, tarball: &Path) -> Result {
    host::require("debootstrap")?;
    if !sys::is_root() {
        return Err("creating the Debian fixture needs root (debootstrap)".into());
    }
    let root = paths.cache.join("debian-rootfs");
    reset_dir(&root)?;
    let log = paths.dir.join("debootstrap.log");
    let mut debootstrap = Command::new("debootstrap");
    debootstrap
        .args([
            "--variant=minbase",
            &format!("--include={DEBIAN_PACKAGES}"),
            SUITE,
        ])
        .arg(&root)
        .arg(mirror);
    eprintln!(
        "xtask: $ {} (log: {})",
        cmd::display(&debootstrap),
        log.display()
    );
    let out = fs::File::create(&log)?;
    let status = cmd::status(
        debootstrap
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out),
    );
    unmount_below(&root);
    if !status.as_ref().is_ok_and(|s| s.success()) {
        eprintln!("{}", log_tail(&log, 30));
        cmd::check(&debootstrap, status?)?;
    }
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        for entry in fs::read_dir(root.join(dir))?.flatten() {
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
            }
        }
    }
    let partial = tarball.with_extension("tar.partial");
    cmd::run(
        Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(&root)
            .arg("-cf")
            .arg(&partial)
            .arg("."),
    )?;
    fs::rename(&partial, tarball)?;
    fs::remove_dir_all(&root)?;
    Ok(())
}

/// An image `FROM` [`DEBIAN_PYTHON`] built from xtask/fixtures/`dir`/; its recipe is the base
/// image's id and every file of the directory.
fn from_dockerfile(engine: &Engine, tag: &str, dir: &str) -> Result<bool> {
    let context = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(dir);
    let base = cmd::stdout(engine.docker().args([
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        DEBIAN_PYTHON,
    ]))?;
    let mut recipe_input = base.into_bytes();
    for file in files_below(&context)? {
        recipe_input.extend_from_slice(file.strip_prefix(&context)?.as_os_str().as_encoded_bytes());
        recipe_input.extend_from_slice(&fs::read(&file)?);
    }
    let recipe = hex(fnv1a(&recipe_input));
    if current(engine, tag, &recipe) {
        return Ok(false);
    }
    build(engine, tag, &recipe, &context)?;
    Ok(true)
}

/// `docker build` of a fixture image from `context`, labelled with its recipe.
fn build(engine: &Engine, tag: &str, recipe: &str, context: &Path) -> Result {
    cmd::run_quiet(
        engine
            .docker()
            .args([
                "build",
                "--quiet",
                "--label",
                &format!("{RECIPE_LABEL}={recipe}"),
                "--tag",
                tag,
            ])
            .arg(context),
    )
}

/// All files below `dir`, sorted.
fn files_below(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            files.extend(files_below(&entry.path())?);
        } else {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Empties `dir` (after unmounting whatever an interrupted debootstrap left mounted in it).
fn reset_dir(dir: &Path) -> Result {
    unmount_below(dir);
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    Ok(())
}

/// Lazily unmounts every mount point below `dir`, deepest first, so that removing it stays inside it.
pub fn unmount_below(dir: &Path) {
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = format!("{}/", dir.display());
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| p.replace("\\040", " "))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        cmd::succeeds(Command::new("umount").arg("-l").arg(point));
    }
}
