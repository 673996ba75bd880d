//! Tag lists (RFC 6376 3.2): `name=value; name=value`, whitespace around names and values
//! ignored; in base64 values (`b=`, `bh=`, `p=`) whitespace anywhere is ignored.

/// The tags of `text`, in order; `None` if it is not a tag list or names a tag twice.
pub fn parse(text: &str) -> Option<Vec<(String, String)>> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for spec in text.split(';') {
        if spec.trim().is_empty() {
            continue;
        }
        let (name, value) = spec.split_once('=')?;
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        if tags.iter().any(|(n, _)| n == name) {
            return None;
        }
        let value: String = value.trim().chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
        tags.push((name.to_string(), value));
    }
    Some(tags)
}

/// A tag's value.
pub fn get<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// A base64 value with its whitespace removed.
pub fn base64(value: &str) -> String {
    value.chars().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_lists() {
        let tags = parse("v=1; a=rsa-sha256;\r\n d = example.com ; b=AB\r\n CD").unwrap();
        assert_eq!(get(&tags, "d"), Some("example.com"));
        assert_eq!(base64(get(&tags, "b").unwrap()), "ABCD");
        assert!(parse("v=1; v=2").is_none());
        assert!(parse("novalue").is_none());
    }
}
