//! The rule for stream names, shared by the HTTP layer (which answers 400) and the state
//! machine (which answers `Rejected`, so that apply stays total whatever a batch holds).

/// The longest stream name, in bytes (every allowed character is one byte).
pub const STREAM_NAME_BYTES_MAX: usize = 255;

/// Checks `name` against `[A-Za-z0-9._-]{1,255}` (API.md), and says what is wrong if it fails.
///
/// The message is one sentence for the API's `"message"` field. It is also stored in the
/// `Rejected` outcome, so it must depend on `name` alone: every node computes the same text.
pub fn validate_stream_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the stream name is empty".to_string());
    }
    if name.len() > STREAM_NAME_BYTES_MAX {
        return Err(format!(
            "the stream name is {} bytes long, over the limit of {STREAM_NAME_BYTES_MAX}",
            name.len()
        ));
    }
    // Every allowed character is one ASCII byte: check bytes, and decode characters only to
    // name the offending one (this runs for every append a node applies).
    if name.bytes().all(|b| is_name_char(char::from(b))) {
        return Ok(());
    }
    match name.chars().find(|&c| !is_name_char(c)) {
        Some(c) => Err(format!(
            "the stream name contains {c:?}; only A-Z, a-z, 0-9, '.', '_' and '-' are allowed"
        )),
        None => Ok(()),
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet_up_to_the_limit() {
        assert_eq!(validate_stream_name("orders"), Ok(()));
        assert_eq!(validate_stream_name("a.B_c-9"), Ok(()));
        assert_eq!(
            validate_stream_name(&"x".repeat(STREAM_NAME_BYTES_MAX)),
            Ok(())
        );
    }

    #[test]
    fn rejects_empty_long_and_foreign_characters() {
        assert!(validate_stream_name("").is_err());
        assert!(validate_stream_name(&"x".repeat(STREAM_NAME_BYTES_MAX + 1)).is_err());
        for bad in ["a/b", "a b", "é", "a\0", "a%2F", "ab\n"] {
            assert!(validate_stream_name(bad).is_err(), "{bad:?}");
        }
    }
}
