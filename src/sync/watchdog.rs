//! The "no progress" rule of a sync: it fails with a timeout once neither an
//! event of the sync nor a byte from the source has moved for `timeout`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::events::Events;
use crate::error::Error;
use crate::transport::Progress;

/// Passes every event on to `inner` and notes when the last one came.
pub(crate) struct Watched<E> {
    inner: E,
    started: Instant,
    last_event_ms: AtomicU64,
}

impl<E: Events> Watched<E> {
    pub(crate) fn new(inner: E) -> Watched<E> {
        Watched {
            inner,
            started: Instant::now(),
            last_event_ms: AtomicU64::new(0),
        }
    }

    /// The consumer the events go to.
    pub(crate) fn inner(&self) -> &E {
        &self.inner
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_event_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `timeout`: no event of the sync
    /// and no byte from the source, whose requests wait in a queue on a slow
    /// link while bytes for others arrive.
    pub(crate) async fn stalled(&self, timeout: Duration, source: &Progress) -> Error {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let last = Duration::from_millis(self.last_event_ms.load(Ordering::Relaxed));
            let quiet = self.started.elapsed().saturating_sub(last);
            if quiet.min(source.silent_for()) > timeout {
                return Error::Timeout(timeout);
            }
        }
    }
}

impl<E: Events> Events for Watched<E> {
    fn file_started(&self, path: &str, size: u64) {
        self.inner.file_started(path, size);
        self.touch();
    }

    fn bytes_moved(&self, bytes: u64) {
        self.inner.bytes_moved(bytes);
        self.touch();
    }

    fn file_done(&self, path: &str) {
        self.inner.file_done(path);
        self.touch();
    }

    fn file_failed(&self, path: &str, why: &str) {
        self.inner.file_failed(path, why);
        self.touch();
    }

    fn deleted(&self, path: &str) {
        self.inner.deleted(path);
        self.touch();
    }
}
