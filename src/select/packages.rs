//! WPKG package definitions -> the folders below `%SOFTWARE%` each package uses.
//!
//! Every attribute and text inside a `<package>` counts: install, upgrade,
//! downgrade and remove commands (uninstall files are needed too), checks and
//! downloads. `<variable>` values are substituted where `%NAME%` uses them, so a
//! folder named only through a variable is found. `<depends>`, `<include>` and
//! `<chain>` name packages whose folders come along.

use std::collections::{BTreeMap, BTreeSet};

use crate::text::decode;

/// What one package needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PackageInfo {
    /// Folders below `%SOFTWARE%`, as first written.
    pub folders: BTreeSet<String>,
    /// Ids (lowercase) of packages this one depends on, includes or chains.
    pub pulls: BTreeSet<String>,
}

/// A package definition file that is not well-formed XML.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {why}")]
pub(crate) struct XmlError {
    /// Repository path of the file.
    pub file: String,
    /// The parser's message, with line and column.
    pub why: String,
}

/// How deep `%VAR%` references are followed before giving up (cycles).
const MAX_EXPANSION: usize = 8;

/// Parses one package definition file into package id (lowercase) -> needs.
pub(crate) fn package_folders(
    file: &str,
    bytes: &[u8],
) -> Result<BTreeMap<String, PackageInfo>, XmlError> {
    let text = decode(bytes);
    let document = roxmltree::Document::parse(&text).map_err(|e| XmlError {
        file: file.to_owned(),
        why: e.to_string(),
    })?;
    let mut packages = BTreeMap::new();
    for package in document
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name().eq_ignore_ascii_case("package"))
    {
        let Some(id) = package.attribute("id") else {
            continue;
        };
        let variables: BTreeMap<String, String> = package
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name().eq_ignore_ascii_case("variable"))
            .filter_map(|n| {
                Some((
                    n.attribute("name")?.to_uppercase(),
                    n.attribute("value")?.to_owned(),
                ))
            })
            .collect();
        let mut info = PackageInfo::default();
        for node in package.descendants() {
            if node.is_element() {
                let name = node.tag_name().name().to_ascii_lowercase();
                if matches!(name.as_str(), "depends" | "include" | "chain")
                    && let Some(pulled) = node.attribute("package-id")
                {
                    info.pulls.insert(pulled.to_lowercase());
                }
                for attribute in node.attributes() {
                    add_folders(&expand(attribute.value(), &variables), &mut info.folders);
                }
            } else if let Some(text) = node.text() {
                add_folders(&expand(text, &variables), &mut info.folders);
            }
        }
        packages.insert(id.to_lowercase(), info);
    }
    Ok(packages)
}

