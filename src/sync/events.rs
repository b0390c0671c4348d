//! What a sync reports while it runs. The display and the run record consume
//! these; the sync itself never draws or prints.

/// Receives progress from the sync.
pub(crate) trait Events {
    /// A download of `size` bytes starts.
    fn file_started(&self, path: &str, size: u64);
    /// `bytes` more arrived from the source.
    fn bytes_moved(&self, bytes: u64);
    /// A file was verified and renamed into place.
    fn file_done(&self, path: &str);
    /// A file could not be fetched or verified; its old copy stays.
    fn file_failed(&self, path: &str, why: &str);
    /// A file or folder was deleted from the store.
    fn deleted(&self, path: &str);
}
