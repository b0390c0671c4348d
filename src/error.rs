//! The top-level error of a run: every module's error, and the exit code each
//! one means. The match in [`Error::exit_code`] has no catch-all arm, so a new
//! variant cannot compile without a code.

use std::time::Duration;

use crate::anchors::AnchorError;
use crate::config::ConfigError;
use crate::exit::Code;
use crate::manifest::verify::{ManifestError, ManifestErrorKind};
use crate::publish::PublishError;
use crate::schedule::ScheduleError;
use crate::store::StoreError;
use crate::store::dir::RootError;
use crate::store::lock::LockError;
use crate::sync::apply::ApplyError;
use crate::transport::{TransportError, TransportErrorKind};

/// Why a run ended early.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The INI file is missing or wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A value of the INI file names a file that cannot be used.
    #[error("{key}: {source}")]
    Setting {
        /// `section.key`.
        key: &'static str,
        /// What is wrong with the file it names.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The pinned key, the timestamp or the manifest failed a check.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The server or folder could not be used.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The local store or state folder refused an operation.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Nothing moved for the configured time.
    #[error("no progress for {}s", .0.as_secs())]
    Timeout(Duration),
    /// The whole run took longer than `sync.deadline`.
    #[error("sync.deadline: the run did not finish within {}s", .0.as_secs())]
    Deadline(Duration),
    /// A publisher command failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The sync must run elevated: it repairs ownership of the store.
    #[error("not running as administrator: run wpkgsync elevated, as SYSTEM, or as root")]
    NotAdministrator,
    /// The periodic run could not be set up or removed.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// The run lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A file the run trusts may be changed by someone else, or the store and
    /// state folders lie where they must not.
    #[error(transparent)]
    Anchor(#[from] AnchorError),
    /// The store root is a link, or not the administrators' alone.
    #[error(transparent)]
    StoreRoot(#[from] RootError),
}

impl From<ApplyError> for Error {
    fn from(e: ApplyError) -> Error {
        match e {
            ApplyError::Store(e) => Error::Store(e),
            ApplyError::Transport(e) => Error::Transport(e),
        }
    }
}

impl Error {
    /// The documented exit code for this error.
    pub fn exit_code(&self) -> Code {
        match self {
            Error::Config(ConfigError::Missing { .. }) => Code::IniMissing,
            Error::Config(ConfigError::Unreadable { .. } | ConfigError::Invalid { .. }) => {
                Code::IniInvalid
            }
            Error::Setting { .. } => Code::IniInvalid,
            Error::Manifest(e) => match e.kind() {
                ManifestErrorKind::Invalid => Code::ManifestInvalid,
                ManifestErrorKind::Stale => Code::ManifestStale,
            },
            Error::Transport(e) => match e.kind() {
                TransportErrorKind::Unreachable => Code::Unreachable,
                TransportErrorKind::AuthRefused => Code::AuthRefused,
                TransportErrorKind::HostKey => Code::HostKey,
                TransportErrorKind::ClientKey => Code::IniInvalid,
                TransportErrorKind::Timeout => Code::Timeout,
                TransportErrorKind::NotFound
                | TransportErrorKind::PermissionDenied
                | TransportErrorKind::TooLarge
                | TransportErrorKind::Other => Code::ManifestInvalid,
            },
            Error::Store(_) => Code::LocalStore,
            Error::Timeout(_) | Error::Deadline(_) => Code::Timeout,
            Error::Publish(_) => Code::LocalStore,
            Error::NotAdministrator => Code::NotAdministrator,
            Error::Schedule(_) => Code::LocalStore,
            Error::Lock(LockError::Busy(_)) => Code::AlreadyRunning,
            Error::Lock(LockError::Store(_)) => Code::LocalStore,
            Error::Anchor(AnchorError::Store(_) | AnchorError::ForeignFolder { .. }) => {
                Code::LocalStore
            }
            Error::Anchor(_) => Code::IniInvalid,
            Error::StoreRoot(_) => Code::LocalStore,
        }
    }

    /// The one line `main` prints: the error and its causes joined by `: `.
    pub fn line(&self) -> String {
        let mut line = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            source = cause.source();
        }
        // Messages carry text a server chose (status messages, disconnect
        // reasons, names): one line, and nothing that drives a terminal.
        crate::text::escape_controls(&line.replace(['\n', '\r'], " ")).into_owned()
    }
}
