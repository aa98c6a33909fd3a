//! A wheel of the mlgit under test, for the CI templates' `pip install "mlgit==$MLGIT_VERSION"`
//! (tests/ci_templates.rs, tests/small_fixes.rs run the template jobs for real).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use std::fs;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A folder holding a wheel `mlgit-<Cargo.toml's version>` whose script is the mlgit under test,
/// for the jobs' `pip install "mlgit==$MLGIT_VERSION"` (there is no mlgit on an index here; the
/// wheel maturin builds is tested in tests/wheel.rs). Written once per test process under
/// target/tmp (under a temporary name, then renamed: another test process may be reading the
/// folder), stored uncompressed so it costs a copy of the (stripped) binary.
pub fn mlgit_wheel_folder() -> &'static Path {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ci-templates-wheels");
        fs::create_dir_all(&dir).unwrap();
        let script = r#"
import os, subprocess, sys, sysconfig, zipfile
out, binary, version = sys.argv[1], sys.argv[2], sys.argv[3]
# Without its debug info the binary is a tenth of the size each job's venv copies.
stripped = os.path.join(out, ".stripped-%d" % os.getpid())
try:
    if subprocess.run(["strip", "-o", stripped, binary], capture_output=True).returncode == 0:
        binary = stripped
except OSError:
    pass
tag = sysconfig.get_platform().replace("-", "_").replace(".", "_")
d = "mlgit-%s.dist-info/" % version
partial = os.path.join(out, ".partial-%d" % os.getpid())
with zipfile.ZipFile(partial, "w") as z:
    info = zipfile.ZipInfo("mlgit-%s.data/scripts/mlgit" % version)
    info.external_attr = 0o100755 << 16
    with open(binary, "rb") as f, z.open(info, "w", force_zip64=True) as w:
        while chunk := f.read(1 << 20):
            w.write(chunk)
    z.writestr(d + "METADATA", "Metadata-Version: 2.1\nName: mlgit\nVersion: %s\n" % version)
    z.writestr(d + "WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: py3-none-%s\n" % tag)
    z.writestr(d + "RECORD", "".join(n + ",,\n" for n in z.namelist() + [d + "RECORD"]))
os.replace(partial, os.path.join(out, "mlgit-%s-py3-none-%s.whl" % (version, tag)))
if binary == stripped:
    os.remove(stripped)
"#;
        let bin = assert_cmd::cargo::cargo_bin("mlgit");
        let out = Command::new("python3")
            .args(["-c", script])
            .arg(&dir)
            .arg(&bin)
            .arg(env!("CARGO_PKG_VERSION"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        dir
    })
}
