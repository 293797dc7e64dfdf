//! The example monorepo's Gear.toml files pass the per-layer checks.

use std::path::{Path, PathBuf};

use gear_spec::layer::{GEAR_TOML, Layer};
use gear_spec::validate::check_layer;

#[test]
fn example_layers_have_no_problems() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/monorepo");
    let mut checked = 0;
    for group in ["layers", "gears"] {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(group))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join(GEAR_TOML).is_file())
            .collect();
        dirs.sort();
        for dir in dirs {
            let layer = Layer::load(&dir, &root).unwrap_or_else(|p| panic!("{p}"));
            let problems = check_layer(&layer);
            assert!(problems.is_empty(), "{}: {problems:#?}", layer.rel_dir);
            checked += 1;
        }
    }
    assert_eq!(checked, 8);
}
