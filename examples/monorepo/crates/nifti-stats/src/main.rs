//! The `nifti-stats` gear: reads the NIfTI-1 image of input `image`, writes its header
//! (dimensions, voxel size, data type) and voxel statistics (count, min, max, mean, standard
//! deviation, non-zero voxels, scaled by `scl_slope`/`scl_inter`) to
//! `output/nifti-stats.json`. Exit code 0, 1 when the image cannot be read, 2 when the job
//! is wrong (configuration, missing input).

mod nifti;

use flywheel_context::{GearContext, GearError};
use serde::Deserialize;

/// The gear's configuration (`[gear.config]` in its Gear.toml).
#[derive(Debug, Deserialize)]
struct Config {
    /// Decimal places of the statistics.
    decimals: u32,
}

fn main() {
    flywheel_context::run(|| {
        let gear: GearContext<Config> = GearContext::load()?;
        let path = gear.input_path("image")?;
        let bytes = std::fs::read(&path)
            .map_err(|e| GearError::failed(format!("cannot read {}: {e}", path.display())))?;
        let image = nifti::Image::parse(&bytes)
            .map_err(|e| GearError::failed(format!("{}: {e}", path.display())))?;
        let report = image.report(gear.config.decimals.min(10));
        let out = gear.output_dir()?.join("nifti-stats.json");
        let text = serde_json::to_string_pretty(&report).map_err(|e| GearError::failed(e.to_string()))?;
        std::fs::write(&out, text + "\n")
            .map_err(|e| GearError::failed(format!("cannot write {}: {e}", out.display())))?;
        println!(
            "{}: {} voxels, mean {}",
            path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
            report["voxels"],
            report["mean"]
        );
        Ok(())
    })
}
