//! Standard-normal helpers: the copula needs Φ⁻¹ to place each behaviour's threshold, and the
//! sampler needs cheap normal draws. Rust's std has neither erf nor Φ⁻¹, and pulling rand_distr
//! in for one distribution is not worth a dependency.

use rand::RngCore;

const SQRT_2PI: f64 = 2.506_628_274_631_000_5;

/// Logistic function; every latent score in the simulator is a logit.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Standard-normal CDF, Hart's double-precision algorithm (as published by West, 2005):
/// absolute error below 1e-15 (relative 1e-9 down to x = −7, 1e-7 beyond), which the refinement step of [`norm_inv_cdf`] relies on.
pub fn norm_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let xa = x.abs();
    let tail = if xa > 38.5 {
        0.0
    } else {
        let e = (-0.5 * xa * xa).exp();
        if xa < 7.071_067_811_865_47 {
            let mut num = 3.526_249_659_989_11e-2 * xa + 0.700_383_064_443_688;
            num = num * xa + 6.373_962_203_531_65;
            num = num * xa + 33.912_866_078_383;
            num = num * xa + 112.079_291_497_871;
            num = num * xa + 221.213_596_169_931;
            num = num * xa + 220.206_867_912_376;
            let mut den = 8.838_834_764_831_84e-2 * xa + 1.755_667_163_182_64;
            den = den * xa + 16.064_177_579_207;
            den = den * xa + 86.780_732_202_946_1;
            den = den * xa + 296.564_248_779_674;
            den = den * xa + 637.333_633_378_831;
            den = den * xa + 793.826_512_519_948;
            den = den * xa + 440.413_735_824_752;
            e * num / den
        } else {
            let mut b = xa + 0.65;
            b = xa + 4.0 / b;
            b = xa + 3.0 / b;
            b = xa + 2.0 / b;
            b = xa + 1.0 / b;
            e / b / SQRT_2PI
        }
    };
    if x > 0.0 { 1.0 - tail } else { tail }
}

const A: [f64; 6] = [
    -3.969_683_028_665_376e1,
    2.209_460_984_245_205e2,
    -2.759_285_104_469_687e2,
    1.383_577_518_672_69e2,
    -3.066_479_806_614_716e1,
    2.506_628_277_459_239,
];
const B: [f64; 5] = [
    -5.447_609_879_822_406e1,
    1.615_858_368_580_409e2,
    -1.556_989_798_598_866e2,
    6.680_131_188_771_972e1,
    -1.328_068_155_288_572e1,
];
const C: [f64; 6] = [
    -7.784_894_002_430_293e-3,
    -3.223_964_580_411_365e-1,
    -2.400_758_277_161_838,
    -2.549_732_539_343_734,
    4.374_664_141_464_968,
    2.938_163_982_698_783,
];
const D: [f64; 4] = [
    7.784_695_709_041_462e-3,
    3.224_671_290_700_398e-1,
    2.445_134_137_142_996,
    3.754_408_661_907_416,
];
const P_LOW: f64 = 0.024_25;

/// Acklam's rational approximation of Φ⁻¹ without refinement (relative error ≈ 1.2e-9).
/// Good enough to turn a uniform draw into a normal one, and it needs a logarithm only in the
/// tails, which is what makes it the cheapest normal sampler here.
#[inline]
pub fn acklam(p: f64) -> f64 {
    if p < P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// Φ⁻¹ to near machine precision: Acklam's approximation plus one Halley step against
/// [`norm_cdf`], so the copula thresholds reproduce each behaviour's marginal exactly.
/// Returns ∓∞ at 0 and 1 and NaN outside [0, 1].
pub fn norm_inv_cdf(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let x = acklam(p);
    let e = norm_cdf(x) - p;
    let u = e * SQRT_2PI * (0.5 * x * x).exp();
    x - u / (1.0 + 0.5 * x * u)
}

/// A uniform draw strictly inside (0, 1), so that logarithms and Φ⁻¹ stay finite.
#[inline]
pub fn open01(rng: &mut impl RngCore) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// A uniform draw in [0, 1).
#[inline]
pub fn unit(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// One standard-normal draw by inversion: one uniform per normal keeps the number of draws
/// per impression fixed, which keeps streams aligned across configurations.
#[inline]
pub fn std_normal(rng: &mut impl RngCore) -> f64 {
    acklam(open01(rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn cdf_matches_reference_values() {
        // Reference values from R's pnorm.
        let cases = [
            (0.0, 0.5),
            (1.0, 0.841_344_746_068_542_9),
            (-1.96, 0.024_997_895_148_220_435),
            (3.0, 0.998_650_101_968_369_9),
            (-5.0, 2.866_515_718_791_939e-7),
            (-9.0, 1.128_588_405_953_031e-19),
        ];
        for (x, want) in cases {
            let got = norm_cdf(x);
            assert!(
                (got - want).abs() < 1e-15
                    && ((got - want) / want).abs() < if x < -7.0 { 1e-7 } else { 1e-9 },
                "Φ({x}) = {got}, expected {want}"
            );
        }
    }

    #[test]
    fn inverse_round_trips() {
        let mut worst: f64 = 0.0;
        let mut x = -8.0;
        while x <= 8.0 {
            let back = norm_inv_cdf(norm_cdf(x));
            worst = worst.max((back - x).abs());
            x += 0.01;
        }
        println!("max |Φ⁻¹(Φ(x)) − x| over [-8, 8] = {worst:e}");
        // Above x ≈ 7, 1 − Φ(x) underflows relative to 1.0 and the round trip loses digits.
        let mut x = -8.0;
        while x <= 5.0 {
            let back = norm_inv_cdf(norm_cdf(x));
            assert!((back - x).abs() < 1e-9, "Φ⁻¹(Φ({x})) = {back}");
            x += 0.01;
        }
        for p in [1e-300, 1e-10, 0.01, 0.3, 0.5, 0.77, 0.99, 1.0 - 1e-10] {
            let x = norm_inv_cdf(p);
            assert!(((norm_cdf(x) - p) / p).abs() < 1e-9, "Φ(Φ⁻¹({p})) = {}", norm_cdf(x));
        }
        assert_eq!(norm_inv_cdf(0.0), f64::NEG_INFINITY);
        assert_eq!(norm_inv_cdf(1.0), f64::INFINITY);
        assert!(norm_inv_cdf(1.5).is_nan());
        assert!(norm_inv_cdf(-0.1).is_nan());
    }

    #[test]
    fn normal_draws_have_unit_moments() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let n = 200_000;
        let (mut s, mut s2, mut below) = (0.0, 0.0, 0usize);
        for _ in 0..n {
            let z = std_normal(&mut rng);
            s += z;
            s2 += z * z;
            if z < -1.0 {
                below += 1;
            }
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.015, "var {var}");
        assert!((below as f64 / n as f64 - 0.158_655).abs() < 0.003);
    }
}
