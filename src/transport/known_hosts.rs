//! The `@revoked` lines of an OpenSSH known_hosts file.
//!
//! russh's parser reads the ordinary lines (plain and hashed host patterns,
//! `[host]:port`) and passes over marker lines without a word, so a key that
//! the administrator listed as `@revoked` would still be accepted by another
//! line naming it. This file reads only the revocations; matching a host to
//! its keys stays with russh. A revoked key is refused whatever host pattern
//! its line names: a key that was stolen from one host is not good for any
//! other. A revocation that cannot be read refuses the connection too, since
//! skipping it would accept the very key it was written against.

use russh::keys::{PublicKey, parse_public_key_base64};

/// The marker OpenSSH puts before the host patterns of a revoked key.
const REVOKED: &str = "@revoked";

/// The number (from 1) of the first line of `text` that revokes `offered`;
/// an error names the line of an `@revoked` entry that cannot be read.
pub(crate) fn revoked_at(text: &str, offered: &PublicKey) -> Result<Option<usize>, String> {
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let mut fields = line.split_whitespace();
        if fields.next() != Some(REVOKED) {
            continue;
        }
        let (Some(_hosts), Some(_algorithm), Some(base64)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(format!(
                "line {number}: {REVOKED} needs host patterns, a key type and a key"
            ));
        };
        let key = parse_public_key_base64(base64)
            .map_err(|e| format!("line {number}: unreadable {REVOKED} key ({e})"))?;
        if key.key_data() == offered.key_data() {
            return Ok(Some(number));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const OTHER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";

    fn server() -> PublicKey {
        parse_public_key_base64(SERVER).unwrap()
    }

    #[test]
    fn a_revoked_key_is_found_whatever_the_host_pattern() {
        for line in [
            format!("@revoked [127.0.0.1]:2222 ssh-ed25519 {SERVER}"),
            format!("@revoked * ssh-ed25519 {SERVER} old server"),
            format!(
                "  @revoked\t|1|O33ESRMWPVkMYIwJ1Uw+n877jTo=|nuuC5vEqXlEZ/8BXQR7m619W6Ak= ssh-ed25519 {SERVER}"
            ),
            format!("@revoked elsewhere.example.org ssh-ed25519 {SERVER}"),
        ] {
            // The key is also accepted by an ordinary line before it.
            let text = format!("[127.0.0.1]:2222 ssh-ed25519 {SERVER}\n# comment\n{line}\n");
            assert_eq!(revoked_at(&text, &server()), Ok(Some(3)), "{line}");
        }
    }

    #[test]
    fn other_lines_revoke_nothing() {
        let text = format!(
            "[127.0.0.1]:2222 ssh-ed25519 {SERVER}\n\
             @revoked * ssh-ed25519 {OTHER}\n\
             @cert-authority * ssh-ed25519 {SERVER}\n\
             # @revoked * ssh-ed25519 {SERVER}\n\
             \n"
        );
        assert_eq!(revoked_at(&text, &server()), Ok(None));
        assert_eq!(revoked_at("", &server()), Ok(None));
    }

    #[test]
    fn an_unreadable_revocation_is_an_error() {
        let err = revoked_at("host ssh-ed25519 AAAA\n@revoked *\n", &server()).unwrap_err();
        assert!(err.starts_with("line 2: "), "{err}");
        let err = revoked_at("@revoked * ssh-ed25519 not-base64!\n", &server()).unwrap_err();
        assert!(err.contains("unreadable @revoked key"), "{err}");
    }
}
