//! The wpkgsync executable: parse, run, print the one line, exit with the code.

use std::process::ExitCode;

use wpkgsync::cli::{self, Parsed};
use wpkgsync::commands;
use wpkgsync::exit::Code;
use wpkgsync::runlog::RunLog;

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os()) {
        Parsed::Run(cli) => cli,
        Parsed::Info(text) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Parsed::Usage(text) => {
            eprint!("{text}");
            return ExitCode::from(Code::Usage.number());
        }
    };
    let mut log = RunLog::default();
    let (code, problem) = match tokio::runtime::Runtime::new() {
        Ok(runtime) => {
            let ran = runtime.block_on(commands::run(cli, &mut log));
            // A file operation the watchdog gave up on (a hung share) may
            // still sit on a blocking thread: do not wait for it.
            runtime.shutdown_timeout(std::time::Duration::from_millis(500));
            match ran {
                Ok(outcome) => (outcome.code, outcome.problem),
                Err(e) => (e.exit_code(), Some(e.line())),
            }
        }
        Err(e) => (
            Code::LocalStore,
            Some(format!("failed to start the runtime: {e}")),
        ),
    };
    if let Some(problem) = problem {
        eprintln!("wpkgsync: {problem}");
        log.line(&format!("exit {}: {problem}", code.number()));
    } else {
        log.line(&format!("exit {}", code.number()));
    }
    ExitCode::from(code.number())
}
