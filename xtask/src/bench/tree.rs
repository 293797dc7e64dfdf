//! Synthetic monorepos: the busybox fixture as an external layer, one shared base layer built on it,
//! and N gears of small deterministic text files in nested directories. By default a Cargo virtual
//! workspace whose `[workspace.metadata.gear] members` lists `layers/*` and `gears/*`, as users
//! have them ([`Layout::Cargo`]); or a tree without Cargo that cargo-gear scans with `--root`
//! ([`Layout::Root`]).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{Result, fnv1a};

/// The fixture every tree is built on, declared as an external layer (no substitution).
pub const FIXTURE: &str = "cargo-gear-fixture/busybox:1";
/// Repository prefix of the images cargo-gear builds for the benchmark.
pub const IMAGE_PREFIX: &str = "cargo-gear-bench";
/// cargo-gear's stat cache does not record a file changed within 2 s of hashing it ("racy git").
const RACY_WINDOW: Duration = Duration::from_millis(2500);

/// How cargo-gear finds a tree's Gear.toml files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A Cargo virtual workspace, its members in `[workspace.metadata.gear]`.
    Cargo,
    /// No Cargo.toml: `--root` scans the tree.
    Root,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Cargo => "cargo",
            Layout::Root => "root",
        }
    }
}

/// The root manifest of a [`Layout::Cargo`] tree.
const WORKSPACE_MANIFEST: &str = "[workspace]\nmembers = []\nresolver = \"2\"\n\n\
    [workspace.metadata.gear]\nmembers = [\"layers/*\", \"gears/*\"]\n";

/// A layer cargo-gear builds.
pub struct Layer {
    pub name: String,
    pub dir: PathBuf,
    /// Its build-context files, relative to `dir` (`copy/<rel>` in the context).
    pub files: Vec<String>,
    /// Whether it is a gear (its context also holds the manifest).
    pub gear: bool,
    /// The parent's name when the parent is built too (not the external fixture).
    pub built_parent: Option<String>,
}

/// A generated monorepo.
pub struct Tree {
    pub root: PathBuf,
    pub layout: Layout,
    /// Short name of the tree, part of its image names: `n50`, `big1000`.
    pub tag: String,
    /// Built layers in dependency order: the base, then the gears.
    pub layers: Vec<Layer>,
    /// Number of build-context files of all layers.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
    /// Seconds it took to write the tree.
    pub seconds: f64,
    written: Instant,
}

impl Tree {
    /// Every build-context file, absolute.
    pub fn context_files(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.layers
            .iter()
            .flat_map(|l| l.files.iter().map(|f| l.dir.join(f)))
    }

    /// The image repository of a layer.
    pub fn image(&self, name: &str) -> String {
        format!("{IMAGE_PREFIX}/{}-{name}", self.tag)
    }

    /// Waits until every file is older than cargo-gear's racy window, so that the first plan
    /// records all of them in the hash cache and later plans are truly warm, until what was
    /// written is on disk, and until the machine is quiet ([`wait_until_quiet`]), so that
    /// neither the kernel's writeback nor the engine's clean-up runs during what is timed (a
    /// 1,000-gear tree and its git objects are some 700 MB). Returns the seconds waited for
    /// quiet.
    pub fn settle(&self) -> f64 {
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc::sync() };
        let ready = self.written + RACY_WINDOW;
        if let Some(left) = ready.checked_duration_since(Instant::now()) {
            sleep(left);
        }
        wait_until_quiet()
    }
}

/// The share of CPU time idle (or waiting for I/O) that counts as quiet, over one second.
const QUIET: f64 = 0.9;
/// The longest [`wait_until_quiet`] waits.
const QUIET_WAIT_MAX: Duration = Duration::from_secs(60);

