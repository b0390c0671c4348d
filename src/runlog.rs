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

    /// Appends one timestamped line; control characters in `text` (which
    /// may quote a server) are escaped, so it stays one line.
    pub fn line(&mut self, text: &str) {
        if let Some(file) = &mut self.file {
            let now = humantime::format_rfc3339_seconds(SystemTime::now());
            let text = crate::text::escape_controls(text);
            let _ = writeln!(file, "{now} [{}] {text}", std::process::id());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_stays_one_line_whatever_it_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RunLog::open(dir.path());
        log.line("failed: server said: no\nexit 0\r\u{1b}]0;owned\u{7}");
        log.line("second");
        let text = std::fs::read_to_string(dir.path().join(LOG_FILE)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text:?}");
        assert!(
            lines[0].ends_with("no\\nexit 0\\r\\u{1b}]0;owned\\u{7}"),
            "{text:?}"
        );
        assert!(!lines[0].chars().any(char::is_control));
    }
}
