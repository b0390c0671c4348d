//! The local log in the `state` folder: one line per event, appended, so an
//! administrator can read what scheduled runs did without a console.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

/// Name of the log file in the `state` folder.
pub const LOG_FILE: &str = "wpkgsync.log";

/// The log of this run; before the INI is read there is none.
#[derive(Debug, Default)]
pub struct RunLog {
    file: Option<File>,
}

impl RunLog {
    /// Opens the log in `state_dir`, creating the folder. A log that cannot be
    /// opened must not stop the run, so failure leaves the log closed, with a
    /// warning on stderr.
    pub fn open(state_dir: &Path) -> RunLog {
        let opened = std::fs::create_dir_all(state_dir).and_then(|()| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(state_dir.join(LOG_FILE))
        });
        match opened {
            Ok(file) => RunLog { file: Some(file) },
            Err(e) => {
                eprintln!(
                    "warning: failed to open the log in {}: {e}",
                    state_dir.display()
                );
                RunLog::default()
            }
        }
    }

    /// Appends one timestamped line.
    pub fn line(&mut self, text: &str) {
        if let Some(file) = &mut self.file {
            let now = humantime::format_rfc3339_seconds(SystemTime::now());
            let _ = writeln!(file, "{now} [{}] {text}", std::process::id());
        }
    }
}
