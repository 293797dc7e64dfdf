//! Properties of layer fingerprints: any single change to something that reaches the image
//! changes the fingerprint; reordering or changing what does not reach it (files excluded
//! by `.gearignore`, proven end to end through `context::select`) does not.

use std::fs;
use std::path::Path;

use gear_spec::Layer;
use gear_spec::context;
use gear_spec::fingerprint::{
    self, FileDigest, Fingerprint, FingerprintInput, HashCache, ParentInput,
};
use indexmap::IndexMap;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Parent {
    Built(Fingerprint),
    External(String, Option<String>),
}

/// An owned [`FingerprintInput`].
#[derive(Debug, Clone)]
struct Input {
    parent: Parent,
    dockerfile: String,
    generated: Vec<(String, Vec<u8>)>,
    files: Vec<FileDigest>,
    args: IndexMap<String, String>,
}

impl Input {
    fn fingerprint(&self) -> Fingerprint {
        let parent = match &self.parent {
            Parent::Built(fp) => ParentInput::Built(fp),
            Parent::External(reference, digest) => ParentInput::External {
                reference,
                digest: digest.as_deref(),
            },
        };
        let generated: Vec<(&str, &[u8])> = self
            .generated
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect();
        fingerprint::fingerprint(&FingerprintInput {
            parent,
            platform: "linux/amd64",
            dockerfile: &self.dockerfile,
            generated: &generated,
            files: &self.files.iter().collect::<Vec<_>>(),
            args: &self.args,
        })
    }
}

fn input() -> impl Strategy<Value = Input> {
    let parent = prop_oneof![
        any::<[u8; 32]>().prop_map(|b| Parent::Built(Fingerprint(b))),
        (
            "[a-z0-9./:-]{1,24}",
            proptest::option::of("sha256:[0-9a-f]{16}")
        )
            .prop_map(|(r, d)| Parent::External(r, d)),
    ];
    let generated = btree_map("[a-z./]{1,16}", vec(any::<u8>(), 0..24), 0..3);
    let files = btree_map(
        "(copy|files)/[a-z0-9/._-]{1,16}",
        (
            any::<bool>(),
            proptest::option::of(0u32..0o10000),
            any::<u64>(),
            any::<[u8; 32]>(),
        ),
        0..8,
    );
    let args = btree_map("[A-Z_]{1,8}", "[ -~]{0,12}", 0..4);
    (parent, "[ -~\n]{0,120}", generated, files, args).prop_map(
        |(parent, dockerfile, generated, files, args)| Input {
            parent,
            dockerfile,
            generated: generated.into_iter().collect(),
            files: files
                .into_iter()
                .map(|(tar_path, (executable, mode, size, sha256))| FileDigest {
                    tar_path,
                    executable,
                    mode,
                    size,
                    sha256,
                })
                .collect(),
            args: args.into_iter().collect(),
        },
    )
}

/// Number of kinds of single changes [`mutate`] knows.
const MUTATIONS: u8 = 20;

