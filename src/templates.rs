//! Repository templates for `mlgit init`: the built-in one (embedded in the binary, so init works
//! offline from the single binary), a local folder, or a git repository cloned with libgit2.
//!
//! Layout of a template: `main/` (files committed on main, including `mlgit.yaml`), `dev/` (the code
//! skeleton added on the dev branch), `branches/<raw|clean|split|monitoring|env>.md` (the README
//! of each orphan branch). Text files may use `{{project_name}}` and, in `branches/`, `{{branch}}`
//! (and `{{env}}` in `env.md`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use include_dir::{include_dir, Dir};

use crate::error::{Error, Result};
use crate::repo::tree::validate_path;

static BUILTIN_DEFAULT: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates/default");

/// The built-in template names.
pub const BUILTIN_NAMES: &[&str] = &["default"];

/// A file of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFile {
    pub content: Vec<u8>,
    pub executable: bool,
}

/// A loaded template: every file by its '/'-separated path relative to the template root.
#[derive(Debug, Clone)]
pub struct Template {
    /// How the template was named (built-in name, path or URL), for messages.
    pub source: String,
    files: BTreeMap<String, TemplateFile>,
}

impl Template {
    /// Load a template by built-in name, local path or git URL (None: the built-in default).
    pub fn load(spec: Option<&str>) -> Result<Template> {
        let spec = spec.unwrap_or("default");
        let template = if BUILTIN_NAMES.contains(&spec) && !Path::new(spec).exists() {
            Template::builtin(spec)
        } else if looks_like_url(spec) {
            Template::from_git(spec)?
        } else {
            Template::from_dir(Path::new(spec))?
        };
        if !template.files.keys().any(|p| p.starts_with("main/")) {
            return Err(Error::invalid(format!("template {} has no main/ folder", template.source)).with_hint(
                "a template holds main/ (files for the main branch), and optionally dev/ and branches/; see docs/init.md",
            ));
        }
        template.check_paths()?;
        Ok(template)
    }

    /// Every file init will commit must be storable in a git tree: checked here, before init
    /// writes anything, so a bad template is refused with nothing created.
    fn check_paths(&self) -> Result<()> {
        for path in self.files.keys() {
            let Some(rel) = path.strip_prefix("main/").or_else(|| path.strip_prefix("dev/")) else {
                continue;
            };
            if let Err(e) = validate_path(rel) {
                return Err(Error::invalid(format!(
                    "template {} has a file that cannot be committed: {path:?} ({})",
                    self.source,
                    e.message()
                ))
                .with_hint("rename or remove that file in the template, then run `mlgit init` again"));
            }
        }
        Ok(())
    }

    fn builtin(name: &str) -> Template {
        let mut files = BTreeMap::new();
        collect_embedded(&BUILTIN_DEFAULT, &mut files);
        Template { source: format!("built-in '{name}'"), files }
    }

    fn from_dir(dir: &Path) -> Result<Template> {
        let meta = fs::metadata(dir).map_err(|e| {
            Error::io("read the template folder", dir, e)
                .with_hint("give a built-in name (default), a folder with a main/ subfolder, or a git URL")
        })?;
        if !meta.is_dir() {
            return Err(Error::invalid(format!("template {} is not a folder", dir.display())));
        }
        let mut files = BTreeMap::new();
        for entry in walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name() {
            let entry =
                entry.map_err(|e| Error::invalid(format!("cannot read template {}: {e}", dir.display())))?;
            let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
            if rel.components().next().is_some_and(|c| c.as_os_str() == ".git") {
                continue;
            }
            if !entry.file_type().is_file() {
                continue;
            }
            let Some(rel) = rel.to_str() else {
                return Err(Error::invalid(format!("template file name is not UTF-8: {}", rel.display())));
            };
            let content = fs::read(entry.path()).map_err(|e| Error::io("read", entry.path(), e))?;
            use std::os::unix::fs::PermissionsExt;
            let executable = entry.metadata().map(|m| m.permissions().mode() & 0o111 != 0).unwrap_or(false);
            files.insert(rel.replace('\\', "/"), TemplateFile { content, executable });
        }
        Ok(Template { source: dir.display().to_string(), files })
    }

