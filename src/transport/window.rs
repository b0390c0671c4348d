//! The bytes a run may have requested but not yet received, across all files.
//!
//! More requests in flight than the link carries in a few seconds buy
//! nothing: they only queue behind each other (and, with a timer per request,
//! time out on a slow link while data flows). So the window follows the
//! measured throughput: about [`WINDOW_SECS`] seconds of it, never below
//! [`FLOOR`] (a few requests, enough to start and to fill a fast LAN) nor
//! above [`CEILING`] (512 requests of 64 KiB, the most a run ever kept in
//! flight). It starts at the floor and is re-measured every second.
//!
//! The window is a fair semaphore (tokio's) counted in KiB: requests get their
//! room in the order they ask for it.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// Seconds of measured throughput the window holds.
const WINDOW_SECS: u64 = 4;
/// Smallest window, in KiB: four requests of 64 KiB.
pub(super) const FLOOR: u32 = 256;
/// Largest window, in KiB: 512 requests of 64 KiB.
pub(super) const CEILING: u32 = 32 * 1024;
/// How often the throughput is measured.
const MEASURE_EVERY: Duration = Duration::from_secs(1);

/// The shared window of one run.
#[derive(Debug)]
pub(super) struct Window {
    room: Semaphore,
    sizing: Mutex<Sizing>,
}

#[derive(Debug)]
struct Sizing {
    /// The window now, in KiB.
    size: u32,
    /// KiB to withhold from returned room after the window shrank.
    debt: u32,
    /// Start of the current measurement.
    since: Instant,
    /// Bytes received since then.
    received: u64,
}

/// Room for one request, returned with [`Window::release`].
pub(super) struct Room<'a> {
    permit: SemaphorePermit<'a>,
    kib: u32,
}

impl Window {
    /// A window at the floor.
    pub(super) fn new() -> Window {
        Window {
            room: Semaphore::new(FLOOR as usize),
            sizing: Mutex::new(Sizing {
                size: FLOOR,
                debt: 0,
                since: Instant::now(),
                received: 0,
            }),
        }
    }

    /// The window now, in KiB.
    #[cfg(test)]
    fn size(&self) -> u32 {
        self.sizing.lock().map_or(FLOOR, |s| s.size)
    }

    /// Waits for room for a request of `len` bytes.
    pub(super) async fn acquire(&self, len: u32) -> Room<'_> {
        let kib = len.div_ceil(1024).clamp(1, FLOOR);
        match self.room.acquire_many(kib).await {
            Ok(permit) => Room { permit, kib },
            // The semaphore is never closed.
            Err(_) => unreachable!("the window's semaphore is never closed"),
        }
    }

    /// Returns a request's room once `received` bytes of its answer arrived
    /// (zero for a failed one), and resizes the window when a measurement is due.
    pub(super) fn release(&self, room: Room<'_>, received: u64) {
        let Room { permit, kib } = room;
        permit.forget();
        let mut give = kib;
        if let Ok(mut sizing) = self.sizing.lock() {
            sizing.received += received;
            let elapsed = sizing.since.elapsed();
            if elapsed >= MEASURE_EVERY {
                let per_second = sizing.received as f64 / elapsed.as_secs_f64();
                let target = target_kib(per_second);
                if target > sizing.size {
                    let grow = target - sizing.size;
                    let repaid = grow.min(sizing.debt);
                    sizing.debt -= repaid;
                    give += grow - repaid;
                } else {
                    sizing.debt += sizing.size - target;
                }
                sizing.size = target;
                sizing.since = Instant::now();
                sizing.received = 0;
            }
            let repaid = give.min(sizing.debt);
            sizing.debt -= repaid;
            give -= repaid;
        }
        self.room.add_permits(give as usize);
    }
}

impl Default for Window {
    fn default() -> Self {
        Window::new()
    }
}

/// The window for a throughput of `per_second` bytes a second, in KiB.
fn target_kib(per_second: f64) -> u32 {
    let kib = per_second * WINDOW_SECS as f64 / 1024.0;
    (kib.min(f64::from(CEILING)) as u32).clamp(FLOOR, CEILING)
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
    fn the_window_holds_a_few_seconds_of_throughput_within_floor_and_ceiling() {
        assert_eq!(target_kib(0.0), FLOOR);
        assert_eq!(target_kib(10.0 * 1024.0), FLOOR);
        assert_eq!(target_kib(100.0 * 1024.0), 400);
        assert_eq!(target_kib(2000.0 * 1024.0), 8000);
        assert_eq!(target_kib(1e12), CEILING);
    }

    /// A link of `kib_per_second`: requests of 64 KiB, as many as the window
    /// allows, each answered in turn at that rate. Returns the most KiB ever
    /// in flight after the first seconds and the window at the end.
    fn run_link(kib_per_second: u64, seconds: u64) -> (u32, u32) {
        runtime().block_on(async {
            let window = Window::new();
            let in_flight = std::sync::atomic::AtomicU32::new(0);
            let most = std::sync::atomic::AtomicU32::new(0);
            let link = tokio::sync::Mutex::new(());
            let started = Instant::now();
            let per_request = Duration::from_micros(64 * 1_000_000 / kib_per_second);
            let requests = futures::stream::iter(0..(kib_per_second * seconds / 64)).map(|_| {
                let (window, in_flight, most, link) = (&window, &in_flight, &most, &link);
                async move {
                    let room = window.acquire(64 * 1024).await;
                    let now = in_flight.fetch_add(64, std::sync::atomic::Ordering::Relaxed) + 64;
                    if started.elapsed() > Duration::from_secs(3) {
                        most.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
                    }
                    {
                        let _turn = link.lock().await;
                        tokio::time::sleep(per_request).await;
                    }
                    in_flight.fetch_sub(64, std::sync::atomic::Ordering::Relaxed);
                    window.release(room, 64 * 1024);
                }
            });
            use futures::StreamExt;
            requests.buffer_unordered(10_000).collect::<Vec<()>>().await;
            (
                most.load(std::sync::atomic::Ordering::Relaxed),
                window.size(),
            )
        })
    }

    #[test]
    fn a_slow_link_keeps_few_bytes_in_flight() {
        // 100 KiB/s: about four seconds of it, not 32 MiB.
        let (most, size) = run_link(100, 20);
        assert!(most <= 512, "{most} KiB in flight");
        assert!((FLOOR..=512).contains(&size), "window {size} KiB");
    }

    #[test]
    fn a_fast_link_opens_the_window() {
        let (most, size) = run_link(20_000, 8);
        assert!(most > 16 * 1024, "only {most} KiB in flight");
        assert!(size > 16 * 1024, "window {size} KiB");
    }
}
