//! Mean and spread of a metric over repeated runs (seeds).
//!
//! A difference between two models smaller than the seed-to-seed spread is noise; every
//! comparison therefore reports `mean ± sd` over several seeds, with `n`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{MetricError, Result};

/// Mean and sample standard deviation of `n` values.
///
/// ```text
/// mean = (1/n) Σ x_i
/// sd   = sqrt( Σ (x_i − mean)² / (n − 1) )      (Bessel-corrected; two-pass for accuracy)
/// ```
///
/// `sd` is `None` for `n = 1`: one run says nothing about the spread, and reporting 0 would
/// claim a precision that was never measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanSd {
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (divisor `n − 1`); `None` when `n < 2`.
    pub sd: Option<f64>,
    /// Number of values.
    pub n: usize,
}

impl MeanSd {
    /// Mean and sample standard deviation of `values`.
    ///
    /// `Ok(None)` for an empty slice; an error when a value is NaN or infinite.
    pub fn from_values(values: &[f64]) -> Result<Option<Self>> {
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(MetricError::NonFinite { what: "values", index, value: values[index] });
        }
        let n = values.len();
        if n == 0 {
            return Ok(None);
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = (n >= 2).then(|| {
            let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
            (ss / (n - 1) as f64).sqrt()
        });
        Ok(Some(Self { mean, sd, n }))
    }

    /// The standard error of the difference of two means from independent runs,
    /// √(sd_a²/n_a + sd_b²/n_b); `None` unless both have a spread.
    pub fn difference_standard_error(&self, other: &MeanSd) -> Option<f64> {
        let (sd_a, sd_b) = (self.sd?, other.sd?);
        Some((sd_a * sd_a / self.n as f64 + sd_b * sd_b / other.n as f64).sqrt())
    }
}

/// Shorthand for [`MeanSd::from_values`].
pub fn mean_sd(values: &[f64]) -> Result<Option<MeanSd>> {
    MeanSd::from_values(values)
}

impl fmt::Display for MeanSd {
    /// `0.7512 ± 0.0031 (n=5)`; the precision is taken from the formatter (default 4).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = f.precision().unwrap_or(4);
        match self.sd {
            Some(sd) => write!(f, "{:.p$} ± {:.p$} (n={})", self.mean, sd, self.n),
            None => write!(f, "{:.p$} (n={})", self.mean, self.n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        // values 2, 4, 4, 4, 5, 5, 7, 9: sum 40, mean 5
        // squared deviations 9 1 1 1 0 0 4 16 = 32; sample variance 32/7; sd = 2.1380899353
        let m = mean_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap().unwrap();
        assert_eq!(m.mean, 5.0);
        assert_eq!(m.n, 8);
        assert!((m.sd.unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert!((m.sd.unwrap() - 2.138_089_935_3).abs() < 1e-9);
        assert_eq!(format!("{m}"), "5.0000 ± 2.1381 (n=8)");
        assert_eq!(format!("{m:.2}"), "5.00 ± 2.14 (n=8)");
    }

    #[test]
    fn two_values() {
        // 0.70, 0.74: mean 0.72; deviations ±0.02; variance (0.0004+0.0004)/1; sd 0.0282842712
        let m = mean_sd(&[0.70, 0.74]).unwrap().unwrap();
        assert!((m.mean - 0.72).abs() < 1e-12);
        assert!((m.sd.unwrap() - 0.028_284_271_2).abs() < 1e-9);
    }

    #[test]
    fn difference_standard_error_by_hand() {
        let a = MeanSd { mean: 0.7, sd: Some(0.3), n: 3 };
        let b = MeanSd { mean: 0.6, sd: Some(0.4), n: 4 };
        let se = a.difference_standard_error(&b).unwrap();
        assert!((se - (0.09f64 / 3.0 + 0.16 / 4.0).sqrt()).abs() < 1e-15);
        let one_run = MeanSd { mean: 0.6, sd: None, n: 1 };
        assert_eq!(a.difference_standard_error(&one_run), None);
    }

    #[test]
    fn single_and_empty_and_invalid() {
        let m = mean_sd(&[0.8]).unwrap().unwrap();
        assert_eq!(m, MeanSd { mean: 0.8, sd: None, n: 1 });
        assert_eq!(format!("{m}"), "0.8000 (n=1)");
        assert_eq!(mean_sd(&[]).unwrap(), None);
        assert!(matches!(mean_sd(&[1.0, f64::NAN]), Err(MetricError::NonFinite { index: 1, .. })));
    }
}
