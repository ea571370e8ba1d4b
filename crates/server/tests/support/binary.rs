//! The `flowexec` binary as a process: started with settings in its
//! environment, its stderr read line by line, stopped with a signal.
//! `scripts/test.sh` builds the tests in release mode, so this is the
//! release binary there.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// A command for the binary with no settings from the caller's
/// environment: no `DATABASE_URL`, no `RUST_LOG`, no `FLOWEXEC__*`.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flowexec"));
    command.env_remove("DATABASE_URL").env_remove("RUST_LOG");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FLOWEXEC__") {
            command.env_remove(name);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// A new organization through the CLI on the store at `url` (with the
/// PostgreSQL owner's `admin_url`): its id and admin key.
pub fn organization(
    name: &str,
    url: &str,
    admin_url: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let mut command = command();
    command
        .args(["org", "create", name, "--json"])
        .env("FLOWEXEC__DATABASE__URL", url);
    if let Some(admin_url) = admin_url {
        command.env("FLOWEXEC__DATABASE__ADMIN_URL", admin_url);
    }
    let output = command.output()?;
    anyhow::ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let text = |field: &str| created[field].as_str().unwrap_or_default().to_owned();
    Ok((text("organization_id"), text("api_key")))
}

/// `flowexec serve` running in the background.
pub struct ServerProcess {
    pub child: Child,
    pub base: String,
    /// stderr lines read so far (up to "listening on").
    pub log: Vec<String>,
    lines: Option<Receiver<String>>,
}

fn forward(stderr: ChildStderr) -> Receiver<String> {
    let (sender, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

impl ServerProcess {
    /// Starts `flowexec serve` in `dir`, bound to a free port, with `env`
    /// (e.g. `FLOWEXEC__DATABASE__URL`) and waits for "listening on" (an
    /// `info` line: `env` must not set a quieter log level).
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut command = command();
        command
            .arg("serve")
            .current_dir(dir)
            .env("FLOWEXEC__DATA_DIR", dir.join("data"))
            .env("FLOWEXEC__SERVER__BIND", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn()?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
        let lines = forward(stderr);
        let mut log = Vec::new();
        let base = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .map_err(|_| anyhow::anyhow!("the server did not start; log so far: {log:#?}"))?;
            log.push(line.clone());
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break format!("http://{}", rest.trim());
            }
        };
        Ok(Self {
            child,
            base,
            log,
            lines: Some(lines),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Stops reading stderr: once the reader's buffer is gone, the server's
    /// writes to stderr fail with EPIPE.
    pub fn close_stderr(&mut self) {
        self.lines = None;
    }

    /// Sends SIGTERM and waits for the exit: its status, how long it took,
    /// and the rest of the log.
    pub fn terminate(mut self) -> anyhow::Result<(ExitStatus, Duration, Vec<String>)> {
        let sent = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let status = self.child.wait()?;
        let took = sent.elapsed();
        if let Some(lines) = self.lines.take() {
            // The forwarding thread ends with the process's stderr.
            self.log.extend(lines.iter());
        }
        Ok((status, took, std::mem::take(&mut self.log)))
    }

    /// SIGTERM, and a clean exit required.
    pub fn stop(self) -> anyhow::Result<Vec<String>> {
        let (status, _, log) = self.terminate()?;
        anyhow::ensure!(status.success(), "exit {status:?}; log {log:#?}");
        Ok(log)
    }

    /// SIGKILL: no shutdown at all.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
