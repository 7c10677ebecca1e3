//! A reader for the INI dialect of Qt's `QSettings`, which is what Pushpin reads `pushpin.conf`
//! with. Pure: text in, entries out.
//!
//! The value syntax follows `QSettingsPrivate::iniUnescapedStringList` (Qt 5) so that every file
//! Pushpin accepts means the same thing here:
//!
//! - leading spaces and tabs of a value are skipped, trailing ones of an unquoted value dropped;
//! - an unquoted `,` splits the value into a list (`a, b` is `["a", "b"]`);
//! - `"` quotes protect `,` `;` and spaces; spaces right after a closing quote are skipped;
//! - `\` escapes: `\a \b \f \n \r \t \v \" \? \' \\`, `\xHH…`, octal `\NNN`; any other escaped
//!   character is dropped;
//! - an unquoted `;` starts a comment that runs to the end of the line (so `;` inside a value
//!   must be quoted); `#` inside a value is an ordinary character.
//!
//! Lines whose first non-blank character is `;` or `#` are comments. (Qt only knows `;`; with Qt
//! a `#key=value` line defines a key literally named `#key`, which no program ever reads, so
//! treating it as a comment changes nothing.) Section and key names are case-sensitive, as
//! `QSettings` is on Linux; `[General]` is the top-level section, named `""` here. A key given
//! twice keeps the last value. Unlike Qt, a quoted value cannot span lines and `%XX` escapes in
//! key names are not decoded; Pushpin's files use neither.

/// A parsed INI file: its entries in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ini {
    entries: Vec<Entry>,
}

/// One `key=value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Section name (`""` for keys before any section header or under `[General]`).
    pub section: String,
    /// Key name.
    pub key: String,
    /// The decoded value.
    pub value: Value,
    /// 1-based line number.
    pub line: usize,
}

/// A decoded value: one string, or a list when the value had an unquoted comma.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    items: Vec<String>,
    list: bool,
}

/// A line that is neither a comment, a section header nor `key=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// 1-based line number.
    pub line: usize,
    /// The line as written (trimmed).
    pub text: String,
}

impl Value {
    /// The items: one for a plain value, several for a list.
    pub fn items(&self) -> &[String] {
        &self.items
    }

    /// Whether the value had an unquoted comma.
    pub fn is_list(&self) -> bool {
        self.list
    }

    /// The single string, or `None` if this is a list of several items (reading such a value as
    /// a string gives an empty string in Pushpin, almost certainly not what was meant).
    pub fn as_single(&self) -> Option<&str> {
        match self.items.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

impl Ini {
    /// Parses INI text. Malformed lines are skipped and returned so the caller can report them.
    pub fn parse(text: &str) -> (Self, Vec<Malformed>) {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut entries = Vec::new();
        let mut malformed = Vec::new();
        let mut section = String::new();
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            let trimmed = raw.trim_start_matches([' ', '\t', '\r']);
            let trimmed = trimmed.trim_end_matches('\r');
            if trimmed.is_empty() || trimmed.starts_with([';', '#']) {
                continue;
            }
            let bad = || Malformed {
                line,
                text: trimmed.trim_end().to_string(),
            };
            if let Some(rest) = trimmed.strip_prefix('[') {
                let Some((name, _)) = rest.split_once(']') else {
                    malformed.push(bad());
                    continue;
                };
                let name = name.trim();
                section = if name.eq_ignore_ascii_case("general") {
                    String::new()
                } else if name.eq_ignore_ascii_case("%general") {
                    name[1..].to_string()
                } else {
                    name.to_string()
                };
                continue;
            }
            let Some(eq) = find_unquoted_equals(trimmed) else {
                malformed.push(bad());
                continue;
            };
            let key = trimmed[..eq].trim_end_matches([' ', '\t']);
            if key.is_empty() {
                malformed.push(bad());
                continue;
            }
            entries.push(Entry {
                section: section.clone(),
                key: key.to_string(),
                value: decode_value(&trimmed[eq + 1..]),
                line,
            });
        }
        (Self { entries }, malformed)
    }

    /// The value of `key` in `section` (the last one if given twice).
    pub fn get(&self, section: &str, key: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.section == section && e.key == key)
    }

