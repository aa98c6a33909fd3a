//! Dynamic shell completion: the branch, tag, environment and remote names an argument takes,
//! attached to the clap definition by value name, and answered by clap_complete's engine when the
//! shell's script runs `COMPLETE=<shell> mlgit -- <words>` (see docs/completions.md).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use clap_complete::env::{CompleteEnv, Shells};

use mlgit::repo::names::{names, NameKind as Names};

use super::Cli;

/// The variable the shell scripts set to ask for candidates (clap_complete's default name).
const VAR: &str = "COMPLETE";

/// Answer a completion request and exit, when the process was started by a completion script;
/// otherwise return at once. Runs before anything else writes to stdout.
pub fn complete_if_asked() {
    // Only a shell's name (or path) asks: a COMPLETE=1 left in the environment for some other tool
    // must not turn every mlgit command into an "unknown shell" error.
    let Some(shell) = std::env::var_os(VAR) else { return };
    let name = Path::new(&shell).file_stem().unwrap_or_default().to_string_lossy().into_owned();
    if Shells::builtins().completer(&name).is_none() {
        return;
    }
    // libgit2 has OpenSSL load the system's CA bundle when it starts: 50-60 ms of a TAB that needs
    // ~20 ms otherwise. Completion only reads local refs and never talks to a server, so point
    // OpenSSL at no certificates (this process only; it starts no other).
    std::env::set_var("SSL_CERT_FILE", "/dev/null");
    std::env::set_var("SSL_CERT_DIR", "/dev/null");
    CompleteEnv::with_factory(command).var(VAR).bin("mlgit").complete();
}

/// The script a shell sources to complete mlgit: it calls the same binary back on every TAB.
/// `completer` is how the script runs mlgit (the name or path it was started by).
pub fn registration(shell: clap_complete::Shell, completer: &str) -> std::io::Result<Vec<u8>> {
    let name = shell.to_string();
    let shells = Shells::builtins();
    let Some(adapter) = shells.completer(&name) else {
        return Err(std::io::Error::other(format!("no dynamic completion for {name}")));
    };
    let mut script = Vec::new();
    adapter.write_registration(VAR, "mlgit", "mlgit", completer, &mut script)?;
    Ok(script)
}

/// The clap definition with candidates attached to every argument that names a branch, tag,
/// environment or remote, in every (nested) subcommand.
fn command() -> clap::Command {
    attach(Cli::command(), &[])
}

fn attach(cmd: clap::Command, path: &[String]) -> clap::Command {
    let mut path = path.to_vec();
    path.push(cmd.get_name().to_string());
    let names: Vec<(String, Names)> =
        cmd.get_arguments().filter_map(|a| names_of(&path, a).map(|n| (a.get_id().to_string(), n))).collect();
    let mut cmd = cmd;
    for (id, kind) in names {
        cmd = cmd.mut_arg(id, |a| a.add(ArgValueCandidates::new(move || candidates(kind))));
    }
    let subs: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
    for sub in subs {
        cmd = cmd.mut_subcommand(sub, |s| attach(s, &path));
    }
    cmd
}

/// Which names `arg` of the command at `path` (["mlgit", "monitor", "drift"]) takes, read from its
/// value name (`TAG`, `REF`, …; clap's default is the field name in capitals).
fn names_of(path: &[String], arg: &clap::Arg) -> Option<Names> {
    if arg.is_last_set() || !arg.get_action().takes_values() {
        return None;
    }
    let command: Vec<&str> = path.iter().skip(1).map(String::as_str).collect();
    let id = arg.get_id().as_str();
    let value_name = match arg.get_value_names() {
        Some([one]) => one.to_string(),
        _ => id.to_uppercase(),
    };
    match (command.as_slice(), id) {
        // The name of a tag to create: nothing to offer.
        (["train-tag"], "name") => return None,
        // A snapshot tag, or a clean/split branch or commit.
        (["show"], "tag") => return Some(Names::Revisions),
        (["diff"], "a" | "b") => return Some(Names::Revisions),
        _ => {}
    }
    match value_name.as_str() {
        "TAG" => Some(Names::Tags),
        "REV" | "REF" => Some(Names::Revisions),
        "BRANCH" => Some(Names::Branches),
        "ENV" => Some(Names::Environments),
        "REMOTE" => Some(Names::Remotes),
        _ => None,
    }
}

