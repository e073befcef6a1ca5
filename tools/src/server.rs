//! `pertinent serve` as a child process, for the tools: on 127.0.0.1:0 with a fresh data
//! directory. The real address is the line the service prints with `--print-address`, and the
//! service is ready when the health Watch stream says SERVING: no fixed port, no sleep loop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The line prefix `pertinent serve --print-address` writes to stdout once it is bound.
const ADDRESS_LINE: &str = "listening on ";
/// Longest the service may take to load its model, open its store and turn SERVING.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// The service whose health says the model and the store both answer.
const READY_SERVICE: &str = "pertinent.v1.ScoringService";

/// The `pertinent` binary beside the running tool (cargo builds both into one target folder),
/// unless `given`.
pub fn pertinent_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()?.with_file_name("pertinent"),
    };
    anyhow::ensure!(
        path.is_file(),
        "no pertinent binary at {} (build the workspace, or give --pertinent)",
        path.display()
    );
    Ok(path)
}

/// A running `pertinent serve`; dropping it kills the process and removes its data.
pub struct ChildServer {
    child: Child,
    addr: SocketAddr,
    _data: tempfile::TempDir,
}

impl ChildServer {
    /// Starts `binary serve` with `args` added, and returns once it is SERVING.
    pub async fn start(binary: &Path, args: &[String]) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let mut child = Command::new(binary)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--print-address",
                "--data-dir",
            ])
            .arg(data.path())
            .args(args)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} serve", binary.display()))?;
        let stdout = child.stdout.take().context("the child's stdout")?;
        let addr = tokio::time::timeout(START_TIMEOUT, read_address(stdout))
            .await
            .context("the service printed no address in time")??;
        let server = Self {
            child,
            addr,
            _data: data,
        };
        tokio::time::timeout(START_TIMEOUT, server.wait_serving())
            .await
            .context("the service did not turn SERVING in time")??;
        Ok(server)
    }

    /// The address the service is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A new connection to the service.
    pub async fn connect(&self) -> anyhow::Result<Channel> {
        Channel::from_shared(format!("http://{}", self.addr))?
            .connect()
            .await
            .context("connecting to the service")
    }

    async fn wait_serving(&self) -> anyhow::Result<()> {
        let mut health = HealthClient::new(self.connect().await?);
        let mut updates = health
            .watch(HealthCheckRequest {
                service: READY_SERVICE.into(),
            })
            .await?
            .into_inner();
        while let Some(update) = updates.message().await? {
            if update.status == ServingStatus::Serving as i32 {
                return Ok(());
            }
        }
        anyhow::bail!("the health stream ended before the service was SERVING")
    }

    /// CPU time the service has used so far (user + system), from /proc.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()?)).ok()?;
        // The fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf only reads a system constant.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        (per_second > 0).then(|| Duration::from_secs_f64(ticks as f64 / per_second as f64))
    }

    /// The service's peak resident memory so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }
}

/// Reads the child's stdout up to the address line, then passes the rest (its log lines) on to
/// stderr, so that the pipe never fills.
async fn read_address(stdout: ChildStdout) -> anyhow::Result<SocketAddr> {
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        let Some(addr) = line.strip_prefix(ADDRESS_LINE) else {
            eprintln!("{line}");
            continue;
        };
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .with_context(|| format!("the service printed an address that is none: {line:?}"))?;
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{line}");
            }
        });
        return Ok(addr);
    }
    anyhow::bail!("the service exited before it was listening (its log is above)")
}
