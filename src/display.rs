//! The progress display at a console: total bytes and the current file, drawn by
//! indicatif on stderr. Task Scheduler has no console and `/quiet` asks for
//! none; then nothing is drawn and only errors are printed.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar or nothing.
pub struct Display {
    bar: Option<ProgressBar>,
}

impl Display {
    /// Bars only when stderr is a terminal and `quiet` is off.
    pub fn choose(quiet: bool) -> Display {
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
    pub fn set_total(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
        }
    }

    /// Shows the file being fetched.
    pub fn set_file(&self, path: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(path.to_owned());
        }
    }

    /// Advances by `bytes`.
    pub fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// Prints a line above the bar without tearing it.
    pub fn println(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.println(text);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
