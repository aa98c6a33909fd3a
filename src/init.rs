//! `mlgit init`: a repository from a template — `main` with the template's files (checked out),
//! orphan data branches (`raw`, `clean`, `split`) and `monitoring/<env>` branches each with a README
//! and LFS rules, `dev/model` with the code skeleton, `stable/model` on top of it, and one orphan
//! `env/<env>` branch per environment holding only a README (the deployment log, empty until the
//! first `mlgit promote`).
//!
//! On an existing repository it only adds what is missing: no file is overwritten and no existing
//! ref moves. In a clone, a convention branch missing locally but present on the remote
//! (`refs/remotes/<remote>/<branch>`, remote = origin or the only one) starts at the remote's tip
//! with its upstream set — never as an orphan, whose commits the remote would refuse. A convention
//! branch that exists is left alone (with a warning when it does not look like what init would have
//! made), and init goes on with the rest.

use std::fs;
use std::path::{Path, PathBuf};

use git2::{FileMode, Oid, Repository, RepositoryInitOptions};
use serde::Serialize;

use crate::config::{BranchKind, Config, CONFIG_FILE};
use crate::error::{Context, Error, Result};
use crate::remote::integrate;
use crate::repo::lfs_tree;
use crate::repo::refs::compare_and_swap;
use crate::repo::tree::{Entry, TreeEdits};
use crate::repo::{self, Repo};
use crate::store::attributes;
use crate::templates::{render, Template};

/// What `init` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// The folder (created if missing).
    pub dir: PathBuf,
    /// Built-in template name, local folder or git URL (None: the built-in default).
    pub template: Option<String>,
    /// The project name (default: the folder's name).
    pub name: Option<String>,
}

