//! Starting the disk write of a file while it is still being written, so the
//! flush before its rename finds most of it on disk already and the disk works
//! while the rest is assembled. Linux starts it with `sync_file_range`; other
//! systems leave all of it to the flush. Only a hint: durability still comes
//! from the flush alone.

use std::fs::File;

/// Bytes written between two starts.
const STRIDE: u64 = 8 * 1024 * 1024;

/// How far the disk write of one file has been started.
#[derive(Default)]
pub(crate) struct Writeback {
    started: u64,
}

impl Writeback {
    /// Notes that `file` now holds `written` bytes; starts the disk write of
    /// each full stride since the last start.
    pub(crate) fn written(&mut self, file: &File, written: u64) {
        if written - self.started >= STRIDE {
            start(file, self.started, written - self.started);
            self.started = written;
        }
    }
}

#[cfg(target_os = "linux")]
fn start(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open for as long as `file` is borrowed; the
    // call only queues the range's dirty pages for writing. A failure leaves
    // that to the flush, so its result is not needed.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start(_file: &File, _offset: u64, _len: u64) {}
