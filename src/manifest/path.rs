//! The rules a manifest path must pass before it may name anything in the store.
//!
//! Only [`RelPath::new`] builds a [`RelPath`], and the sync code accepts nothing
//! else, so a path that could leave the store, hide in an alternate data stream or
//! open a device on Windows never reaches the file system. The rules are the
//! Windows ones on every OS: the repository is published once and mirrored onto
//! Windows clients, so a name that is harmless on Linux is still refused.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;

use super::format::TEMP_PREFIX;

/// A relative, `/`-separated, normalised path that stays inside the store.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct RelPath(String);

/// Why a manifest path was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The empty string names no file.
    #[error("empty path")]
    Empty,
    /// A leading `/` or `\`, a drive letter or a UNC prefix.
    #[error("absolute path {0:?}")]
    Absolute(String),
    /// `\` is a separator on Windows; only `/` is allowed in the manifest.
    #[error("backslash in path {0:?}")]
    Backslash(String),
    /// `.`, `..` or an empty component (`a//b`, trailing `/`).
    #[error("path {0:?} is not normalised (empty, `.` or `..` component)")]
    NotNormalised(String),
    /// `:` would name a drive or an NTFS alternate data stream.
    #[error("colon in path {0:?}")]
    Colon(String),
    /// Control characters and `<>"|?*` are invalid in Windows names.
    #[error("character not allowed on Windows in path {0:?}")]
    InvalidCharacter(String),
    /// CON, PRN, AUX, NUL, COM1-9, LPT1-9, also with an extension.
    #[error("reserved device name in path {0:?}")]
    ReservedName(String),
    /// Windows strips trailing dots and spaces, so `a.` would alias `a`.
    #[error("trailing dot or space in path {0:?}")]
    TrailingDotOrSpace(String),
    /// A name the client gives its own temporary files.
    #[error("path {0:?} uses the temporary file prefix {TEMP_PREFIX:?}")]
    TempName(String),
    /// Two paths that are one file on a case-insensitive file system.
    #[error("paths {0:?} and {1:?} differ only in letter case")]
    CaseDuplicate(String, String),
}

/// Longest path accepted, in bytes; Windows' classic limit is far below it.
const MAX_PATH_BYTES: usize = 4096;

impl RelPath {
    /// Checks `text` against every path rule and wraps it.
    pub(crate) fn new(text: &str) -> Result<RelPath, PathError> {
        let owned = || text.to_owned();
        if text.is_empty() {
            return Err(PathError::Empty);
        }
        if text.len() > MAX_PATH_BYTES {
            return Err(PathError::NotNormalised(owned()));
        }
        if text.starts_with('/') || text.starts_with('\\') || has_drive_letter(text) {
            return Err(PathError::Absolute(owned()));
        }
        if text.contains('\\') {
            return Err(PathError::Backslash(owned()));
        }
        if text.contains(':') {
            return Err(PathError::Colon(owned()));
        }
        if text
            .chars()
            .any(|c| c.is_control() || matches!(c, '<' | '>' | '"' | '|' | '?' | '*'))
        {
            return Err(PathError::InvalidCharacter(owned()));
        }
        for component in text.split('/') {
            if component.is_empty() || component == "." || component == ".." {
                return Err(PathError::NotNormalised(owned()));
            }
            if component.ends_with('.') || component.ends_with(' ') {
                return Err(PathError::TrailingDotOrSpace(owned()));
            }
            if is_reserved_device_name(component) {
                return Err(PathError::ReservedName(owned()));
            }
            if is_temp_name(component) {
                return Err(PathError::TempName(owned()));
            }
        }
        Ok(RelPath(text.to_owned()))
    }

    /// The path as written in the manifest.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The folder this path lies in, unless it lies in the root. Every rule
    /// holds for each component, so it holds for the folder too.
    pub(crate) fn parent(&self) -> Option<RelPath> {
        self.0
            .rsplit_once('/')
            .map(|(folder, _)| RelPath(folder.to_owned()))
    }

