//! End-to-end tests of shell completion (issue 14): the script `mlgit completions SHELL` prints is
//! sourced in a real bash, zsh and fish, which call the real binary back for candidates, on the
//! repository `mlgit demo` leaves (tags `model-v1` and `model-v2` made by `train-tag`, the
//! convention branches, env/dev, env/staging and env/prod). And `mlgit manpage --dir`: every page
//! another page refers to is written.
//!
//! bash: the completion function the script registers is called as bash calls it on TAB, with
//! COMP_WORDS, COMP_CWORD, COMP_LINE and COMP_POINT set; COMPREPLY is what bash would offer. fish:
//! `complete --do-complete LINE` runs fish's own completion. zsh: an interactive zsh in a
//! pseudo-terminal, with compinit, gets the line and a TAB.
//! zsh and fish are optional here, but under CI (`CI=true`) a missing one fails its test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{stderr, stdout, TestEnv};

/// The demo's repository, with env/staging deleted (staging is still in mlgit.yaml's
/// `environments:`) and an env/canary branch no config names: both kinds of environment.
fn demo() -> Option<(TestEnv, PathBuf)> {
    let env = TestEnv::new();
    if !env.has_git_lfs() {
        return None;
    }
    env.mlgit_ok(env.tmp.path(), ["demo", "-q", "d"]);
    let repo = env.path("d/churn");
    assert_eq!(env.git(&repo, ["tag", "--list"]), "model-v1\nmodel-v2\n");
    env.git(&repo, ["branch", "-D", "env/staging"]);
    env.git(&repo, ["branch", "env/canary", "main"]);
    let config = env.git(&repo, ["show", "main:mlgit.yaml"]);
    assert!(config.contains("staging"), "the demo's environments name staging:\n{config}");
    Some((env, repo))
}

/// A shell command with the test's cleared environment (no rc files of the machine).
fn shell(env: &TestEnv, program: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("HOME", &env.home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LANG", "C.UTF-8")
        .current_dir(dir);
    cmd
}

/// Whether `program` runs here (`program version_flag` succeeds); a missing one fails under CI
/// and skips elsewhere.
fn has(program: &str, version_flag: &str) -> bool {
    let ok = Command::new(program).arg(version_flag).output().is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{program} is required when CI=true (apt-get install -y {program})");
        }
        eprintln!("skipping: {program} is not installed (apt-get install -y {program})");
    }
    ok
}

/// The script `mlgit completions SHELL` prints, saved where the shell can source it.
fn script(env: &TestEnv, shell: &str) -> PathBuf {
    let text = env.mlgit_ok(env.tmp.path(), ["completions", shell]);
    let path = env.path(&format!("mlgit.{shell}"));
    std::fs::write(&path, text).unwrap();
    path
}

/// What bash offers for the last word of `line` (completed at its end), run in `dir`.
fn bash_complete(env: &TestEnv, script: &Path, dir: &Path, line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split(' ').collect();
    let program = r#"
source "$1"
COMP_LINE="$2"
COMP_POINT=${#COMP_LINE}
read -r -a COMP_WORDS <<< "$COMP_LINE"
[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_TYPE=9
fn=$(complete -p mlgit | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
"$fn" mlgit "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = shell(env, "bash", dir)
        .args(["--norc", "--noprofile", "-c", program, "bash"])
        .arg(script)
        .arg(line)
        .output()
        .unwrap();
    assert!(out.status.success(), "bash failed on {words:?}: {}", stderr(&out));
    stdout(&out).lines().filter(|l| !l.is_empty()).map(String::from).collect()
}

#[test]
fn bash_completes_tags_branches_and_environments_from_the_repository() {
    let Some((env, repo)) = demo() else { return };
    let script = script(&env, "bash");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("complete -o nospace") && text.contains("COMPLETE=\"bash\""), "{text}");
    assert_eq!(bash_complete(&env, &script, &repo, "mlgit show model-"), ["model-v1", "model-v2"]);
    assert_eq!(bash_complete(&env, &script, &repo, "mlgit lineage sp"), ["split"]);
    assert_eq!(bash_complete(&env, &script, &repo, "mlgit promote model-v2 --env st"), ["staging"]);
    assert_eq!(bash_complete(&env, &script, &repo, "mlgit rollback --env ca"), ["canary"]);
    assert_eq!(bash_complete(&env, &script, &repo, "mlgit envs log p"), ["prod"]);
    // A branch argument offers branches only, a tag argument tags only.
    assert_eq!(bash_complete(&env, &script, &repo, "mlgit split --from r"), ["raw"]);
    assert_eq!(bash_complete(&env, &script, &repo, "mlgit merge-tracking m"), ["model-v1", "model-v2"]);
    assert_eq!(bash_complete(&env, &script, &repo, "mlgit diff model-v1 sta"), ["stable/model"]);
    // From a subfolder, and from outside with -C (relative to the shell's folder).
    assert_eq!(
        bash_complete(&env, &script, &repo.join("docs"), "mlgit checkout model-v"),
        ["model-v1", "model-v2"]
    );
    assert_eq!(
        bash_complete(&env, &script, env.tmp.path(), "mlgit -C d/churn show model-"),
        ["model-v1", "model-v2"]
    );
    // Commands and options still complete.
    assert_eq!(bash_complete(&env, &script, &repo, "mlgit prom"), ["promote"]);
    assert_eq!(bash_complete(&env, &script, &repo, "mlgit promote model-v2 --rea"), ["--reason"]);
}

#[test]
fn completion_outside_a_repository_prints_nothing_and_succeeds() {
    let env = TestEnv::new();
    let empty = env.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let lines: [&[&str]; 3] = [&["show", "model-"], &["promote", "model-v1", "--env", ""], &["lineage", "s"]];
    for words in lines {
        let out = env
            .mlgit_cmd(&empty)
            .env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", words.len().to_string())
            .arg("--")
            .arg("mlgit")
            .args(words)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{words:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{words:?}");
        assert_eq!(stderr(&out), "", "{words:?}");
    }
    // Nothing typed yet: only the options (the engine offers them wherever they may come).
    let out = env
        .mlgit_cmd(&empty)
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "2")
        .args(["--", "mlgit", "lineage", ""])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).split(['\n', '\x0b']).all(|w| w.starts_with('-')), "{}", stdout(&out));
    assert_eq!(stderr(&out), "");
    // -C to a folder that does not exist: still nothing.
    let out = env
        .mlgit_cmd(&empty)
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "4")
        .args(["--", "mlgit", "-C", "nowhere", "show", "m"])
        .output()
        .unwrap();
    assert_eq!((out.status.code(), stdout(&out), stderr(&out)), (Some(0), String::new(), String::new()));
}

