//! Learning rate at each step: linear warm-up, then constant, linear or cosine decay.

use crate::config::LrDecay;

pub fn learning_rate(
    peak: f64,
    warmup: usize,
    decay: LrDecay,
    step: usize,
    total_steps: usize,
) -> f64 {
    if warmup > 0 && step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total_steps.saturating_sub(warmup).max(1) as f64;
    let progress = ((step.saturating_sub(warmup)) as f64 / span).min(1.0);
    match decay {
        LrDecay::None => peak,
        LrDecay::Linear { final_fraction } => peak * (1.0 - (1.0 - final_fraction) * progress),
        LrDecay::Cosine { final_fraction } => {
            let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
            peak * (final_fraction + (1.0 - final_fraction) * cosine)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_decay() {
        assert_eq!(learning_rate(1.0, 4, LrDecay::None, 0, 100), 0.25);
        assert_eq!(learning_rate(1.0, 4, LrDecay::None, 3, 100), 1.0);
        assert_eq!(learning_rate(1.0, 4, LrDecay::None, 50, 100), 1.0);
        let linear = LrDecay::Linear { final_fraction: 0.1 };
        assert!((learning_rate(1.0, 0, linear, 100, 100) - 0.1).abs() < 1e-12);
        assert!((learning_rate(1.0, 0, linear, 50, 100) - 0.55).abs() < 1e-12);
        let cosine = LrDecay::Cosine { final_fraction: 0.0 };
        assert!((learning_rate(1.0, 0, cosine, 50, 100) - 0.5).abs() < 1e-12);
        assert!(learning_rate(1.0, 0, cosine, 100, 100).abs() < 1e-12);
    }
}
