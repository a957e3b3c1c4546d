//! How the CLI prints records: one line each, `OFFSET<TAB>VALUE`, so that `cut`, `awk` and
//! `while read` can take them apart.
//!
//! A value is printed with backslash escapes so that it always stays on its line: `\\`,
//! `\n`, `\r` and `\t` for those characters, and `\xNN` for each byte that is not part of
//! valid UTF-8 (so binary values print too, unambiguously, since a literal backslash is
//! always doubled).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::exit::CliError;
use crate::http::wire::RecordOut;

/// A record's bytes, whichever way the server encoded them.
pub fn record_bytes(record: &RecordOut) -> Result<Vec<u8>, CliError> {
    match record {
        RecordOut::Text { value, .. } => Ok(value.clone().into_bytes()),
        RecordOut::Base64 { value_b64, .. } => decode_base64(value_b64),
    }
}

pub fn decode_base64(text: &str) -> Result<Vec<u8>, CliError> {
    BASE64
        .decode(text)
        .map_err(|error| CliError::Failed(format!("the server sent invalid base64: {error}")))
}

/// `OFFSET<TAB>VALUE`, escaped, without the newline.
pub fn record_line(offset: u64, value: &[u8]) -> String {
    format!("{offset}\t{}", escape(value))
}

/// `value` with the escapes of the module doc.
pub fn escape(value: &[u8]) -> String {
    let mut escaped = String::with_capacity(value.len());
    for chunk in value.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => escaped.push_str("\\\\"),
                '\n' => escaped.push_str("\\n"),
                '\r' => escaped.push_str("\\r"),
                '\t' => escaped.push_str("\\t"),
                c => escaped.push(c),
            }
        }
        for byte in chunk.invalid() {
            escaped.push_str(&format!("\\x{byte:02x}"));
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_stay_on_one_line_and_binary_is_escaped() {
        assert_eq!(record_line(3, b"plain text"), "3\tplain text");
        assert_eq!(escape(b"a\tb\nc\\d\re"), "a\\tb\\nc\\\\d\\re");
        assert_eq!(escape(&[b'o', b'k', 0xff, 0xfe]), "ok\\xff\\xfe");
        assert_eq!(escape("é".as_bytes()), "é");
    }
}
