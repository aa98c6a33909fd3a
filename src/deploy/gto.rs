//! GTO-compatible tags (`--gto`): a promotion also writes the annotated tags GTO (iterative/gto)
//! reads, on the snapshot commit, so `gto show` and `gto history` tell what `mlgit envs` tells.
//!
//! - `<model>@v<n>.0.0` registers the snapshot `<model>-v<n>` as a GTO version (once per commit);
//! - `<model>#<env>#<k>` assigns the environment, as a GTO stage, to that version;
//! - `<model>#<env>!#<k>` unassigns it from the version that served before, so the environment has
//!   exactly one version in every GTO view (`--sort semver`, `--vs -1`), as it does in mlgit.
//!
//! `<k>` is GTO's counter: one per artifact across all its stages, the highest in use plus one.
//! The formats are GTO 1.10's (`gto/constants.py`, `gto/tag.py`); docs/gto.md has the details.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use git2::{ErrorCode, ObjectType, Oid, Repository, Signature};
use regex::Regex;

use crate::error::{Context, Error, Result};
use crate::repo::lock::{lock_path, FileLock};
use crate::repo::Repo;

/// What to tag for GTO.
#[derive(Debug, Clone)]
pub struct GtoRequest {
    /// The model name (`stable/model` → `model`): the GTO artifact.
    pub model: String,
    /// The promoted snapshot tag (`model-v3`): its number becomes the GTO version.
    pub snapshot_tag: String,
    pub snapshot_commit: Oid,
    /// The environment: the GTO stage.
    pub env: String,
    /// The message of the stage assignment tag (GTO shows it in `gto history`).
    pub message: String,
}

/// The tags a promotion will write, computed and checked before the env commit is written. The
/// counters in `tags` are provisional: [`write`] takes the next free one as it creates each tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GtoPlan {
    /// The GTO artifact (the model name).
    pub artifact: String,
    /// The GTO stage (the environment).
    pub stage: String,
    /// The snapshot's GTO version (`v3.0.0`): registered already, or by `registration`.
    pub version: String,
    /// The registration tag to create; None when the commit already has a GTO version.
    pub registration: Option<String>,
    /// Every tag to create, in order (registration, assignment, unassignments).
    pub tags: Vec<String>,
}

/// How often [`write`] takes a fresh counter when another promotion took the one it chose.
const COUNTER_ATTEMPTS: usize = 50;

/// Check everything `--gto` needs and name the tags, writing nothing: the artifact and stage
/// names must be valid GTO names, and the snapshot commit must have a GTO version already or get
/// one from its tag's number (`snapshot.tag_pattern`), which no other commit may hold.
pub fn plan(repo: &Repo, req: &GtoRequest) -> Result<GtoPlan> {
    let git = repo.git();
    check_gto_name("model", &req.model)?;
    check_gto_name("environment", &req.env)?;
    git.find_commit(req.snapshot_commit)
        .context(format!("read the commit {} of snapshot '{}'", req.snapshot_commit, req.snapshot_tag))?;
    let tags = read_tags(git, &req.model)?;

    let (version, registration) = match version_at(&tags, req.snapshot_commit, &req.model)? {
        Some(existing) => (existing, None),
        None => {
            let version = version_for(&repo.config().snapshot.tag_pattern, &req.model, &req.snapshot_tag)?;
            check_version_free(git, &tags, &req.model, &version, req.snapshot_commit)?;
            let name = registration_tag(&req.model, &version);
            (version, Some(name))
        }
    };

    let mut counter = tags.max_counter + 1;
    let mut names: Vec<String> = registration.iter().cloned().collect();
    names.push(assignment_tag(&req.model, &req.env, counter));
    for _ in commits_in_stage(&tags.events, &req.env).iter().filter(|c| **c != req.snapshot_commit) {
        counter += 1;
        names.push(unassignment_tag(&req.model, &req.env, counter));
    }
    Ok(GtoPlan { artifact: req.model.clone(), stage: req.env.clone(), version, registration, tags: names })
}

