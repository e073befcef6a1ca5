//! The real `pertinent` binary as a child process, for what only a process of its own shows:
//! its log, its metrics registry, its trace export at shutdown.

use std::time::Duration;

/// The real binary as a child process, logging JSON to a pipe, on ports it picked itself.
pub struct Child {
    process: std::process::Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    /// The gRPC address, and the /metrics one when `--metrics-listen` was given.
    pub addr: String,
    pub metrics: Option<String>,
}

impl Child {
    /// Starts `pertinent serve` with `args` added; returns once it printed its addresses.
    pub fn start(args: &[&str]) -> Child {
        use std::io::BufRead;
        let mut process = std::process::Command::new(env!("CARGO_BIN_EXE_pertinent"))
            .arg("serve")
            .args([
                "--listen",
                "127.0.0.1:0",
                "--print-address",
                "--log-format",
                "json",
            ])
            .args(["--log-filter", "pertinent=trace,info"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (found, addr) = std::sync::mpsc::channel();
        for pipe in [
            Box::new(process.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(process.stderr.take().unwrap()),
        ] {
            let (log, found) = (log.clone(), found.clone());
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(a) = line.strip_prefix("listening on ") {
                        let _ = found.send(("grpc", a.to_owned()));
                    }
                    if let Some(a) = line.strip_prefix("metrics on ") {
                        let _ = found.send(("metrics", a.to_owned()));
                    }
                    let mut all = log.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        let wants_metrics = args.contains(&"--metrics-listen");
        let (mut grpc, mut metrics) = (None, None);
        while grpc.is_none() || (wants_metrics && metrics.is_none()) {
            let (what, at) = addr
                .recv_timeout(Duration::from_secs(120))
                .expect("the service says where it listens");
            match what {
                "grpc" => grpc = Some(at),
                _ => metrics = Some(at),
            }
        }
        Child {
            process,
            log,
            addr: grpc.expect("a gRPC address"),
            metrics,
        }
    }

    /// SIGTERM (a graceful stop that drains, then flushes the log), SIGKILL after 30 s.
    pub fn stop(mut self) -> String {
        // SAFETY: signalling a child this test started and still owns.
        unsafe { libc::kill(self.process.id() as i32, libc::SIGTERM) };
        for _ in 0..300 {
            if let Ok(Some(_)) = self.process.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(200));
        self.log.lock().unwrap().clone()
    }
}

impl Child {
    /// SIGKILL, as a crash or an OOM kill would: nothing is flushed, nothing drains.
    pub fn kill(mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    /// SIGTERM, then waits (at most 30 s) for the process to exit; its exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        // SAFETY: signalling a child this test started and still owns.
        unsafe { libc::kill(self.process.id() as i32, libc::SIGTERM) };
        for _ in 0..300 {
            if let Ok(Some(status)) = self.process.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
