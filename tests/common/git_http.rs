//! A smart-HTTP git server on loopback for tests: lighttpd running `git http-backend` as CGI (the
//! recipe in docs and ../shared/interop/README.md), on a free port, stopped when dropped. Pushes
//! are allowed (`http.receivepack`), without authentication.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running lighttpd serving the bare repositories under `root()/repos` at `url("name.git")`.
pub struct GitHttpServer {
    dir: PathBuf,
    port: u16,
    pid: Option<i32>,
}

const LIGHTTPD: &str = "/usr/sbin/lighttpd";

impl GitHttpServer {
    /// Start one in `dir` (created). None, with a printed reason, when lighttpd is missing —
    /// except under CI (`CI=true`), where that fails the test.
    pub fn start(dir: &Path) -> Option<GitHttpServer> {
        let lighttpd = which_lighttpd();
        let Some(lighttpd) = lighttpd else {
            if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
                panic!("lighttpd is required when CI=true (apt-get install -y lighttpd)");
            }
            eprintln!("skipping: lighttpd is not installed (apt-get install -y lighttpd)");
            return None;
        };
        let exec_path = Command::new("git").arg("--exec-path").output().expect("git --exec-path");
        let exec_path = String::from_utf8_lossy(&exec_path.stdout).trim().to_string();
        std::fs::create_dir_all(dir.join("repos")).expect("repos dir");
        let port = free_port();
        let conf = dir.join("lighttpd.conf");
        let d = dir.display();
        std::fs::write(
            &conf,
            format!(
                r#"server.modules = ("mod_cgi", "mod_alias", "mod_setenv")
server.document-root = "{d}"
server.bind = "127.0.0.1"
server.port = {port}
server.pid-file = "{d}/lighttpd.pid"
server.errorlog = "{d}/error.log"
alias.url = ("/git/" => "{exec_path}/git-http-backend/")
$HTTP["url"] =~ "^/git/" {{
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{d}/repos", "GIT_HTTP_EXPORT_ALL" => "1", "GIT_CONFIG_NOSYSTEM" => "1")
}}
"#
            ),
        )
        .expect("write lighttpd.conf");
        let status = Command::new(&lighttpd).arg("-f").arg(&conf).status().expect("start lighttpd");
        assert!(status.success(), "lighttpd did not start: see {}", dir.join("error.log").display());
        let mut server = GitHttpServer { dir: dir.to_path_buf(), port, pid: None };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(pid) =
                std::fs::read_to_string(dir.join("lighttpd.pid")).ok().and_then(|p| p.trim().parse().ok())
            {
                server.pid = Some(pid);
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(server);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("lighttpd did not listen on port {port}");
    }

    /// A new empty bare repository `name` (e.g. "proj.git") that accepts pushes; returns its URL.
    pub fn create_repo(&self, name: &str) -> String {
        let path = self.dir.join("repos").join(name);
        let ok = Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&path)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .expect("git init --bare")
            .success();
        assert!(ok);
        let ok = Command::new("git")
            .args(["config", "http.receivepack", "true"])
            .current_dir(&path)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .expect("git config")
            .success();
        assert!(ok);
        self.url(name)
    }

    /// The URL of repository `name`.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/git/{name}", self.port)
    }

    /// The folder of repository `name` on the server's disk.
    pub fn repo_path(&self, name: &str) -> PathBuf {
        self.dir.join("repos").join(name)
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // SAFETY: signals the server this harness started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
}

fn which_lighttpd() -> Option<PathBuf> {
    if Path::new(LIGHTTPD).exists() {
        return Some(PathBuf::from(LIGHTTPD));
    }
    let out = Command::new("sh").args(["-c", "command -v lighttpd"]).output().ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}
