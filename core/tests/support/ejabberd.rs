//! A private ejabberd for the engine's XMPP tests, started by `scripts/ejabberd.sh` (its
//! configuration is `scripts/ejabberd/ejabberd.yml`). Shared by `ejabberd.rs` and
//! `ejabberd_presence.rs`.
//!
//! When ejabberd is missing and cannot be installed, the tests **fail**, unless the environment
//! variable `CUBECHAT_SKIP_EJABBERD=1` asks to skip them (then they print why and return).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The variable that lets the ejabberd tests skip on a machine without ejabberd.
pub const SKIP_VAR: &str = "CUBECHAT_SKIP_EJABBERD";

/// A running instance; stopped (and its directory removed unless a test failed) on drop.
pub struct Ejabberd {
    pub dir: PathBuf,
    pub c2s: u16,
    pub tls: u16,
    pub ca: String,
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
        if std::thread::panicking() {
            eprintln!("ejabberd logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/ejabberd.sh")
}

/// Starts an instance in a new directory named after `tag`, with `users` (`"5-7:pw5"`)
/// registered. `None` only when ejabberd is unavailable and `CUBECHAT_SKIP_EJABBERD=1`.
pub fn start(tag: &str, users: &[&str]) -> Option<Ejabberd> {
    if !Path::new("/usr/sbin/ejabberdctl").exists() {
        let out = Command::new(script()).arg("install").output();
        let ok = out.as_ref().is_ok_and(|o| o.status.success());
        if !ok {
            let why = match &out {
                Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
                println!("skipped ({SKIP_VAR}=1): ejabberd is not installed: {why}");
                return None;
            }
            panic!(
                "ejabberd is not installed and `scripts/ejabberd.sh install` failed (needs root \
                 and apt): {why}\nset {SKIP_VAR}=1 to skip the ejabberd tests on this machine"
            );
        }
    }
    let dir = std::env::temp_dir().join(format!("cubechat-ejd-{tag}-{}", std::process::id()));
    let out = Command::new(script())
        .arg("start")
        .arg(&dir)
        .args(users)
        .output()
        .unwrap();
    let mut guard = Ejabberd {
        dir: dir.clone(),
        c2s: 0,
        tls: 0,
        ca: String::new(),
    };
    assert!(
        out.status.success(),
        "ejabberd did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = std::fs::read_to_string(dir.join("env")).unwrap();
    let var = |k: &str| -> String {
        env.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap()
            .trim_matches('\'')
            .to_owned()
    };
    guard.c2s = var("EJD_C2S_PORT").parse().unwrap();
    guard.tls = var("EJD_C2S_TLS_PORT").parse().unwrap();
    guard.ca = std::fs::read_to_string(var("EJD_CA_FILE")).unwrap();
    Some(guard)
}

/// Runs ejabberdctl of the instance in `dir`; panics with its stderr when it fails.
pub fn ctl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(script())
        .arg("ctl")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
