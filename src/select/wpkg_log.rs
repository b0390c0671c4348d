//! The WPKG log of the last run -> the packages this host needs.
//!
//! WPKG logs, per host, each package of its profiles ("Adding package with ID
//! 'x' to profile packages"), each dependency it pulls in ("Adding referenced
//! package 'Name' (x) for package ..."), and each package it will remove
//! ("Package 'Name' (x): Marked for removal"); the last are kept, since their
//! uninstall files are still needed.

use std::collections::BTreeSet;

use crate::text::decode;

/// Package ids (lowercase) the log says this host needs.
pub(crate) fn needed_ids(log: &[u8]) -> BTreeSet<String> {
    let text = decode(log);
    let mut ids = BTreeSet::new();
    for line in text.lines() {
        if let Some(id) = profile_package(line)
            .or_else(|| referenced_package(line))
            .or_else(|| marked_for_removal(line))
        {
            ids.insert(id.trim().to_lowercase());
        }
    }
    ids.retain(|id| !id.is_empty());
    ids
}

/// `Adding package with ID 'x' to profile packages`.
fn profile_package(line: &str) -> Option<&str> {
    let rest = after(line, "Adding package with ID '")?;
    let end = rest.find("' to profile")?;
    Some(&rest[..end])
}

/// `Adding referenced package 'Name' (x) for package 'Other' (y)`.
fn referenced_package(line: &str) -> Option<&str> {
    let rest = after(line, "Adding referenced package '")?;
    let rest = &rest[..rest.find(" for package").unwrap_or(rest.len())];
    last_parenthesised(rest)
}

/// `Package 'Name' (x): Marked for removal`.
fn marked_for_removal(line: &str) -> Option<&str> {
    let end = line.find("): Marked for removal")?;
    last_parenthesised(&line[..=end])
}

fn after<'a>(line: &'a str, phrase: &str) -> Option<&'a str> {
    line.find(phrase).map(|at| &line[at + phrase.len()..])
}

/// The text inside the last `( )` of `text`.
fn last_parenthesised(text: &str) -> Option<&str> {
    let close = text.rfind(')')?;
    let open = text[..close].rfind('(')?;
    Some(&text[open + 1..close])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_three_kinds_of_line_count() {
        let log = "2024-01-15 08:12:01, DEBUG   : Adding package with ID '7zip' to profile packages.\r\n\
                   2024-01-15 08:12:01, DEBUG   : Adding referenced package 'VC Runtime (x64)' (VCRedist) for package 'App' (app).\r\n\
                   2024-01-15 08:12:02, DEBUG   : Package 'Old Viewer' (oldviewer): Marked for removal\r\n\
                   2024-01-15 08:12:03, DEBUG   : Skipping package 'x'\r\n";
        let ids: Vec<_> = needed_ids(log.as_bytes()).into_iter().collect();
        assert_eq!(ids, ["7zip", "oldviewer", "vcredist"]);
    }

    #[test]
    fn utf16_logs_with_crlf_are_read() {
        let mut bytes = vec![0xFF, 0xFE];
        let text = "x, DEBUG : Adding package with ID 'Firefox' to profile packages.\r\n";
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(
            needed_ids(&bytes).into_iter().collect::<Vec<_>>(),
            ["firefox"]
        );
    }
}
