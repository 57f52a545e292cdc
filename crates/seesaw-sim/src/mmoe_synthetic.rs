//! The synthetic pair of regression tasks from the MMoE paper (Ma et al. 2018, §3.2), whose
//! task relatedness is a single number: the cosine between the two tasks' weight vectors.
//! It is the cleanest bench for "does this architecture cope when tasks are less related".

use std::io::{BufWriter, Write};
use std::path::Path;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use super::normal::std_normal;
use crate::error::{Result, SimError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MmoeSyntheticConfig {
    pub seed: u64,
    pub n_samples: usize,
    pub input_dim: usize,
    /// p: cosine between w1 and w2, in [-1, 1].
    pub correlation: f64,
    /// m: number of sine terms.
    pub n_sin: usize,
    /// c: norm of both weight vectors.
    pub scale: f64,
    pub noise_sd: f64,
}

impl Default for MmoeSyntheticConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            n_samples: 10_000,
            input_dim: 100,
            correlation: 0.5,
            n_sin: 10,
            scale: 1.0,
            noise_sd: 0.1,
        }
    }
}

impl MmoeSyntheticConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(SimError::Config(format!("MMoE synthetic config: {m}")));
        if !(-1.0..=1.0).contains(&self.correlation) {
            return bad(format!("correlation must be in [-1, 1], got {}", self.correlation));
        }
        if self.input_dim < 2 {
            return bad(format!(
                "input_dim must be at least 2 (two orthogonal directions), got {}",
                self.input_dim
            ));
        }
        if self.n_samples == 0 {
            return bad("n_samples must be positive".into());
        }
        if !(self.scale.is_finite() && self.noise_sd.is_finite() && self.noise_sd >= 0.0) {
            return bad(format!(
                "scale must be finite and noise_sd finite and ≥ 0, got {} and {}",
                self.scale, self.noise_sd
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MmoeSynthetic {
    pub input_dim: usize,
    /// Row-major n_samples × input_dim.
    pub x: Vec<f32>,
    pub y1: Vec<f32>,
    pub y2: Vec<f32>,
    /// The tasks' true weight vectors, kept so experiments can report the realised relatedness.
    pub w1: Vec<f64>,
    pub w2: Vec<f64>,
}

impl MmoeSynthetic {
    pub fn n_samples(&self) -> usize {
        self.y1.len()
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn generate(cfg: &MmoeSyntheticConfig) -> Result<MmoeSynthetic> {
    cfg.validate()?;
    let d = cfg.input_dim;
    // Separate streams for the task definition and the samples: the same seed gives the same
    // tasks whatever n_samples is.
    let mut task_rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed);
    let mut sample_rng = task_rng.clone();
    sample_rng.jump();

    // Orthonormal u1, u2 by Gram–Schmidt on Gaussian vectors.
    let mut u1: Vec<f64> = (0..d).map(|_| std_normal(&mut task_rng)).collect();
    let n1 = dot(&u1, &u1).sqrt();
    u1.iter_mut().for_each(|x| *x /= n1);
    let mut u2: Vec<f64> = (0..d).map(|_| std_normal(&mut task_rng)).collect();
    let proj = dot(&u1, &u2);
    u2.iter_mut().zip(&u1).for_each(|(x, a)| *x -= proj * a);
    let n2 = dot(&u2, &u2).sqrt();
    u2.iter_mut().for_each(|x| *x /= n2);

    let p = cfg.correlation;
    let q = (1.0 - p * p).max(0.0).sqrt();
    let w1: Vec<f64> = u1.iter().map(|a| cfg.scale * a).collect();
    let w2: Vec<f64> = u1.iter().zip(&u2).map(|(a, b)| cfg.scale * (p * a + q * b)).collect();
    let alpha: Vec<f64> = (0..cfg.n_sin).map(|_| std_normal(&mut task_rng)).collect();
    let beta: Vec<f64> = (0..cfg.n_sin).map(|_| std_normal(&mut task_rng)).collect();
    let target = |s: f64| s + alpha.iter().zip(&beta).map(|(a, b)| (a * s + b).sin()).sum::<f64>();

    let n = cfg.n_samples;
    let mut x = Vec::with_capacity(n * d);
    let (mut y1, mut y2) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut row = vec![0.0; d];
    for _ in 0..n {
        row.iter_mut().for_each(|v| *v = std_normal(&mut sample_rng));
        x.extend(row.iter().map(|&v| v as f32));
        let (e1, e2) = (std_normal(&mut sample_rng), std_normal(&mut sample_rng));
        y1.push((target(dot(&w1, &row)) + cfg.noise_sd * e1) as f32);
        y2.push((target(dot(&w2, &row)) + cfg.noise_sd * e2) as f32);
    }
    Ok(MmoeSynthetic { input_dim: d, x, y1, y2, w1, w2 })
}

/// Columns x0..x{d-1},y1,y2; written to a temporary file beside `path` and renamed.
pub fn write_csv(data: &MmoeSynthetic, path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let io = |e: std::io::Error| SimError::io(path, e);
    let tmp = seesaw_data::atomic::temp_file_in(dir).map_err(io)?;
    let mut w = BufWriter::with_capacity(1 << 20, tmp);
    let d = data.input_dim;
    let header: Vec<String> =
        (0..d).map(|i| format!("x{i}")).chain(["y1".to_string(), "y2".to_string()]).collect();
    writeln!(w, "{}", header.join(",")).map_err(io)?;
    for (i, row) in data.x.chunks_exact(d).enumerate() {
        for v in row {
            write!(w, "{v},").map_err(io)?;
        }
        writeln!(w, "{},{}", data.y1[i], data.y2[i]).map_err(io)?;
    }
    let tmp = w.into_inner().map_err(|e| io(e.into_error()))?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pearson(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    }

    fn projections(data: &MmoeSynthetic) -> (Vec<f64>, Vec<f64>) {
        data.x
            .chunks_exact(data.input_dim)
            .map(|r| {
                let r: Vec<f64> = r.iter().map(|&v| v as f64).collect();
                (dot(&data.w1, &r), dot(&data.w2, &r))
            })
            .unzip()
    }

    #[test]
    fn weight_projections_correlate_as_configured() {
        let cfg = MmoeSyntheticConfig { n_samples: 20_000, correlation: 0.5, ..Default::default() };
        let data = generate(&cfg).unwrap();
        assert_eq!(data.x.len(), 20_000 * 100);
        let norm = |w: &[f64]| dot(w, w).sqrt();
        assert!((norm(&data.w1) - 1.0).abs() < 1e-12 && (norm(&data.w2) - 1.0).abs() < 1e-12);
        assert!((dot(&data.w1, &data.w2) - 0.5).abs() < 1e-12);
        let (s1, s2) = projections(&data);
        let r = pearson(&s1, &s2);
        println!("corr(w1·x, w2·x) at p = 0.5: {r:.4}");
        assert!((r - 0.5).abs() < 0.03, "{r}");
    }

    #[test]
    fn label_correlation_grows_with_task_correlation() {
        let mut last = -1.0;
        for p in [-0.5, 0.0, 0.5, 0.9, 1.0] {
            let cfg =
                MmoeSyntheticConfig { n_samples: 20_000, correlation: p, ..Default::default() };
            let data = generate(&cfg).unwrap();
            let y1: Vec<f64> = data.y1.iter().map(|&v| v as f64).collect();
            let y2: Vec<f64> = data.y2.iter().map(|&v| v as f64).collect();
            let r = pearson(&y1, &y2);
            println!("p = {p}: corr(y1, y2) = {r:.4}");
            assert!(r > last + 0.05, "p = {p}: {r} vs {last}");
            last = r;
        }
        assert!(last > 0.95);
    }

    #[test]
    fn deterministic_validated_and_written() {
        let cfg = MmoeSyntheticConfig { n_samples: 50, input_dim: 4, ..Default::default() };
        assert_eq!(generate(&cfg).unwrap(), generate(&cfg).unwrap());
        assert_ne!(
            generate(&cfg).unwrap(),
            generate(&MmoeSyntheticConfig { seed: 1, ..cfg.clone() }).unwrap()
        );
        for bad in [
            MmoeSyntheticConfig { correlation: 1.5, ..cfg.clone() },
            MmoeSyntheticConfig { input_dim: 1, ..cfg.clone() },
            MmoeSyntheticConfig { n_samples: 0, ..cfg.clone() },
        ] {
            assert!(matches!(generate(&bad), Err(SimError::Config(_))));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mmoe.csv");
        let data = generate(&cfg).unwrap();
        write_csv(&data, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "x0,x1,x2,x3,y1,y2");
        assert_eq!(lines.len(), 51);
        let first: Vec<f32> = lines[1].split(',').map(|v| v.parse().unwrap()).collect();
        assert_eq!(&first[..4], &data.x[..4]);
        assert_eq!((first[4], first[5]), (data.y1[0], data.y2[0]));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
