//! Typed access to the cells of one Arrow column, whatever its physical type: CSV columns arrive
//! as text and are parsed here; Parquet columns arrive typed and are read directly.

use std::fmt::Write as _;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::DataType;

use crate::error::{DataError, Location};

/// One cell read as a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number<'a> {
    Missing,
    Value(f64),
    /// Unparsable text, or a NaN or infinite value; carries the text for the error message.
    Invalid(&'a str),
}

pub enum Cells {
    Text(StringArray),
    Int(Int64Array),
    Float(Float64Array),
}

impl Cells {
    pub fn new(array: &ArrayRef) -> Result<Self, String> {
        let cast = |to: &DataType| {
            arrow_cast::cast(array, to)
                .map_err(|e| format!("cannot read a {} column: {e}", array.data_type()))
        };
        Ok(match array.data_type() {
            DataType::Utf8 => Cells::Text(array.as_string::<i32>().clone()),
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Boolean => {
                Cells::Int(cast(&DataType::Int64)?.as_primitive::<Int64Type>().clone())
            }
            DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(_, _) => {
                Cells::Float(cast(&DataType::Float64)?.as_primitive::<Float64Type>().clone())
            }
            _ => Cells::Text(cast(&DataType::Utf8)?.as_string::<i32>().clone()),
        })
    }

    /// The cells of column `column` of a chunk read from `path`; a column of a type that cannot
    /// be read is reported with the file and the column's name.
    pub fn of_column(
        batch: &RecordBatch,
        column: usize,
        path: &std::path::Path,
    ) -> Result<Self, DataError> {
        Self::new(batch.column(column)).map_err(|message| DataError::Malformed {
            location: Location {
                path: path.to_owned(),
                line: None,
                column: Some(batch.schema().field(column).name().clone()),
            },
            message,
        })
    }

    pub fn number(&self, row: usize) -> Number<'_> {
        match self {
            Cells::Text(a) => {
                if a.is_null(row) {
                    return Number::Missing;
                }
                let text = a.value(row).trim();
                if text.is_empty() {
                    return Number::Missing;
                }
                match text.parse::<f64>() {
                    Ok(v) if v.is_finite() => Number::Value(v),
                    _ => Number::Invalid(a.value(row)),
                }
            }
            Cells::Int(a) => {
                if a.is_null(row) {
                    Number::Missing
                } else {
                    Number::Value(a.value(row) as f64)
                }
            }
            Cells::Float(a) => {
                if a.is_null(row) {
                    Number::Missing
                } else if a.value(row).is_finite() {
                    Number::Value(a.value(row))
                } else {
                    Number::Invalid("non-finite")
                }
            }
        }
    }

    /// The cell as a key or categorical value. Integers (and integral floats) print without a
    /// decimal part, so a Parquet int64 id and a CSV "123" join. `None` for an empty cell.
    pub fn text<'a>(&'a self, row: usize, buf: &'a mut String) -> Option<&'a str> {
        match self {
            Cells::Text(a) => {
                if a.is_null(row) {
                    return None;
                }
                let text = a.value(row).trim();
                (!text.is_empty()).then_some(text)
            }
            Cells::Int(a) => {
                if a.is_null(row) {
                    return None;
                }
                buf.clear();
                let _ = write!(buf, "{}", a.value(row));
                Some(buf.as_str())
            }
            Cells::Float(a) => {
                if a.is_null(row) || !a.value(row).is_finite() {
                    return None;
                }
                let v = a.value(row);
                buf.clear();
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    let _ = write!(buf, "{}", v as i64);
                } else {
                    let _ = write!(buf, "{v}");
                }
                Some(buf.as_str())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn text_numbers_parse_and_bad_ones_are_invalid() {
        let array: ArrayRef = Arc::new(StringArray::from(vec![
            Some("1.5"),
            Some(" "),
            None,
            Some("abc"),
            Some("NaN"),
            Some("inf"),
        ]));
        let cells = Cells::new(&array).unwrap();
        assert_eq!(cells.number(0), Number::Value(1.5));
        assert_eq!(cells.number(1), Number::Missing);
        assert_eq!(cells.number(2), Number::Missing);
        assert_eq!(cells.number(3), Number::Invalid("abc"));
        assert_eq!(cells.number(4), Number::Invalid("NaN"));
        assert_eq!(cells.number(5), Number::Invalid("inf"));
    }

    #[test]
    fn integer_and_integral_float_keys_print_alike() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![123]));
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![123.0, 1.5]));
        let (mut a, mut b, mut c) = (String::new(), String::new(), String::new());
        assert_eq!(Cells::new(&ints).unwrap().text(0, &mut a), Some("123"));
        let floats = Cells::new(&floats).unwrap();
        assert_eq!(floats.text(0, &mut b), Some("123"));
        assert_eq!(floats.text(1, &mut c), Some("1.5"));
    }
}