/// Substitutes the package's `%NAME%` variables, following references to
/// other variables a few levels deep; unknown names stay as written.
fn expand(value: &str, variables: &BTreeMap<String, String>) -> String {
    let mut current = value.to_owned();
    for _ in 0..MAX_EXPANSION {
        let mut next = String::with_capacity(current.len());
        let mut rest = current.as_str();
        let mut changed = false;
        while let Some(start) = rest.find('%') {
            next.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            match after.find('%') {
                Some(end) => {
                    let name = &after[..end];
                    match variables.get(&name.to_uppercase()) {
                        Some(found) => {
                            next.push_str(found);
                            changed = true;
                        }
                        None => {
                            next.push('%');
                            next.push_str(name);
                            next.push('%');
                        }
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    next.push('%');
                    rest = after;
                }
            }
        }
        next.push_str(rest);
        current = next;
        if !changed {
            break;
        }
    }
    current
}

/// Adds every folder that `text` names as `%SOFTWARE%\<folder>\...` (any letter
/// case, either slash), unless a folder of that name in another case is known.
pub(crate) fn add_folders(text: &str, folders: &mut BTreeSet<String>) {
    const MARK: &str = "%software%";
    let lower = text.to_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(MARK) {
        let start = from + found + MARK.len();
        from = start;
        let rest = &text[start..];
        let Some(rest) = rest.strip_prefix(['\\', '/']) else {
            continue;
        };
        let end = rest
            .find(|c: char| {
                matches!(
                    c,
                    '\\' | '/' | '"' | '\'' | '<' | '>' | '|' | '*' | '?' | ':'
                ) || c.is_control()
            })
            .unwrap_or(rest.len());
        // "x.exe /S": a slash after a space starts an argument, not a path.
        let followed_by_separator = matches!(rest[end..].chars().next(), Some('\\' | '/'))
            && !rest[..end].ends_with(char::is_whitespace);
        // Without a separator after it the name ends at a space (an argument
        // follows), and one with a dot is taken for a file in packages/ itself.
        let folder = if followed_by_separator {
            rest[..end].trim()
        } else {
            rest[..end].split_whitespace().next().unwrap_or_default()
        };
        let is_folder = followed_by_separator || !folder.contains('.');
        let known = folders.iter().any(|f| f.eq_ignore_ascii_case(folder));
        if is_folder && !folder.is_empty() && folder != "." && folder != ".." && !known {
            folders.insert(folder.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folders(xml: &str) -> BTreeMap<String, Vec<String>> {
        package_folders("packages/t.xml", xml.as_bytes())
            .unwrap()
            .into_iter()
            .map(|(id, info)| (id, info.folders.into_iter().collect()))
            .collect()
    }

    #[test]
    fn every_command_and_check_counts() {
        let xml = r#"<?xml version="1.0"?>
<packages:packages xmlns:packages="http://www.wpkg.org/packages" xmlns:wpkg="http://www.wpkg.org/wpkg">
  <!-- comments are ignored: %SOFTWARE%\commented\x.msi -->
  <package id="Office" name='Office'
           revision="3">
    <check type="file" condition="exists" path='%SOFTWARE%\officecheck\marker.txt'/>
    <install cmd='"%SOFTWARE%\Office 2021\setup.exe" /config x.xml' />
    <upgrade cmd="%software%/officeupgrade/setup.exe" />
    <downgrade cmd="%Software%\officedown\setup.exe" />
    <remove cmd="%SOFTWARE%\officeremove\uninstall.cmd" />
    <download url="http://x/y.msi" target="%SOFTWARE%\officedl\y.msi" />
  </package>
</packages:packages>"#;
        assert_eq!(
            folders(xml)["office"],
            [
                "Office 2021",
                "officecheck",
                "officedl",
                "officedown",
                "officeremove",
                "officeupgrade"
            ]
        );
    }

    #[test]
    fn variables_are_followed_transitively() {
        let xml = r#"<packages>
  <package id="firefox" name="Firefox">
    <variable name="FFDIR" value="%SOFTWARE%\firefox" />
    <variable name="SETUP" value="%FFDIR%\setup.exe" />
    <variable name="LOOP" value="%LOOP%" />
    <install cmd='"%SETUP%" -ms %LOOP%' />
  </package>
</packages>"#;
        assert_eq!(folders(xml)["firefox"], ["firefox"]);
    }

    #[test]
    fn several_packages_and_several_folders_per_package() {
        let xml = r#"<packages>
  <package id="a"><install cmd="%SOFTWARE%\one\a.exe &amp;&amp; %SOFTWARE%\two\b.exe"/></package>
  <package id="B"><install cmd="%SOFTWARE%\ONE\c.exe"/><install cmd="%SOFTWARE%\one\d.exe"/></package>
</packages>"#;
        let found = folders(xml);
        assert_eq!(found["a"], ["one", "two"]);
        assert_eq!(found["b"], ["ONE"], "one folder, case-insensitively");
    }

    #[test]
    fn files_directly_in_packages_are_not_folders() {
        let mut found = BTreeSet::new();
        add_folders(r"%SOFTWARE%\setup.exe /S", &mut found);
        assert!(found.is_empty(), "{found:?}");
        add_folders(r"cmd /c if exist %SOFTWARE%\tools (echo)", &mut found);
        assert_eq!(found.into_iter().collect::<Vec<_>>(), ["tools"]);
    }

    #[test]
    fn dependencies_are_recorded() {
        let xml = r#"<packages><package id="app">
  <depends package-id="Runtime"/><include package-id="fonts"/><chain package-id="Cleanup"/>
</package></packages>"#;
        let parsed = package_folders("p.xml", xml.as_bytes()).unwrap();
        let pulls: Vec<_> = parsed["app"].pulls.iter().cloned().collect();
        assert_eq!(pulls, ["cleanup", "fonts", "runtime"]);
    }

    #[test]
    fn malformed_xml_names_the_file_and_line() {
        let err = package_folders(
            "packages/bad.xml",
            b"<packages>\n<package id='x'>\n</packages>",
        )
        .unwrap_err();
        assert_eq!(err.file, "packages/bad.xml");
        assert!(err.to_string().contains("3:"), "{err}");
    }
}
