//! Writes that never leave a half-written file: write to a temporary file in the target's
//! directory, flush it to disk, then rename it over the target.
//!
//! The temporary files and folders are created with the modes any other tool's output gets
//! (0666 and 0777, less the umask), not tempfile's private defaults (0600 and 0700): the file is
//! renamed into place, so its mode is the output's, and a report or model unreadable to
//! colleagues on a shared machine is a fault.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tempfile::{NamedTempFile, TempDir};

use crate::error::{DataError, Result};

/// The name every temporary file starts with, so that the files a killed process left (a kill
/// skips their cleanup) can be recognised and removed by the next run writing there.
pub const TEMP_PREFIX: &str = ".seesaw-tmp-";

/// Every temporary file and folder this process has created: what an interrupt handler removes
/// before the process exits (an exit skips their own cleanup). Entries are never taken out; one
/// that was renamed into place or dropped no longer exists under its temporary name, and removal
/// skips it. A process makes a few per checkpoint, so the list stays small.
static CREATED_TEMPORARIES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Creates a temporary with `create` and records its path, under the lock that
/// [`remove_temporaries_and_exit`] takes, so no temporary is created after it has looked.
fn created<T>(
    create: impl FnOnce() -> std::io::Result<T>,
    path: impl Fn(&T) -> &Path,
) -> std::io::Result<T> {
    let mut created = CREATED_TEMPORARIES.lock().unwrap_or_else(|e| e.into_inner());
    let temporary = create()?;
    created.push(path(&temporary).to_owned());
    Ok(temporary)
}

/// A temporary file in `dir`, to be renamed over an output there.
pub fn temp_file_in(dir: &Path) -> std::io::Result<NamedTempFile> {
    created(|| builder(0o666).prefix(TEMP_PREFIX).tempfile_in(dir), |file| file.path())
}

/// For an interrupt (SIGINT, SIGTERM): removes every temporary file and folder this process
/// created that still exists, then exits with `code`, holding the lock so that no other thread
/// creates one meanwhile. Returns only by exiting.
pub fn remove_temporaries_and_exit(code: i32) -> ! {
    let created = CREATED_TEMPORARIES.lock().unwrap_or_else(|e| e.into_inner());
    let removed =
        created.iter().filter(|path| matches!(remove_file_or_folder(path), Ok(true))).count();
    eprintln!("interrupted: removed {removed} temporary file(s) and folder(s)");
    std::process::exit(code)
}

/// Removes the temporary files that killed writers left in `dir` (none when `dir` does not
/// exist); returns how many.
pub fn remove_stale_temp_files(dir: &Path) -> Result<usize> {
    remove_leftovers(dir, TEMP_PREFIX)
}

/// Removes every file and folder in `dir` whose name starts with `prefix`: what killed writers
/// left of their temporary files and staging folders (a kill skips their own cleanup). None when
/// `dir` does not exist; returns how many.
pub fn remove_leftovers(dir: &Path, prefix: &str) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(DataError::io(dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = entry.path();
        if remove_file_or_folder(&path).map_err(|e| DataError::io(&path, e))? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes `path` if it is a file or a folder (with what it holds); `false` when it is neither
/// (gone, or a link or other entry no writer here makes), which is left alone.
fn remove_file_or_folder(path: &Path) -> std::io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path).map(|()| true),
        Ok(meta) if meta.is_file() => std::fs::remove_file(path).map(|()| true),
        _ => Ok(false),
    }
}

/// A temporary folder in `dir` named `prefix…`, to be renamed over an output folder there.
pub fn temp_dir_in(dir: &Path, prefix: &str) -> std::io::Result<TempDir> {
    created(|| builder(0o777).prefix(prefix).tempdir_in(dir), |folder| folder.path())
}

fn builder(#[allow(unused_variables)] mode: u32) -> tempfile::Builder<'static, 'static> {
    #[allow(unused_mut)]
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode is applied at creation, so the umask still narrows it.
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    builder
}

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
    let mut temp = temp_file_in(dir).map_err(|e| DataError::io(path, e))?;
    fill(temp.as_file_mut())
        .and_then(|_| temp.as_file().sync_all())
        .map_err(|e| DataError::io(path, e))?;
    temp.persist(path).map_err(|e| DataError::io(path, e.error))?;
    Ok(())
}
