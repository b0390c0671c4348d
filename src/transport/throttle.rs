//! What every request of a run goes through, around any [`Source`]: the
//! bandwidth cap, one token bucket (governor) in KiB/s; the window of bytes in
//! flight across all files ([`Window`]); and the session's "no progress"
//! clock ([`Progress`]) it hands to the run's watchdog; each request is
//! watched by [`super::sources::Sources`], per source, which fails over to
//! the next one. It also counts the bytes of every read and report write.
//!
//! The bucket holds a fifth of a second of traffic, so no second carries more
//! than 1.2 times the cap, and a read never asks for more than the bucket holds.
//! A request is only sent once it has room in the window and its tokens, so a
//! request in flight waits for the link, not for the queue in front of it.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::progress::Progress;
use super::reports::ReportFolder;
use super::source::{Source, TransportError};
use super::window::Window;

/// Largest read request, in bytes, when the cap allows it.
pub(super) const MAX_REQUEST: u32 = 64 * 1024;

/// A source whose reads wait for tokens first.
pub(crate) struct Throttled<S> {
    inner: S,
    limiter: Option<DefaultDirectRateLimiter>,
    // Reads queue here for their tokens in the order they were issued (tokio's
    // mutex is fair), so the bytes of a file arrive in order and none of many
    // reads in flight starves behind later ones.
    queue: tokio::sync::Mutex<()>,
    request: u32,
    transferred: AtomicU64,
    window: Window,
    progress: Progress,
}

/// The bucket and request size for a cap: tokens are KiB, the burst is a fifth
/// of the cap, and requests are no larger than the burst.
fn plan(cap_kib: NonZeroU32) -> (Quota, u32) {
    let burst_kib = (cap_kib.get() / 5).max(1);
    let request = (burst_kib.saturating_mul(1024)).min(MAX_REQUEST);
    let burst = NonZeroU32::new(request.div_ceil(1024)).unwrap_or(NonZeroU32::MIN);
    (Quota::per_second(cap_kib).allow_burst(burst), request)
}

impl<S: Source> Throttled<S> {
    /// Wraps `inner`, whose requests touch `progress`; `cap_kib` of `None`
    /// means no cap (`/fast`).
    pub(crate) fn new(inner: S, cap_kib: Option<u32>, progress: Progress) -> Throttled<S> {
        let (limiter, request) = match cap_kib.and_then(NonZeroU32::new) {
            Some(cap) => {
                let (quota, request) = plan(cap);
                (Some(RateLimiter::direct(quota)), request)
            }
            None => (None, MAX_REQUEST),
        };
        Throttled {
            inner,
            limiter,
            queue: tokio::sync::Mutex::new(()),
            request,
            transferred: AtomicU64::new(0),
            window: Window::new(),
            progress,
        }
    }

    /// The session's last-byte clock.
    pub(crate) fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The source inside.
    pub(crate) fn inner(&self) -> &S {
        &self.inner
    }

    /// The largest read that fits the bucket; callers split reads to this size.
    pub(crate) fn request_size(&self) -> u32 {
        self.request
    }

    /// File bytes read and written so far, SSH framing not counted.
    pub(crate) fn transferred(&self) -> u64 {
        self.transferred.load(Ordering::Relaxed)
    }

    /// Waits until `len` bytes may cross the link (`len` within the request size).
    async fn wait_turn(&self, len: u32) {
        if let Some(limiter) = &self.limiter {
            let kib = NonZeroU32::new(len.div_ceil(1024)).unwrap_or(NonZeroU32::MIN);
            let _turn = self.queue.lock().await;
            // `plan` keeps requests within the burst, so capacity always suffices.
            let _ = limiter.until_n_ready(kib).await;
        }
    }
}

impl<S: Source> Source for Throttled<S> {
    type File = S::File;

    async fn open(&self, path: &str) -> Result<S::File, TransportError> {
        self.inner.open(path).await
    }

    async fn read_at(
        &self,
        file: &S::File,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, TransportError> {
        let len = len.min(self.request);
        let room = self.window.acquire(len).await;
        self.wait_turn(len).await;
        let read = self.inner.read_at(file, offset, len).await;
        let received = read.as_ref().map_or(0, |data| data.len() as u64);
        self.window.release(room, received);
        self.transferred.fetch_add(received, Ordering::Relaxed);
        read
    }

    async fn close(&self, file: S::File) {
        self.inner.close(file).await;
    }

    fn reject(&self, file: &S::File) -> bool {
        self.inner.reject(file)
    }
}

/// Writes are split into requests the bucket holds, each waiting its turn.
impl<S: Source + ReportFolder> ReportFolder for Throttled<S> {
    type Writer = S::Writer;

    async fn create(&self, path: &str, append: bool) -> Result<S::Writer, TransportError> {
        self.inner.create(path, append).await
    }

    async fn write_at(
        &self,
        file: &S::Writer,
        offset: u64,
        data: &[u8],
    ) -> Result<(), TransportError> {
        let mut offset = offset;
        for chunk in data.chunks(self.request as usize) {
            self.wait_turn(chunk.len() as u32).await;
            self.inner.write_at(file, offset, chunk).await?;
            offset += chunk.len() as u64;
            self.transferred
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn finish(&self, file: S::Writer) -> Result<(), TransportError> {
        self.inner.finish(file).await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), TransportError> {
        self.inner.rename(from, to).await
    }

    async fn remove(&self, path: &str) -> Result<(), TransportError> {
        self.inner.remove(path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::time::Duration;

    /// Greedy reader against a fake clock: KiB granted in each whole second.
    fn granted_per_second(cap: u32, seconds: u64) -> Vec<u64> {
        let (quota, request) = plan(NonZeroU32::new(cap).unwrap());
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::direct_with_clock(quota, clock.clone());
        let cells = NonZeroU32::new(request.div_ceil(1024)).unwrap();
        let step = Duration::from_micros(100);
        let mut per_second = vec![0u64; seconds as usize];
        for tick in 0..seconds * 10_000 {
            while let Ok(Ok(())) = limiter.check_n(cells) {
                per_second[(tick / 10_000) as usize] += u64::from(cells.get());
            }
            clock.advance(step);
        }
        per_second
    }

    #[test]
    fn no_second_carries_more_than_a_fifth_over_the_cap() {
        for cap in [10, 100, 1000, 2000, 50_000] {
            let seconds = granted_per_second(cap, 6);
            for (i, kib) in seconds.iter().enumerate() {
                assert!(
                    *kib as f64 <= f64::from(cap) * 1.2,
                    "cap {cap}, second {i}: {kib}"
                );
            }
            // And the cap is used, not just respected.
            let steady: u64 = seconds[1..].iter().sum();
            assert!(
                steady as f64 >= f64::from(cap) * 5.0 * 0.9,
                "cap {cap}: {seconds:?}"
            );
        }
    }

    #[test]
    fn requests_fit_the_bucket() {
        for cap in [1, 4, 100, 1000, 1_000_000] {
            let (quota, request) = plan(NonZeroU32::new(cap).unwrap());
            assert!(
                request.div_ceil(1024) <= quota.burst_size().get(),
                "cap {cap}"
            );
            assert!((1024..=MAX_REQUEST).contains(&request));
        }
    }
}
