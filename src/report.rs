//! Report upload after every run that reached the server, failed ones too, as
//! `wpkgsync.bat` did it, so administrators see every client in one place:
//!
//! - `wpkg-<HOST>.log`: this machine's WPKG log, written under a temporary
//!   name and renamed into place, so the server never shows half a log;
//! - `<HOST>.wpkgsync.log`: one line appended per run (see [`RunRecord::line`]).
//!
//! HOST is the computer name reduced to `[A-Za-z0-9._-]`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::exit::Code;
use crate::platform;
use crate::select::log_file::{self, LogError};
use crate::transport::{ReportFolder, Source, Throttled, TransportError};

/// At most this much of the WPKG log is uploaded: its end, from a line start.
/// WPKG appends to one log for ever; the recent runs are what administrators
/// read, and the upload must fit a slow link's run.
pub use crate::select::log_file::MAX_LOG_BYTES;

/// Bytes per write request before the bandwidth cap splits them further.
const WRITE_CHUNK: usize = 32 * 1024;

/// Why the upload failed (exit 106 unless a download failure wins).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The local WPKG log exists but cannot be read or is not an
    /// administrator's.
    #[error(transparent)]
    ReadLog(#[from] LogError),
    /// The server refused or lost a write.
    #[error("report upload failed: {0}")]
    Transport(#[from] TransportError),
}

/// What one run did, for its line in `<HOST>.wpkgsync.log`.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// When the run ended.
    pub finished: SystemTime,
    /// The exit code the run ends with.
    pub code: Code,
    /// The verified manifest version, if the run got that far.
    pub version: Option<u64>,
    /// Files fetched, if the sync ran to its end.
    pub fetched: Option<u64>,
    /// Files and folders deleted, if the sync ran to its end.
    pub deleted: Option<u64>,
    /// File bytes that crossed the link, reads and this upload's log.
    pub bytes: u64,
    /// From the start of the run.
    pub duration: Duration,
}

impl RunRecord {
    /// One line, space-separated `key=value` after an ISO 8601 UTC time, so a
    /// human reads it and `grep`/`awk` parse it; `-` where a value is unknown.
    pub fn line(&self) -> String {
        let or_dash = |value: Option<u64>| value.map_or_else(|| "-".into(), |v| v.to_string());
        format!(
            "{} exit={} version={} fetched={} deleted={} bytes={} duration={:.1}s\n",
            humantime::format_rfc3339_seconds(self.finished),
            self.code.number(),
            or_dash(self.version),
            or_dash(self.fetched),
            or_dash(self.deleted),
            self.bytes,
            self.duration.as_secs_f64()
        )
    }
}

/// What a sync did, as far as it got, for the run line.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    pub(crate) version: Option<u64>,
    pub(crate) fetched: Option<u64>,
    pub(crate) deleted: Option<u64>,
}

/// Uploads the WPKG log and appends the run's line to the reports folder the
/// INI names; the line carries the code the run ends with, 106 included when
/// the log upload failed. Returns whether there was a WPKG log.
pub(crate) async fn upload<S: Source + ReportFolder>(
    folder: &Throttled<S>,
    config: &Config,
    sync_code: Code,
    acl_code: Option<Code>,
    figures: &Figures,
    started: Instant,
) -> Result<bool, ReportError> {
    let names = ReportNames::new(
        &config.server.reports,
        &host_label(&platform::computer_name()),
    );
    let uploaded = upload_wpkg_log(folder, &names, &config.sync.wpkg_log).await;
    let code = Code::precedence(
        sync_code,
        uploaded.is_err().then_some(Code::ReportUpload),
        acl_code,
    );
    let record = RunRecord {
        finished: SystemTime::now(),
        code,
        version: figures.version,
        fetched: figures.fetched,
        deleted: figures.deleted,
        bytes: folder.transferred(),
        duration: started.elapsed(),
    };
    let appended = append_run_line(folder, &names, &record).await;
    let uploaded = uploaded?;
    appended.map(|()| uploaded)
}

/// The computer name as it may appear in a file name on any server:
/// `[A-Za-z0-9._-]` only, no leading dot, never empty.
pub fn host_label(computer: &str) -> String {
    let kept: String = computer
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .collect();
    let kept = kept.trim_start_matches('.');
    if kept.is_empty() {
        "unknown-host".into()
    } else {
        kept.into()
    }
}

