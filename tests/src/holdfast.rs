//! Starting the real `holdfast` runner with a generated `pushpin.conf` on free loopback ports.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, temp_dir, wait_until};

/// Where the Holdfast binaries are: `HOLDFAST_BIN_DIR`, else the profile directory the test
/// executable was built into (`target/<profile>/deps/..`).
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("HOLDFAST_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current exe");
    let deps = exe.parent().expect("deps dir");
    let dir = deps.parent().expect("profile dir").to_path_buf();
    assert!(
        dir.join("holdfast").exists(),
        "holdfast binaries not found in {}: run `cargo build --release` (or tools/test.sh) first",
        dir.display()
    );
    dir
}

/// Path of one Holdfast binary.
pub fn binary(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// Builds a config and starts Holdfast with it.
#[derive(Default)]
pub struct HoldfastBuilder {
    routes: Vec<String>,
    route_flags: Vec<String>,
    lines: Vec<(String, String)>,
    args: Vec<String>,
    no_routes_file: bool,
}

impl HoldfastBuilder {
    /// Adds a line to the routes file.
    pub fn route(mut self, line: &str) -> Self {
        self.routes.push(line.to_string());
        self
    }

    /// Adds a `--route` flag (replaces the routes file).
    pub fn route_flag(mut self, line: &str) -> Self {
        self.route_flags.push(line.to_string());
        self
    }

    /// Adds `key=value` to `[section]`.
    pub fn config(mut self, section: &str, line: &str) -> Self {
        self.lines.push((section.to_string(), line.to_string()));
        self
    }

    /// Adds a runner argument.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    /// Leaves `routesfile` out of the config.
    pub fn without_routes_file(mut self) -> Self {
        self.no_routes_file = true;
        self
    }

    /// Writes the config and starts the runner; returns once the client port accepts
    /// connections.
    pub fn start(self) -> Holdfast {
        let holdfast = self.start_without_wait();
        let port = holdfast.port;
        let ready = wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(
            ready,
            "holdfast did not start listening; log:\n{}",
            holdfast.log_text()
        );
        holdfast
    }

    /// Writes the config and starts the runner without waiting for it to listen.
    pub fn start_without_wait(self) -> Holdfast {
        let dir = temp_dir("holdfast");
        let port = free_port();
        let publish_port = free_port();
        let mut sections: Vec<(&str, Vec<String>)> = vec![
            (
                "global",
                vec![
                    format!("rundir={}", dir.join("run").display()),
                    "ipc_prefix=t-".into(),
                ],
            ),
            (
                "runner",
                vec![
                    "services=condure,pushpin-proxy,pushpin-handler".into(),
                    format!("http_port=127.0.0.1:{port}"),
                    "log_level=2".into(),
                    "client_buffer_size=8192".into(),
                    "client_maxconn=1000".into(),
                ],
            ),
            (
                "proxy",
                if self.no_routes_file {
                    vec![]
                } else {
                    vec!["routesfile=routes".into()]
                },
            ),
            (
                "handler",
                vec![
                    format!("push_in_spec=tcp://127.0.0.1:{}", free_port()),
                    format!("push_in_sub_specs=tcp://127.0.0.1:{}", free_port()),
                    "push_in_http_addr=127.0.0.1".into(),
                    format!("push_in_http_port={publish_port}"),
                    format!("command_spec=tcp://127.0.0.1:{}", free_port()),
                ],
            ),
        ];
        for (section, line) in &self.lines {
            match sections.iter_mut().find(|(s, _)| s == section) {
                Some((_, lines)) => {
                    let key = line.split('=').next().unwrap_or("");
                    lines.retain(|l| l.split('=').next() != Some(key));
                    lines.push(line.clone());
                }
                None => panic!("unknown section {section}"),
            }
        }
        let mut text = String::new();
        for (section, lines) in &sections {
            text.push_str(&format!("[{section}]\n"));
            for line in lines {
                text.push_str(line);
                text.push('\n');
            }
            text.push('\n');
        }
        let config = dir.join("pushpin.conf");
        std::fs::write(&config, text).expect("write config");
        std::fs::write(dir.join("routes"), self.routes.join("\n") + "\n").expect("write routes");

        let log = dir.join("holdfast.log");
        let out = File::create(&log).expect("create log");
        let mut command = Command::new(binary("holdfast"));
        command
            .arg(format!("--config={}", config.display()))
            .arg("-m");
        for route in &self.route_flags {
            command.arg(format!("--route={route}"));
        }
        command.args(&self.args);
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone"))
            .stderr(out)
            .spawn()
            .expect("start holdfast");
        Holdfast {
            child: Some(child),
            port,
            publish_port,
            dir,
            log,
        }
    }
}

/// A running Holdfast (runner + connmgr + handler); stopped when dropped.
pub struct Holdfast {
    child: Option<Child>,
    /// The client HTTP port.
    pub port: u16,
    /// The HTTP publish (control API) port.
    pub publish_port: u16,
    /// The instance's directory (config, routes, run/, holdfast.log).
    pub dir: PathBuf,
    log: PathBuf,
}

impl Holdfast {
    /// A builder with an empty routes file.
    pub fn builder() -> HoldfastBuilder {
        HoldfastBuilder::default()
    }

    /// Everything the runner and its children logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The runner's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The pid a child wrote into the rundir (`holdfast-handler` or `holdfast-connmgr`).
    pub fn child_pid(&self, program: &str) -> u32 {
        let path = self.dir.join("run").join(format!("{program}.pid"));
        let mut text = String::new();
        wait_until(Duration::from_secs(5), || {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            !text.trim().is_empty()
        });
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("no pid in {}", path.display()))
    }

    /// Path of the routes file.
    pub fn routes_path(&self) -> PathBuf {
        self.dir.join("routes")
    }

    /// Sends a signal (by name, e.g. "TERM", "HUP", "KILL") to the runner.
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// Waits up to `timeout` for the runner to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log_text().contains(needle))
    }

    /// The directory of this instance.
    pub fn path(&self, name: &str) -> PathBuf {
        Path::new(&self.dir).join(name)
    }
}

impl Drop for Holdfast {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(12);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `kill -<signal> <pid>`.
pub fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

/// True if a process with this pid exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.split(' ').nth(2).is_none_or(|state| state != "Z"),
        Err(_) => false,
    }
}