    /// Every entry in file order (including overridden duplicates).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

/// Index of the first `=` outside double quotes (as `QConfFileSettingsPrivate::readIniLine`).
fn find_unquoted_equals(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut in_quotes = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'"' => in_quotes = !in_quotes,
            b'=' if !in_quotes => return Some(i),
            b';' if !in_quotes => return None,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Removes trailing spaces and tabs, but not below `limit` bytes (escaped characters are kept).
fn chop_trailing(s: &mut String, limit: usize) {
    while s.len() > limit && s.ends_with([' ', '\t']) {
        s.pop();
    }
}

/// Decodes the text after `=` (see the module docs).
fn decode_value(raw: &str) -> Value {
    let mut chars = raw.chars().peekable();
    let mut items = Vec::new();
    let mut list = false;
    let mut current = String::new();
    let mut in_quotes = false;
    let mut quoted = false;
    let mut chop_limit = 0;

    let skip_spaces = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
    };
    skip_spaces(&mut chars);

    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else { break };
                let simple = match e {
                    'a' => Some('\u{7}'),
                    'b' => Some('\u{8}'),
                    'f' => Some('\u{c}'),
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    'v' => Some('\u{b}'),
                    '"' | '?' | '\'' | '\\' => Some(e),
                    _ => None,
                };
                if let Some(s) = simple {
                    current.push(s);
                } else if e == 'x' {
                    let mut code: u32 = 0;
                    let mut digits = 0;
                    while let Some(d) = chars.next_if(char::is_ascii_hexdigit) {
                        code = code
                            .wrapping_mul(16)
                            .wrapping_add(d.to_digit(16).unwrap_or(0));
                        digits += 1;
                    }
                    if digits > 0 {
                        current.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                } else if let Some(first) = e.to_digit(8) {
                    let mut code = first;
                    while let Some(d) = chars.next_if(|c| c.is_digit(8)) {
                        code = code
                            .wrapping_mul(8)
                            .wrapping_add(d.to_digit(8).unwrap_or(0));
                    }
                    current.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                }
                // Any other escaped character is dropped, as Qt does.
                chop_limit = current.len();
            }
            '"' => {
                quoted = true;
                in_quotes = !in_quotes;
                if !in_quotes {
                    skip_spaces(&mut chars);
                    chop_limit = current.len();
                }
            }
            ',' if !in_quotes => {
                if !quoted {
                    chop_trailing(&mut current, chop_limit);
                }
                list = true;
                items.push(std::mem::take(&mut current));
                quoted = false;
                skip_spaces(&mut chars);
                chop_limit = 0;
            }
            ';' if !in_quotes => break,
            _ => current.push(c),
        }
    }
    if !quoted {
        chop_trailing(&mut current, chop_limit);
    }
    items.push(current);
    Value { items, list }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(raw: &str) -> Vec<String> {
        decode_value(raw).items
    }

    fn parse(text: &str) -> Ini {
        let (ini, malformed) = Ini::parse(text);
        assert!(malformed.is_empty(), "{malformed:?}");
        ini
    }

    #[test]
    fn sections_and_keys() {
        let ini = parse("top=1\n[a]\nx=1\n[b]\nx=2\n[a]\ny=3\n[General]\nz=4\n");
        let get = |s: &str, k: &str| ini.get(s, k).map(|e| e.value.items()[0].clone());
        assert_eq!(get("", "top").as_deref(), Some("1"));
        assert_eq!(get("a", "x").as_deref(), Some("1"));
        assert_eq!(get("b", "x").as_deref(), Some("2"));
        assert_eq!(get("a", "y").as_deref(), Some("3"));
        assert_eq!(get("", "z").as_deref(), Some("4"));
        assert_eq!(get("a", "z"), None);
        assert_eq!(ini.get("a", "y").map(|e| e.line), Some(7));
    }

    #[test]
    fn names_are_case_sensitive_and_trimmed() {
        let ini = parse("[ Proxy ]\n  Debug \t= true\n");
        assert!(ini.get("Proxy", "Debug").is_some());
        assert!(ini.get("proxy", "debug").is_none());
    }

    #[test]
    fn last_duplicate_wins() {
        let ini = parse("[a]\nx=1\nx=2\n");
        assert_eq!(
            ini.get("a", "x").map(|e| e.value.items()[0].as_str()),
            Some("2")
        );
        assert_eq!(ini.entries().len(), 2);
    }

    #[test]
    fn comments_and_blank_lines() {
        let ini = parse("; a\n# b\n   # c\n\n\t\n[s]\n#https_ports=443\nk=v ; trailing\n");
        assert_eq!(ini.entries().len(), 1);
        assert_eq!(value("v ; trailing"), vec!["v"]);
    }

    #[test]
    fn crlf_and_bom() {
        let ini = parse("\u{feff}[s]\r\nk=v\r\n");
        assert_eq!(ini.get("s", "k").unwrap().value.items(), ["v"]);
    }

    #[test]
    fn malformed_lines_are_reported() {
        let (ini, bad) = Ini::parse("[s]\nno equals here\n[broken\n=nokey\nk=v\n");
        assert_eq!(ini.entries().len(), 1);
        let lines: Vec<usize> = bad.iter().map(|m| m.line).collect();
        assert_eq!(lines, vec![2, 3, 4]);
        assert_eq!(bad[0].text, "no equals here");
    }

    #[test]
    fn equals_inside_quotes_is_not_the_separator() {
        let ini = parse("\"a=b\"=c\n");
        assert!(ini.get("", "\"a").is_none());
        assert_eq!(ini.entries()[0].key, "\"a=b\"");
    }

    #[test]
    fn plain_values() {
        assert_eq!(value(""), vec![""]);
        assert_eq!(value("  abc  "), vec!["abc"]);
        assert_eq!(value("a b"), vec!["a b"]);
        assert_eq!(
            value("ipc://{rundir}/{ipc_prefix}stats"),
            vec!["ipc://{rundir}/{ipc_prefix}stats"]
        );
        assert_eq!(value("a#b"), vec!["a#b"]);
        assert_eq!(value("x=y"), vec!["x=y"]);
        assert!(!decode_value("abc").is_list());
    }

    #[test]
    fn lists() {
        assert_eq!(value("a,b"), vec!["a", "b"]);
        assert_eq!(value(" a , b ,c "), vec!["a", "b", "c"]);
        assert_eq!(value("a,"), vec!["a", ""]);
        assert_eq!(value(",a"), vec!["", "a"]);
        assert!(decode_value("a,b").is_list());
        assert_eq!(decode_value("a,b").as_single(), None);
        assert_eq!(decode_value("a").as_single(), Some("a"));
    }

    #[test]
    fn quotes() {
        assert_eq!(value("\"a,b\""), vec!["a,b"]);
        assert_eq!(value("\"  spaced  \""), vec!["  spaced  "]);
        assert_eq!(value("\"a;b\" ; comment"), vec!["a;b"]);
        assert_eq!(value("\"a\" \"b\""), vec!["ab"]);
        assert_eq!(value("x\"y z\"w"), vec!["xy zw"]);
        assert_eq!(value("\"a\",\"b, c\""), vec!["a", "b, c"]);
        assert!(!decode_value("\"a,b\"").is_list());
        // An unterminated quote runs to the end.
        assert_eq!(value("\"abc"), vec!["abc"]);
    }

    #[test]
    fn escapes() {
        assert_eq!(value(r"a\tb"), vec!["a\tb"]);
        assert_eq!(value(r#"\"q\""#), vec!["\"q\""]);
        assert_eq!(value(r"a\\b"), vec![r"a\b"]);
        assert_eq!(value(r"\x41\101"), vec!["AA"]);
        assert_eq!(value(r"a\,b"), vec!["ab"]);
        assert_eq!(value(r"a\;b"), vec!["ab"]);
        // An escaped trailing space is kept.
        assert_eq!(value(r"a\ "), vec!["a"]);
        assert_eq!(value("a\\t  "), vec!["a\t"]);
        assert_eq!(value("a\\"), vec!["a"]);
    }
}