/// Waits until the CPUs were at least [`QUIET`] idle over one second, at most
/// [`QUIET_WAIT_MAX`]; returns the seconds waited. Before the bench turned off git's automatic
/// gc, the commit of the 1,000-gear tree left a `git gc` packing 100,000 objects in the
/// background for 40 s, and the plans timed meanwhile took 0.7 s where they take 0.4 s.
pub fn wait_until_quiet() -> f64 {
    let started = Instant::now();
    // user nice system idle iowait …: idle + iowait over the total.
    let times = || -> Option<(u64, u64)> {
        let stat = fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        Some((fields.get(3)? + fields.get(4)?, fields.iter().sum()))
    };
    while started.elapsed() < QUIET_WAIT_MAX {
        let Some((idle0, total0)) = times() else {
            break;
        };
        sleep(Duration::from_secs(1));
        let Some((idle1, total1)) = times() else {
            break;
        };
        let total = total1.saturating_sub(total0).max(1);
        if idle1.saturating_sub(idle0) as f64 / total as f64 >= QUIET {
            break;
        }
    }
    started.elapsed().as_secs_f64()
}

/// Writes a tree of `gears` gears with `files_per_gear` files each (one is the run file) under
/// `root`, replacing whatever was there.
pub fn generate(
    root: &Path,
    layout: Layout,
    tag: &str,
    gears: usize,
    files_per_gear: usize,
) -> Result<Tree> {
    if root.exists() {
        fs::remove_dir_all(root)?;
    }
    let started = Instant::now();
    let mut tree = Tree {
        root: root.to_owned(),
        layout,
        tag: tag.to_owned(),
        layers: Vec::new(),
        files: 0,
        bytes: 0,
        seconds: 0.0,
        written: started,
    };

    if layout == Layout::Cargo {
        write(&root.join("Cargo.toml"), WORKSPACE_MANIFEST.as_bytes())?;
    }
    // Build output stays out of `git status`.
    write(&root.join(".gitignore"), b"/target/\n")?;
    write(
        &root.join("layers/busybox/Gear.toml"),
        format!(
            "[layer]\nname = \"busybox\"\nimage = \"{FIXTURE}\"\n\
             description = \"The busybox fixture image: the external base of the benchmark.\"\n"
        )
        .as_bytes(),
    )?;

    let base_dir = root.join("layers/base");
    write(
        &base_dir.join("Gear.toml"),
        format!(
            "[layer]\nname = \"base\"\nfrom = \"busybox\"\nimage = \"{}\"\n\
             description = \"The base layer every gear of the benchmark shares.\"\n\
             env = {{ BENCH_TREE = \"{tag}\" }}\nworkdir = \"/opt/bench\"\ncopy = [\"share\"]\n",
            tree.image("base")
        )
        .as_bytes(),
    )?;
    let mut base = Layer {
        name: "base".into(),
        dir: base_dir,
        files: Vec::new(),
        gear: false,
        built_parent: None,
    };
    for (i, rel) in [
        "share/README.txt",
        "share/lib/common.sh",
        "share/lib/paths.txt",
        "share/data/table.txt",
    ]
    .into_iter()
    .enumerate()
    {
        tree.bytes += write_text(&base.dir.join(rel), fnv1a(format!("base/{i}").as_bytes()))?;
        base.files.push(rel.into());
    }
    tree.layers.push(base);

    for g in 1..=gears {
        let name = format!("g{g:04}");
        let dir = root.join("gears").join(&name);
        write(
            &dir.join("Gear.toml"),
            gear_toml(&tree, &name, g, gears).as_bytes(),
        )?;
        let run = format!(
            "#!/bin/sh\n# gear {name} of the cargo-gear benchmark\nexec cat /flywheel/v0/src/pkg0/mod0/file000.txt\n"
        );
        write(&dir.join("run.sh"), run.as_bytes())?;
        fs::set_permissions(dir.join("run.sh"), fs::Permissions::from_mode(0o755))?;
        tree.bytes += run.len() as u64;
        let mut files = vec!["run.sh".to_owned()];
        for j in 0..files_per_gear.saturating_sub(1) {
            let rel = format!("src/pkg{}/mod{}/file{j:03}.txt", j / 20, (j / 5) % 4);
            tree.bytes += write_text(&dir.join(&rel), fnv1a(format!("{g}/{j}").as_bytes()))?;
            files.push(rel);
        }
        files.sort();
        tree.layers.push(Layer {
            name,
            dir,
            files,
            gear: true,
            built_parent: Some("base".into()),
        });
    }
    tree.files = tree.layers.iter().map(|l| l.files.len()).sum();
    tree.written = Instant::now();
    tree.seconds = started.elapsed().as_secs_f64();
    Ok(tree)
}

