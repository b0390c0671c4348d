//! Runs a program (the real `wpkgsync` binary, or OpenSSH's own tools) with a
//! deadline and captures what it said.
//!
//! The builder follows ripgrep's `TestCommand` (tests/util.rs): setters that return
//! `Self`, one `run` that never hangs a test. Exit codes are asserted through
//! `wpkgsync::exit::Code`, so the numbers appear only in `src/exit.rs`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use wpkgsync::exit::Code;

/// How long any one program may run before the test gives up on it.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A command line to run once.
pub(crate) struct Command {
    program: PathBuf,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    envs: Vec<(OsString, OsString)>,
    timeout: Duration,
}

/// A builder for the `wpkgsync` binary that Cargo built for these tests.
pub(crate) fn wpkgsync() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wpkgsync"))
}

impl Command {
    /// A command for `program`, with no arguments.
    pub(crate) fn new(program: impl AsRef<Path>) -> Self {
        Self {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            cwd: None,
            envs: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Adds one argument.
    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Adds several arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Runs the program in `dir` instead of the test's working folder.
    pub(crate) fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Sets an environment variable for the program.
    pub(crate) fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Runs the program to its end, with stdin closed; panics if it outlives the
    /// deadline (after killing it) or cannot start.
    pub(crate) fn run(self) -> Output {
        let shown = self.display();
        let mut command = std::process::Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        let started = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let status = wait_with_deadline(&mut child, started + self.timeout);
        let elapsed = started.elapsed();
        let output = Output {
            command: shown,
            status: status.and_then(|s| s.code()),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
            elapsed,
            context: String::new(),
        };
        if status.is_none() {
            panic!("timed out after {:?}\n{output}", self.timeout);
        }
        output
    }

    fn display(&self) -> String {
        let mut shown = self.program.display().to_string();
        for arg in &self.args {
            shown.push(' ');
            shown.push_str(&arg.to_string_lossy());
        }
        shown
    }
}

/// Reads a pipe to its end on its own thread, so a chatty child never blocks.
fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Waits for the child until `deadline`; kills it and returns `None` past that.
fn wait_with_deadline(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// What a finished program said and how it ended.
pub(crate) struct Output {
    /// The command line, for messages.
    pub command: String,
    /// The exit status; `None` when a signal ended the program.
    pub status: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// Wall time from start to exit.
    pub elapsed: Duration,
    /// Extra text for failure messages.
    pub context: String,
}

impl Output {
    /// The exit code as one of the crate's codes, if it is one.
    pub(crate) fn code(&self) -> Option<Code> {
        self.status.and_then(Code::from_number)
    }

    /// Panics, showing everything, unless the program exited with `code`.
    pub(crate) fn assert_code(&self, code: Code) -> &Self {
        if self.status != Some(i32::from(code.number())) {
            panic!(
                "expected exit {} ({code:?}), got {}\n{self}",
                code.number(),
                self.describe_status()
            );
        }
        self
    }

    /// Panics unless the program exited with status zero (for tools other than
    /// `wpkgsync`, whose codes are not ours).
    pub(crate) fn assert_success(&self) -> &Self {
        if self.status != Some(0) {
            panic!("expected success, got {}\n{self}", self.describe_status());
        }
        self
    }

    /// The one line a failing run writes on stderr; panics unless there is exactly
    /// one non-empty line.
    pub(crate) fn error_line(&self) -> &str {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        match lines.as_slice() {
            [line] => line,
            _ => panic!(
                "expected exactly one line on stderr, got {}\n{self}",
                lines.len()
            ),
        }
    }

    fn describe_status(&self) -> String {
        match (self.status, self.code()) {
            (Some(n), Some(code)) => format!("{n} ({code:?})"),
            (Some(n), None) => n.to_string(),
            (None, _) => "death by signal".to_string(),
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command)?;
        writeln!(
            f,
            "status: {}, after {:?}",
            self.describe_status(),
            self.elapsed
        )?;
        writeln!(f, "--- stdout ---\n{}", self.stdout.trim_end())?;
        writeln!(f, "--- stderr ---\n{}", self.stderr.trim_end())?;
        if !self.context.is_empty() {
            writeln!(f, "--- context ---\n{}", self.context.trim_end())?;
        }
        Ok(())
    }
}