/// A TAB spent 50-60 ms in OpenSSL reading the system's CA bundle, which libgit2 has it load when
/// it starts: completion reads local refs only, so it must open no certificate file.
#[test]
fn completion_does_not_load_the_ca_bundle() {
    if !has("strace", "-V") {
        return;
    }
    let env = TestEnv::new();
    let repo = env.init_repo("r");
    let log = env.path("strace.log");
    let mlgit = assert_cmd::cargo::cargo_bin("mlgit");
    let lines: [&[&str]; 2] = [&["promote", "m"], &["promote", "x", "--env", "s"]];
    for words in lines {
        let out = shell(&env, "strace", &repo)
            .args(["-f", "-e", "trace=open,openat", "-o"])
            .arg(&log)
            .arg(&mlgit)
            .args(["--", "mlgit"])
            .args(words)
            .env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", words.len().to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let opened = std::fs::read_to_string(&log).unwrap();
        assert!(opened.contains("/refs/"), "the refs were read:\n{opened}");
        let certs: Vec<&str> = opened
            .lines()
            .filter(|l| l.contains(".crt") || l.contains(".pem") || l.contains("/certs"))
            .collect();
        assert!(certs.is_empty(), "{words:?}: completion opened certificates:\n{}", certs.join("\n"));
    }
}

#[test]
fn fish_completes_tags_branches_and_environments_from_the_repository() {
    if !has("fish", "--version") {
        return;
    }
    let Some((env, repo)) = demo() else { return };
    let script = script(&env, "fish");
    let complete = |line: &str| -> Vec<String> {
        let program = format!("source {}; complete --do-complete '{line}'", script.display());
        let out = shell(&env, "fish", &repo).args(["--no-config", "-c", &program]).output().unwrap();
        assert!(out.status.success(), "fish failed on {line}: {}", stderr(&out));
        stdout(&out).lines().map(String::from).collect()
    };
    assert_eq!(complete("mlgit show model-"), ["model-v1\ttag", "model-v2\ttag"]);
    assert_eq!(complete("mlgit lineage sp"), ["split\tbranch"]);
    assert_eq!(complete("mlgit promote model-v2 --env st"), ["staging\tenvironment"]);
    assert_eq!(complete("mlgit monitor drift --env ca"), ["canary\tenvironment"]);
}

