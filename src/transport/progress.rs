//! "No progress" for a whole session: the time since the last byte arrived
//! from the source, shared by every request of a run.
//!
//! A request's own age says nothing on a slow link: with many requests queued
//! behind each other, the last one waits while the link is busy with the
//! others. So the clock here is touched whenever bytes arrive (the SFTP channel
//! touches it per read of the SSH stream, the wrappers per answer) and a
//! request only fails when the whole session has been silent for the timeout.
//! The clock also restarts when a request is sent while none was outstanding,
//! so time spent on local work between requests never counts as silence.
//! Once a session has been found silent, or a request found it lost, it stays
//! dead: every later request fails at once with that error, so the files
//! still queued, and the closing of open files, do not each wait for the lost
//! server again (a close sent as the connection drops may get no answer).
//!
//! With several sources, each has its own fate ([`Progress::sibling`]) on
//! the one clock: a source found silent or lost is dead, the others are not,
//! and the run's clock restarts when the next source takes over.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use super::source::{TransportError, TransportErrorKind};

/// The session's last-byte clock and one source's fate; clones share both.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    clock: Arc<Clock>,
    fate: Arc<Fate>,
}

#[derive(Debug)]
struct Clock {
    started: Instant,
    /// Milliseconds after `started` when bytes last arrived.
    last_ms: AtomicU64,
    /// Requests waiting for an answer.
    outstanding: AtomicUsize,
}

#[derive(Debug, Default)]
struct Fate {
    /// Set once a request ended for silence.
    dead: AtomicBool,
    /// The first error that said the connection is lost.
    lost: OnceLock<TransportError>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Progress {
    /// A clock that starts now.
    pub(crate) fn new() -> Progress {
        Progress {
            clock: Arc::new(Clock {
                started: Instant::now(),
                last_ms: AtomicU64::new(0),
                outstanding: AtomicUsize::new(0),
            }),
            fate: Arc::default(),
        }
    }

    /// The same clock with a fate of its own, for another source of the run.
    pub(crate) fn sibling(&self) -> Progress {
        Progress {
            clock: Arc::clone(&self.clock),
            fate: Arc::default(),
        }
    }

    /// Whether this source was found silent or lost.
    #[cfg(test)]
    fn is_dead(&self) -> bool {
        self.fate.dead.load(Ordering::Relaxed) || self.fate.lost.get().is_some()
    }

    /// Bytes arrived (or the source answered) just now.
    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.clock.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.clock.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// When bytes last arrived, or a request went out to an idle source.
    pub(crate) fn last(&self) -> Instant {
        self.clock.started + Duration::from_millis(self.clock.last_ms.load(Ordering::Relaxed))
    }

    /// How long the source has been silent.
    pub(crate) fn silent_for(&self) -> Duration {
        self.last().elapsed()
    }

    /// Runs one request to the source: it fails with a timeout once the
    /// session, not this request, has been silent for `timeout`.
    pub(crate) async fn watch<T>(
        &self,
        timeout: Duration,
        request: impl Future<Output = Result<T, TransportError>>,
    ) -> Result<T, TransportError> {
        let silence = || {
            TransportError::new(
                TransportErrorKind::Timeout,
                format!(
                    "no progress: nothing arrived from the source for {}s",
                    timeout.as_secs()
                ),
            )
        };
        if self.fate.dead.load(Ordering::Relaxed) {
            return Err(silence());
        }
        if let Some(lost) = self.fate.lost.get() {
            return Err(lost.clone());
        }
        let _outstanding = Outstanding::new(self);
        tokio::select! {
            result = request => {
                self.touch();
                if let Err(e) = &result
                    && e.kind() == TransportErrorKind::Unreachable
                {
                    let _ = self.fate.lost.set(e.clone());
                }
                result
            }
            () = self.silent(timeout) => {
                self.fate.dead.store(true, Ordering::Relaxed);
                Err(silence())
            }
        }
    }

    /// Resolves once the source has been silent for `timeout`.
    async fn silent(&self, timeout: Duration) {
        loop {
            let silent = self.silent_for();
            if silent >= timeout {
                return;
            }
            tokio::time::sleep(timeout - silent).await;
        }
    }
}

/// One request waiting for an answer; the first after a pause restarts the clock.
struct Outstanding<'a>(&'a Progress);

