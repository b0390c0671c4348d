//! The state file: the last accepted manifest version (for the rollback check)
//! and the last run's result, written atomically so a crash leaves the old one.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{StoreError, write_atomically};

/// Name of the state file in the `state` folder.
pub const STATE_FILE: &str = "state.json";

/// What a run remembers for the next one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Highest manifest version ever accepted; older ones are refused.
    pub accepted_version: Option<u64>,
    /// Unix seconds of the last run that ended 0.
    pub last_success: Option<u64>,
    /// Unix seconds of the last run.
    pub last_run: Option<u64>,
    /// Exit code of the last run.
    pub last_exit: Option<u8>,
    /// Runs in a row that did not end 0.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Manifest version the store index describes completely, if any.
    #[serde(default)]
    pub indexed_version: Option<u64>,
}

impl State {
    /// Reads the state from `dir`; none yet is the default state. A damaged
    /// file is an error rather than a silent reset, since resetting would lift
    /// the rollback protection.
    pub fn load(dir: &Path) -> Result<State, StoreError> {
        let path = dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                StoreError::io(
                    "parse",
                    &path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(StoreError::io("read", &path, e)),
        }
    }

    /// Writes the state to `dir` through a temporary file and a rename.
    pub fn save(&self, dir: &Path) -> Result<(), StoreError> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        write_atomically(dir, STATE_FILE, &bytes)
    }

    /// Records a finished run.
    pub fn record_run(&mut self, now: u64, exit: u8) {
        self.last_run = Some(now);
        self.last_exit = Some(exit);
        if exit == 0 {
            self.last_success = Some(now);
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        }
    }

    /// Raises the accepted version; it never goes down.
    pub fn accept(&mut self, version: u64) {
        self.accepted_version = Some(self.accepted_version.map_or(version, |v| v.max(version)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_missing_is_default() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), State::default());
        let mut state = State::default();
        state.accept(5);
        state.accept(3);
        state.record_run(1000, 206);
        state.record_run(2000, 0);
        state.save(dir.path()).unwrap();
        let loaded = State::load(dir.path()).unwrap();
        assert_eq!(loaded.accepted_version, Some(5));
        assert_eq!(loaded.last_success, Some(2000));
        assert_eq!(loaded.consecutive_failures, 0);
        assert_eq!(loaded, state);
    }

    #[test]
    fn failures_count_up() {
        let mut state = State::default();
        state.record_run(1, 201);
        state.record_run(2, 206);
        assert_eq!(state.consecutive_failures, 2);
        assert_eq!(state.last_success, None);
    }

    #[test]
    fn a_damaged_state_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), b"{not json").unwrap();
        let err = State::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("state.json"), "{err}");
    }
}
