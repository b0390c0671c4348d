//! The local log in the `state` folder: one line per event, appended, so an
//! administrator can read what scheduled runs did without a console.
//!
//! The log never grows past [`MAX_LOG_BYTES`]: the line that would pass it
//! first moves the log to `wpkgsync.log.1` (replacing the one before), so
//! the two files hold at most twice that. Each line opens the file anew,
//! so a listener and the syncs it starts, writing the same log, always
//! append to the current file, whoever rotated it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::store::state_dir::{StateDir, StateFile};

/// Size past which the log moves to `wpkgsync.log.1`.
pub const MAX_LOG_BYTES: u64 = 4 * 1024 * 1024;

/// The log of this run; before the INI is read there is none.
#[derive(Debug, Default)]
pub struct RunLog {
    /// The log and where it moves when it is full.
    files: Option<(PathBuf, PathBuf)>,
    max: u64,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl RunLog {
    /// Opens the log in `state_dir`, creating the folder. A log that cannot be
    /// opened must not stop the run, so failure leaves the log closed, with a
    /// warning on stderr.
    pub fn open(state_dir: &StateDir) -> RunLog {
        RunLog::open_with_limit(state_dir, MAX_LOG_BYTES)
    }

    /// [`RunLog::open`] with another size limit (tests).
    fn open_with_limit(state_dir: &StateDir, max: u64) -> RunLog {
        let path = state_dir.file(StateFile::Log);
        let opened = std::fs::create_dir_all(state_dir.path()).and_then(|()| open_append(&path));
        match opened {
            Ok(_) => RunLog {
                files: Some((path, state_dir.file(StateFile::OlderLog))),
                max,
            },
            Err(e) => {
                eprintln!(
                    "warning: failed to open the log in {}: {e}",
                    state_dir.path().display()
                );
                RunLog::default()
            }
        }
    }

    /// Appends one timestamped line; control characters in `text` (which
    /// may quote a server) are escaped, so it stays one line.
    pub fn line(&mut self, text: &str) {
        let Some((path, older)) = &self.files else {
            return;
        };
        let now = humantime::format_rfc3339_seconds(SystemTime::now());
        let text = crate::text::escape_controls(text);
        let line = format!("{now} [{}] {text}\n", std::process::id());
        let Ok(mut file) = open_append(path) else {
            return;
        };
        let size = file.metadata().map_or(0, |m| m.len());
        if size > 0 && size + line.len() as u64 > self.max {
            drop(file);
            // Another process holding the file (Windows) may refuse the
            // rename; the line then goes to the current file, as before.
            let _ = std::fs::rename(path, older);
            let Ok(reopened) = open_append(path) else {
                return;
            };
            file = reopened;
        }
        let _ = file.write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::state_dir::{StateDir, StateFile};

    #[test]
    fn the_log_moves_to_dot_1_before_it_passes_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RunLog::open_with_limit(&StateDir::new(dir.path()), 10_000);
        for n in 0..2_000 {
            log.line(&format!("line {n}"));
        }
        let current = std::fs::metadata(dir.path().join(StateFile::Log.name()))
            .unwrap()
            .len();
        let older = std::fs::metadata(dir.path().join("wpkgsync.log.1"))
            .unwrap()
            .len();
        assert!(current <= 10_000 && older <= 10_000, "{current} {older}");
        let text = std::fs::read_to_string(dir.path().join(StateFile::Log.name())).unwrap();
        assert!(text.trim_end().ends_with("line 1999"), "{text}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_line_stays_one_line_whatever_it_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RunLog::open(&StateDir::new(dir.path()));
        log.line("failed: server said: no\nexit 0\r\u{1b}]0;owned\u{7}");
        log.line("second");
        let text = std::fs::read_to_string(dir.path().join(StateFile::Log.name())).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text:?}");
        assert!(
            lines[0].ends_with("no\\nexit 0\\r\\u{1b}]0;owned\\u{7}"),
            "{text:?}"
        );
        assert!(!lines[0].chars().any(char::is_control));
    }
}
