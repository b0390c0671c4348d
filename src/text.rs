//! Decoding text files written on Windows: UTF-8 or UTF-16 with a byte order
//! mark, or a legacy 8-bit code page, as Notepad and WPKG's Windows Script Host
//! write them.

/// Decodes `bytes`: UTF-16 LE/BE or UTF-8 by BOM, else UTF-8, else Latin-1
/// (windows-1252 differs only in punctuation, never in a folder name's ASCII).
pub fn decode(bytes: &[u8]) -> String {
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

#[cfg(test)]
mod tests {
    use super::decode;

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
