//! Windows side of starting a sync from the listener.
//!
//! The listener runs as a resident task without a console; a console program
//! started from it would get a console window of its own, which on a user's
//! session shows up and vanishes with every sync.

use std::os::windows::process::CommandExt;
use std::process::Command;

use windows_sys::Win32::System::Threading::CREATE_NO_WINDOW;

/// Starts the child without a console window.
pub(super) fn without_console(command: &mut Command) {
    command.creation_flags(CREATE_NO_WINDOW);
}
