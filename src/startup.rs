//! What a sync and the listener both start from: an elevated process, and an
//! INI and every file it names that only administrators could have written.
//! Nothing the INI says is believed before that.

use std::path::Path;

use crate::anchors;
use crate::config::Config;
use crate::error::Error;
use crate::manifest::verify::PinnedKey;
use crate::platform;
use crate::runlog::RunLog;

/// Checks elevation, then the INI, loads it, checks every file and folder it
/// names, and opens the run log in its state folder. Returns the config and
/// its warnings, for the caller's log.
pub(crate) fn load_trusted(ini: &Path, log: &mut RunLog) -> Result<(Config, Vec<String>), Error> {
    // Before anything reads the INI or touches the store, as wpkgsync.bat did.
    if !platform::is_administrator() {
        return Err(Error::NotAdministrator);
    }
    anchors::check_ini(ini)?;
    let (config, warnings) = Config::load(ini)?;
    anchors::check(&config)?;
    *log = RunLog::open(&config.sync.state);
    Ok((config, warnings))
}

/// The publisher key the INI pins, or the setting's error (102).
pub(crate) fn pinned_key(config: &Config) -> Result<PinnedKey, Error> {
    PinnedKey::load(&config.publisher_key).map_err(|e| Error::Setting {
        key: "trust.publisher_key",
        source: Box::new(e),
    })
}
