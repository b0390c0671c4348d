//! The progress display at a console: total bytes and the current file, drawn by
//! indicatif on stderr. Task Scheduler has no console and `/quiet` asks for
//! none; then nothing is drawn and only errors are printed. A dry run prints
//! its plan here too.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::manifest::verify::{VerifiedFile, VerifiedManifest};
use crate::sync::apply::Arrival;
use crate::sync::events::Events;
use crate::sync::plan::Plan;
use crate::sync::scope::Scope;

/// A progress bar or nothing.
pub(crate) struct Display {
    bar: Option<ProgressBar>,
}

impl Display {
    /// Bars only when stderr is a terminal and `quiet` is off.
    pub(crate) fn choose(quiet: bool) -> Display {
        if quiet || !std::io::stderr().is_terminal() {
            return Display { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {bar:30} {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Display { bar: Some(bar) }
    }

    /// Sets the total to download.
    pub(crate) fn set_total(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
        }
    }

    /// Shows the file being fetched.
    pub(crate) fn set_file(&self, path: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(path.to_owned());
        }
    }

    /// Advances by `bytes`.
    pub(crate) fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// Prints a line above the bar without tearing it.
    pub(crate) fn println(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.println(text);
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The console is the run's event consumer: a bar while bytes move, and a
/// line for each failure.
impl Events for Display {
    fn file_started(&self, path: &str, _size: u64) {
        self.set_file(path);
    }

    fn bytes_moved(&self, bytes: u64) {
        self.advance(bytes);
    }

    fn file_done(&self, _path: &str) {}

    fn file_failed(&self, path: &str, why: &str) {
        self.println(&format!("failed: {path}: {why}"));
    }

    fn deleted(&self, _path: &str) {}
}

/// The package folders of the repository this run does not mirror.
pub(crate) fn print_excluded(manifest: &VerifiedManifest, scope: &Scope) {
    let list: Vec<&str> = manifest
        .parts()
        .iter()
        .filter_map(|part| part.folder())
        .filter(|folder| !scope.mirrors_folder(folder))
        .collect();
    println!(
        "package folders not mirrored: {}",
        if list.is_empty() {
            "none".to_owned()
        } else {
            list.join(", ")
        }
    );
}

pub(crate) fn print_plan(
    plan: &Plan<'_>,
    estimates: &[(&VerifiedFile, Arrival)],
    cap: Option<u32>,
) {
    println!("dry run: nothing is changed");
    let mut bytes = 0;
    for (file, arrival) in estimates {
        let how = match arrival {
            Arrival::Copy(from) => format!("copy from {from}"),
            Arrival::Delta(fetched) => {
                bytes += fetched;
                format!("delta, {fetched} of {} bytes", file.size())
            }
            Arrival::Whole(fetched) => {
                bytes += fetched;
                format!("whole, {fetched} bytes")
            }
        };
        println!("fetch  {} ({how})", file.path());
    }
    for path in plan.clear.iter().chain(&plan.delete) {
        println!("delete {path}");
    }
    let estimate = match cap {
        Some(kib) => format!(
            "about {}s at {kib} KiB/s",
            bytes.div_ceil(u64::from(kib) * 1024)
        ),
        None => "no cap".to_owned(),
    };
    println!(
        "total: {} files to fetch, {bytes} bytes from the source ({estimate}), {} to delete, {} unchanged",
        plan.fetch.len(),
        plan.clear.len() + plan.delete.len(),
        plan.unchanged
    );
}
