//! Starting, watching and stopping the children.
//!
//! Every outside happening (a signal, a child's exit) becomes an [`Event`] on one channel, so
//! the supervisor is a single loop over events with no shared state and no races between "a
//! child died" and "we were asked to stop".

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::plan::{ChildSpec, Plan, Service};
use super::sys;
use crate::log::{Level, Sink};

/// How long children get to finish their work after SIGTERM before they are killed. Longer than
/// the children's own drain deadlines (5 s) so a clean stop is never cut short.
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// Something the supervisor must react to.
#[derive(Debug)]
enum Event {
    /// The runner received a signal.
    Signal(i32),
    /// A child exited.
    Exited(Service, std::io::Result<ExitStatus>),
}

/// A started child.
struct Running {
    service: Service,
    pid: u32,
    pid_file: PathBuf,
    exited: bool,
}

/// Owns the children from start to exit.
pub struct Supervisor {
    plan: Plan,
    sink: Sink,
}

impl Supervisor {
    /// A supervisor for `plan`, logging to `sink`.
    pub fn new(plan: Plan, sink: Sink) -> Self {
        Self { plan, sink }
    }

    /// Starts the children and supervises them until everything has stopped.
    pub fn run(self) -> ExitCode {
        let (tx, rx) = mpsc::channel();
        let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(signals) => signals,
            Err(err) => {
                self.sink.log(
                    Level::Error,
                    &format!("cannot install signal handlers: {err}"),
                );
                return ExitCode::from(1);
            }
        };
        let signal_tx = tx.clone();
        thread::spawn(move || {
            for signal in signals.forever() {
                if signal_tx.send(Event::Signal(signal)).is_err() {
                    break;
                }
            }
        });

        for dir in std::iter::once(&self.plan.rundir).chain(self.plan.logdir.iter()) {
            if let Err(err) = std::fs::create_dir_all(dir) {
                self.sink.log(
                    Level::Error,
                    &format!("cannot create directory {}: {err}", dir.display()),
                );
                return ExitCode::from(1);
            }
        }

        let mut running = Vec::new();
        for spec in &self.plan.children {
            match self.start(spec, &tx) {
                Ok(child) => running.push(child),
                Err(err) => {
                    self.sink.log(
                        Level::Error,
                        &format!("cannot start {}: {err}", spec.service.program()),
                    );
                    stop_all(&mut running, &rx, &self.sink, Stop::Now);
                    return ExitCode::from(1);
                }
            }
        }
        self.sink.log(Level::Info, "started");
        let code = self.supervise(&mut running, &rx);
        for child in &running {
            let _ = std::fs::remove_file(&child.pid_file);
        }
        code
    }

    fn supervise(&self, running: &mut [Running], rx: &Receiver<Event>) -> ExitCode {
        loop {
            let Ok(event) = rx.recv() else {
                return ExitCode::from(1);
            };
            match event {
                Event::Signal(SIGHUP) => {
                    self.sink.log(Level::Info, "SIGHUP: reloading routes");
                    for child in running
                        .iter()
                        .filter(|c| c.service == Service::Handler && !c.exited)
                    {
                        sys::kill(child.pid, SIGHUP);
                    }
                }
                Event::Signal(_) => {
                    self.sink.log(Level::Info, "stopping...");
                    let clean = stop_all(running, rx, &self.sink, Stop::Drain);
                    self.sink.log(Level::Info, "stopped");
                    return if clean {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    };
                }
                Event::Exited(service, status) => {
                    mark_exited(running, service);
                    self.sink.log(
                        Level::Error,
                        &format!(
                            "{} exited unexpectedly ({}); stopping the other processes now",
                            service.program(),
                            describe(&status)
                        ),
                    );
                    stop_all(running, rx, &self.sink, Stop::Now);
                    return ExitCode::from(1);
                }
            }
        }
    }

    fn start(&self, spec: &ChildSpec, tx: &Sender<Event>) -> std::io::Result<Running> {
        let program = binary_path(spec.service.program());
        let mut command = Command::new(&program);
        command.args(&spec.args).stdin(Stdio::null());
        sys::die_with_parent(&mut command);
        match &spec.log_file {
            Some(path) => {
                let file = open_append(path)?;
                command.stdout(file.try_clone()?).stderr(file);
            }
            None => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
        }
        self.sink.log(
            Level::Debug,
            &format!("starting {} {}", program.display(), spec.args.join(" ")),
        );
        let mut child = command.spawn().map_err(|err| {
            std::io::Error::new(err.kind(), format!("{}: {err}", program.display()))
        })?;
        if let Some(out) = child.stdout.take() {
            relay(out, self.sink.clone());
        }
        if let Some(err) = child.stderr.take() {
            relay(err, self.sink.clone());
        }
        let pid = child.id();
        if let Err(err) = std::fs::write(&spec.pid_file, format!("{pid}\n")) {
            self.sink.log(
                Level::Warn,
                &format!("cannot write {}: {err}", spec.pid_file.display()),
            );
        }
        self.sink.log(
            Level::Info,
            &format!("started {} (pid {pid})", spec.service.program()),
        );
        wait_in_background(child, spec.service, tx.clone());
        Ok(Running {
            service: spec.service,
            pid,
            pid_file: spec.pid_file.clone(),
            exited: false,
        })
    }
}

