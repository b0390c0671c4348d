//! The exit code table of DESIGN.md, the only place where exit numbers appear.
//!
//! Codes are never renumbered, only added to: Task Scheduler's "Last Run Result",
//! monitoring scripts and WPKG post-actions read them.

/// What a run tells the operating system when it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// Success, also when there was nothing to do.
    Success,
    /// Wrong command line.
    Usage,
    /// INI file missing.
    IniMissing,
    /// INI file unreadable or a required value missing or invalid.
    IniInvalid,
    /// ACL or ownership repair of the local store failed.
    AclRepair,
    /// Not running as administrator (root on Unix).
    NotAdministrator,
    /// Another wpkgsync sync is already running.
    AlreadyRunning,
    /// Report upload failed; the sync itself was applied.
    ReportUpload,
    /// `status`: no successful sync within `stale_days`, or never.
    Stale,
    /// Server unreachable: resolve, connect or SSH handshake.
    Unreachable,
    /// Authentication refused.
    AuthRefused,
    /// Server host key unknown or changed.
    HostKey,
    /// Manifest or timestamp missing, malformed, or its signature invalid.
    ManifestInvalid,
    /// Manifest older than the last accepted one, another manifest under the
    /// accepted version (replay), or expired.
    ManifestStale,
    /// Some files could not be fetched or verified; the rest was applied.
    Partial,
    /// No progress for `timeout` seconds.
    Timeout,
    /// Local store error: disk full, permission, path.
    LocalStore,
}

/// How a run that did not fail outright ended.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code.
    pub code: Code,
    /// For a non-zero code: the one line saying why.
    pub problem: Option<String>,
}

impl Outcome {
    pub(crate) fn success() -> Outcome {
        Outcome {
            code: Code::Success,
            problem: None,
        }
    }
}

impl Code {
    /// Every code, in table order.
    pub const ALL: [Code; 17] = [
        Code::Success,
        Code::Usage,
        Code::IniMissing,
        Code::IniInvalid,
        Code::AclRepair,
        Code::NotAdministrator,
        Code::AlreadyRunning,
        Code::ReportUpload,
        Code::Stale,
        Code::Unreachable,
        Code::AuthRefused,
        Code::HostKey,
        Code::ManifestInvalid,
        Code::ManifestStale,
        Code::Partial,
        Code::Timeout,
        Code::LocalStore,
    ];

    /// The number the process exits with.
    pub const fn number(self) -> u8 {
        match self {
            Code::Success => 0,
            Code::Usage => 2,
            Code::IniMissing => 101,
            Code::IniInvalid => 102,
            Code::AclRepair => 103,
            Code::NotAdministrator => 104,
            Code::AlreadyRunning => 105,
            Code::ReportUpload => 106,
            Code::Stale => 107,
            Code::Unreachable => 201,
            Code::AuthRefused => 202,
            Code::HostKey => 203,
            Code::ManifestInvalid => 204,
            Code::ManifestStale => 205,
            Code::Partial => 206,
            Code::Timeout => 207,
            Code::LocalStore => 208,
        }
    }

    /// The code for a number, if it is one of ours.
    pub fn from_number(number: i32) -> Option<Code> {
        Code::ALL
            .into_iter()
            .find(|c| i32::from(c.number()) == number)
    }

    /// One line for the help text and the README table.
    pub const fn meaning(self) -> &'static str {
        match self {
            Code::Success => "success (also: nothing to do)",
            Code::Usage => "wrong command line",
            Code::IniMissing => "INI file missing",
            Code::IniInvalid => {
                "INI file unreadable, a value missing/invalid, or a file it names not the administrators' alone"
            }
            Code::AclRepair => "ACL / ownership repair of the local store failed",
            Code::NotAdministrator => "not running as administrator (root on Unix)",
            Code::AlreadyRunning => "another wpkgsync sync is already running",
            Code::ReportUpload => "report upload failed (the sync itself was applied)",
            Code::Stale => "status: no successful sync within stale_days, or never",
            Code::Unreachable => "server unreachable (resolve, connect, SSH handshake)",
            Code::AuthRefused => "authentication refused",
            Code::HostKey => "server host key unknown or changed",
            Code::ManifestInvalid => {
                "manifest or timestamp missing, malformed, or its signature invalid"
            }
            Code::ManifestStale => {
                "manifest older than the last accepted one, another under the same version, or expired"
            }
            Code::Partial => "partial: some files could not be fetched or verified",
            Code::Timeout => "timeout: no progress for `timeout` seconds, or past `deadline`",
            Code::LocalStore => {
                "local store error (disk full, permission, path, a linked or foreign store root)"
            }
        }
    }

    /// Combines the sync result with the report and ACL results as `wpkgsync.bat`
    /// did: a download failure (2xx) wins over a report failure (106), which wins
    /// over an ACL failure (103). `sync` is the result of everything before the
    /// report and ACL steps, so any failure there comes first.
    pub fn precedence(sync: Code, report: Option<Code>, acl: Option<Code>) -> Code {
        if sync != Code::Success {
            return sync;
        }
        report.or(acl).unwrap_or(Code::Success)
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn numbers_are_unique_and_fit_in_a_byte() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.number()), "{code:?} repeats a number");
            assert_eq!(Code::from_number(i32::from(code.number())), Some(code));
        }
    }

    #[test]
    fn download_failure_wins_over_report_and_acl() {
        let got = Code::precedence(
            Code::Partial,
            Some(Code::ReportUpload),
            Some(Code::AclRepair),
        );
        assert_eq!(got, Code::Partial);
        assert_eq!(
            Code::precedence(Code::Timeout, Some(Code::ReportUpload), None),
            Code::Timeout
        );
        assert_eq!(
            Code::precedence(Code::Unreachable, None, Some(Code::AclRepair)),
            Code::Unreachable
        );
    }

    #[test]
    fn report_failure_wins_over_acl() {
        let got = Code::precedence(
            Code::Success,
            Some(Code::ReportUpload),
            Some(Code::AclRepair),
        );
        assert_eq!(got, Code::ReportUpload);
    }

    #[test]
    fn acl_failure_shows_when_nothing_else_failed() {
        assert_eq!(
            Code::precedence(Code::Success, None, Some(Code::AclRepair)),
            Code::AclRepair
        );
        assert_eq!(Code::precedence(Code::Success, None, None), Code::Success);
    }
}