/// Create the tags of `plan` (from [`plan`] on the same request), annotated, with the repository
/// signature as tagger. Tags made meanwhile by another promotion are honoured: a registration of
/// the same version on the same commit counts as done, a counter already taken is skipped, and
/// the versions to unassign are read again. Returns the tag names created.
pub fn write(repo: &Repo, req: &GtoRequest, plan: GtoPlan) -> Result<Vec<String>> {
    let git = repo.git();
    // GTO counts events per artifact, across stages: two promotions of one artifact to different
    // environments (whose env/ branches do not contend) must not both take the next counter, and
    // tag names per stage differ, so git would not refuse the second. One writer at a time.
    let _lock = FileLock::acquire(
        &lock_path(git, &format!("gto-{}", plan.artifact)),
        &format!("writing the GTO tags of '{}'", plan.artifact),
        std::time::Duration::from_secs(30),
    )?;
    let sig = repo.signature()?;
    let target = git
        .find_object(req.snapshot_commit, Some(ObjectType::Commit))
        .context(format!("read the commit {} of snapshot '{}'", req.snapshot_commit, req.snapshot_tag))?;
    let mut created = Vec::new();
    let partial = |created: &[String], e: Error| -> Error {
        if created.is_empty() {
            return e;
        }
        let message = format!("{} (GTO tags created before this: {})", e.message(), created.join(", "));
        Error::new(e.kind(), message).with_hint(format!(
            "the deployment itself is recorded; see where GTO stands with `gto show {}`, then add what is missing with `gto assign {} --version {} --stage {} --force` or `gto deprecate {} <old version> {}`",
            plan.artifact, plan.artifact, plan.version, plan.stage, plan.artifact, plan.stage
        ))
    };

    if let Some(name) = &plan.registration {
        let message = format!(
            "Registering artifact {} version {} (mlgit snapshot {})",
            plan.artifact, plan.version, req.snapshot_tag
        );
        match git.tag(name, &target, &sig, &message, false) {
            Ok(_) => created.push(name.clone()),
            // Another promotion of the same snapshot registered it first: the same tag, not an error.
            Err(e)
                if e.code() == ErrorCode::Exists
                    && annotated_target(git, name) == Some(req.snapshot_commit) => {}
            Err(e) if e.code() == ErrorCode::Exists => {
                return Err(Error::git(format!("create the GTO tag '{name}'"), e).with_hint(format!(
                    "a tag '{name}' made since the check points elsewhere; see `git show '{name}'` and `gto show {}`",
                    plan.artifact
                )))
            }
            Err(e) => return Err(Error::git(format!("create the GTO tag '{name}'"), e)),
        }
    }

    let stage_sig = read_tags(git, &plan.artifact)
        .and_then(|tags| after_stage_events(&sig, &tags.events, &plan.stage))
        .map_err(|e| partial(&created, e))?;
    let assigned = create_counted(git, &plan.artifact, &target, &stage_sig, &req.message, |k| {
        assignment_tag(&plan.artifact, &plan.stage, k)
    })
    .map_err(|e| partial(&created, e))?;
    created.push(assigned);

    let tags = read_tags(git, &plan.artifact).map_err(|e| partial(&created, e))?;
    for previous in commits_in_stage(&tags.events, &plan.stage) {
        if previous == req.snapshot_commit {
            continue;
        }
        let was = version_at(&tags, previous, &plan.artifact)
            .ok()
            .flatten()
            .unwrap_or_else(|| previous.to_string());
        let message = format!(
            "Unassigning stage '{}' from artifact '{}' version '{was}': replaced by version '{}' ({})",
            plan.stage,
            plan.artifact,
            plan.version,
            req.message.lines().next().unwrap_or_default()
        );
        let object = git
            .find_object(previous, Some(ObjectType::Commit))
            .context(format!("read the commit {previous} that GTO has in stage '{}'", plan.stage))
            .map_err(|e| partial(&created, e))?;
        let name = create_counted(git, &plan.artifact, &object, &stage_sig, &message, |k| {
            unassignment_tag(&plan.artifact, &plan.stage, k)
        })
        .map_err(|e| partial(&created, e))?;
        created.push(name);
    }
    Ok(created)
}

/// [`plan`] then [`write`]: for callers with nothing to do in between.
pub fn write_tags(repo: &Repo, req: &GtoRequest) -> Result<Vec<String>> {
    let plan = plan(repo, req)?;
    write(repo, req, plan)
}

