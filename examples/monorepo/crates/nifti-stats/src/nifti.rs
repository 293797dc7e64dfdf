//! NIfTI-1 single-file images (`.nii`, magic `n+1`): the header fields the report needs and
//! the voxel values, in either byte order.

use serde_json::{json, Value};

/// Size of a NIfTI-1 header.
const HEADER: usize = 348;

/// A parsed image.
#[derive(Debug)]
pub struct Image {
    /// `dim[1..=dim[0]]`.
    pub dims: Vec<u64>,
    /// `pixdim[1..=dim[0]]`.
    pub voxel_size: Vec<f32>,
    /// The NIfTI datatype name.
    pub datatype: &'static str,
    /// Voxel values, scaled.
    pub values: Vec<f64>,
}

impl Image {
    /// Parses a `.nii` file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Image, String> {
        if bytes.len() < HEADER {
            return Err(format!("not a NIfTI-1 file: {} bytes, the header alone is {HEADER}", bytes.len()));
        }
        if bytes.starts_with(&[0x1f, 0x8b]) {
            return Err("a compressed image (.nii.gz): decompress it first (gunzip)".into());
        }
        let little = i32::from_le_bytes(bytes[0..4].try_into().unwrap()) == HEADER as i32;
        let big = i32::from_be_bytes(bytes[0..4].try_into().unwrap()) == HEADER as i32;
        if !little && !big {
            return Err("not a NIfTI-1 file: sizeof_hdr is not 348".into());
        }
        if &bytes[344..348] != b"n+1\0" {
            return Err("not a single-file NIfTI-1 image (magic `n+1`)".into());
        }
        let r = Reader { bytes, little };
        let ndim = r.i16(40).clamp(1, 7) as usize;
        let dims: Vec<u64> = (1..=ndim).map(|i| r.i16(40 + 2 * i).max(1) as u64).collect();
        let voxel_size = (1..=ndim).map(|i| r.f32(76 + 4 * i)).collect();
        let code = r.i16(70);
        let (datatype, size) = match code {
            2 => ("uint8", 1),
            4 => ("int16", 2),
            8 => ("int32", 4),
            16 => ("float32", 4),
            64 => ("float64", 8),
            256 => ("int8", 1),
            512 => ("uint16", 2),
            768 => ("uint32", 4),
            other => return Err(format!("unsupported datatype {other}")),
        };
        let offset = r.f32(108).max(HEADER as f32) as usize;
        let (slope, inter) = match (r.f32(112), r.f32(116)) {
            (s, i) if s != 0.0 && s.is_finite() => (f64::from(s), f64::from(i)),
            _ => (1.0, 0.0),
        };
        let count: u64 = dims.iter().product();
        let end = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(size))
            .and_then(|n| n.checked_add(offset))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| format!("truncated: {count} voxels of {size} bytes do not fit in {} bytes", bytes.len()))?;
        let values = (offset..end)
            .step_by(size)
            .map(|at| r.value(code, at) * slope + inter)
            .collect();
        Ok(Image {
            dims,
            voxel_size,
            datatype,
            values,
        })
    }

    /// The report written to `nifti-stats.json`, statistics rounded to `decimals`.
    pub fn report(&self, decimals: u32) -> Value {
        let round = |x: f64| {
            let f = 10f64.powi(decimals as i32);
            (x * f).round() / f
        };
        let n = self.values.len() as f64;
        let min = self.values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = self.values.iter().sum::<f64>() / n;
        let var = self.values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        json!({
            "dims": self.dims,
            "voxel_size": self.voxel_size,
            "datatype": self.datatype,
            "voxels": self.values.len(),
            "nonzero": self.values.iter().filter(|v| **v != 0.0).count(),
            "min": round(min),
            "max": round(max),
            "mean": round(mean),
            "std": round(var.sqrt()),
        })
    }
}

/// Reads header fields and voxels in the file's byte order.
struct Reader<'a> {
    bytes: &'a [u8],
    little: bool,
}

impl Reader<'_> {
    fn array<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut a = [0; N];
        a.copy_from_slice(&self.bytes[at..at + N]);
        if !self.little {
            a.reverse();
        }
        a
    }

    fn i16(&self, at: usize) -> i16 {
        i16::from_le_bytes(self.array(at))
    }

    fn f32(&self, at: usize) -> f32 {
        f32::from_le_bytes(self.array(at))
    }

    fn value(&self, datatype: i16, at: usize) -> f64 {
        match datatype {
            2 => f64::from(self.bytes[at]),
            4 => f64::from(i16::from_le_bytes(self.array(at))),
            8 => f64::from(i32::from_le_bytes(self.array(at))),
            16 => f64::from(f32::from_le_bytes(self.array(at))),
            64 => f64::from_le_bytes(self.array(at)),
            256 => f64::from(self.bytes[at] as i8),
            512 => f64::from(u16::from_le_bytes(self.array(at))),
            _ => f64::from(u32::from_le_bytes(self.array(at))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tests/data/tiny.nii`: 2×2×1 int16 voxels 0, 2, 4, 6 scaled by 0.5, voxels of 1.5 mm.
    const TINY: &[u8] = include_bytes!("../tests/data/tiny.nii");

    #[test]
    fn statistics_of_a_small_image() {
        let image = Image::parse(TINY).unwrap();
        assert_eq!(
            image.report(3),
            json!({"dims": [2, 2, 1], "voxel_size": [1.5, 1.5, 1.5], "datatype": "int16",
                   "voxels": 4, "nonzero": 3, "min": 0.0, "max": 3.0, "mean": 1.5, "std": 1.118})
        );
    }

    #[test]
    fn bad_files_say_why() {
        assert!(Image::parse(b"short").unwrap_err().contains("348"));
        let mut bytes = TINY.to_vec();
        bytes.truncate(356);
        assert!(Image::parse(&bytes).unwrap_err().starts_with("truncated"));
        let mut gz = vec![0x1f, 0x8b];
        gz.resize(400, 0);
        assert!(Image::parse(&gz).unwrap_err().contains(".nii.gz"));
    }
}
