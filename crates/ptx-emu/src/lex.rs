//! PTX text to tokens (comments dropped, each token with its 1-based line).

use crate::LoadError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tok<'a> {
    pub text: &'a str,
    pub line: u32,
}

fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || matches!(c, b'_' | b'.' | b'%' | b'$')
}

fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'$')
}

/// Splits `text` into identifiers (`ld.global.f32`, `%tid.x`, `$L1`), numbers (`16`, `0f3F800000`,
/// `0x1f`, `8.0`) and single-character punctuation.
pub fn lex(text: &str) -> Result<Vec<Tok<'_>>, LoadError> {
    let bytes = text.as_bytes();
    let mut toks = Vec::new();
    let (mut i, mut line) = (0, 1u32);
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if text[i..].starts_with("//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if text[i..].starts_with("/*") {
            let end = text[i + 2..]
                .find("*/")
                .ok_or_else(|| LoadError::new(line as usize, "a /* comment is never closed"))?;
            line += text[i..i + 2 + end].matches('\n').count() as u32;
            i += end + 4;
        } else if ident_start(c) || c.is_ascii_digit() {
            let start = i;
            i += 1;
            while i < bytes.len() && ident_char(bytes[i]) {
                i += 1;
            }
            toks.push(Tok { text: &text[start..i], line });
        } else if b",;{}[]()<>+-@!:|".contains(&c) {
            toks.push(Tok { text: &text[i..i + 1], line });
            i += 1;
        } else {
            let ch = text[i..].chars().next().unwrap_or('?');
            return Err(LoadError::new(line as usize, format!("unexpected character {ch:?}")));
        }
    }
    Ok(toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_lines() {
        let toks = lex("ld.global.f32 %f1, [%rd2+-4]; // c\n/* a\nb */ @!%p bra $L1;").unwrap();
        let text: Vec<_> = toks.iter().map(|t| t.text).collect();
        assert_eq!(
            text,
            ["ld.global.f32", "%f1", ",", "[", "%rd2", "+", "-", "4", "]", ";", "@", "!", "%p", "bra", "$L1", ";"]
        );
        assert_eq!(toks[10].line, 3);
        assert_eq!(lex("a\n#").unwrap_err().line, 2);
    }
}
