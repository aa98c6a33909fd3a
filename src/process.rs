//! The one way mlgit runs a child process (a training command, a clean transform): in its own
//! process group, its output on mlgit's stderr, SIGINT/SIGTERM forwarded once, and the whole group
//! killed when mlgit stops for any reason — an error, an interrupt, a panic, or a `kill -9` of mlgit.
//!
//! A `kill -9` cannot be caught, so a watchdog outlives mlgit to do the killing: a small process
//! forked before the child, holding the read end of a pipe whose write end only mlgit holds. When
//! mlgit is gone (or done), the kernel closes the write end, the watchdog reads end-of-file and ends
//! the child's process group: SIGTERM, [`CHILD_GRACE`], SIGKILL. The direct child also has
//! `PR_SET_PDEATHSIG`, so it gets SIGKILL the moment mlgit dies. A process that leaves the group on
//! purpose (`setsid`, a daemon) escapes both; nothing short of a cgroup would catch it.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::interrupt::{signal_name, Interrupt};

/// How long a child's process group has between SIGTERM and SIGKILL.
pub const CHILD_GRACE: Duration = Duration::from_secs(3);

/// A program to run as a child of mlgit.
#[derive(Debug, Clone, Default)]
pub struct ChildCommand {
    /// A name looked up on PATH, or a path (relative to `cwd` when it has a `/` but is not absolute).
    pub program: OsString,
    pub args: Vec<OsString>,
    /// The folder it runs in.
    pub cwd: PathBuf,
    /// Variables added to mlgit's environment.
    pub env: Vec<(OsString, OsString)>,
}