    /// The key two paths share when a case-insensitive file system would treat
    /// them as one.
    pub(crate) fn fold_key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Maps and sets of paths are looked up by the text of a path; `Eq`, `Ord`
/// and `Hash` are the string's, as `Borrow` requires.
impl Borrow<str> for RelPath {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Written as the plain string, so a file that keeps paths reads the same as
/// one that kept them as text.
impl serde::Serialize for RelPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Read through [`RelPath::new`]: a path read back passes every rule again.
impl<'de> serde::Deserialize<'de> for RelPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RelPath, D::Error> {
        let text = String::deserialize(deserializer)?;
        RelPath::new(&text).map_err(serde::de::Error::custom)
    }
}

/// Refuses a list in which two paths would be one file on Windows.
pub(crate) fn check_case_duplicates<'a>(
    paths: impl IntoIterator<Item = &'a RelPath>,
) -> Result<(), PathError> {
    let mut seen: HashMap<String, &RelPath> = HashMap::new();
    for path in paths {
        if let Some(first) = seen.insert(path.fold_key(), path) {
            return Err(PathError::CaseDuplicate(
                first.to_string(),
                path.to_string(),
            ));
        }
    }
    Ok(())
}

fn has_drive_letter(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// Windows opens the device for these names in any folder and with any
/// extension: `nul.txt` is NUL. The superscript digits ¹ ² ³ count as digits
/// for COM and LPT (Windows treats `COM¹` as COM1).
fn is_reserved_device_name(component: &str) -> bool {
    let stem = component.split('.').next().unwrap_or_default();
    let stem = stem.trim_end_matches(' ').to_ascii_uppercase();
    match stem.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => match (stem.get(..3), stem.get(3..)) {
            (Some("COM" | "LPT"), Some(digit)) => matches!(
                digit,
                "1" | "2"
                    | "3"
                    | "4"
                    | "5"
                    | "6"
                    | "7"
                    | "8"
                    | "9"
                    | "\u{b9}"
                    | "\u{b2}"
                    | "\u{b3}"
            ),
            _ => false,
        },
    }
}

