//! The package folders of one run: the INI's `packages` setting and `/setup`
//! decide, and for `auto` the WPKG log and the package definitions say which
//! folders this host needs. A log that cannot be read or names nothing falls
//! back to what `/setup` mirrors, so no folder is deleted on a guess.

use super::{log_file, select, wpkg_log};
use crate::config::{Config, PackageSelection};
use crate::error::Error;
use crate::manifest::verify::VerifiedManifest;
use crate::store::dir::StoreDir;
use crate::sync::inventory::Inventory;
use crate::sync::package_files;
use crate::sync::scope::{Others, PackageFolders};
use crate::transport::Source;

/// Which package folders this run mirrors, from the INI and the switches, with
/// lines that say why for the log (and a dry run's output).
pub(crate) async fn folders_for_run<S: Source>(
    source: &S,
    manifest: &VerifiedManifest,
    store: Option<&StoreDir>,
    inventory: &Inventory,
    config: &Config,
    setup: bool,
) -> Result<(PackageFolders, Vec<String>), Error> {
    if setup {
        return Ok((
            PackageFolders::setup(),
            vec!["/setup: mirroring the top level and packages/*.xml".into()],
        ));
    }
    let auto = match &config.sync.packages {
        PackageSelection::All => return Ok((PackageFolders::All, Vec::new())),
        PackageSelection::List(list) => {
            return Ok((PackageFolders::only(list.clone()), Vec::new()));
        }
        PackageSelection::Auto => &config.sync.wpkg_log,
    };
    let log = match log_file::read_tail(auto, log_file::MAX_LOG_BYTES) {
        Ok(Some(bytes)) => bytes,
        found => {
            let why = match found {
                Err(e) => e.to_string(),
                _ => format!("no WPKG log at {} yet", auto.display()),
            };
            let note = format!("{why}: mirroring the top level and packages/*.xml as /setup does");
            return Ok((PackageFolders::setup(), vec![note]));
        }
    };
    let needed = wpkg_log::needed_ids(&log);
    if needed.is_empty() {
        // A log cut short before WPKG read the profiles names no package; taking
        // it literally would delete every package folder.
        let note = format!(
            "the WPKG log {} names no package: mirroring the top level and packages/*.xml as /setup does",
            auto.display()
        );
        return Ok((PackageFolders::setup(), vec![note]));
    }
    let definitions = package_files::read(source, manifest, store, inventory).await?;
    let selection = select(&definitions.files, &needed);
    let mut notes = Vec::new();
    for (id, folders) in &selection.needed {
        let folders: Vec<&str> = folders.iter().map(String::as_str).collect();
        notes.push(format!("package {id} needs: {}", folders.join(", ")));
    }
    if !selection.unknown_ids.is_empty() {
        notes.push(format!(
            "the WPKG log names packages no package file defines: {}",
            selection.unknown_ids.join(", ")
        ));
    }
    for (id, dependents) in &selection.unknown_dependencies {
        let dependents: Vec<&str> = dependents.iter().map(String::as_str).collect();
        notes.push(format!(
            "no package file defines {id}, which {} depends on",
            dependents.join(", ")
        ));
    }
    for malformed in &selection.malformed {
        notes.push(format!(
            "malformed package file, its folders are kept: {malformed}"
        ));
    }
    for unreadable in &definitions.unreadable {
        notes.push(format!("unreadable package file: {unreadable}"));
    }
    let mirror: Vec<String> = selection.folders.iter().cloned().collect();
    // Without every definition, an unselected folder may still be needed:
    // leave those alone rather than delete them.
    let folders = if definitions.unreadable.is_empty() {
        PackageFolders::only(mirror)
    } else {
        PackageFolders::Selected {
            mirror,
            others: Others::Untouched,
        }
    };
    Ok((folders, notes))
}