impl ChildCommand {
    pub fn new(program: impl AsRef<OsStr>, cwd: impl Into<PathBuf>) -> ChildCommand {
        ChildCommand { program: program.as_ref().to_os_string(), cwd: cwd.into(), ..ChildCommand::default() }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> ChildCommand {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> ChildCommand {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> ChildCommand {
        self.env.push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }
}

/// Run `cmd` to completion. Its stdout goes to mlgit's stderr (stdout is mlgit's result), its
/// stdin is empty. When `interrupt` is set the child's group receives the same signal once, then
/// SIGKILL after [`CHILD_GRACE`], and the run fails with [`ErrorKind::Interrupted`]. Errors name
/// `what` ("the training command `./train.sh`"): a program that cannot be started, a non-zero exit
/// ([`ErrorKind::ChildFailed`] with its code) or a death by signal (`ChildFailed(128 + signal)`).
/// However this returns (or unwinds), no process of the child's group is left running.
pub fn run(cmd: &ChildCommand, interrupt: &Interrupt, what: &str) -> Result<()> {
    interrupt.check(what)?;
    adopt_orphans();
    let watchdog = Watchdog::start()?;
    let mut command = std::process::Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .current_dir(&cmd.cwd)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        // Its own group: the group is what gets killed, and a terminal's Ctrl-C reaches only
        // mlgit, which forwards it exactly once.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()));
    watchdog.watch(&mut command);
    let child = command.spawn().map_err(|e| spawn_error(cmd, what, e))?;
    let mut running = Running { child, watchdog: Some(watchdog) };
    let (status, stopped_by) = running.wait(interrupt)?;
    drop(running);
    if let Some(sig) = stopped_by {
        return Err(Error::new(
            ErrorKind::Interrupted,
            format!("{what} was stopped: mlgit received {}", signal_name(sig)),
        )
        .with_hint("run the command again when you are ready"));
    }
    check_exit(status, what)
}

/// What a child run by [`run_captured`] wrote, and how it ended.
#[derive(Debug)]
pub struct Captured {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Captured {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Its stderr as text (lossy), trimmed.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }

    /// Its exit status as a result, as [`run`] judges it.
    pub fn check(&self, what: &str) -> Result<()> {
        check_exit(self.status, what)
    }
}

/// Run `cmd` to completion like [`run`], but with `input` on its stdin and its stdout and stderr
/// captured (for tools whose output mlgit reads: `git ls-remote`, `git push --porcelain`). The
/// exit status is returned, not judged: the caller knows what a failure of the tool means. An
/// interrupt still stops the child's whole group and fails with [`ErrorKind::Interrupted`].
pub fn run_captured(cmd: &ChildCommand, input: &[u8], interrupt: &Interrupt, what: &str) -> Result<Captured> {
    use std::io::{Read, Write};
    interrupt.check(what)?;
    adopt_orphans();
    let watchdog = Watchdog::start()?;
    let mut command = std::process::Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .current_dir(&cmd.cwd)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    watchdog.watch(&mut command);
    let mut child = command.spawn().map_err(|e| spawn_error(cmd, what, e))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut running = Running { child, watchdog: Some(watchdog) };
    let input = input.to_vec();
    // A child that does not read its input must not block mlgit: the writer is a thread, and a
    // closed pipe (EPIPE) is the child's business.
    let writer = std::thread::spawn(move || {
        if let Some(mut pipe) = stdin {
            let _ = pipe.write_all(&input);
        }
    });
    let read_all = |pipe: Option<std::process::ChildStdout>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_reader = read_all(stdout);
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = stderr {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    });
    let waited = running.wait(interrupt);
    // Ending the group closes the pipes its leftovers (a helper of git's) may still hold.
    drop(running);
    let (status, stopped_by) = waited?;
    let _ = writer.join();
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    if let Some(sig) = stopped_by {
        return Err(Error::new(
            ErrorKind::Interrupted,
            format!("{what} was stopped: mlgit received {}", signal_name(sig)),
        )
        .with_hint("run the command again when you are ready"));
    }
    Ok(Captured { status, stdout, stderr })
}

/// A child's exit status as a result: its code (or signal) and a hint when it failed.
fn check_exit(status: ExitStatus, what: &str) -> Result<()> {
    if let Some(code) = status.code() {
        if code == 0 {
            return Ok(());
        }
        let hint = match code {
            127 => "exit code 127 is the shell's \"command not found\": check the command's name and PATH",
            126 => "exit code 126 is the shell's \"cannot execute\": make the script executable (`chmod +x`)",
            _ => "fix it (its output is above), then run mlgit again",
        };
        return Err(Error::new(ErrorKind::ChildFailed(code), format!("{what} failed with exit code {code}"))
            .with_hint(hint));
    }
    let sig = status.signal().unwrap_or(0);
    Err(Error::new(ErrorKind::ChildFailed(128 + sig), format!("{what} was killed by {}", signal_name(sig)))
        .with_hint("see why it was killed (out of memory? a time limit?), then run mlgit again"))
}

/// The error of a child that could not be started, with the hint its cause calls for.
fn spawn_error(cmd: &ChildCommand, what: &str, err: std::io::Error) -> Error {
    let program = cmd.program.to_string_lossy();
    let path = Path::new(&cmd.program);
    let in_cwd = cmd.cwd.join(path);
    let cwd = cmd.cwd.display();
    let (kind, hint) = match err.raw_os_error() {
        Some(libc::ENOENT) if !cmd.cwd.is_dir() => {
            (ErrorKind::NotFound, format!("the folder {cwd} it should run in does not exist"))
        }
        Some(libc::ENOENT) if program.contains('/') && in_cwd.is_file() => (
            ErrorKind::NotFound,
            format!("{program} exists, but the interpreter on its #! line was not found: fix that line"),
        ),
        Some(libc::ENOENT) if program.contains('/') => {
            (ErrorKind::NotFound, format!("{program} does not exist (in {cwd}): check the path"))
        }
        Some(libc::ENOENT) if in_cwd.is_file() => (
            ErrorKind::NotFound,
            format!("`{program}` is not on PATH; to run the script in {cwd}, write ./{program}"),
        ),
        Some(libc::ENOENT) => {
            (ErrorKind::NotFound, format!("`{program}` is not on PATH: check the name, or install it"))
        }
        Some(libc::EACCES) => (
            ErrorKind::InvalidInput,
            format!("{program} is not executable: `chmod +x {program}`, or run it through its interpreter"),
        ),
        Some(libc::ENOEXEC) => (
            ErrorKind::InvalidInput,
            format!(
                "{program} is not a program the system can run: give the script a #! line (e.g. #!/bin/sh)"
            ),
        ),
        _ => {
            let io = Error::io("run", path, err);
            return Error::new(io.kind(), format!("cannot start {what}"))
                .with_hint(io.hint().unwrap_or_default())
                .with_source(io);
        }
    };
    Error::new(kind, format!("cannot start {what}: cannot run {program}")).with_source(err).with_hint(hint)
}

/// Run `cmd` with `input` on its stdin and return what it wrote on stdout (its stderr is mlgit's):
/// for short helpers whose answer mlgit reads, such as `git credential fill` and `ssh … git-lfs-
/// authenticate`. Unlike [`run`], the child stays in mlgit's process group, so it may ask for a
/// password on the terminal and gets a terminal's Ctrl-C with mlgit; it still dies with mlgit
/// (`PR_SET_PDEATHSIG`). Errors are those of [`run`].
pub fn run_with_input(
    cmd: &ChildCommand,
    input: &[u8],
    interrupt: &Interrupt,
    what: &str,
) -> Result<Vec<u8>> {
    use std::io::{Read, Write};
    interrupt.check(what)?;
    let mut command = std::process::Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .current_dir(&cmd.cwd)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // SAFETY: the closure runs in the forked child before exec and only calls prctl, which is
    // async-signal-safe.
    #[cfg(target_os = "linux")]
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| spawn_error(cmd, what, e))?;
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut out = Vec::new();
    let read = std::thread::scope(|s| {
        s.spawn(move || {
            if let Some(mut pipe) = stdin.take() {
                // A child that exits without reading its input is judged by its exit status.
                let _ = pipe.write_all(input);
            }
        });
        match stdout.as_mut() {
            Some(pipe) => pipe.read_to_end(&mut out).map(drop),
            None => Ok(()),
        }
    });
    let status = child.wait().map_err(|e| Error::io("wait for", Path::new("the child process"), e))?;
    read.map_err(|e| Error::io("read the output of", Path::new(&cmd.program), e))?;
    interrupt.check(what)?;
    check_exit(status, what)?;
    Ok(out)
}

/// A started child; dropping it ends the child's process group and reaps the child.
struct Running {
    child: Child,
    watchdog: Option<Watchdog>,
}

impl Running {
    fn pgid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    /// Wait for the child to exit, forwarding an interrupt. Returns its status and the signal that
    /// stopped it, if mlgit was interrupted.
    fn wait(&mut self, interrupt: &Interrupt) -> Result<(ExitStatus, Option<i32>)> {
        let mut forwarded: Option<(i32, Instant)> = None;
        let mut killed = false;
        let mut pause = Duration::from_millis(1);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok((status, forwarded.map(|(sig, _)| sig))),
                Ok(None) => {}
                Err(e) => return Err(Error::io("wait for", Path::new("the child process"), e)),
            }
            if interrupt.is_set() {
                match forwarded {
                    None => {
                        let sig = interrupt.signal().unwrap_or(libc::SIGTERM);
                        signal_group(self.pgid(), sig);
                        forwarded = Some((sig, Instant::now()));
                    }
                    Some((_, at)) if !killed && at.elapsed() >= CHILD_GRACE => {
                        signal_group(self.pgid(), libc::SIGKILL);
                        killed = true;
                    }
                    Some(_) => {}
                }
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let pgid = self.pgid();
        let child = &mut self.child;
        // Reaping the child while waiting lets "the group is empty" be seen without the grace.
        end_group(pgid, || {
            let _ = child.try_wait();
            reap_group(pgid);
        });
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.release();
        }
        // A child that left its group is not covered by the group kill.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The forked process that ends the child's group once mlgit is gone or done.
struct Watchdog {
    pid: libc::pid_t,
    /// The write end of its pipe; only mlgit holds it (close-on-exec, so the child does not).
    pipe: OwnedFd,
}

impl Watchdog {
    fn start() -> Result<Watchdog> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 fills the two descriptors of a new pipe, which we then own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(watchdog_error(std::io::Error::last_os_error()));
        }
        // SAFETY: both descriptors were just created and are owned by nothing else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // Block signals across the fork, so the watchdog runs none of mlgit's handlers before it
        // has set its own dispositions.
        // SAFETY: sigset_t is plain data (all zeroes is a valid empty set before sigfillset), and
        // the mask calls act on this thread only.
        let old = unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            old
        };
        // SAFETY: the child branch calls only async-signal-safe functions (see `watchdog_main`),
        // as required after fork in a multi-threaded process.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            watchdog_main(read.as_raw_fd(), &old);
        }
        let forked = std::io::Error::last_os_error();
        // SAFETY: restores the mask saved above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        if pid < 0 {
            return Err(watchdog_error(forked));
        }
        drop(read);
        Ok(Watchdog { pid, pipe: write })
    }

    /// Make the child, between its fork and exec, ask for SIGKILL when mlgit dies and tell the
    /// watchdog its process group.
    fn watch(&self, command: &mut std::process::Command) {
        let pipe = self.pipe.as_raw_fd();
        // SAFETY: getpid is async-signal-safe.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs in the forked child before exec and calls only
        // async-signal-safe functions (prctl, getppid, getpid, write).
        unsafe {
            command.pre_exec(move || {
                #[cfg(target_os = "linux")]
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    // mlgit died before PDEATHSIG was set: do not start at all.
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                // process_group(0) already made this process the leader of its own group.
                let pgid = libc::getpid().to_ne_bytes();
                if libc::write(pipe, pgid.as_ptr().cast(), pgid.len()) != pgid.len() as isize {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// mlgit is done with the child: close the pipe and wait until the watchdog has ended the group.
    fn release(self) {
        drop(self.pipe);
        let mut status = 0;
        // SAFETY: waits for our own child process.
        while unsafe { libc::waitpid(self.pid, &mut status, 0) } < 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
    }
}

fn watchdog_error(err: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, "cannot start the watchdog that ends a child process with mlgit")
        .with_source(err)
        .with_hint("raise the process or memory limits (`ulimit -u`, `ulimit -v`), then retry")
}

/// The watchdog's whole life, in the forked copy of mlgit. Only async-signal-safe calls: another
/// thread may have held a lock (the allocator's, stdout's) at the moment of the fork.
fn watchdog_main(read: RawFd, mask: &libc::sigset_t) -> ! {
    // SAFETY: every call is async-signal-safe and acts on this process only.
    unsafe {
        // Its own process group: Ctrl-C and a kill of mlgit's whole job must leave it alive.
        libc::setpgid(0, 0);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_IGN);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut());
        // Hold nothing of mlgit's (the pipe's write end, a lock, a pipe another process waits on)
        // but the read end.
        close_all_but(read);
        let mut pgid = [0u8; 4];
        let mut got = 0;
        while got < pgid.len() {
            let n = libc::read(read, pgid[got..].as_mut_ptr().cast(), pgid.len() - got);
            if n > 0 {
                got += n as usize;
            } else if n == 0 || *libc::__errno_location() != libc::EINTR {
                // No child was started.
                libc::_exit(0);
            }
        }
        let mut buf = [0u8; 16];
        loop {
            let n = libc::read(read, buf.as_mut_ptr().cast(), buf.len());
            if n == 0 || (n < 0 && *libc::__errno_location() != libc::EINTR) {
                break;
            }
        }
        end_group(libc::pid_t::from_ne_bytes(pgid), || {});
        libc::_exit(0)
    }
}

/// Close every descriptor but `keep` (close_range(2), else one by one).
fn close_all_but(keep: RawFd) {
    // SAFETY: closing descriptors of this process; async-signal-safe.
    unsafe {
        // close_range(2) is Linux 5.9+; the libc crate has no wrapper for every target.
        let below = keep > 0 && libc::syscall(libc::SYS_close_range, 0u32, (keep - 1) as u32, 0u32) != 0;
        let above = libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32) != 0;
        if below || above {
            let mut limit: libc::rlimit = std::mem::zeroed();
            let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                limit.rlim_cur.min(65_536) as RawFd
            } else {
                1024
            };
            for fd in (0..max).filter(|&fd| fd != keep) {
                libc::close(fd);
            }
        }
    }
}

