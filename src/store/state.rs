//! The state file: the last accepted manifest version and that manifest's
//! sha256 (for the rollback and replay checks) and the last run's result,
//! written atomically so a crash leaves the old one.

use serde::{Deserialize, Serialize};

use super::StoreError;
use super::state_dir::{StateDir, StateFile};
use crate::manifest::verify::Accepted;

/// What a run remembers for the next one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Highest manifest version ever accepted; older ones are refused.
    pub accepted_version: Option<u64>,
    /// The sha256 of the manifest accepted under `accepted_version`; another
    /// manifest under that version is refused. Absent from the state files of
    /// older versions: unknown, learnt on the next run.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "sha256_hex")]
    pub accepted_manifest_sha256: Option<[u8; 32]>,
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
    /// Sources that served an older version than another in the last run
    /// that read the timestamps, as the INI names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources_behind: Vec<String>,
}

impl State {
    /// Reads the state from `dir`; none yet is the default state. A damaged
    /// file is an error rather than a silent reset, since resetting would lift
    /// the rollback protection.
    pub fn load(dir: &StateDir) -> Result<State, StoreError> {
        let path = dir.file(StateFile::State);
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
    pub fn save(&self, dir: &StateDir) -> Result<(), StoreError> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        dir.write(StateFile::State, &bytes)
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

    /// The version and manifest accepted last, which a new timestamp may not
    /// go below or replace under the same version.
    pub fn accepted(&self) -> Option<Accepted> {
        self.accepted_version.map(|version| Accepted {
            version,
            manifest_sha256: self.accepted_manifest_sha256,
        })
    }

    /// Raises the accepted version, remembering the manifest accepted under
    /// it; the version never goes down, and the first manifest known under a
    /// version stays.
    pub fn accept(&mut self, version: u64, manifest_sha256: [u8; 32]) {
        match self.accepted_version {
            Some(accepted) if accepted > version => {}
            Some(accepted) if accepted == version => {
                self.accepted_manifest_sha256.get_or_insert(manifest_sha256);
            }
            _ => {
                self.accepted_version = Some(version);
                self.accepted_manifest_sha256 = Some(manifest_sha256);
            }
        }
    }
}

/// A sha256 as 64 lowercase hex digits in the JSON; anything else makes the
/// state file damaged, which [`State::load`] refuses.
mod sha256_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<[u8; 32]>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => serializer.serialize_str(&hex::encode(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<[u8; 32]>, D::Error> {
        let Some(text) = Option::<String>::deserialize(deserializer)? else {
            return Ok(None);
        };
        let mut bytes = [0u8; 32];
        match hex::decode_to_slice(&text, &mut bytes) {
            Ok(()) if text.bytes().all(|b| !b.is_ascii_uppercase()) => Ok(Some(bytes)),
            _ => Err(serde::de::Error::custom(
                "accepted_manifest_sha256 is not 64 lowercase hex digits",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::state_dir::{StateDir, StateFile};

    #[test]
    fn state_round_trips_and_missing_is_default() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            State::load(&StateDir::new(dir.path())).unwrap(),
            State::default()
        );
        let mut state = State::default();
        state.accept(5, [5; 32]);
        state.accept(3, [3; 32]);
        state.record_run(1000, 206);
        state.record_run(2000, 0);
        state.save(&StateDir::new(dir.path())).unwrap();
        let loaded = State::load(&StateDir::new(dir.path())).unwrap();
        assert_eq!(loaded.accepted_version, Some(5));
        assert_eq!(loaded.accepted_manifest_sha256, Some([5; 32]));
        assert_eq!(loaded.last_success, Some(2000));
        assert_eq!(loaded.consecutive_failures, 0);
        assert_eq!(loaded, state);
    }

    #[test]
    fn the_manifest_accepted_under_a_version_is_kept() {
        let mut state = State::default();
        state.accept(5, [1; 32]);
        // Same version again: the first manifest known under it stays.
        state.accept(5, [2; 32]);
        assert_eq!(state.accepted_manifest_sha256, Some([1; 32]));
        state.accept(6, [3; 32]);
        assert_eq!(
            (state.accepted_version, state.accepted_manifest_sha256),
            (Some(6), Some([3; 32]))
        );
        let dir = tempfile::tempdir().unwrap();
        state.save(&StateDir::new(dir.path())).unwrap();
        let text = std::fs::read_to_string(dir.path().join(StateFile::State.name())).unwrap();
        assert!(text.contains(&"03".repeat(32)), "{text}");
    }

    #[test]
    fn a_state_file_without_the_manifest_hash_still_loads() {
        // As written before the hash was kept: the hash is unknown, and the
        // next accepted run records it.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(StateFile::State.name()),
            br#"{"accepted_version": 7, "last_success": 1, "last_run": 1, "last_exit": 0}"#,
        )
        .unwrap();
        let mut state = State::load(&StateDir::new(dir.path())).unwrap();
        assert_eq!(state.accepted_version, Some(7));
        assert_eq!(state.accepted_manifest_sha256, None);
        state.accept(7, [9; 32]);
        assert_eq!(state.accepted_manifest_sha256, Some([9; 32]));
    }

    #[test]
    fn a_damaged_manifest_hash_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["\"abc\"", &format!("\"{}\"", "AB".repeat(32)), "5"] {
            let text = format!(r#"{{"accepted_version": 7, "accepted_manifest_sha256": {bad}}}"#);
            std::fs::write(dir.path().join(StateFile::State.name()), text).unwrap();
            let err = State::load(&StateDir::new(dir.path()))
                .unwrap_err()
                .to_string();
            assert!(err.contains("state.json"), "{bad}: {err}");
        }
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
        std::fs::write(dir.path().join(StateFile::State.name()), b"{not json").unwrap();
        let err = State::load(&StateDir::new(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("state.json"), "{err}");
    }
}