/// Where the two files of one host go in the reports folder `dir`.
pub struct ReportNames {
    /// `wpkg-<HOST>.log`.
    pub wpkg_log: String,
    /// `<HOST>.wpkgsync.log`.
    pub run_log: String,
    /// The temporary name the WPKG log is written under.
    temp: String,
}

impl ReportNames {
    /// The names for `host` (already reduced by [`host_label`]) in `dir`.
    pub fn new(dir: &str, host: &str) -> ReportNames {
        let dir = dir.trim_end_matches(['/', '\\']);
        ReportNames {
            wpkg_log: format!("{dir}/wpkg-{host}.log"),
            run_log: format!("{dir}/{host}.wpkgsync.log"),
            // Unpredictable, so no one can plant a link under it in advance;
            // the folder creates it exclusively as well.
            temp: format!(
                "{dir}/{}wpkg-{host}.log.{:016x}",
                crate::manifest::format::TEMP_PREFIX,
                rand::random::<u64>()
            ),
        }
    }
}

/// Uploads the WPKG log, if there is one, under a temporary name renamed into
/// place. Returns whether a log was uploaded. On failure the temporary file is
/// removed where the server still allows it.
pub async fn upload_wpkg_log<R: ReportFolder>(
    folder: &R,
    names: &ReportNames,
    wpkg_log: &Path,
) -> Result<bool, ReportError> {
    let Some(data) = log_file::read_tail(wpkg_log, MAX_LOG_BYTES)? else {
        return Ok(false);
    };
    let written = write_whole(folder, &names.temp, &data).await;
    let placed = match written {
        Ok(()) => folder.rename(&names.temp, &names.wpkg_log).await,
        Err(e) => Err(e),
    };
    if let Err(e) = placed {
        let _ = folder.remove(&names.temp).await;
        return Err(e.into());
    }
    Ok(true)
}

/// Appends `record`'s line to the host's run log.
pub async fn append_run_line<R: ReportFolder>(
    folder: &R,
    names: &ReportNames,
    record: &RunRecord,
) -> Result<(), ReportError> {
    let file = folder.create(&names.run_log, true).await?;
    let written = folder.write_at(&file, 0, record.line().as_bytes()).await;
    let finished = folder.finish(file).await;
    written.and(finished).map_err(Into::into)
}

async fn write_whole<R: ReportFolder>(
    folder: &R,
    path: &str,
    data: &[u8],
) -> Result<(), TransportError> {
    let file = folder.create(path, false).await?;
    let mut offset = 0u64;
    let mut written = Ok(());
    for chunk in data.chunks(WRITE_CHUNK) {
        written = folder.write_at(&file, offset, chunk).await;
        if written.is_err() {
            break;
        }
        offset += chunk.len() as u64;
    }
    let finished = folder.finish(file).await;
    written.and(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_label_keeps_only_safe_characters() {
        assert_eq!(host_label("PC-042.corp_lan"), "PC-042.corp_lan");
        assert_eq!(host_label("Müller PC/../x"), "MllerPC..x");
        assert_eq!(host_label("..hidden"), "hidden");
        assert_eq!(host_label("ÄÖÜ"), "unknown-host");
        assert_eq!(host_label(""), "unknown-host");
    }

    #[test]
    fn run_line_has_every_field() {
        let record = RunRecord {
            finished: SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_566_112),
            code: Code::Partial,
            version: Some(42),
            fetched: Some(3),
            deleted: None,
            bytes: 12_345,
            duration: Duration::from_millis(2_450),
        };
        assert_eq!(
            record.line(),
            "2025-12-01T05:15:12Z exit=206 version=42 fetched=3 deleted=- bytes=12345 duration=2.5s\n"
        );
    }

    #[test]
    fn names_sit_in_the_reports_folder() {
        let names = ReportNames::new("/opt/wpkgreports/", "PC1");
        assert_eq!(names.wpkg_log, "/opt/wpkgreports/wpkg-PC1.log");
        assert_eq!(names.run_log, "/opt/wpkgreports/PC1.wpkgsync.log");
        assert!(
            names
                .temp
                .starts_with("/opt/wpkgreports/.wpkgsync-tmp-wpkg-PC1.log.")
        );
    }

    #[test]
    fn temp_names_are_unpredictable() {
        let first = ReportNames::new("/r", "PC1").temp;
        let second = ReportNames::new("/r", "PC1").temp;
        assert_ne!(first, second);
        assert!(!first.ends_with(&format!(".{}", std::process::id())));
    }
}