/// Applies one small change of kind `kind` (at position `at`, bit `bit`) to something that
/// reaches the image. Kinds that do not apply (an empty list) fall back to adding an item.
fn mutate(input: &mut Input, kind: u8, at: usize, bit: u8) {
    let flip = |b: &mut u8| *b ^= 1 << (bit % 8);
    match kind {
        // Dockerfile: one byte changed (ASCII stays ASCII), one byte added.
        0 if !input.dockerfile.is_empty() => {
            let mut bytes = input.dockerfile.clone().into_bytes();
            let i = at % bytes.len();
            bytes[i] ^= 1 << (bit % 7);
            input.dockerfile = String::from_utf8(bytes).unwrap();
        }
        0 | 1 => input.dockerfile.push(char::from(b' ' + bit % 90)),
        // Generated files: a content byte, the path, one removed, one added.
        2 if input.generated.iter().any(|(_, b)| !b.is_empty()) => {
            let (_, bytes) = input
                .generated
                .iter_mut()
                .find(|(_, b)| !b.is_empty())
                .unwrap();
            let i = at % bytes.len();
            flip(&mut bytes[i]);
        }
        3 if !input.generated.is_empty() => {
            let n = input.generated.len();
            input.generated[at % n].0.push('~');
        }
        4 if !input.generated.is_empty() => {
            let n = input.generated.len();
            input.generated.remove(at % n);
        }
        2..=5 => input.generated.push(("Dockerfile.extra".into(), vec![bit])),
        // Context files: a digest bit, the exec bit, the size, the path, one removed, one added.
        6 if !input.files.is_empty() => {
            let n = input.files.len();
            let f = &mut input.files[at % n];
            flip(&mut f.sha256[(bit as usize / 8) % 32]);
        }
        7 if !input.files.is_empty() => {
            let n = input.files.len();
            input.files[at % n].executable ^= true;
        }
        8 if !input.files.is_empty() => {
            let n = input.files.len();
            let f = &mut input.files[at % n];
            f.size = f.size.wrapping_add(1);
        }
        9 if !input.files.is_empty() => {
            let n = input.files.len();
            input.files[at % n].tar_path.push('~');
        }
        10 if !input.files.is_empty() => {
            let n = input.files.len();
            input.files.remove(at % n);
        }
        6..=11 => input.files.push(FileDigest {
            tar_path: "copy/NEW".into(),
            executable: false,
            mode: None,
            size: 0,
            sha256: [bit; 32],
        }),
        // Args: a value, a key, one removed, one added.
        12 if !input.args.is_empty() => {
            let n = input.args.len();
            input.args[at % n].push('~');
        }
        13 if !input.args.is_empty() => {
            let n = input.args.len();
            let (k, v) = input.args.shift_remove_index(at % n).unwrap();
            input.args.insert(format!("{k}x"), v);
        }
        14 if !input.args.is_empty() => {
            let n = input.args.len();
            input.args.shift_remove_index(at % n);
        }
        12..=15 => {
            input.args.insert("NEW_ARG".into(), String::new());
        }
        // Parent: a fingerprint bit, the reference, the pinned digest, the kind.
        16 => match &mut input.parent {
            Parent::Built(fp) => flip(&mut fp.0[at % 32]),
            Parent::External(reference, _) => reference.push('~'),
        },
        17 => match &mut input.parent {
            Parent::Built(fp) => input.parent = Parent::External(fp.hex(), None),
            Parent::External(_, _) => input.parent = Parent::Built(Fingerprint([bit; 32])),
        },
        18 | 19 => match &mut input.parent {
            Parent::External(_, digest @ None) => *digest = Some("sha256:00".into()),
            Parent::External(_, Some(d)) if kind == 18 => d.push('0'),
            Parent::External(_, digest) => *digest = None,
            Parent::Built(fp) => fp.0[0] = fp.0[0].wrapping_add(1),
        },
        _ => unreachable!("kind < MUTATIONS"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_single_change_changes_the_fingerprint(
        base in input(),
        kind in 0..MUTATIONS,
        at in any::<usize>(),
        bit in any::<u8>(),
    ) {
        let mut changed = base.clone();
        mutate(&mut changed, kind, at, bit);
        prop_assert_ne!(base.fingerprint(), changed.fingerprint(), "mutation {} of {:?}", kind, base);
    }

    #[test]
    fn order_of_files_args_and_generated_does_not_matter(base in input(), seed in any::<u64>()) {
        let mut shuffled = base.clone();
        let n = shuffled.files.len().max(1) as u64;
        shuffled.files.rotate_left((seed % n) as usize);
        shuffled.files.reverse();
        shuffled.generated.reverse();
        shuffled.args.reverse();
        prop_assert_eq!(base.fingerprint(), shuffled.fingerprint());
    }
}

// --- End to end: files on disk → context::select → digest_files → fingerprint. ---

const GEAR: &str = "[gear]\nname = \"g\"\nfrom = \"base\"\nimage = \"x/g\"\nversion = \"1\"\n";

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// Fingerprint of the gear in `dir` with a fixed Dockerfile and parent, hashing from scratch.
fn fingerprint_dir(root: &Path, dir: &Path) -> Fingerprint {
    let layer = Layer::load(dir, root).unwrap();
    let cx = context::select(&layer).unwrap();
    let digests =
        fingerprint::digest_files(&cx.files.iter().collect::<Vec<_>>(), &HashCache::new()).unwrap();
    let parent = Fingerprint([1; 32]);
    fingerprint::fingerprint(&FingerprintInput {
        parent: ParentInput::Built(&parent),
        platform: "linux/amd64",
        dockerfile: "FROM base\nCOPY copy/ /flywheel/v0/\n",
        generated: &[],
        files: &digests.iter().collect::<Vec<_>>(),
        args: &IndexMap::new(),
    })
}

fn gear_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("g");
    write(&dir, "Gear.toml", GEAR.as_bytes());
    write(&dir, ".gearignore", b"*.log\nscratch/\n");
    write(&dir, "run.py", b"print('hi')\n");
    write(&dir, "app/a.py", b"a = 1\n");
    write(&dir, "notes.log", b"ignored\n");
    write(&dir, "scratch/data.bin", b"ignored too\n");
    (root, dir)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn ignored_files_do_not_reach_the_fingerprint(
        log in vec(any::<u8>(), 0..256),
        data in vec(any::<u8>(), 0..256),
        extra in "[a-z]{1,8}",
    ) {
        let (root, dir) = gear_dir();
        let before = fingerprint_dir(root.path(), &dir);
        write(&dir, "notes.log", &log);
        write(&dir, "scratch/data.bin", &data);
        write(&dir, &format!("scratch/{extra}.py"), b"new but ignored");
        write(&dir, &format!("app/{extra}.log"), b"new but ignored");
        write(&dir, "manifest.json", &data); // generated by the tool, never copied
        prop_assert_eq!(before, fingerprint_dir(root.path(), &dir));
    }

    #[test]
    fn copied_files_do_reach_the_fingerprint(content in vec(any::<u8>(), 0..256), which in 0..2usize) {
        let (root, dir) = gear_dir();
        let before = fingerprint_dir(root.path(), &dir);
        let (rel, old): (&str, &[u8]) = [("run.py", &b"print('hi')\n"[..]), ("app/a.py", &b"a = 1\n"[..])][which];
        prop_assume!(content != old);
        write(&dir, rel, &content);
        prop_assert_ne!(before, fingerprint_dir(root.path(), &dir));
    }
}

#[test]
fn adding_renaming_and_chmod_change_the_fingerprint() {
    let (root, dir) = gear_dir();
    let base = fingerprint_dir(root.path(), &dir);

    write(&dir, "app/b.py", b"");
    let added = fingerprint_dir(root.path(), &dir);
    assert_ne!(base, added);

    fs::rename(dir.join("app/b.py"), dir.join("app/c.py")).unwrap();
    let renamed = fingerprint_dir(root.path(), &dir);
    assert_ne!(added, renamed);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.join("app/c.py"), fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(renamed, fingerprint_dir(root.path(), &dir));
    }

    // Un-ignoring a file brings it in.
    write(&dir, ".gearignore", b"scratch/\n");
    let unignored = fingerprint_dir(root.path(), &dir);
    write(&dir, ".gearignore", b"*.log\nscratch/\n");
    assert_ne!(unignored, fingerprint_dir(root.path(), &dir));
}
