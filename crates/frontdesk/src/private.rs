//! Everything under `--data` is the daemon's alone: directories 0700,
//! files 0600. The journal holds patients' numbers, `pseudonym.key` turns
//! the log's pseudonyms back into numbers, `bindings.json` says where each
//! agent's phone is; none of it is for other local users.
//!
//! Modes are set explicitly after creation (`chmod`), so they do not
//! depend on the umask the daemon was started with; a file is created with
//! mode 0600 from the first instant, never wider even briefly. At start,
//! [`prepare`] also narrows what an older frontdesk left wider (files it
//! created 0644). SQLite creates the journal's `-wal` and `-shm` files with
//! the mode of the database file, so the journal file is created 0600
//! before SQLite opens it ([`create_empty`]).

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of every file under `--data`.
pub const FILE_MODE: u32 = 0o600;
/// The mode of every directory under `--data`, itself included.
pub const DIR_MODE: u32 = 0o700;

/// Creates `data` (and missing parents) if needed, makes it 0700, and
/// narrows the modes of what is already inside: files to 0600,
/// directories to 0700 (symbolic links are left alone, not followed).
/// Returns how many modes it changed.
pub fn prepare(data: &Path) -> io::Result<usize> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(data)?;
    let mut changed = 0;
    narrow(data, DIR_MODE, &mut changed)?;
    secure_tree(data, &mut changed)?;
    Ok(changed)
}

fn secure_tree(dir: &Path, changed: &mut usize) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            narrow(&path, DIR_MODE, changed)?;
            secure_tree(&path, changed)?;
        } else if kind.is_file() {
            narrow(&path, FILE_MODE, changed)?;
        }
    }
    Ok(())
}

fn narrow(path: &Path, mode: u32, changed: &mut usize) -> io::Result<()> {
    let current = fs::symlink_metadata(path)?.permissions().mode() & 0o7777;
    if current != mode {
        fs::set_permissions(path, Permissions::from_mode(mode))?;
        *changed += 1;
    }
    Ok(())
}

/// Writes `bytes` to `path`, created (or truncated) with mode 0600.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    // An existing file keeps its mode on open; and the umask may have
    // narrowed a new one further: set it exactly.
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Creates `path` empty with mode 0600 when it does not exist (its mode is
/// set exactly either way).
pub fn create_empty(path: &Path) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn prepare_creates_a_private_directory_and_narrows_what_is_inside() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("var/data");
        assert_eq!(prepare(&data).unwrap(), 0, "created 0700 at once");
        assert_eq!(mode(&data), 0o700);
        fs::write(data.join("journal.db"), b"x").unwrap();
        fs::set_permissions(data.join("journal.db"), Permissions::from_mode(0o644)).unwrap();
        fs::create_dir(data.join("old")).unwrap();
        fs::set_permissions(data.join("old"), Permissions::from_mode(0o755)).unwrap();
        fs::write(data.join("old/notes"), b"x").unwrap();
        fs::set_permissions(data.join("old/notes"), Permissions::from_mode(0o666)).unwrap();
        fs::set_permissions(&data, Permissions::from_mode(0o755)).unwrap();
        let outside = root.path().join("outside");
        fs::write(&outside, b"x").unwrap();
        fs::set_permissions(&outside, Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&outside, data.join("link")).unwrap();
        assert_eq!(prepare(&data).unwrap(), 4);
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("journal.db")), 0o600);
        assert_eq!(mode(&data.join("old")), 0o700);
        assert_eq!(mode(&data.join("old/notes")), 0o600);
        assert_eq!(mode(&outside), 0o644, "a link is not followed");
    }

    #[test]
    fn files_are_written_and_created_0600() {
        let root = tempfile::tempdir().unwrap();
        let key = root.path().join("pseudonym.key");
        fs::write(&key, b"old").unwrap();
        fs::set_permissions(&key, Permissions::from_mode(0o644)).unwrap();
        write(&key, b"new").unwrap();
        assert_eq!(mode(&key), 0o600);
        assert_eq!(fs::read(&key).unwrap(), b"new");
        let journal = root.path().join("journal.db");
        create_empty(&journal).unwrap();
        assert_eq!(mode(&journal), 0o600);
        fs::write(&journal, b"kept").unwrap();
        create_empty(&journal).unwrap();
        assert_eq!(fs::read(&journal).unwrap(), b"kept", "never truncated");
    }
}
