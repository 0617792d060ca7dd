//! Percent-encoding of every byte outside RFC 3986's unreserved characters
//! (`A-Z a-z 0-9 - _ . ~`; a space is `%20`, never `+`): the canonical form SigV4 signs (query
//! strings, presigned URLs) and the form OAuth 2.0 client credentials and
//! `application/x-www-form-urlencoded` values take. One definition for every scaler that signs or
//! posts, so what is signed and what is sent cannot drift apart.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but the unreserved characters.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `s` with every byte outside `A-Z a-z 0-9 - _ . ~` written as `%XX` (upper-case hex).
pub fn unreserved(s: &str) -> String {
    utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::unreserved;

    #[test]
    fn only_unreserved_characters_stay_as_they_are() {
        // Figures from RFC 3986 §2.3 (unreserved) and the SigV4 canonical-request rules
        // (space as %20, upper-case hex, UTF-8 bytes encoded one by one).
        assert_eq!(unreserved("AZaz09-_.~"), "AZaz09-_.~");
        assert_eq!(unreserved("a b+c/d=e&f"), "a%20b%2Bc%2Fd%3De%26f");
        assert_eq!(unreserved("kafka-cluster:Connect"), "kafka-cluster%3AConnect");
        assert_eq!(unreserved("é"), "%C3%A9");
        assert_eq!(unreserved(""), "");
    }
}