/// The names of one kind in the repository the completed command line points at; none at all
/// outside a repository or on any error (completion must stay silent).
fn candidates(kind: Names) -> Vec<CompletionCandidate> {
    let Some(dir) = completed_dir() else { return Vec::new() };
    let Ok(git) = mlgit::repo::open_git(&dir) else { return Vec::new() };
    names(&git, kind)
        .into_iter()
        .map(|(name, what)| CompletionCandidate::new(name).help(Some(what.into())))
        .collect()
}

/// The folder the command line being completed runs in: its `-C DIR` (the last one, relative to
/// the shell's folder; `~/` is the home folder, as the shell would expand it), else the current
/// folder.
fn completed_dir() -> Option<PathBuf> {
    let here = std::env::current_dir().ok()?;
    // The engine is called as `mlgit -- mlgit <words…>`: the words start after the first `--`.
    let words: Vec<OsString> = std::env::args_os().skip_while(|a| a != "--").skip(2).collect();
    match chdir_of(&words) {
        Some(dir) => Some(here.join(expand_home(&dir))),
        None => Some(here),
    }
}

/// The value of the last `-C DIR` / `-CDIR` before the line's own `--`.
fn chdir_of(words: &[OsString]) -> Option<PathBuf> {
    let mut dir = None;
    let mut iter = words.iter();
    while let Some(word) = iter.next() {
        if word == "--" {
            break;
        }
        if word == "-C" {
            dir = iter.next().map(PathBuf::from);
        } else if let Some(rest) = word.to_str().and_then(|w| w.strip_prefix("-C")) {
            dir = Some(PathBuf::from(rest));
        }
    }
    dir
}

fn expand_home(dir: &Path) -> PathBuf {
    match (dir.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => Path::new(&home).join(rest),
        _ => dir.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(words: &[&str], id: &str) -> Option<Names> {
        let mut cmd = command();
        cmd.build();
        let mut at = &cmd;
        let mut path = vec!["mlgit".to_string()];
        for w in words {
            at = at.find_subcommand(w).unwrap_or_else(|| panic!("no subcommand {w}"));
            path.push(w.to_string());
        }
        let arg = at.get_arguments().find(|a| a.get_id() == id).unwrap_or_else(|| panic!("no arg {id}"));
        let attached = arg.get::<ArgValueCandidates>().is_some();
        assert_eq!(attached, names_of(&path, arg).is_some(), "{words:?} {id}");
        names_of(&path, arg)
    }

    #[test]
    fn arguments_that_name_refs_get_candidates_by_their_value_name() {
        assert_eq!(kind(&["show"], "tag"), Some(Names::Revisions));
        assert_eq!(kind(&["promote"], "tag"), Some(Names::Tags));
        assert_eq!(kind(&["promote"], "env"), Some(Names::Environments));
        assert_eq!(kind(&["rollback"], "to"), Some(Names::Tags));
        assert_eq!(kind(&["diff"], "a"), Some(Names::Revisions));
        assert_eq!(kind(&["diff"], "b"), Some(Names::Revisions));
        assert_eq!(kind(&["lineage"], "rev"), Some(Names::Revisions));
        assert_eq!(kind(&["split"], "from"), Some(Names::Branches));
        assert_eq!(kind(&["monitor", "drift"], "env"), Some(Names::Environments));
        assert_eq!(kind(&["envs", "log"], "env"), Some(Names::Environments));
        assert_eq!(kind(&["push"], "remote"), Some(Names::Remotes));
        assert_eq!(kind(&["train-tag"], "name"), None);
        assert_eq!(kind(&["train-tag"], "command"), None);
        assert_eq!(kind(&["checkout"], "into"), None);
    }

    #[test]
    fn the_chdir_of_a_command_line_is_its_last_dash_c() {
        let words = |w: &[&str]| w.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(chdir_of(&words(&["mlgit", "show", "m"])), None);
        assert_eq!(chdir_of(&words(&["mlgit", "-C", "a", "show", "-Cb", "m"])), Some(PathBuf::from("b")));
        assert_eq!(chdir_of(&words(&["mlgit", "train-tag", "--", "-C", "x"])), None);
    }
}
