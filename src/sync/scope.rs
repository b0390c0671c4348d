//! Which repository paths this machine mirrors.
//!
//! The top level is always mirrored, and so is every `packages/*.xml`; folders
//! below `packages/` only as the selection says. Names in `exclude` are never
//! mirrored and are deleted locally, as rsync's `--delete-excluded` did. Paths are
//! compared case-insensitively because the store lives on NTFS.

/// Which folders below `packages/` are mirrored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PackageFolders {
    /// Every folder (`packages = all`).
    All,
    /// These folders; the rest as `others` says.
    Selected {
        /// Folder names, compared without regard to letter case.
        mirror: Vec<String>,
        /// What happens to the folders not named.
        others: Others,
    },
}

/// What happens to package folders a selection does not name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Others {
    /// Deleted locally, as rsync's computed exclude list did.
    Excluded,
    /// Left as they are: `/setup`, or a selection that may be incomplete.
    Untouched,
}

impl PackageFolders {
    /// `/setup`: the top level and `packages/*.xml` only, nothing deleted below.
    pub(crate) fn setup() -> PackageFolders {
        PackageFolders::Selected {
            mirror: Vec::new(),
            others: Others::Untouched,
        }
    }

    /// Exactly these folders; the others are deleted locally.
    pub(crate) fn only(mirror: Vec<String>) -> PackageFolders {
        PackageFolders::Selected {
            mirror,
            others: Others::Excluded,
        }
    }
}

/// The mirrored part of the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Scope {
    folders: PackageFolders,
    exclude: Vec<String>,
}

/// The folder below the repository root that holds WPKG's package definitions.
const PACKAGES: &str = "packages";

/// What the scope says about a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Mirrored: fetched when listed, deleted locally when not.
    Mirrored,
    /// Excluded: never fetched, deleted locally.
    Excluded,
    /// A package folder this run does not select: neither fetched nor deleted.
    Untouched,
}

impl Scope {
    /// A scope of `folders`, never mirroring the paths in `exclude` (top-level
    /// names or relative paths).
    pub(crate) fn new(folders: PackageFolders, exclude: &[String]) -> Scope {
        let folders = match folders {
            PackageFolders::Selected { mirror, others } => PackageFolders::Selected {
                mirror: mirror.iter().map(|f| f.to_lowercase()).collect(),
                others,
            },
            PackageFolders::All => PackageFolders::All,
        };
        Scope {
            folders,
            exclude: exclude
                .iter()
                .map(|e| e.trim_matches('/').to_lowercase())
                .filter(|e| !e.is_empty())
                .collect(),
        }
    }

    /// Whether some file of the package folder `folder` (a name below
    /// `packages/`) may be mirrored: the folder is selected and not excluded.
    pub(crate) fn mirrors_folder(&self, folder: &str) -> bool {
        let folder = folder.to_lowercase();
        let selected = match &self.folders {
            PackageFolders::All => true,
            PackageFolders::Selected { mirror, .. } => mirror.contains(&folder),
        };
        selected && !self.excluded(&format!("{PACKAGES}/{folder}"))
    }

    /// `lower` (a lowercase path) is an excluded name or lies below one.
    fn excluded(&self, lower: &str) -> bool {
        self.exclude.iter().any(|e| {
            lower == e
                || lower
                    .strip_prefix(e.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    }

    /// The verdict for a relative, `/`-separated path of a file or folder.
    pub(crate) fn judge(&self, path: &str) -> Verdict {
        let lower = path.to_lowercase();
        if self.excluded(&lower) {
            return Verdict::Excluded;
        }
        let mut parts = lower.split('/');
        if parts.next() != Some(PACKAGES) {
            return Verdict::Mirrored;
        }
        let (Some(second), rest) = (parts.next(), parts.next()) else {
            // The packages folder itself.
            return Verdict::Mirrored;
        };
        if rest.is_none() && second.ends_with(".xml") {
            return Verdict::Mirrored;
        }
        match &self.folders {
            PackageFolders::All => Verdict::Mirrored,
            PackageFolders::Selected { mirror, .. } if mirror.iter().any(|f| f == second) => {
                Verdict::Mirrored
            }
            // A file directly in packages/ that is not XML, or an unselected
            // folder.
            PackageFolders::Selected { others, .. } => match others {
                Others::Excluded => Verdict::Excluded,
                Others::Untouched => Verdict::Untouched,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exclude() -> Vec<String> {
        ["lost+found", "profiles.sites", "client"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn top_level_and_package_xml_are_always_mirrored() {
        for folders in [
            PackageFolders::All,
            PackageFolders::setup(),
            PackageFolders::only(vec![]),
        ] {
            let scope = Scope::new(folders, &exclude());
            assert_eq!(scope.judge("config.xml"), Verdict::Mirrored);
            assert_eq!(scope.judge("tools/psexec.exe"), Verdict::Mirrored);
            assert_eq!(scope.judge("packages"), Verdict::Mirrored);
            assert_eq!(scope.judge("packages/7zip.xml"), Verdict::Mirrored);
            assert_eq!(scope.judge("Packages/Firefox.XML"), Verdict::Mirrored);
        }
    }

    #[test]
    fn excluded_names_are_never_mirrored() {
        let scope = Scope::new(PackageFolders::All, &exclude());
        assert_eq!(scope.judge("client"), Verdict::Excluded);
        assert_eq!(scope.judge("Client/x.txt"), Verdict::Excluded);
        assert_eq!(scope.judge("profiles.sites/a.xml"), Verdict::Excluded);
        assert_eq!(scope.judge("clients/x"), Verdict::Mirrored);
    }

    #[test]
    fn package_folders_follow_the_selection() {
        let all = Scope::new(PackageFolders::All, &[]);
        assert_eq!(all.judge("packages/7zip/7z.msi"), Verdict::Mirrored);

        let some = Scope::new(PackageFolders::only(vec!["7Zip".into()]), &[]);
        assert_eq!(some.judge("packages/7zip/7z.msi"), Verdict::Mirrored);
        assert_eq!(some.judge("packages/firefox/setup.exe"), Verdict::Excluded);
        assert_eq!(some.judge("packages/readme.txt"), Verdict::Excluded);

        let setup = Scope::new(PackageFolders::setup(), &[]);
        assert_eq!(setup.judge("packages/7zip/7z.msi"), Verdict::Untouched);
        assert_eq!(setup.judge("packages/7zip"), Verdict::Untouched);
    }

    #[test]
    fn a_folder_is_mirrored_when_selected_and_not_excluded() {
        let all = Scope::new(PackageFolders::All, &["Packages/Old".into()]);
        assert!(all.mirrors_folder("7zip"));
        assert!(!all.mirrors_folder("old"));
        // Excluding a path inside the folder leaves the rest of it mirrored.
        let deeper = Scope::new(PackageFolders::All, &["packages/office/old".into()]);
        assert!(deeper.mirrors_folder("Office"));
        let none = Scope::new(PackageFolders::All, &["packages".into()]);
        assert!(!none.mirrors_folder("7zip"));

        let some = Scope::new(PackageFolders::only(vec!["7Zip".into()]), &[]);
        assert!(some.mirrors_folder("7zip"));
        assert!(!some.mirrors_folder("firefox"));
        assert!(!Scope::new(PackageFolders::setup(), &[]).mirrors_folder("7zip"));
    }
}
