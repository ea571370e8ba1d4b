//! A PostgreSQL cluster of one test's own, in a temporary folder, on a free
//! loopback port: for tests that stop and start the database itself. It
//! needs PostgreSQL's server binaries (`initdb`, `pg_ctl`): found through
//! `FLOWEXEC_PG_BIN`, `pg_config --bindir`, or the newest
//! `/usr/lib/postgresql/*/bin`; `scripts/test.sh` installs them when
//! missing.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::Context;
use url::Url;

pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

/// Where `initdb` and `pg_ctl` are.
fn server_binaries() -> anyhow::Result<PathBuf> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file();
    if let Some(dir) = std::env::var_os("FLOWEXEC_PG_BIN").map(PathBuf::from) {
        anyhow::ensure!(
            has_initdb(&dir),
            "FLOWEXEC_PG_BIN={} has no initdb",
            dir.display()
        );
        return Ok(dir);
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_initdb(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_initdb(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).context(
        "this test needs PostgreSQL's server binaries (initdb, pg_ctl) to run a cluster of its own: \
         apt-get install -y postgresql, or set FLOWEXEC_PG_BIN to their folder",
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Cluster {
    /// Creates and starts a cluster (superuser `postgres`, trust
    /// authentication, loopback only).
    pub fn start() -> anyhow::Result<Self> {
        let bin = server_binaries()?;
        let dir =
            std::env::temp_dir().join(format!("flowexec-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let cluster = Self { dir, bin, port };
        if is_root() {
            // PostgreSQL refuses to run as root: its own account runs it.
            if !Command::new("id")
                .arg("postgres")
                .output()?
                .status
                .success()
            {
                cluster.run(Command::new("useradd").args(["--system", "postgres"]))?;
            }
            cluster.run(Command::new("chown").arg("postgres").arg(&cluster.dir))?;
        }
        cluster.run(
            cluster
                .server_command("initdb")
                .arg("-D")
                .arg(cluster.dir.join("data"))
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        )?;
        cluster.up()?;
        Ok(cluster)
    }

    /// The superuser URL of its `postgres` database.
    pub fn url(&self) -> anyhow::Result<Url> {
        Ok(Url::parse(&format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.port
        ))?)
    }

    /// Stops the server at once (`-m immediate`: like a crash, every
    /// session cut).
    pub fn down(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"])
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn up(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        self.pg_ctl(&[
            "-w",
            "-t",
            "60",
            "-l",
            &log.to_string_lossy(),
            "-o",
            &options,
            "start",
        ])
    }

    fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        self.run(
            self.server_command("pg_ctl")
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(args),
        )
        .map(|_| ())
    }

    /// A command for one of the server binaries, as the `postgres` account
    /// when this runs as root.
    fn server_command(&self, binary: &str) -> Command {
        let program = self.bin.join(binary);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn run(&self, command: &mut Command) -> anyhow::Result<Output> {
        let output = command
            .output()
            .with_context(|| format!("cannot run {command:?}"))?;
        anyhow::ensure!(
            output.status.success(),
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(output)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