/// Make mlgit the parent of its children's orphans (Linux's child subreaper), so that it can reap
/// the group's leftovers as they die. Without it they become zombies of PID 1, which in many
/// containers never reaps them, and a group of zombies looks alive until the grace is over.
fn adopt_orphans() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl on this process only.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
}

/// Reap every exited process of the group that mlgit is the parent of.
fn reap_group(pgid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waitpid on processes of our own child's group.
    while unsafe { libc::waitpid(-pgid, &mut status, libc::WNOHANG) } > 0 {}
}

/// Send `sig` to every process of the group.
fn signal_group(pgid: libc::pid_t, sig: i32) {
    // SAFETY: kill(2) on a process group mlgit created; async-signal-safe.
    unsafe { libc::kill(-pgid, sig) };
}

/// Whether any process of the group still exists (a zombie counts until it is reaped).
fn group_alive(pgid: libc::pid_t) -> bool {
    // SAFETY: kill(2) with signal 0 only checks; async-signal-safe.
    unsafe { libc::kill(-pgid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

/// End a process group: SIGTERM (and SIGCONT, for a stopped group), up to [`CHILD_GRACE`] for it to
/// exit, then SIGKILL. `reap` runs while waiting (mlgit reaps its child there). Async-signal-safe
/// when `reap` is: the watchdog uses it.
fn end_group(pgid: libc::pid_t, mut reap: impl FnMut()) {
    const STEP: Duration = Duration::from_millis(10);
    reap();
    if pgid <= 1 || !group_alive(pgid) {
        return;
    }
    signal_group(pgid, libc::SIGTERM);
    signal_group(pgid, libc::SIGCONT);
    let step = libc::timespec { tv_sec: 0, tv_nsec: STEP.as_nanos() as libc::c_long };
    for _ in 0..(CHILD_GRACE.as_millis() / STEP.as_millis()) {
        // SAFETY: nanosleep is async-signal-safe.
        unsafe { libc::nanosleep(&step, std::ptr::null_mut()) };
        reap();
        if !group_alive(pgid) {
            return;
        }
    }
    signal_group(pgid, libc::SIGKILL);
    reap();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, dir: &Path) -> ChildCommand {
        ChildCommand::new("sh", dir).arg("-c").arg(script)
    }

    #[test]
    fn a_successful_child_returns_ok_and_sees_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = sh("test \"$X\" = 1 && pwd > out", dir.path()).env("X", "1");
        run(&cmd, &Interrupt::new(), "the test").unwrap();
        let pwd = std::fs::read_to_string(dir.path().join("out")).unwrap();
        assert_eq!(Path::new(pwd.trim()).canonicalize().unwrap(), dir.path().canonicalize().unwrap());
    }

    #[test]
    fn a_failing_child_is_child_failed_with_its_code() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(&sh("exit 7", dir.path()), &Interrupt::new(), "the test").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ChildFailed(7));
        assert_eq!(err.exit_code(), 7);
        assert!(err.message().contains("the test failed with exit code 7"), "{}", err.message());
    }

    #[test]
    fn a_child_killed_by_a_signal_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(&sh("kill -KILL $$", dir.path()), &Interrupt::new(), "the test").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ChildFailed(128 + libc::SIGKILL));
        assert!(err.message().contains("killed by SIGKILL"), "{}", err.message());
    }

    #[test]
    fn a_missing_program_gets_a_hint_that_does_not_double_the_dot_slash() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(&ChildCommand::new("./does-not-exist", dir.path()), &Interrupt::new(), "the test")
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let hint = err.hint().unwrap_or_default();
        assert!(hint.contains("./does-not-exist does not exist"), "{hint}");
        assert!(!hint.contains("././"), "{hint}");

        std::fs::write(dir.path().join("train.sh"), "#!/bin/sh\n").unwrap();
        let err = run(&ChildCommand::new("train.sh", dir.path()), &Interrupt::new(), "the test").unwrap_err();
        assert!(err.hint().unwrap_or_default().contains("write ./train.sh"), "{:?}", err.hint());
        let err =
            run(&ChildCommand::new("./train.sh", dir.path()), &Interrupt::new(), "the test").unwrap_err();
        assert!(err.hint().unwrap_or_default().contains("chmod +x ./train.sh"), "{:?}", err.hint());
    }

    #[test]
    fn an_interrupt_stops_the_whole_group_and_reports_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        // The grandchild records its pid, then both sleep: both must be gone when run returns.
        let cmd = sh("sleep 30 & echo $! > grandchild; wait", dir.path());
        let interrupt = Interrupt::new();
        let trigger = interrupt.clone();
        let pidfile = dir.path().join("grandchild");
        let waiter = std::thread::spawn(move || {
            while !pidfile.exists() {
                std::thread::sleep(Duration::from_millis(10));
            }
            trigger.trigger_by_signal(libc::SIGTERM);
        });
        let start = Instant::now();
        let err = run(&cmd, &interrupt, "the test").unwrap_err();
        waiter.join().unwrap();
        assert_eq!(err.kind(), ErrorKind::Interrupted, "{err}");
        assert!(err.message().contains("SIGTERM"), "{}", err.message());
        assert!(start.elapsed() < CHILD_GRACE, "took {:?}", start.elapsed());
        let grandchild: libc::pid_t =
            std::fs::read_to_string(dir.path().join("grandchild")).unwrap().trim().parse().unwrap();
        assert!(!running(grandchild), "the grandchild {grandchild} still runs");
    }

    #[test]
    fn leftovers_of_a_finished_child_are_ended() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = sh("sleep 30 & echo $! > leftover", dir.path());
        run(&cmd, &Interrupt::new(), "the test").unwrap();
        let pid: libc::pid_t =
            std::fs::read_to_string(dir.path().join("leftover")).unwrap().trim().parse().unwrap();
        assert!(!running(pid), "the leftover {pid} still runs");
    }

    /// Alive and not a zombie (a reparented zombie may wait long for a reaper in a container).
    fn running(pid: libc::pid_t) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat.rsplit(") ").next().is_some_and(|rest| !rest.starts_with('Z')),
            Err(_) => false,
        }
    }
}
