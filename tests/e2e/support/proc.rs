//! The real `xcbench` binary as child processes that are killed (and reaped) on drop, the
//! temporary directories their configs live in, and the JSON a command prints.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The `xcbench` binary under test: `XCBENCH_BIN` when set (scripts/test points it at the
/// release build, the binary users run and the package holds), else the debug one cargo
/// built beside this test binary.
pub(crate) fn bin() -> &'static str {
    static BIN_PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN_PATH.get_or_init(|| {
        std::env::var("XCBENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_xcbench").to_owned())
    })
}

/// A directory removed on drop.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xcbench-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (and reaped) on drop.
pub(crate) struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub(crate) fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Proc {
            child,
            name: name.to_owned(),
        }
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns the output.
    pub(crate) fn terminate(mut self, within: Duration) -> Output {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let child = std::mem::replace(
            &mut self.child,
            Command::new("true").spawn().expect("spawn true"),
        );
        child.wait_with_output().expect("wait")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERMs every process at once (agents that stop together drain cleanly) and asserts that
/// each exits successfully.
pub(crate) fn terminate_all(procs: Vec<Proc>) {
    let outs: Vec<(String, Output)> = std::thread::scope(|s| {
        let handles: Vec<_> = procs
            .into_iter()
            .map(|p| s.spawn(move || (p.name.clone(), p.terminate(Duration::from_secs(10)))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (name, o) in outs {
        if std::env::var_os("XCBENCH_TEST_LOGS").is_some() {
            eprintln!("--- {name} stderr:\n{}", String::from_utf8_lossy(&o.stderr));
        }
        assert!(
            o.status.success(),
            "{name} exit {:?}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// The JSON a command printed on stdout, once it succeeded (its stderr shown if not).
pub(crate) fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON only on stdout")
}