/// Whether a component is named like the client's temporary files. Letter case
/// is ignored as NTFS ignores it, by upper-casing each character, so letters
/// whose upper case is ASCII, such as `ſ` (long s, upper case `S`), count too
/// in case the file system folds them the same way.
fn is_temp_name(component: &str) -> bool {
    let upper = |c: char| {
        let mut mapped = c.to_uppercase();
        match (mapped.next(), mapped.next()) {
            (Some(single), None) => single,
            _ => c,
        }
    };
    let mut chars = component.chars();
    TEMP_PREFIX
        .chars()
        .all(|expected| chars.next().is_some_and(|c| upper(c) == upper(expected)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> PathError {
        RelPath::new(text).expect_err(text)
    }

    #[test]
    fn ordinary_paths_pass() {
        for ok in [
            "config.xml",
            "packages/7zip.xml",
            "packages/7zip/7z 23.01-x64.msi",
            "packages/.hidden/file",
            "a/b/c/d.e.f",
            "COM0.txt",
            "console.exe",
            "nullsoft/setup.exe",
            "lpt10",
        ] {
            assert_eq!(RelPath::new(ok).map(|p| p.to_string()), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn parent_components_are_refused() {
        assert!(matches!(refused(".."), PathError::NotNormalised(_)));
        assert!(matches!(
            refused("../escape.txt"),
            PathError::NotNormalised(_)
        ));
        assert!(matches!(refused("a/../../x"), PathError::NotNormalised(_)));
        assert!(matches!(refused("a/./b"), PathError::NotNormalised(_)));
        assert!(matches!(refused("a//b"), PathError::NotNormalised(_)));
        assert!(matches!(refused("a/"), PathError::NotNormalised(_)));
    }

    #[test]
    fn absolute_paths_are_refused() {
        assert!(matches!(refused("/etc/passwd"), PathError::Absolute(_)));
        assert!(matches!(refused("\\Windows\\x"), PathError::Absolute(_)));
    }

    #[test]
    fn drive_letters_are_refused() {
        assert!(matches!(refused("C:/x"), PathError::Absolute(_)));
        assert!(matches!(refused("c:x"), PathError::Absolute(_)));
    }

    #[test]
    fn unc_paths_are_refused() {
        assert!(matches!(
            refused("\\\\server\\share\\x"),
            PathError::Absolute(_)
        ));
        assert!(matches!(
            refused("//server/share/x"),
            PathError::Absolute(_)
        ));
    }

    #[test]
    fn backslashes_are_refused() {
        assert!(matches!(refused("a\\..\\..\\x"), PathError::Backslash(_)));
    }

    #[test]
    fn alternate_data_streams_are_refused() {
        assert!(matches!(refused("file.txt:ads"), PathError::Colon(_)));
        assert!(matches!(refused("dir/file::$DATA"), PathError::Colon(_)));
    }

    #[test]
    fn reserved_device_names_are_refused() {
        for name in [
            "CON",
            "con",
            "nul.txt",
            "a/Aux.xml",
            "COM1",
            "lpt9.log",
            "PRN ",
            "conin$",
        ] {
            assert!(
                matches!(
                    refused(name),
                    PathError::ReservedName(_) | PathError::TrailingDotOrSpace(_)
                ),
                "{name}"
            );
        }
        assert!(matches!(refused("x/NUL"), PathError::ReservedName(_)));
    }

    #[test]
    fn reserved_names_with_superscript_digits_are_refused() {
        for name in [
            "COM\u{b9}",
            "com\u{b2}",
            "Com\u{b3}.txt",
            "LPT\u{b9}",
            "lpt\u{b2}.log",
            "a/LpT\u{b3}/x.msi",
        ] {
            assert!(
                matches!(refused(name), PathError::ReservedName(_)),
                "{name}"
            );
        }
        // Only ¹ ² ³ are digits to Windows here; other superscripts are names.
        for ok in ["COM\u{2074}", "LPT\u{2070}.txt", "COM\u{b9}x", "COMx"] {
            assert!(RelPath::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn names_of_the_clients_temporary_files_are_refused() {
        for name in [
            ".wpkgsync-tmp-config.xml",
            "x/.wpkgsync-tmp-y",
            "x/.WPKGSYNC-Tmp-y/z.txt",
            ".wpkgsync-tmp-",
            // U+017F, long s, whose upper case is S.
            ".wpkg\u{17f}ync-tmp-y",
        ] {
            assert!(matches!(refused(name), PathError::TempName(_)), "{name}");
        }
        for ok in [".wpkgsync-tmp", "x/a.wpkgsync-tmp-y", "wpkgsync-tmp-y"] {
            assert!(RelPath::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn trailing_dots_and_spaces_are_refused() {
        assert!(matches!(
            refused("dir./x"),
            PathError::TrailingDotOrSpace(_)
        ));
        assert!(matches!(refused("x "), PathError::TrailingDotOrSpace(_)));
        assert!(matches!(
            refused("a/b..."),
            PathError::TrailingDotOrSpace(_)
        ));
    }

    #[test]
    fn control_and_windows_invalid_characters_are_refused() {
        assert!(matches!(refused("a\nb"), PathError::InvalidCharacter(_)));
        assert!(matches!(refused("a\0b"), PathError::InvalidCharacter(_)));
        assert!(matches!(
            refused("what?.txt"),
            PathError::InvalidCharacter(_)
        ));
        assert!(matches!(refused("a|b"), PathError::InvalidCharacter(_)));
    }

    #[test]
    fn empty_path_is_refused() {
        assert_eq!(refused(""), PathError::Empty);
    }

    #[test]
    fn case_insensitive_duplicates_are_refused() {
        let paths: Vec<RelPath> = ["A.txt", "b.txt", "a.TXT"]
            .iter()
            .map(|p| RelPath::new(p).unwrap())
            .collect();
        assert_eq!(
            check_case_duplicates(&paths),
            Err(PathError::CaseDuplicate("A.txt".into(), "a.TXT".into()))
        );
        assert_eq!(check_case_duplicates(&paths[..2]), Ok(()));
    }

    #[test]
    fn the_parent_is_the_folder_a_path_lies_in() {
        let path = RelPath::new("packages/x/y.msi").unwrap();
        assert_eq!(path.parent(), Some(RelPath::new("packages/x").unwrap()));
        assert_eq!(RelPath::new("a.xml").unwrap().parent(), None);
    }

    #[test]
    fn paths_are_kept_as_plain_strings_and_read_back_through_the_rules() {
        let typed: std::collections::BTreeMap<RelPath, u8> = [("b/c.msi", 1), ("a.xml", 2)]
            .into_iter()
            .map(|(p, n)| (RelPath::new(p).unwrap(), n))
            .collect();
        let text: std::collections::BTreeMap<String, u8> =
            [("b/c.msi".to_owned(), 1), ("a.xml".to_owned(), 2)].into();
        let bytes = serde_json::to_vec(&typed).unwrap();
        assert_eq!(bytes, serde_json::to_vec(&text).unwrap());
        assert_eq!(
            serde_json::from_slice::<std::collections::BTreeMap<RelPath, u8>>(&bytes).unwrap(),
            typed
        );
        assert!(
            serde_json::from_str::<std::collections::BTreeMap<RelPath, u8>>(r#"{"../x":1}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<RelPath>(r#""CON""#).is_err());
    }
}