/// `<artifact>@<version>`: GTO's registration tag in its simple form (no counter), as `gto
/// register` writes it.
pub fn registration_tag(artifact: &str, version: &str) -> String {
    format!("{artifact}@{version}")
}

/// `<artifact>#<stage>#<k>`: GTO's stage assignment tag.
pub fn assignment_tag(artifact: &str, stage: &str, counter: u64) -> String {
    format!("{artifact}#{stage}#{counter}")
}

/// `<artifact>#<stage>!#<k>`: GTO's stage unassignment tag.
pub fn unassignment_tag(artifact: &str, stage: &str, counter: u64) -> String {
    format!("{artifact}#{stage}!#{counter}")
}

/// The GTO version of a snapshot tag: its `{n}` in `snapshot.tag_pattern` as a major version
/// (`model-v3` → `v3.0.0`), so versions sort as the snapshots do.
pub fn version_for(tag_pattern: &str, model: &str, snapshot_tag: &str) -> Result<String> {
    match snapshot_number(tag_pattern, model, snapshot_tag) {
        Some(n) => Ok(format!("v{n}.0.0")),
        None => Err(Error::invalid(format!(
            "snapshot tag '{snapshot_tag}' carries no number in the pattern '{tag_pattern}', so it has no GTO version"
        ))
        .with_hint(format!(
            "register the commit yourself (`gto register {model} {snapshot_tag} --version vX.Y.Z`) and promote again, or promote without --gto"
        ))),
    }
}

/// The `{n}` of `tag` under `pattern` (with `{model}` filled in), if the tag follows the pattern.
fn snapshot_number(pattern: &str, model: &str, tag: &str) -> Option<u64> {
    let pattern = pattern.replace("{model}", model);
    let (prefix, suffix) = pattern.split_once("{n}")?;
    let digits = tag.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// GTO's name rule for artifacts and stages (`constants.name`): letters, digits, `-`, `_`, `/`,
/// starting and ending with a letter or digit.
const NAME: &str = r"[a-zA-Z0-9](?:[a-zA-Z0-9\-/_]*[a-zA-Z0-9])?";

fn name_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(&format!("^{NAME}$")).expect("GTO name pattern"))
}

/// GTO's `tag_re`, ported as is: an artifact (`dir=name`), then a version (`@v1.2.3`, `!` to
/// deregister), a stage (`#prod`, `!` to unassign) or `@deprecated`/`@created`, then an optional
/// counter `#k`.
fn tag_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let semver = r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)(?:-(?:(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+(?:[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?";
        let artifact = format!(r"(?:[a-zA-Z0-9\-_./]+=)?{NAME}");
        Regex::new(&format!(
            r"^(?P<artifact>{artifact})(?:(?:#(?P<stage>{NAME})|@(?P<version>v{semver}))(?P<cancel>!?)|@(?P<deprecated>deprecated)|@(?P<created>created))(?:#(?P<counter>[0-9]+))?$"
        ))
        .expect("GTO tag pattern")
    })
}

fn check_gto_name(what: &str, name: &str) -> Result<()> {
    if name_re().is_match(name) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{what} name '{name}' is not a valid GTO name (letters, digits, '-', '_' and '/', starting and ending with a letter or digit)"
    ))
    .with_hint(format!("rename the {what}, or promote without --gto")))
}

/// What a GTO tag does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Register(String),
    Deregister(String),
    Assign(String),
    Unassign(String),
    /// `@deprecated` and `@created`: they carry counters but no version or stage.
    Other,
}

/// A tag name as GTO parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TagName {
    artifact: String,
    action: Action,
    counter: Option<u64>,
}

fn parse_tag_name(name: &str) -> Option<TagName> {
    let caps = tag_re().captures(name)?;
    let cancel = caps.name("cancel").is_some_and(|c| c.as_str() == "!");
    let action = if let Some(v) = caps.name("version") {
        let v = v.as_str().to_string();
        if cancel {
            Action::Deregister(v)
        } else {
            Action::Register(v)
        }
    } else if let Some(s) = caps.name("stage") {
        let s = s.as_str().to_string();
        if cancel {
            Action::Unassign(s)
        } else {
            Action::Assign(s)
        }
    } else {
        Action::Other
    };
    Some(TagName {
        // GTO writes `dir:name` artifacts as `dir=name` in tags.
        artifact: caps["artifact"].replace('=', ":"),
        action,
        counter: caps.name("counter").and_then(|c| c.as_str().parse().ok()),
    })
}