    fn from_git(url: &str) -> Result<Template> {
        let tmp =
            tempfile::tempdir().map_err(|e| Error::io("create a temporary folder", Path::new("/tmp"), e))?;
        // The git CLI, not libgit2: it speaks every transport and uses the user's credential
        // helpers and SSH set-up (mlgit's libgit2 is built without network transports).
        let dest = tmp.path().join("template");
        let cmd = crate::process::ChildCommand::new("git", tmp.path())
            .args(["clone", "--quiet", "--depth", "1", "--"])
            .arg(url)
            .arg(&dest);
        let out = crate::process::run_captured(&cmd, b"", &Default::default(), "`git clone`")?;
        if !out.success() {
            return Err(Error::not_found(format!(
                "cannot clone the template repository {url}: {}",
                out.stderr_text()
            ))
            .with_hint(
                "check the URL and your access to it (`git clone <url>` should work), or use a local folder",
            ));
        }
        let mut t = Template::from_dir(&dest)?;
        t.source = url.to_string();
        Ok(t)
    }

    /// The files under `prefix/` (e.g. "main", "dev"), paths relative to it.
    pub fn files_under(&self, prefix: &str) -> Vec<(String, &TemplateFile)> {
        let pre = format!("{prefix}/");
        self.files.iter().filter_map(|(p, f)| p.strip_prefix(&pre).map(|rel| (rel.to_string(), f))).collect()
    }

    /// A single file by its path in the template.
    pub fn file(&self, path: &str) -> Option<&TemplateFile> {
        self.files.get(path)
    }
}

fn collect_embedded(dir: &Dir<'static>, out: &mut BTreeMap<String, TemplateFile>) {
    for file in dir.files() {
        let Some(path) = file.path().to_str() else { continue };
        let content = file.contents().to_vec();
        // The embedded copy keeps no modes: scripts are the files that start with a shebang.
        let executable = content.starts_with(b"#!");
        out.insert(path.to_string(), TemplateFile { content, executable });
    }
    for sub in dir.dirs() {
        collect_embedded(sub, out);
    }
}

fn looks_like_url(spec: &str) -> bool {
    spec.contains("://") || (spec.starts_with("git@") && spec.contains(':'))
}

/// Replace `{{name}}` placeholders in text content; binary content is returned unchanged.
pub fn render(content: &[u8], vars: &[(&str, &str)]) -> Vec<u8> {
    match std::str::from_utf8(content) {
        Ok(text) if text.contains("{{") => {
            let mut out = text.to_string();
            for (k, v) in vars {
                out = out.replace(&format!("{{{{{k}}}}}"), v);
            }
            out.into_bytes()
        }
        _ => content.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_template_has_main_dev_and_branch_readmes() {
        let t = Template::load(None).unwrap();
        let main: Vec<String> = t.files_under("main").into_iter().map(|(p, _)| p).collect();
        for needed in ["README.md", "mlgit.yaml", "docs/data.md", "docs/branches.md", ".gitignore"] {
            assert!(main.contains(&needed.to_string()), "main/{needed} missing: {main:?}");
        }
        assert!(t.file("dev/train.sh").is_some_and(|f| f.executable));
        for b in ["raw", "clean", "split", "monitoring", "env"] {
            assert!(t.file(&format!("branches/{b}.md")).is_some(), "branches/{b}.md");
        }
    }

    #[test]
    fn render_replaces_known_placeholders_only() {
        let out = render(
            b"# {{project_name}} on {{branch}} {{other}}",
            &[("project_name", "churn"), ("branch", "raw")],
        );
        assert_eq!(out, b"# churn on raw {{other}}");
        assert_eq!(render(&[0xff, b'{', b'{'], &[("a", "b")]), vec![0xff, b'{', b'{']);
    }

    #[test]
    fn a_folder_without_main_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("dev")).unwrap();
        fs::write(dir.path().join("dev/x"), "x").unwrap();
        let err = Template::load(dir.path().to_str()).unwrap_err();
        assert!(err.message().contains("has no main/"), "{}", err.message());
    }
}
