pub mod error;
pub mod simulate;

pub use error::{DataError, Result};
