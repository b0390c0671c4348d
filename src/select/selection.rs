//! Combining package definitions and the WPKG log into the folders to mirror.

use std::collections::{BTreeMap, BTreeSet};

use super::packages::{PackageInfo, add_folders, package_folders};
use crate::text::decode;

/// What this host needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Selection {
    /// Needed package ids (lowercase) with their folders, dependencies included.
    pub needed: BTreeMap<String, BTreeSet<String>>,
    /// Every folder to mirror, as first written: the needed packages' folders
    /// and the protected ones.
    pub folders: BTreeSet<String>,
    /// Ids the log names that no package definition defines.
    pub unknown_ids: Vec<String>,
    /// Ids that only a needed package's `<depends>`, `<include>` or `<chain>`
    /// names and no package definition defines, with the packages naming them.
    pub unknown_dependencies: BTreeMap<String, BTreeSet<String>>,
    /// Package definition files that are not well-formed, with the reason.
    pub malformed: Vec<String>,
    /// Folders a malformed file may reference: mirrored and never deleted.
    pub protected: BTreeSet<String>,
}

/// Selects the folders for the packages `needed` (lowercase ids, from the WPKG
/// log), given every package definition file (repository path, content).
pub(crate) fn select(files: &[(String, Vec<u8>)], needed: &BTreeSet<String>) -> Selection {
    let mut selection = Selection::default();
    let mut packages: BTreeMap<String, PackageInfo> = BTreeMap::new();
    for (name, bytes) in files {
        match package_folders(name, bytes) {
            Ok(found) => packages.extend(found),
            Err(e) => {
                selection.malformed.push(e.to_string());
                // Its folders cannot be known exactly: keep every folder its
                // text mentions.
                add_folders(&decode(bytes), &mut selection.protected);
            }
        }
    }
    // Each id with the package that pulled it in, none for the log's own.
    let mut pending: Vec<(String, Option<String>)> =
        needed.iter().map(|id| (id.clone(), None)).collect();
    while let Some((id, pulled_by)) = pending.pop() {
        if selection.needed.contains_key(&id) {
            continue;
        }
        match (packages.get(&id), pulled_by) {
            (Some(info), _) => {
                selection.needed.insert(id.clone(), info.folders.clone());
                pending.extend(info.pulls.iter().map(|p| (p.clone(), Some(id.clone()))));
            }
            (None, None) => selection.unknown_ids.push(id),
            (None, Some(by)) => {
                selection
                    .unknown_dependencies
                    .entry(id)
                    .or_default()
                    .insert(by);
            }
        }
    }
    for id in &selection.unknown_ids {
        selection.unknown_dependencies.remove(id);
    }
    selection.unknown_ids.sort();
    selection.unknown_ids.dedup();
    let mut folders = BTreeSet::new();
    for folder in selection
        .needed
        .values()
        .flatten()
        .chain(&selection.protected)
    {
        if !folders
            .iter()
            .any(|f: &String| f.eq_ignore_ascii_case(folder))
        {
            folders.insert(folder.clone());
        }
    }
    selection.folders = folders;
    selection
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> (String, Vec<u8>) {
        (name.to_owned(), text.as_bytes().to_vec())
    }

    fn ids(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn needed_packages_bring_their_folders_and_dependencies() {
        let files = [
            file(
                "packages/app.xml",
                r#"<packages><package id="app"><install cmd="%SOFTWARE%\app\setup.exe"/><depends package-id="runtime"/></package></packages>"#,
            ),
            file(
                "packages/runtime.xml",
                r#"<packages><package id="Runtime"><install cmd="%SOFTWARE%\shared\rt.msi"/></package></packages>"#,
            ),
            file(
                "packages/viewer.xml",
                r#"<packages><package id="viewer"><install cmd="%SOFTWARE%\Shared\viewer.msi"/></package></packages>"#,
            ),
            file(
                "packages/unused.xml",
                r#"<packages><package id="unused"><install cmd="%SOFTWARE%\unused\x.msi"/></package></packages>"#,
            ),
        ];
        let selection = select(&files, &ids(&["app", "viewer", "ghost"]));
        assert_eq!(
            selection.needed.keys().collect::<Vec<_>>(),
            ["app", "runtime", "viewer"]
        );
        assert_eq!(
            selection.folders.iter().collect::<Vec<_>>(),
            ["app", "shared"]
        );
        assert_eq!(selection.unknown_ids, ["ghost"]);
        assert!(selection.unknown_dependencies.is_empty());
        assert!(selection.malformed.is_empty());
    }

    #[test]
    fn an_id_only_a_dependency_names_is_reported_with_its_dependents() {
        let files = [file(
            "packages/app.xml",
            r#"<packages><package id="app"><depends package-id="Runtime"/></package>
                   <package id="tool"><chain package-id="runtime"/></package></packages>"#,
        )];
        let selection = select(&files, &ids(&["app", "tool"]));
        assert!(selection.unknown_ids.is_empty());
        let dependents: Vec<_> = selection.unknown_dependencies["runtime"].iter().collect();
        assert_eq!(dependents, ["app", "tool"]);
    }

    #[test]
    fn a_malformed_file_protects_the_folders_it_mentions() {
        let files = [
            file(
                "packages/ok.xml",
                r#"<packages><package id="ok"><install cmd="%SOFTWARE%\ok\a.msi"/></package></packages>"#,
            ),
            file(
                "packages/bad.xml",
                "<packages><package id='bad'><install cmd='%SOFTWARE%\\badfolder\\x.msi'></packages>",
            ),
        ];
        let selection = select(&files, &ids(&["ok"]));
        assert_eq!(selection.malformed.len(), 1);
        assert!(
            selection.malformed[0].starts_with("packages/bad.xml: "),
            "{:?}",
            selection.malformed
        );
        assert_eq!(
            selection.protected.iter().collect::<Vec<_>>(),
            ["badfolder"]
        );
        assert_eq!(
            selection.folders.iter().collect::<Vec<_>>(),
            ["badfolder", "ok"]
        );
    }

    #[test]
    fn dependency_cycles_end() {
        let files = [file(
            "packages/c.xml",
            r#"<packages><package id="a"><depends package-id="b"/></package><package id="b"><depends package-id="a"/><install cmd="%SOFTWARE%\b\x"/></package></packages>"#,
        )];
        let selection = select(&files, &ids(&["a"]));
        assert_eq!(selection.folders.iter().collect::<Vec<_>>(), ["b"]);
    }
}
