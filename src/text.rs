//! Decoding text files written on Windows: UTF-8 or UTF-16 with a byte order
//! mark, or a legacy 8-bit code page, as Notepad and WPKG's Windows Script Host
//! write them.

/// Decodes `bytes`: UTF-16 LE/BE or UTF-8 by BOM, else UTF-8, else Latin-1
/// (windows-1252 differs only in punctuation, never in a folder name's ASCII).
pub(crate) fn decode(bytes: &[u8]) -> String {
    let utf16 = |rest: &[u8], from: fn([u8; 2]) -> u16| {
        let units: Vec<u16> = rest.chunks_exact(2).map(|c| from([c[0], c[1]])).collect();
        String::from_utf16_lossy(&units)
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, u16::from_be_bytes);
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|b| char::from(*b)).collect(),
    }
}

/// `text` with control characters escaped (`\n`, `\u{1b}`), and the
/// invisible marks that reorder a line (bidirectional overrides), so text a
/// server chose (a status message, a disconnect reason, a file name) cannot
/// forge log lines or drive a terminal. Everything else stays as it is.
pub(crate) fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let hostile = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hostile) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if hostile(c) => escaped.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => escaped.push(c),
        }
    }
    std::borrow::Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::{decode, escape_controls};

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("Größe ok: /opt/x"), "Größe ok: /opt/x");
        assert_eq!(
            escape_controls("no\nexit 0\r\u{1b}[2J\t\u{7f}\u{9b}"),
            "no\\nexit 0\\r\\u{1b}[2J\\t\\u{7f}\\u{9b}"
        );
        assert_eq!(escape_controls("a\u{202e}b"), "a\\u{202e}b");
        assert!(!escape_controls("x\u{0}y").chars().any(char::is_control));
    }

    #[test]
    fn every_encoding_wpkg_writes_is_read() {
        let mut le = vec![0xFF, 0xFE];
        le.extend("Größe\r\n".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode(&le), "Größe\r\n");
        let mut be = vec![0xFE, 0xFF];
        be.extend("x".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(&be), "x");
        assert_eq!(decode(b"\xEF\xBB\xBFabc"), "abc");
        assert_eq!(decode(b"Gr\xf6\xdfe"), "Größe");
    }
}
