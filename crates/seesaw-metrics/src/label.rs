//! Binary labels: one convention for the whole crate.
//!
//! Label columns arrive as `bool` (behaviour flags) or as `f32` (the same flags stored as 0/1
//! in a float buffer, as seesaw-data emits them). Both are accepted through [`BinaryLabel`]:
//! a float label is positive when it is **strictly greater than 0.5**, negative otherwise, and
//! invalid (an error, never silently negative) when it is NaN or infinite.

/// A value that can be read as a binary label.
pub trait BinaryLabel: Copy {
    /// `Some(true)` for a positive, `Some(false)` for a negative, `None` when the value is not
    /// a valid label (NaN or infinite float).
    fn binary_label(self) -> Option<bool>;

    /// The raw value, for error messages.
    fn raw(self) -> f64;
}

impl BinaryLabel for bool {
    fn binary_label(self) -> Option<bool> {
        Some(self)
    }

    fn raw(self) -> f64 {
        if self { 1.0 } else { 0.0 }
    }
}

impl BinaryLabel for f32 {
    fn binary_label(self) -> Option<bool> {
        self.is_finite().then_some(self > 0.5)
    }

    fn raw(self) -> f64 {
        f64::from(self)
    }
}

impl BinaryLabel for f64 {
    fn binary_label(self) -> Option<bool> {
        self.is_finite().then_some(self > 0.5)
    }

    fn raw(self) -> f64 {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_threshold_is_strictly_above_half() {
        assert_eq!(0.5f32.binary_label(), Some(false));
        assert_eq!(0.51f32.binary_label(), Some(true));
        assert_eq!(1.0f64.binary_label(), Some(true));
        assert_eq!(0.0f64.binary_label(), Some(false));
        assert_eq!(f32::NAN.binary_label(), None);
        assert_eq!(f32::INFINITY.binary_label(), None);
        assert_eq!(true.binary_label(), Some(true));
    }
}
