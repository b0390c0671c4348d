//! The one place a client may write: the server's reports folder.
//!
//! Paths here are the reports folder's own (`/opt/wpkgreports/x.log` on the
//! server, a local path for a folder source), not repository paths. The
//! operations are the few a report upload needs: create or append, write,
//! close with its error, rename over an existing file, remove.

use super::source::TransportError;

/// A folder that takes reports.
#[expect(
    async_fn_in_trait,
    reason = "driven on one task after the sync; no future needs Send"
)]
pub trait ReportFolder {
    /// A file open for writing.
    type Writer;

    /// Opens `path` for writing: created new (failing if anything, a link
    /// included, is there), or with `append` created if missing and written
    /// at its end (a local folder refuses a link there).
    async fn create(&self, path: &str, append: bool) -> Result<Self::Writer, TransportError>;

    /// Writes `data` at `offset` (ignored when appending).
    async fn write_at(
        &self,
        file: &Self::Writer,
        offset: u64,
        data: &[u8],
    ) -> Result<(), TransportError>;

    /// Closes the file; a failure here may mean lost data, so it is reported.
    async fn finish(&self, file: Self::Writer) -> Result<(), TransportError>;

    /// Renames `from` to `to`, replacing `to` in one step if it exists.
    async fn rename(&self, from: &str, to: &str) -> Result<(), TransportError>;

    /// Removes `path`.
    async fn remove(&self, path: &str) -> Result<(), TransportError>;
}
