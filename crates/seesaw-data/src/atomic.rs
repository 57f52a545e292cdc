//! Writes that never leave a half-written file: write to a temporary file in the target's
//! directory, flush it to disk, then rename it over the target.

use std::io::Write;
use std::path::Path;

use crate::error::{DataError, Result};

pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |file| file.write_all(bytes))
}

/// Calls `fill` with a temporary file beside `path` and renames it into place only if `fill`
/// succeeds; on any error the temporary file is removed.
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| DataError::io(path, e))?;
    fill(temp.as_file_mut())
        .and_then(|_| temp.as_file().sync_all())
        .map_err(|e| DataError::io(path, e))?;
    temp.persist(path).map_err(|e| DataError::io(path, e.error))?;
    Ok(())
}
