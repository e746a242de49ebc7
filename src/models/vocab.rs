//! Vocabulary: CTranslate2's `vocabulary.txt` holds one GPT-2 byte-level
//! token per line (bytes mapped to printable characters by GPT-2's
//! `bytes_to_unicode`); whisper.cpp wants the raw bytes, so we invert it.

/// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes map to themselves,
/// the other 68 bytes to U+0100.. in byte order.
fn byte_to_char_table() -> [char; 256] {
    let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..256u32 {
        table[b as usize] = if printable(b) {
            char::from_u32(b).unwrap()
        } else {
            next += 1;
            char::from_u32(next - 1).unwrap()
        };
    }
    table
}

/// Raw bytes of one byte-level token string. Characters outside the GPT-2
/// alphabet (not expected in real vocabularies) are kept as UTF-8 so that
/// nothing is silently dropped.
pub fn decode_token(token: &str) -> Vec<u8> {
    let table = byte_to_char_table();
    decode_with(&inverse(&table), token)
}

fn inverse(table: &[char; 256]) -> std::collections::HashMap<char, u8> {
    table.iter().enumerate().map(|(b, &c)| (c, b as u8)).collect()
}

fn decode_with(inv: &std::collections::HashMap<char, u8>, token: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(token.len());
    for c in token.chars() {
        match inv.get(&c) {
            Some(&b) => out.push(b),
            None => out.extend(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

/// How many tokens whisper.cpp expects in the file: the GPT-2 vocabulary
/// (50256 tokens) for English-only models, the multilingual one (50257,
/// including `<|endoftext|>`) otherwise; whisper.cpp adds the special
/// tokens itself. Multilingual models have n_vocab >= 51865. Never more
/// than n_vocab, which whisper.cpp requires (and tiny test models need).
pub fn ggml_token_count(n_vocab: u32) -> usize {
    let text_tokens = if n_vocab >= 51865 { 50257 } else { 50256 };
    text_tokens.min(n_vocab as usize)
}

/// Decodes the first `count` lines of `vocabulary.txt`.
pub fn parse_vocabulary(text: &str, count: usize) -> Result<Vec<Vec<u8>>, String> {
    let inv = inverse(&byte_to_char_table());
    let tokens: Vec<Vec<u8>> = text.lines().take(count).map(|l| decode_with(&inv, l)).collect();
    if tokens.len() < count {
        return Err(format!("vocabulary has {} tokens, need at least {count}", tokens.len()));
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_byte_level_tokens() {
        assert_eq!(decode_token("Ġhello"), b" hello");
        assert_eq!(decode_token("Ċ"), b"\n");
        assert_eq!(decode_token("!"), b"!");
        assert_eq!(decode_token("ĉ"), b"\t");
        // "é" in UTF-8 is C3 A9, which GPT-2 spells "Ã©".
        assert_eq!(decode_token("Ã©"), "é".as_bytes());
        assert_eq!(decode_token("ÿ"), vec![0xff]);
        assert_eq!(decode_token("Ń"), vec![0xad]);
    }

    #[test]
    fn table_is_a_bijection() {
        let t = byte_to_char_table();
        assert_eq!(inverse(&t).len(), 256);
        assert_eq!(t[0], 'Ā');
        assert_eq!(t[b' ' as usize], 'Ġ');
    }

    #[test]
    fn vocabulary_counts() {
        assert_eq!(parse_vocabulary("a\nĠb\nc\n", 2).unwrap(), vec![b"a".to_vec(), b" b".to_vec()]);
        assert!(parse_vocabulary("a\n", 2).is_err());
        assert_eq!(ggml_token_count(51864), 50256);
        assert_eq!(ggml_token_count(51865), 50257);
        assert_eq!(ggml_token_count(51866), 50257);
        assert_eq!(ggml_token_count(5), 5);
    }
}