fn gear_toml(tree: &Tree, name: &str, g: usize, gears: usize) -> String {
    format!(
        r#"[gear]
name = "{name}"
from = "base"
image = "{image}"
version = "1.0.{g}"
label = "Benchmark gear {g}"
description = "Synthetic gear {g} of {gears} for the cargo-gear benchmark. It prints one of its files."
author = "cargo-gear benchmark"
license = "MIT"
command = "sh run.sh"
env = {{ GEAR_INDEX = "{g}" }}

[gear.inputs.table]
base = "file"
description = "Any file."
optional = true

[gear.config.level]
type = "integer"
default = 1
minimum = 0
maximum = 9

[gear.custom.gear-builder]
category = "utility"
"#,
        image = tree.image(name)
    )
}

fn write(path: &Path, bytes: &[u8]) -> Result {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, bytes)?;
    Ok(())
}

/// Writes 1–5 KiB of deterministic text derived from `seed`; returns its size.
fn write_text(path: &Path, seed: u64) -> Result<u64> {
    let bytes = text(seed);
    write(path, &bytes)?;
    Ok(bytes.len() as u64)
}

/// Lines of pseudo-random words, 1024 to 5119 bytes, ending with a newline.
fn text(seed: u64) -> Vec<u8> {
    const WORDS: [&str; 32] = [
        "gear", "layer", "image", "voxel", "subject", "session", "scan", "mask", "atlas", "cortex",
        "volume", "surface", "label", "input", "output", "config", "value", "signal", "noise",
        "filter", "kernel", "matrix", "vector", "sample", "frame", "slice", "header", "table",
        "index", "range", "flywheel", "analysis",
    ];
    let mut state = seed;
    let len = 1024 + (splitmix(&mut state) % 4096) as usize;
    let mut out = Vec::with_capacity(len + 16);
    let mut column = 0;
    while out.len() < len {
        let r = splitmix(&mut state);
        let word = WORDS[(r % 32) as usize].as_bytes();
        out.extend_from_slice(word);
        column += word.len();
        if column > 64 {
            out.push(b'\n');
            column = 0;
        } else {
            out.push(b' ');
            column += 1;
        }
    }
    out.truncate(len);
    out[len - 1] = b'\n';
    out
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_deterministic_and_a_few_kib() {
        assert_eq!(text(7), text(7));
        assert_ne!(text(7), text(8));
        for seed in 0..50 {
            let t = text(seed);
            assert!((1024..5120).contains(&t.len()), "{}", t.len());
            assert!(t.ends_with(b"\n") && t.is_ascii());
        }
    }

    #[test]
    fn generates_layers_and_files() {
        let root = std::env::temp_dir().join(format!("xtask-bench-tree-{}", std::process::id()));
        let tree = generate(&root, Layout::Cargo, "t", 3, 10).unwrap();
        assert_eq!(tree.layers.len(), 4);
        assert_eq!(tree.files, 4 + 3 * 10);
        assert_eq!(tree.context_files().count(), tree.files);
        assert!(tree.context_files().all(|f| f.is_file()));
        let size: u64 = tree
            .context_files()
            .map(|f| f.metadata().unwrap().len())
            .sum();
        assert_eq!(size, tree.bytes);
        let toml = fs::read_to_string(root.join("gears/g0002/Gear.toml")).unwrap();
        assert!(
            toml.contains("image = \"cargo-gear-bench/t-g0002\""),
            "{toml}"
        );
        let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("members = [\"layers/*\", \"gears/*\"]"),
            "{manifest}"
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
