//! Windows twin of the ACL repair, with the system's own tools as the old
//! `wpkgsync.bat` used them: `takeown /A /R` makes BUILTIN\Administrators the
//! owner of everything, `icacls /reset /T` drops explicit entries below the
//! root so children only inherit, and `/inheritance:r /grant:r` gives the root
//! a protected DACL: Administrators and SYSTEM full control, Users read and
//! execute, inherited by every child. Well-known SIDs keep it independent of
//! the Windows display language.

use std::path::Path;
use std::process::Command;

use super::AclError;

/// Repairs `root` and everything below it.
pub fn repair(root: &Path) -> Result<(), AclError> {
    let root_arg = root.as_os_str();
    run(
        root,
        Command::new("takeown")
            .arg("/F")
            .arg(root_arg)
            .args(["/A", "/R"]),
    )?;
    run(
        root,
        Command::new("icacls")
            .arg(root_arg)
            .args(["/reset", "/T", "/C", "/Q"]),
    )?;
    run(
        root,
        Command::new("icacls").arg(root_arg).args([
            "/inheritance:r",
            "/grant:r",
            "*S-1-5-32-544:(OI)(CI)F",
            "*S-1-5-18:(OI)(CI)F",
            "*S-1-5-32-545:(OI)(CI)RX",
            "/Q",
        ]),
    )
}

fn run(root: &Path, command: &mut Command) -> Result<(), AclError> {
    let output = command.output().map_err(|e| AclError {
        path: root.to_path_buf(),
        why: format!("{:?}: {e}", command.get_program()),
    })?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let said = if said.trim().is_empty() {
        String::from_utf8_lossy(&output.stdout)
    } else {
        said
    };
    Err(AclError {
        path: root.to_path_buf(),
        why: format!(
            "{:?} exited {}: {}",
            command.get_program(),
            output.status,
            said.trim()
        ),
    })
}