/// An annotated GTO tag of the artifact: GTO ignores lightweight ones.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    action: Action,
    commit: Oid,
    /// The tagger's time, in seconds: GTO orders events by it.
    time: i64,
}

struct ArtifactTags {
    /// The highest counter on any tag of the artifact, lightweight ones included (as `gto` counts).
    max_counter: u64,
    events: Vec<Event>,
}

fn read_tags(git: &Repository, artifact: &str) -> Result<ArtifactTags> {
    let names = git.tag_names(None).context("list the tags")?;
    let mut out = ArtifactTags { max_counter: 0, events: Vec::new() };
    for name in names.iter().flatten() {
        let Some(parsed) = parse_tag_name(name) else { continue };
        if parsed.artifact != artifact {
            continue;
        }
        out.max_counter = out.max_counter.max(parsed.counter.unwrap_or(0));
        let Ok(reference) = git.find_reference(&format!("refs/tags/{name}")) else { continue };
        let Ok(tag) = reference.peel(ObjectType::Tag).and_then(|o| o.peel_to_tag()) else { continue };
        let Ok(commit) = tag.as_object().peel(ObjectType::Commit) else { continue };
        let time = tag.tagger().map(|s| s.when().seconds()).unwrap_or(0);
        out.events.push(Event { action: parsed.action, commit: commit.id(), time });
    }
    Ok(out)
}

/// The commit an annotated tag points at, if `name` is one.
fn annotated_target(git: &Repository, name: &str) -> Option<Oid> {
    let reference = git.find_reference(&format!("refs/tags/{name}")).ok()?;
    let tag = reference.peel(ObjectType::Tag).ok()?.peel_to_tag().ok()?;
    Some(tag.as_object().peel(ObjectType::Commit).ok()?.id())
}

/// The GTO version registered on `commit`, if any. GTO refuses a commit with two versions, and
/// hides a deregistered version with its stages, so both are refused here.
fn version_at(tags: &ArtifactTags, commit: Oid, artifact: &str) -> Result<Option<String>> {
    // Per version: (time of the latest event, whether it is a deregistration).
    let mut versions: BTreeMap<&str, (i64, bool)> = BTreeMap::new();
    for e in tags.events.iter().filter(|e| e.commit == commit) {
        let (v, cancel) = match &e.action {
            Action::Register(v) => (v.as_str(), false),
            Action::Deregister(v) => (v.as_str(), true),
            _ => continue,
        };
        let latest = versions.entry(v).or_insert((e.time, cancel));
        // On equal times GTO's (stable, then reversed) sort puts the deregistration first.
        if (e.time, cancel) > *latest {
            *latest = (e.time, cancel);
        }
    }
    let mut iter = versions.iter();
    let Some((version, (_, deregistered))) = iter.next() else { return Ok(None) };
    if versions.len() > 1 {
        let all: Vec<&str> = versions.keys().copied().collect();
        return Err(Error::conflict(format!(
            "commit {commit} holds several GTO versions of '{artifact}' ({}), which GTO refuses",
            all.join(", ")
        ))
        .with_hint("delete the extra registration tags (`git tag -d`), then promote again"));
    }
    if *deregistered {
        return Err(Error::conflict(format!(
            "GTO version {version} of '{artifact}' (commit {commit}) is deregistered, so GTO would not show it in any stage"
        ))
        .with_hint(format!(
            "if the deregistration was a mistake, delete its tag (`git tag -l '{artifact}@{version}!*'`), or promote without --gto"
        )));
    }
    Ok(Some(version.to_string()))
}