/// zsh's completion system runs only inside its line editor: an interactive zsh in a pseudo-terminal
/// (zsh/zpty) gets the line and a TAB; `compadd` (which every completion function ends in) prints
/// what it is given, and the shell exits after the one completion.
const ZSH_DRIVER: &str = r#"
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z 'PROMPT='
zpty -w z 'autoload -U compinit && compinit -u -D'
zpty -w z "source ${(q)1}"
zpty -w z 'compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a __hits
  builtin compadd -A __hits "$@"
  (( $#__hits )) || return 1
  local h; for h in $__hits; do echo -E - "CANDIDATE:$h"; done
}'
zpty -w z "bindkey '^I' complete-word"
zpty -w z 'null-line () { echo -E - $'"'"'\0'"'"' }'
zpty -w z 'compprefuncs=( null-line )'
zpty -w z 'comppostfuncs=( exit )'
zpty -w -n z "$2"$'\t'
zpty -r z line '*'$'\0'
while zpty -r z line; do
  [[ $line == *CANDIDATE:* ]] && print -r -- "${${line#*CANDIDATE:}%%[[:space:]]#}"
done
zpty -d z
"#;

#[test]
fn zsh_completes_tags_branches_and_environments_from_the_repository() {
    if !has("zsh", "--version") {
        return;
    }
    let Some((env, repo)) = demo() else { return };
    let script = script(&env, "zsh");
    let complete = |line: &str| -> Vec<String> {
        // `timeout`: a driver that waits for a prompt that never comes must not hang the suite.
        let out = shell(&env, "timeout", &repo)
            .args(["60", "zsh", "-f", "-c", ZSH_DRIVER, "zsh"])
            .arg(&script)
            .arg(line)
            .output()
            .unwrap();
        assert!(out.status.success(), "zsh failed on {line}: {}", stderr(&out));
        let mut found: Vec<String> =
            stdout(&out).lines().filter(|l| !l.is_empty()).map(String::from).collect();
        found.sort();
        found
    };
    assert_eq!(complete("mlgit show model-"), ["model-v1", "model-v2"]);
    assert_eq!(complete("mlgit lineage sp"), ["split"]);
    assert_eq!(complete("mlgit promote model-v2 --env st"), ["staging"]);
    assert_eq!(complete("mlgit -C . envs log ca"), ["canary"]);
    assert_eq!(complete("mlgit prom"), ["promote"]);
}

#[test]
fn completions_static_still_prints_the_fixed_script() {
    let env = TestEnv::new();
    let text = env.mlgit_ok(env.tmp.path(), ["completions", "bash", "--static"]);
    assert!(text.contains("commit-data") && text.contains("train-tag"), "{text}");
    assert!(!text.contains("COMPLETE="), "{text}");
}

/// Every `mlgit-…(1)` a page names, as roff writes it (`mlgit\-train\-tag(1)`).
fn references(page: &str) -> Vec<String> {
    let text = page.replace("\\-", "-");
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("mlgit-") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
            .collect();
        rest = &rest[at + name.len()..];
        if rest.starts_with("(1)") {
            out.push(name.trim_end_matches('-').to_string());
        }
    }
    out
}

#[test]
fn manpage_dir_writes_every_page_the_pages_refer_to() {
    let env = TestEnv::new();
    env.mlgit_ok(env.tmp.path(), ["manpage", "--dir", "man"]);
    let dir = env.path("man");
    let names: Vec<String> = common::list_files(&dir);
    for page in
        ["mlgit.1", "mlgit-train-tag.1", "mlgit-monitor.1", "mlgit-monitor-drift.1", "mlgit-envs-log.1"]
    {
        assert!(names.contains(&page.to_string()), "no {page} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("help")), "no page for clap's help command: {names:?}");
    let mut seen = 0;
    for name in &names {
        let page = std::fs::read_to_string(dir.join(name)).unwrap();
        // `man mlgit-train-tag` finds the file by the name the page's title gives.
        let title = page.lines().find_map(|l| l.strip_prefix(".TH ")).and_then(|t| t.split(' ').next());
        assert_eq!(title.map(|t| format!("{t}.1")).as_deref(), Some(name.as_str()), "the title of {name}");
        for reference in references(&page) {
            seen += 1;
            assert!(
                dir.join(format!("{reference}.1")).is_file(),
                "{name} refers to {reference}(1), which was not written"
            );
        }
    }
    assert!(seen > 30, "only {seen} references found: is the scan reading the pages?");
    let main = std::fs::read_to_string(dir.join("mlgit.1")).unwrap();
    assert!(references(&main).contains(&"mlgit-train-tag".to_string()), "{main}");
    // Without --dir: the main page, as before, the same as the one written.
    assert_eq!(env.mlgit_ok(env.tmp.path(), ["manpage"]), main);
    // man renders a page, if man is here.
    if Command::new("man").arg("--version").output().is_ok_and(|o| o.status.success()) {
        let out = shell(&env, "man", env.tmp.path())
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .args(["-l", dir.join("mlgit-monitor-drift.1").to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("NAME") && text.contains("mlgit-monitor-drift"), "{text}");
    }
}

/// `COMPLETE=1` (set for some other tool) made every mlgit command fail with "unknown shell":
/// only a shell's name asks for completion.
#[test]
fn a_complete_variable_that_names_no_shell_leaves_commands_alone() {
    let env = TestEnv::new();
    for value in ["1", "yes", ""] {
        let out = env.mlgit_cmd(env.tmp.path()).env("COMPLETE", value).arg("--version").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "COMPLETE={value}: {}", stderr(&out));
        assert!(stdout(&out).starts_with("mlgit "), "COMPLETE={value}: {}", stdout(&out));
    }
    // A shell given by path, as $SHELL spells it, does ask.
    let out = env.mlgit_cmd(env.tmp.path()).env("COMPLETE", "/bin/bash").output().unwrap();
    assert!(stdout(&out).contains("complete -o nospace"), "{}", stdout(&out));
}