impl<'a> Outstanding<'a> {
    fn new(progress: &'a Progress) -> Outstanding<'a> {
        if progress.clock.outstanding.fetch_add(1, Ordering::Relaxed) == 0 {
            progress.touch();
        }
        Outstanding(progress)
    }
}

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        self.0.clock.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    }

    #[test]
    fn a_slow_request_lives_while_others_bring_bytes() {
        runtime().block_on(async {
            let progress = Progress::new();
            let timeout = Duration::from_secs(3);
            // Bytes arrive every second for ten seconds, for other requests.
            let feeder = {
                let progress = progress.clone();
                async move {
                    for _ in 0..10 {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        progress.touch();
                    }
                }
            };
            let slow = progress.watch(timeout, async {
                tokio::time::sleep(Duration::from_secs(9)).await;
                Ok(())
            });
            let (result, ()) = tokio::join!(slow, feeder);
            assert!(result.is_ok(), "{result:?}");
        });
    }

    #[test]
    fn a_silent_session_times_out_after_the_timeout() {
        runtime().block_on(async {
            let progress = Progress::new();
            let started = tokio::time::Instant::now();
            let result: Result<(), _> = progress
                .watch(Duration::from_secs(3), std::future::pending())
                .await;
            let error = result.unwrap_err();
            assert_eq!(error.kind(), TransportErrorKind::Timeout);
            assert!(error.to_string().contains("no progress"), "{error}");
            let waited = started.elapsed();
            assert!(
                waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
                "{waited:?}"
            );
        });
    }

    #[test]
    fn a_session_found_silent_fails_every_later_request_at_once() {
        runtime().block_on(async {
            let progress = Progress::new();
            let timeout = Duration::from_secs(3);
            let first: Result<(), _> = progress.watch(timeout, std::future::pending()).await;
            assert!(first.is_err());
            let started = tokio::time::Instant::now();
            let later: Result<(), _> = progress.watch(timeout, std::future::pending()).await;
            assert_eq!(later.unwrap_err().kind(), TransportErrorKind::Timeout);
            assert_eq!(started.elapsed(), Duration::ZERO);
        });
    }

    #[test]
    fn a_session_found_lost_fails_every_later_request_at_once() {
        runtime().block_on(async {
            let progress = Progress::new();
            let timeout = Duration::from_secs(3);
            let lost = TransportError::new(TransportErrorKind::Unreachable, "sender dropped");
            let first: Result<(), _> = progress.watch(timeout, async { Err(lost) }).await;
            assert!(first.is_err());
            let started = tokio::time::Instant::now();
            let later: Result<(), _> = progress.watch(timeout, std::future::pending()).await;
            let error = later.unwrap_err();
            assert_eq!(error.kind(), TransportErrorKind::Unreachable);
            assert_eq!(error.to_string(), "sender dropped");
            assert_eq!(started.elapsed(), Duration::ZERO);
        });
    }

    #[test]
    fn a_dead_source_leaves_its_siblings_alive_on_the_same_clock() {
        runtime().block_on(async {
            let first = Progress::new();
            let second = first.sibling();
            let timeout = Duration::from_secs(3);
            let silent: Result<(), _> = first.watch(timeout, std::future::pending()).await;
            assert!(silent.is_err() && first.is_dead() && !second.is_dead());
            // The next source starts on a clock touched when it took over.
            second.touch();
            let answered = second
                .watch(timeout, async {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Ok(())
                })
                .await;
            assert!(answered.is_ok(), "{answered:?}");
            assert!(first.silent_for() < timeout, "the clock is shared");
        });
    }

    #[test]
    fn one_missing_file_does_not_end_the_session() {
        runtime().block_on(async {
            let progress = Progress::new();
            let timeout = Duration::from_secs(3);
            let missing = TransportError::new(TransportErrorKind::NotFound, "no such file");
            let first: Result<(), _> = progress.watch(timeout, async { Err(missing) }).await;
            assert!(first.is_err());
            let later = progress.watch(timeout, async { Ok(()) }).await;
            assert!(later.is_ok(), "{later:?}");
        });
    }

    #[test]
    fn local_work_between_requests_is_not_silence() {
        runtime().block_on(async {
            let progress = Progress::new();
            // Ten seconds of local work with nothing outstanding ...
            tokio::time::sleep(Duration::from_secs(10)).await;
            // ... then a request that answers after two seconds.
            let result = progress
                .watch(Duration::from_secs(3), async {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Ok(())
                })
                .await;
            assert!(result.is_ok(), "{result:?}");
        });
    }
}
