//! Typed errors of the data layer. Every error that comes from input data names the file and,
//! where there is one, the line (1-based, the header being line 1) and the column.

use std::path::PathBuf;

/// Where in an input file something went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    /// 1-based line number in the file (the CSV header is line 1), or the 1-based row for Parquet.
    pub line: Option<u64>,
    pub column: Option<String>,
}

impl Location {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), line: None, column: None }
    }

    pub fn cell(path: impl Into<PathBuf>, line: u64, column: impl Into<String>) -> Self {
        Self { path: path.into(), line: Some(line), column: Some(column.into()) }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column '{column}'")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}", path = .path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{location}: {message}")]
    Malformed { location: Location, message: String },

    #[error("{location}: required column is missing (columns present: {present})", present = column_list(.present))]
    MissingColumn { location: Location, present: Vec<String> },

    #[error("{path}: the file is empty (no header line)", path = .path.display())]
    EmptyFile { path: PathBuf },

    #[error("{location}: {reason}")]
    BadValue { location: Location, reason: String },

    #[error("dataset spec: {0}")]
    Spec(String),

    /// The split put no row in training: nothing to fit a vocabulary or a model on.
    #[error("{log}: {message}", log = .log.display())]
    NoTrainingRows { log: PathBuf, message: String },

    #[error("{path}: {message}", path = .path.display())]
    Json { path: PathBuf, message: String },
}

/// The columns a file has, for a message: at most `MAX_LISTED` names of at most `MAX_NAME`
/// characters each, so that a garbage header (one 300 MB line) is not echoed whole.
fn column_list(present: &[String]) -> String {
    const MAX_LISTED: usize = 40;
    const MAX_NAME: usize = 64;
    let mut names: Vec<String> = present
        .iter()
        .take(MAX_LISTED)
        .map(|name| match name.char_indices().nth(MAX_NAME) {
            Some((cut, _)) => format!("{}… ({} bytes)", &name[..cut], name.len()),
            None => name.clone(),
        })
        .collect();
    if present.len() > MAX_LISTED {
        names.push(format!("… and {} more", present.len() - MAX_LISTED));
    }
    names.join(", ")
}

impl DataError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub fn spec(message: impl Into<String>) -> Self {
        Self::Spec(message.into())
    }
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_header_is_not_echoed_whole() {
        let present = vec!["x".repeat(1_000_000), "user_id".into()];
        let error = DataError::MissingColumn { location: Location::file("log.csv"), present };
        let message = error.to_string();
        assert!(message.len() < 300, "{} bytes", message.len());
        assert!(message.contains("(1000000 bytes)") && message.contains("user_id"), "{message}");
        let many: Vec<String> = (0..100).map(|i| format!("c{i}")).collect();
        let error = DataError::MissingColumn { location: Location::file("log.csv"), present: many };
        assert!(error.to_string().ends_with("c39, … and 60 more)"), "{error}");
    }
}