/// What `init` did.
#[derive(Debug, Clone, Serialize)]
pub struct InitOutcome {
    pub path: PathBuf,
    pub created_repository: bool,
    pub template: String,
    pub project: String,
    /// Branches created, in creation order, with their tips.
    pub created: Vec<CreatedBranch>,
    /// Things left as they were, with the reason.
    pub left_alone: Vec<LeftAlone>,
    /// Warnings about what was found (a convention branch that is not what init would make…).
    pub warnings: Vec<String>,
    /// True when the repository already had everything.
    pub nothing_to_do: bool,
    /// The pre-push hook that makes a plain `git push` carry the LFS objects (None: not installed,
    /// a warning says why).
    pub hook: Option<crate::hooks::HookInstall>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CreatedBranch {
    pub branch: String,
    pub kind: BranchKind,
    pub commit: String,
    /// The remote-tracking branch it was created from (`origin/raw`); null when init made it.
    pub from_remote: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeftAlone {
    pub item: String,
    pub reason: String,
}

/// Create or complete an mlgit repository.
pub fn init(opts: &InitOptions) -> Result<InitOutcome> {
    let dir = repo::absolute(&opts.dir);
    if dir.exists() && !dir.is_dir() {
        return Err(Error::invalid(format!("{} exists and is not a folder", dir.display()))
            .with_hint("give a folder (new or existing) for the repository"));
    }
    // Load and check everything that can fail before touching the disk.
    let template = Template::load(opts.template.as_deref())?;
    let project = match &opts.name {
        Some(n) => n.clone(),
        None => dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "project".into()),
    };
    let existing = match Repository::open(&dir) {
        Ok(git) => {
            if git.is_bare() {
                return Err(Error::invalid(format!("{} is a bare repository", dir.display())).with_hint(
                    "mlgit needs a working tree: clone it (`git clone <bare> <dir>`) and run `mlgit init` in the clone",
                ));
            }
            Some(git)
        }
        Err(_) => None,
    };
    let template_config = template_config(&template, &project)?;
    let config = match &existing {
        Some(git) if repo::branch_tip(git, &repo::main_branch_name(git))?.is_some() => {
            repo::load_config(git)?
        }
        Some(git) => remote_config(git)?.unwrap_or(template_config),
        None => template_config,
    };

    // Everything that can be checked is checked: from here on init writes. A failure now must
    // leave nothing behind, so remember what this run creates (the folder, or `.git` in an
    // existing folder) and remove exactly that if init fails.
    let created_repository = existing.is_none();
    let created_path = match &existing {
        Some(_) => None,
        None if !dir.exists() => Some(highest_missing_ancestor(&dir)),
        // A `.git` that git2 could not open is the user's: never removed.
        None if fs::symlink_metadata(dir.join(".git")).is_err() => Some(dir.join(".git")),
        None => None,
    };
    let result = (|| {
        let git = match existing {
            Some(git) => git,
            None => {
                fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
                let mut o = RepositoryInitOptions::new();
                o.initial_head(&config.branches.main).mkdir(true);
                Repository::init_opts(&dir, &o)
                    .context(format!("create a git repository in {}", dir.display()))?
            }
        };
        populate(git, &config, &template, &project, &dir, created_repository)
    })();
    match (result, created_path) {
        (Err(e), Some(path)) => Err(match fs::remove_dir_all(&path) {
            Ok(()) => e,
            Err(io) if io.kind() == std::io::ErrorKind::NotFound => e,
            Err(_) => {
                let hint = e.hint().map(|h| format!("{h}; ")).unwrap_or_default();
                e.with_hint(format!(
                    "{hint}init could not remove {} that it created: remove it",
                    path.display()
                ))
            }
        }),
        (result, _) => result,
    }
}

/// The top folder that `create_dir_all(dir)` will create (`dir` itself when its parent exists).
fn highest_missing_ancestor(dir: &Path) -> PathBuf {
    let mut top = dir.to_path_buf();
    while let Some(parent) = top.parent() {
        if parent.as_os_str().is_empty() || parent.exists() {
            break;
        }
        top = parent.to_path_buf();
    }
    top
}

/// Make the convention branches in a repository that exists now (new or found).
fn populate(
    git: Repository,
    config: &Config,
    template: &Template,
    project: &str,
    dir: &Path,
    created_repository: bool,
) -> Result<InitOutcome> {
    if config.branches.main != "main" {
        git.config()
            .and_then(|mut c| c.set_str(repo::MAIN_BRANCH_KEY, &config.branches.main))
            .context("record the main branch name in .git/config")?;
    }
    let fresh = head_is_unborn(&git);
    // The remote a clone's branches come from: origin, else the only remote (none: a new project).
    let remote = crate::remote::default_remote(&git).ok();
    let repo = Repo::from_parts(git, config.clone());
    let mut out = InitOutcome {
        path: dir.to_path_buf(),
        created_repository,
        template: template.source.clone(),
        project: project.to_string(),
        created: vec![],
        left_alone: vec![],
        warnings: vec![],
        nothing_to_do: false,
        hook: None,
    };
    let vars_for = |branch: &str| {
        let mut vars =
            vec![("project_name".to_string(), project.to_string()), ("branch".into(), branch.into())];
        // env.md names the environment, not only the branch (`mlgit promote TAG --env prod`).
        if let Some(env) = branch.strip_prefix(&config.branches.env_prefix) {
            vars.push(("env".into(), env.into()));
        }
        vars
    };

    for (branch, kind) in config.convention_branches() {
        if let Some(tip) = repo.branch_tip(&branch)? {
            out.left_alone.push(LeftAlone { item: format!("branch {branch}"), reason: "exists".into() });
            if let Some(w) = check_existing(&repo, &branch, kind, tip)? {
                out.warnings.push(w);
            }
            continue;
        }
        if let Some(remote) = &remote {
            if let Some(commit) = integrate::create_from_remote(&repo, remote, &branch, "mlgit init")? {
                out.created.push(CreatedBranch {
                    branch: branch.clone(),
                    kind,
                    commit: commit.to_string(),
                    from_remote: Some(format!("{remote}/{branch}")),
                });
                continue;
            }
        }
        let vars = vars_for(&branch);
        let vars: Vec<(&str, &str)> = vars.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let commit = match kind {
            BranchKind::Main => create_main(&repo, template, &vars, &mut out)?,
            BranchKind::Dev => create_dev(&repo, template, &vars)?,
            BranchKind::Stable => create_stable(&repo)?,
            _ => create_orphan(&repo, template, &branch, kind, &vars)?,
        };
        let Some(commit) = commit else { continue };
        if !compare_and_swap(repo.git(), &branch, commit, None, "mlgit init")? {
            out.left_alone.push(LeftAlone {
                item: format!("branch {branch}"),
                reason: "created by another process meanwhile".into(),
            });
            continue;
        }
        out.created.push(CreatedBranch { branch, kind, commit: commit.to_string(), from_remote: None });
    }
    if fresh {
        checkout_main(&repo)?;
    }
    out.nothing_to_do = out.created.is_empty();
    match crate::hooks::install(repo.git()) {
        Ok(hook) => out.hook = Some(hook),
        Err(e) => out.warnings.push(format!("no pre-push hook installed: {e}")),
    }
    Ok(out)
}

/// In a clone whose main exists only on the remote: the config committed on the remote's main.
fn remote_config(git: &Repository) -> Result<Option<Config>> {
    let Ok(remote) = crate::remote::default_remote(git) else { return Ok(None) };
    let main = repo::main_branch_name(git);
    let Some(tip) = integrate::remote_tip(git, &remote, &main)? else { return Ok(None) };
    let tree = git.find_commit(tip).context(format!("read {remote}/{main}"))?.tree_id();
    let Some(entry) = crate::repo::tree::entry_at(git, tree, CONFIG_FILE)? else {
        return Ok(Some(Config::default()));
    };
    let blob = git.find_blob(entry.oid).context(format!("read {remote}/{main}:{CONFIG_FILE}"))?;
    let origin = format!("{remote}/{main}:{CONFIG_FILE}");
    let text = std::str::from_utf8(blob.content()).map_err(|_| {
        Error::invalid(format!("{origin} is not valid UTF-8"))
            .with_hint("save the file as UTF-8 and commit it on main")
    })?;
    Config::parse(text, &origin).map(Some)
}

fn template_config(template: &Template, project: &str) -> Result<Config> {
    let path = format!("main/{CONFIG_FILE}");
    match template.file(&path) {
        Some(f) => {
            let text = render(&f.content, &[("project_name", project)]);
            let text = String::from_utf8(text).map_err(|_| {
                Error::invalid(format!("{path} of template {} is not UTF-8", template.source))
            })?;
            Config::parse(&text, &format!("{}:{path}", template.source))
        }
        None => Ok(Config { project: project.to_string(), ..Config::default() }),
    }
}

fn blob_entry(git: &Repository, content: &[u8], executable: bool) -> Result<Entry> {
    let oid = git.blob(content).context("write a blob")?;
    Ok(Entry { oid, mode: if executable { FileMode::BlobExecutable } else { FileMode::Blob } })
}

fn commit(repo: &Repo, tree: Oid, parents: &[Oid], message: &str) -> Result<Oid> {
    let git = repo.git();
    let sig = repo.signature()?;
    let tree = git.find_tree(tree).context("read a new tree")?;
    let parents: Vec<git2::Commit<'_>> = parents
        .iter()
        .map(|p| git.find_commit(*p))
        .collect::<Result<_, _>>()
        .context("read a parent commit")?;
    let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
    git.commit(None, &sig, &sig, message, &tree, &refs).context("write a commit")
}

/// main: the template's main files. In a repository that already has commits, main starts from
/// HEAD and only adds the template files HEAD lacks; files already in the folder are left alone.
fn create_main(
    repo: &Repo,
    template: &Template,
    vars: &[(&str, &str)],
    out: &mut InitOutcome,
) -> Result<Option<Oid>> {
    let git = repo.git();
    let head = git.head().ok().and_then(|h| h.peel_to_commit().ok());
    let base_tree = head.as_ref().map(|c| c.tree_id());
    let workdir = repo.workdir().to_path_buf();
    let mut edits = TreeEdits::new();
    for (path, file) in template.files_under("main") {
        if let Some(base) = base_tree {
            if crate::repo::tree::entry_at(git, base, &path)?.is_some() {
                out.left_alone.push(LeftAlone { item: path, reason: "already committed".into() });
                continue;
            }
        }
        if fs::symlink_metadata(workdir.join(&path)).is_ok() {
            out.left_alone.push(LeftAlone { item: path, reason: "exists in the folder".into() });
            continue;
        }
        edits.set(&path, blob_entry(git, &render(&file.content, vars), file.executable)?)?;
    }
    let tree = edits.write(git, base_tree)?;
    let parents: Vec<Oid> = head.iter().map(|c| c.id()).collect();
    Ok(Some(commit(repo, tree, &parents, "mlgit init: project definition, docs and config")?))
}

/// dev: main plus the template's code skeleton (files main already has are kept as they are).
fn create_dev(repo: &Repo, template: &Template, vars: &[(&str, &str)]) -> Result<Option<Oid>> {
    let git = repo.git();
    let main = repo.require_branch(&repo.config().branches.main)?;
    let mut edits = TreeEdits::new();
    for (path, file) in template.files_under("dev") {
        if crate::repo::tree::entry_at(git, main.tree_id(), &path)?.is_none() {
            edits.set(&path, blob_entry(git, &render(&file.content, vars), file.executable)?)?;
        }
    }
    let tree = edits.write(git, Some(main.tree_id()))?;
    Ok(Some(commit(repo, tree, &[main.id()], "mlgit init: code skeleton")?))
}

/// stable: dev plus the LFS rules for models and checkpoints.
fn create_stable(repo: &Repo) -> Result<Option<Oid>> {
    let git = repo.git();
    let dev = repo.require_branch(&repo.config().branches.dev)?;
    let patterns = lfs_tree::compile_patterns(repo.config().lfs_patterns(BranchKind::Stable))?;
    let tree = lfs_tree::refresh_attributes(git, dev.tree_id(), &patterns)?;
    if tree == dev.tree_id() {
        return Ok(Some(dev.id()));
    }
    Ok(Some(commit(repo, tree, &[dev.id()], "mlgit init: LFS rules for models and checkpoints")?))
}

/// raw, clean, split, monitoring/<env>: an orphan commit with the branch's README and LFS rules.
/// env/<env>: an orphan commit with only its README. Its LFS rules come with the first promotion,
/// whose tree is a snapshot's, so there is nothing here for them to cover.
fn create_orphan(
    repo: &Repo,
    template: &Template,
    branch: &str,
    kind: BranchKind,
    vars: &[(&str, &str)],
) -> Result<Option<Oid>> {
    let git = repo.git();
    let key = match kind {
        BranchKind::Raw => "raw",
        BranchKind::Clean => "clean",
        BranchKind::Split => "split",
        BranchKind::Env => "env",
        _ => "monitoring",
    };
    let readme = match template.file(&format!("branches/{key}.md")) {
        Some(f) => render(&f.content, vars),
        None if kind == BranchKind::Env => format!(
            "# {branch}\n\nThe deployment log of this environment, written by `mlgit promote` and \
             `mlgit rollback`: one commit per deployment. Empty until the first promotion.\n"
        )
        .into_bytes(),
        None if kind == BranchKind::Monitoring => {
            format!("# {branch}\n\nThe monitoring data of this environment, managed by mlgit.\n").into_bytes()
        }
        None => {
            format!("# {branch}\n\nThe `{key}` data branch of this project, managed by mlgit.\n").into_bytes()
        }
    };
    if kind == BranchKind::Env {
        let mut edits = TreeEdits::new();
        edits.set("README.md", blob_entry(git, &readme, false)?)?;
        let tree = edits.write(git, None)?;
        return Ok(Some(commit(repo, tree, &[], &format!("mlgit init: {branch} branch"))?));
    }
    let patterns = lfs_tree::compile_patterns(repo.config().lfs_patterns(kind))?;
    let mut small = vec![("README.md", false)];
    if kind == BranchKind::Monitoring {
        small.push((crate::monitor::settings::MONITOR_FILE, false));
    }
    let attributes = attributes::splice("", &attributes::managed_lines(&patterns, small));
    let mut edits = TreeEdits::new();
    edits.set("README.md", blob_entry(git, &readme, false)?)?;
    if kind == BranchKind::Monitoring {
        // The defaults, written out, so the settings behind the first alert are on record.
        let settings = crate::monitor::settings::MonitorSettings::default().to_yaml()?;
        edits.set(crate::monitor::settings::MONITOR_FILE, blob_entry(git, settings.as_bytes(), false)?)?;
    }
    if !attributes.is_empty() {
        edits.set(attributes::FILE, blob_entry(git, attributes.as_bytes(), false)?)?;
    }
    let tree = edits.write(git, None)?;
    Ok(Some(commit(repo, tree, &[], &format!("mlgit init: {branch} branch"))?))
}

/// A data or monitoring branch that shares history with main is not what init makes: say so.
/// An env branch is not checked: each promotion commit's second parent is a snapshot, which sits
/// on main's history, so every env branch that has served a model shares history with main.
fn check_existing(repo: &Repo, branch: &str, kind: BranchKind, tip: Oid) -> Result<Option<String>> {
    if !(kind.is_data() || kind == BranchKind::Monitoring) {
        return Ok(None);
    }
    let Some(main) = repo.branch_tip(&repo.config().branches.main)? else { return Ok(None) };
    if repo.git().merge_base(tip, main).is_ok() {
        return Ok(Some(format!(
            "branch '{branch}' exists but shares history with '{}', so it is not a data branch as mlgit makes them; \
             it was left alone (rename it and run `mlgit init` again to get a fresh '{branch}')",
            repo.config().branches.main
        )));
    }
    Ok(None)
}

fn head_is_unborn(git: &Repository) -> bool {
    matches!(git.head(), Err(ref e) if e.code() == git2::ErrorCode::UnbornBranch || e.code() == git2::ErrorCode::NotFound)
}

/// In a new repository (HEAD was unborn), point HEAD at main and check it out. Files already in the
/// folder were left out of main, so the checkout overwrites nothing.
fn checkout_main(repo: &Repo) -> Result<()> {
    let git = repo.git();
    let main = &repo.config().branches.main;
    let Some(tip) = repo.branch_tip(main)? else { return Ok(()) };
    let tree = git.find_commit(tip).and_then(|c| c.tree()).context("read main's tree")?;
    git.set_head(&format!("refs/heads/{main}")).context("point HEAD at main")?;
    let mut co = git2::build::CheckoutBuilder::new();
    co.safe().recreate_missing(true);
    git.checkout_tree(tree.as_object(), Some(&mut co)).context("check out main")?;
    Ok(())
}
