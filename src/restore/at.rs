//! File-system calls relative to an open folder (`openat` and friends) that never follow a symlink:
//! the primitives the restore path is built on, so a link planted in a target cannot redirect a write.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// A name as the C calls take it (a name with a NUL byte cannot exist on disk).
pub fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a file name"))
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Open the folder `name` inside `dir`; a symlink (or anything but a folder) there is an error
/// (`ELOOP` or `ENOTDIR`), never followed.
pub fn open_dir(dir: BorrowedFd<'_>, name: &CString) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `name` is a valid C string and `dir` an open descriptor for the whole call; the
    // returned descriptor is fresh and owned by nobody else.
    let fd = check(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open an absolute or relative path as a folder, following links (for trusted roots only).
pub fn open_dir_path(path: &std::path::Path) -> io::Result<OwnedFd> {
    let c = c_name(path.as_os_str())?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: as in `open_dir`.
    let fd = check(unsafe { libc::open(c.as_ptr(), flags) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn mkdir(dir: BorrowedFd<'_>, name: &CString) -> io::Result<()> {
    // SAFETY: valid descriptor and C string for the duration of the call.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o777) }).map(|_| ())
}

/// Create a new file `name` in `dir` (never an existing one, never through a link) for writing.
pub fn create_new(dir: BorrowedFd<'_>, name: &CString, mode: u32) -> io::Result<File> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: as in `open_dir`; the mode is passed as the variadic argument open expects.
    let fd = check(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode as libc::c_uint) })?;
    Ok(unsafe { File::from_raw_fd(fd) })
}

pub fn symlink(target: &[u8], dir: BorrowedFd<'_>, name: &CString) -> io::Result<()> {
    let t = CString::new(target)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a symlink target"))?;
    // SAFETY: valid C strings and descriptor for the duration of the call.
    check(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(|_| ())
}

/// Rename within one folder; the destination entry, if any, is replaced (a link itself, never its
/// target), except a folder (`EISDIR`, `ENOTEMPTY`).
pub fn rename(dir: BorrowedFd<'_>, from: &CString, to: &CString) -> io::Result<()> {
    let d = dir.as_raw_fd();
    // SAFETY: valid C strings and descriptor for the duration of the call.
    check(unsafe { libc::renameat(d, from.as_ptr(), d, to.as_ptr()) }).map(|_| ())
}

/// Remove a non-folder entry (a symlink is removed itself).
pub fn unlink(dir: BorrowedFd<'_>, name: &CString) -> io::Result<()> {
    // SAFETY: valid C string and descriptor for the duration of the call.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) }).map(|_| ())
}

/// Remove an empty folder.
pub fn rmdir(dir: BorrowedFd<'_>, name: &CString) -> io::Result<()> {
    // SAFETY: valid C string and descriptor for the duration of the call.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) }).map(|_| ())
}

/// What sits at `name` in `dir`, without following a link: `None` when nothing does.
pub fn kind(dir: BorrowedFd<'_>, name: &CString) -> io::Result<Option<libc::mode_t>> {
    // SAFETY: `st` is plain data the call fills in; valid C string and descriptor.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    match check(rc) {
        Ok(_) => Ok(Some(st.st_mode & libc::S_IFMT)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Remove whatever is at `name` in `dir`: a file or link is unlinked (a link's target is never
/// touched); a folder is emptied through descriptors, never following a link inside it.
pub fn remove_entry(dir: BorrowedFd<'_>, name: &CString) -> io::Result<()> {
    match kind(dir, name)? {
        None => Ok(()),
        Some(libc::S_IFDIR) => {
            let sub = open_dir(dir, name)?;
            for child in list(sub.try_clone()?)? {
                remove_entry(std::os::fd::AsFd::as_fd(&sub), &child)?;
            }
            rmdir(dir, name)
        }
        Some(_) => unlink(dir, name),
    }
}

/// The names in an open folder (without `.` and `..`).
pub fn list(dir: OwnedFd) -> io::Result<Vec<CString>> {
    use std::os::fd::IntoRawFd;
    let raw = dir.into_raw_fd();
    // SAFETY: fdopendir takes ownership of `raw` (closed by closedir below); on failure we close it.
    let stream = unsafe { libc::fdopendir(raw) };
    if stream.is_null() {
        let err = io::Error::last_os_error();
        unsafe { libc::close(raw) };
        return Err(err);
    }
    let mut names = Vec::new();
    loop {
        // SAFETY: `stream` is a valid DIR* until closedir; each entry is read before the next call.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            break;
        }
        let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) };
        let bytes = name.to_bytes();
        if bytes != b"." && bytes != b".." {
            names.push(name.to_owned());
        }
    }
    // SAFETY: closes the stream and the descriptor it owns.
    unsafe { libc::closedir(stream) };
    Ok(names)
}