/// Refuse a version that another commit holds (GTO would see one version on two commits), or
/// whose tag name is taken by a tag GTO does not read as ours.
fn check_version_free(
    git: &Repository,
    tags: &ArtifactTags,
    artifact: &str,
    version: &str,
    commit: Oid,
) -> Result<()> {
    let elsewhere = tags.events.iter().find(|e| {
        e.commit != commit && matches!(&e.action, Action::Register(v) | Action::Deregister(v) if v == version)
    });
    let name = registration_tag(artifact, version);
    let other = match elsewhere {
        Some(e) => Some(e.commit.to_string()),
        None => git.find_reference(&format!("refs/tags/{name}")).ok().map(|r| {
            r.peel(ObjectType::Commit).map(|c| c.id().to_string()).unwrap_or_else(|_| "a non-commit".into())
        }),
    };
    match other {
        None => Ok(()),
        Some(at) => Err(Error::conflict(format!(
            "GTO version {version} of '{artifact}' is already taken: tag '{name}' or its registration points at {at}, not at the snapshot commit {commit}"
        ))
        .with_hint("remove or rename that tag, or register the snapshot under another version with `gto register`, then promote again")),
    }
}

/// The commits GTO has in `stage`: those whose latest assignment or unassignment for the stage is
/// an assignment. On equal times GTO counts the unassignment as the latest.
fn commits_in_stage(events: &[Event], stage: &str) -> Vec<Oid> {
    let mut latest: BTreeMap<Oid, (i64, bool)> = BTreeMap::new();
    for e in events {
        let unassign = match &e.action {
            Action::Assign(s) if s == stage => false,
            Action::Unassign(s) if s == stage => true,
            _ => continue,
        };
        let entry = latest.entry(e.commit).or_insert((e.time, unassign));
        if (e.time, unassign) > *entry {
            *entry = (e.time, unassign);
        }
    }
    latest.into_iter().filter(|(_, (_, unassign))| !unassign).map(|(commit, _)| commit).collect()
}