/// How the children are asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// One SIGTERM: each child stops accepting and drains within its own deadline.
    Drain,
    /// SIGTERM then SIGINT: each child takes the second as "stop at once" and closes its client
    /// connections now. Used when the other child died: the survivor's sessions can no longer
    /// make progress (a connmgr without its handler never gets the responses it waits for; a
    /// handler without its connmgr has no clients left), so draining would only keep clients
    /// hanging for the whole drain deadline. Two different signals, so that the kernel cannot
    /// merge them into one pending signal.
    Now,
}

/// Asks every running child to stop, waits up to [`STOP_DEADLINE`], then kills what is left. A
/// second SIGINT/SIGTERM kills at once. Returns true if every child exited cleanly in time.
fn stop_all(running: &mut [Running], rx: &Receiver<Event>, sink: &Sink, how: Stop) -> bool {
    for child in running.iter().filter(|c| !c.exited) {
        sys::kill(child.pid, SIGTERM);
        if how == Stop::Now {
            sys::kill(child.pid, SIGINT);
        }
    }
    let deadline = Instant::now() + STOP_DEADLINE;
    let mut clean = true;
    while running.iter().any(|c| !c.exited) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Event::Exited(service, status)) => {
                mark_exited(running, service);
                if ended_by_stop_signal(&status, how) {
                    // The stop signal arrived before the child had installed its handlers
                    // (a stop right after start): it had nothing in flight to finish.
                    sink.log(
                        Level::Info,
                        &format!("{} stopped ({})", service.program(), describe(&status)),
                    );
                } else if !matches!(&status, Ok(s) if s.success()) {
                    clean = false;
                    sink.log(
                        Level::Warn,
                        &format!("{} stopped ({})", service.program(), describe(&status)),
                    );
                }
            }
            Ok(Event::Signal(SIGHUP)) => {}
            Ok(Event::Signal(_)) => {
                sink.log(
                    Level::Warn,
                    "second signal: killing the remaining processes",
                );
                kill_remaining(running);
                clean = false;
            }
            Err(RecvTimeoutError::Timeout) => {
                sink.log(Level::Warn, "processes did not stop in time; killing them");
                kill_remaining(running);
                clean = false;
            }
            Err(RecvTimeoutError::Disconnected) => return false,
        }
    }
    clean
}

/// Whether `status` is death by the signal `stop_all` sent for `how` (SIGTERM, or SIGINT too for
/// [`Stop::Now`]): what a child that has not yet installed its signal handlers does with it.
fn ended_by_stop_signal(status: &std::io::Result<ExitStatus>, how: Stop) -> bool {
    use std::os::unix::process::ExitStatusExt;
    match status.as_ref().ok().and_then(ExitStatus::signal) {
        Some(SIGTERM) => true,
        Some(SIGINT) => how == Stop::Now,
        _ => false,
    }
}

fn kill_remaining(running: &[Running]) {
    for child in running.iter().filter(|c| !c.exited) {
        sys::kill(child.pid, libc::SIGKILL);
    }
}

fn mark_exited(running: &mut [Running], service: Service) {
    if let Some(child) = running.iter_mut().find(|c| c.service == service) {
        child.exited = true;
    }
}

fn describe(status: &std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            _ => "unknown status".into(),
        },
        Err(err) => format!("wait failed: {err}"),
    }
}

fn wait_in_background(mut child: Child, service: Service, tx: Sender<Event>) {
    thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send(Event::Exited(service, status));
    });
}

/// Copies a child's output into the runner's log, a whole line at a time.
fn relay(pipe: impl Read + Send + 'static, sink: Sink) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    sink.raw(text.trim_end_matches(['\n', '\r']));
                }
            }
        }
    });
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The children live next to the runner's own executable (`target/<profile>/` in a build,
/// the same `bin/` directory once installed).
fn binary_path(program: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(program)))
        .filter(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from(program))
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn death_by_the_stop_signal_counts_as_stopped() {
        // Raw wait statuses: a signal number alone is death by that signal; code << 8 is an exit.
        let by = |raw| Ok(ExitStatus::from_raw(raw));
        assert!(ended_by_stop_signal(&by(SIGTERM), Stop::Drain));
        assert!(ended_by_stop_signal(&by(SIGTERM), Stop::Now));
        assert!(ended_by_stop_signal(&by(SIGINT), Stop::Now));
        assert!(!ended_by_stop_signal(&by(SIGINT), Stop::Drain));
        assert!(!ended_by_stop_signal(&by(libc::SIGKILL), Stop::Drain));
        assert!(!ended_by_stop_signal(&by(libc::SIGSEGV), Stop::Now));
        assert!(!ended_by_stop_signal(&by(1 << 8), Stop::Drain));
        assert!(!ended_by_stop_signal(&by(0), Stop::Drain));
        let failed = Err(std::io::Error::other("wait failed"));
        assert!(!ended_by_stop_signal(&failed, Stop::Drain));
    }
}
