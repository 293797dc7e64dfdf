//! A manual measurement, not a test: build context selection and file hashing on 100k
//! files, hash cache save/load, and the same cache as JSON for comparison. Run with
//! `cargo test -p gear-spec --release --test fingerprint_bench -- --ignored --nocapture`.

use std::fs;
use std::time::{Duration, Instant};

use gear_spec::Layer;
use gear_spec::context;
use gear_spec::fingerprint::{self, HashCache};

const DIRS: usize = 100;
const FILES_PER_DIR: usize = 1000;

fn time<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let value = f();
    println!(
        "{what:<44} {:>9.1} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );
    value
}

#[test]
#[ignore = "measurement; run by hand with --release"]
fn hundred_thousand_files() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("big-gear");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("Gear.toml"),
        "[gear]\nname = \"big\"\nfrom = \"base\"\nimage = \"x/big\"\nversion = \"1\"\n",
    )
    .unwrap();
    fs::write(dir.join(".gearignore"), "*.log\n").unwrap();
    time("create 100k files", || {
        for d in 0..DIRS {
            let sub = dir.join(format!("data/d{d:03}"));
            fs::create_dir_all(&sub).unwrap();
            for f in 0..FILES_PER_DIR {
                let body = format!("file {d}/{f}\n").repeat(1 + f % 50);
                fs::write(sub.join(format!("file-{f:04}.txt")), body).unwrap();
            }
        }
    });
    // Freshly written files are "racy" and never cached; let them age.
    std::thread::sleep(Duration::from_millis(2100));

    let layer = Layer::load(&dir, root.path()).unwrap();
    let cx = time("context::select", || context::select(&layer).unwrap());
    assert_eq!(cx.files.len(), DIRS * FILES_PER_DIR);

    let files: Vec<_> = cx.files.iter().collect();
    let cache_path = root.path().join("target/gear/hash-cache");
    let cache = HashCache::load(&cache_path);
    let cold = time("digest_files, empty cache (reads everything)", || {
        fingerprint::digest_files(&files, &cache).unwrap()
    });
    println!("  {:?}", cache.stats());
    time("HashCache::save (100k entries)", || {
        cache.save(&cache_path).unwrap();
    });
    println!(
        "  cache file: {} bytes",
        fs::metadata(&cache_path).unwrap().len()
    );

    let loaded = time("HashCache::load (100k entries)", || {
        HashCache::load(&cache_path)
    });
    assert_eq!(loaded.len(), DIRS * FILES_PER_DIR);
    let warm = time("digest_files, warm cache (stat only)", || {
        fingerprint::digest_files(&files, &loaded).unwrap()
    });
    assert_eq!(cold, warm);
    println!("  {:?}", loaded.stats());
    assert_eq!(loaded.stats().misses, 0);
    time("HashCache::save, nothing changed", || {
        loaded.save(&cache_path).unwrap();
    });

    // Median of a few runs for the cache file alone.
    let mut loads: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let c = HashCache::load(&cache_path);
            assert!(!c.is_empty());
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    loads.sort_by(f64::total_cmp);
    println!(
        "{:<44} {:>9.1} ms",
        "HashCache::load, median of 5", loads[2]
    );

    // The same data as JSON, for comparison.
    let rows: Vec<serde_json::Value> = cx
        .files
        .iter()
        .zip(&warm)
        .map(|(f, d)| {
            serde_json::json!({
                "path": f.source, "size": d.size, "mtime": 1_700_000_000_123_456_789i64,
                "ctime": 1_700_000_000_123_456_789i64, "inode": 123456789u64, "sha256": fingerprint::hex(&d.sha256),
            })
        })
        .collect();
    let json = time("JSON: serialize the same 100k entries", || {
        serde_json::to_vec(&rows).unwrap()
    });
    println!("  JSON size: {} bytes", json.len());
    time("JSON: parse them back", || {
        serde_json::from_slice::<Vec<serde_json::Value>>(&json).unwrap()
    });
}
