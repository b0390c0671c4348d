//! Unix side of starting a sync from the listener.

use std::process::Command;

/// Nothing to do: a Unix child inherits no console window that could pop up.
pub(super) fn without_console(_command: &mut Command) {}