/// The tagger for a stage's new tags: `sig`, dated one second after the stage's latest event when
/// `sig` is not later. GTO orders a stage's events by tagger time in whole seconds, and on equal
/// times counts an unassignment as the latest, so a rollback within the second of the promotion
/// it undoes would leave GTO with no version in the stage.
fn after_stage_events(sig: &Signature<'_>, events: &[Event], stage: &str) -> Result<Signature<'static>> {
    let latest = events
        .iter()
        .filter(|e| matches!(&e.action, Action::Assign(s) | Action::Unassign(s) if s == stage))
        .map(|e| e.time)
        .max();
    let when = sig.when();
    let seconds = match latest {
        Some(t) if t >= when.seconds() => t + 1,
        _ => when.seconds(),
    };
    let name = String::from_utf8_lossy(sig.name_bytes()).into_owned();
    let email = String::from_utf8_lossy(sig.email_bytes()).into_owned();
    Signature::new(&name, &email, &git2::Time::new(seconds, when.offset_minutes()))
        .context("make the signature of the GTO tags")
}

/// Create an annotated tag named by the next free counter of the artifact. Another promotion may
/// take a counter between the scan and the write; the write never overwrites, so it takes the next.
fn create_counted(
    git: &Repository,
    artifact: &str,
    target: &git2::Object<'_>,
    sig: &Signature<'_>,
    message: &str,
    name_for: impl Fn(u64) -> String,
) -> Result<String> {
    let mut counter = 0;
    for _ in 0..COUNTER_ATTEMPTS {
        counter = (counter + 1).max(read_tags(git, artifact)?.max_counter + 1);
        let name = name_for(counter);
        match git.tag(&name, target, sig, message, false) {
            Ok(_) => return Ok(name),
            Err(e) if e.code() == ErrorCode::Exists => continue,
            Err(e) => return Err(Error::git(format!("create the GTO tag '{name}'"), e)),
        }
    }
    Err(Error::conflict(format!(
        "no free GTO counter for '{artifact}' after {COUNTER_ATTEMPTS} attempts (up to '{}')",
        name_for(counter)
    ))
    .with_hint("other promotions keep taking the counters; retry when they are done"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(artifact: &str, action: Action, counter: Option<u64>) -> Option<TagName> {
        Some(TagName { artifact: artifact.into(), action, counter })
    }

    #[test]
    fn tag_names_parse_as_gto_parses_them() {
        assert_eq!(parse_tag_name("model@v3.0.0"), parsed("model", Action::Register("v3.0.0".into()), None));
        assert_eq!(
            parse_tag_name("model@v3.0.0!"),
            parsed("model", Action::Deregister("v3.0.0".into()), None)
        );
        assert_eq!(
            parse_tag_name("model@v1.2.3-rc.1+b5#7"),
            parsed("model", Action::Register("v1.2.3-rc.1+b5".into()), Some(7))
        );
        assert_eq!(parse_tag_name("model#prod#12"), parsed("model", Action::Assign("prod".into()), Some(12)));
        assert_eq!(
            parse_tag_name("model#prod!#13"),
            parsed("model", Action::Unassign("prod".into()), Some(13))
        );
        assert_eq!(parse_tag_name("model#prod"), parsed("model", Action::Assign("prod".into()), None));
        assert_eq!(parse_tag_name("model@deprecated#4"), parsed("model", Action::Other, Some(4)));
        assert_eq!(
            parse_tag_name("cv=churn-2#dev#1"),
            parsed("cv:churn-2", Action::Assign("dev".into()), Some(1))
        );
        assert_eq!(
            parse_tag_name("my_model#pre-prod#2"),
            parsed("my_model", Action::Assign("pre-prod".into()), Some(2))
        );
    }

    #[test]
    fn tags_gto_does_not_read_are_not_parsed() {
        for name in [
            "model-v3",
            "model@3.0.0",
            "model@v3",
            "model@v03.0.0",
            "model#prod#",
            "model#pre.prod#1",
            "model#-prod#1",
            "model##1",
            "#prod#1",
            "model#prod#1#2",
        ] {
            assert_eq!(parse_tag_name(name), None, "{name}");
        }
    }

    #[test]
    fn written_names_round_trip_through_the_parser() {
        let reg = registration_tag("churn", "v3.0.0");
        assert_eq!(reg, "churn@v3.0.0");
        assert_eq!(parse_tag_name(&reg), parsed("churn", Action::Register("v3.0.0".into()), None));
        let assign = assignment_tag("churn", "prod", 5);
        assert_eq!(assign, "churn#prod#5");
        assert_eq!(parse_tag_name(&assign), parsed("churn", Action::Assign("prod".into()), Some(5)));
        let unassign = unassignment_tag("churn", "prod", 6);
        assert_eq!(unassign, "churn#prod!#6");
        assert_eq!(parse_tag_name(&unassign), parsed("churn", Action::Unassign("prod".into()), Some(6)));
        for name in [reg, assign, unassign] {
            assert!(git2::Reference::is_valid_name(&format!("refs/tags/{name}")), "{name}");
        }
    }

    #[test]
    fn versions_come_from_the_number_of_the_tag_pattern() {
        assert_eq!(version_for("{model}-v{n}", "model", "model-v3").unwrap(), "v3.0.0");
        assert_eq!(version_for("{model}-v{n}", "model", "model-v012").unwrap(), "v12.0.0");
        assert_eq!(version_for("release-{n}-{model}", "churn", "release-7-churn").unwrap(), "v7.0.0");
        assert_eq!(version_for("{model}-v{n}", "model", "model-v0").unwrap(), "v0.0.0");
    }

    #[test]
    fn a_snapshot_tag_without_a_number_has_no_version() {
        for tag in ["model-best", "model-v", "other-v3", "model-v3b", "model-v-3"] {
            let err = version_for("{model}-v{n}", "model", tag).unwrap_err();
            assert!(err.to_string().contains(tag), "{err}");
            assert!(err.hint().unwrap_or_default().contains("gto register"), "{tag}");
        }
        assert!(version_for("{model}-latest", "model", "model-latest").is_err());
    }

    #[test]
    fn gto_names_are_checked() {
        for ok in ["model", "m", "churn-2", "a_b", "team/model", "prod"] {
            assert!(check_gto_name("model", ok).is_ok(), "{ok}");
        }
        for bad in ["", "model.v2", "-model", "model-", "pre prod", "a#b", "a@b", "a:b"] {
            assert!(check_gto_name("environment", bad).is_err(), "{bad}");
        }
    }

    fn event(action: Action, commit: u8, time: i64) -> Event {
        Event { action, commit: Oid::from_bytes(&[commit; 20]).unwrap(), time }
    }

    #[test]
    fn the_latest_stage_event_of_each_commit_decides() {
        let assign = || Action::Assign("prod".into());
        let unassign = || Action::Unassign("prod".into());
        let events = vec![
            event(assign(), 1, 10),
            event(assign(), 2, 20),
            event(unassign(), 1, 20),
            event(Action::Assign("staging".into()), 3, 30),
            event(assign(), 4, 40),
            // On equal times the unassignment counts as the latest, as in GTO.
            event(unassign(), 4, 40),
        ];
        assert_eq!(commits_in_stage(&events, "prod"), vec![Oid::from_bytes(&[2; 20]).unwrap()]);
        assert_eq!(commits_in_stage(&events, "staging"), vec![Oid::from_bytes(&[3; 20]).unwrap()]);
        assert!(commits_in_stage(&events, "dev").is_empty());
    }

    #[test]
    fn write_takes_the_next_counter_when_another_promotion_took_the_planned_one() {
        let tmp = tempfile::tempdir().unwrap();
        let git = Repository::init(tmp.path()).unwrap();
        let sig = Signature::new("A", "a@x", &git2::Time::new(1_000, 0)).unwrap();
        let commit = {
            let tree = git.find_tree(git.treebuilder(None).unwrap().write().unwrap()).unwrap();
            git.commit(None, &sig, &sig, "snapshot", &tree, &[]).unwrap()
        };
        let repo = Repo::from_parts(git, crate::config::Config::default());
        let req = GtoRequest {
            model: "model".into(),
            snapshot_tag: "model-v4".into(),
            snapshot_commit: commit,
            env: "prod".into(),
            message: "promote model-v4 to prod".into(),
        };
        let plan = plan(&repo, &req).unwrap();
        assert_eq!(plan.tags, ["model@v4.0.0", "model#prod#1"]);
        assert_eq!(plan.version, "v4.0.0");
        // Between plan and write, another promotion takes counter 1 (on another stage).
        let object = repo.git().find_object(commit, None).unwrap();
        repo.git().tag("model#staging#1", &object, &sig, "other", false).unwrap();
        let written = write(&repo, &req, plan).unwrap();
        assert_eq!(written, ["model@v4.0.0", "model#prod#2"]);
        assert_eq!(annotated_target(repo.git(), "model#prod#2"), Some(commit));
    }

    #[test]
    fn stage_tags_are_dated_after_the_stage_latest_event() {
        let sig = Signature::new("A", "a@x", &git2::Time::new(100, 60)).unwrap();
        let events = vec![
            event(Action::Assign("prod".into()), 1, 100),
            event(Action::Unassign("prod".into()), 2, 101),
            event(Action::Assign("staging".into()), 3, 500),
        ];
        let dated = after_stage_events(&sig, &events, "prod").unwrap();
        assert_eq!((dated.when().seconds(), dated.when().offset_minutes()), (102, 60));
        assert_eq!(dated.name(), Some("A"));
        // Later than every event of the stage already: the time is kept.
        assert_eq!(after_stage_events(&sig, &events, "dev").unwrap().when().seconds(), 100);
    }

    #[test]
    fn a_deregistered_or_doubly_registered_commit_is_refused() {
        let tags = |events| ArtifactTags { max_counter: 0, events };
        let c = Oid::from_bytes(&[1; 20]).unwrap();
        let one = tags(vec![event(Action::Register("v1.0.0".into()), 1, 10)]);
        assert_eq!(version_at(&one, c, "m").unwrap().as_deref(), Some("v1.0.0"));
        let gone = tags(vec![
            event(Action::Register("v1.0.0".into()), 1, 10),
            event(Action::Deregister("v1.0.0".into()), 1, 10),
        ]);
        assert!(version_at(&gone, c, "m").unwrap_err().to_string().contains("deregistered"));
        let two = tags(vec![
            event(Action::Register("v1.0.0".into()), 1, 10),
            event(Action::Register("v2.0.0".into()), 1, 11),
        ]);
        assert!(version_at(&two, c, "m").unwrap_err().to_string().contains("several"));
        assert_eq!(version_at(&one, Oid::from_bytes(&[2; 20]).unwrap(), "m").unwrap(), None);
    }
}
