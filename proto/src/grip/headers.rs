//! GRIP header-value syntax (reference §4.2), a port of the parsing rules of Pushpin's
//! `HttpHeaders` so every header a backend sends is read exactly as Pushpin reads it.
//!
//! - Names are compared ignoring ASCII case.
//! - *List* headers (`Grip-Channel`, `Grip-Link`, `Grip-Set-Meta`, `Grip-Expose-Headers`) are
//!   read from every occurrence and split on commas that are outside double quotes
//!   ([`split_list`]). *Single* headers (`Grip-Hold`, `Grip-Timeout`, `Grip-Keep-Alive`,
//!   `Grip-Status`, `Grip-Session-Id`) are read from the first occurrence only and never split,
//!   so a keep-alive payload may contain commas.
//! - Each element is `<first>[; name[=value]]*` ([`parse_params`]). The first token ends at the
//!   first `;` (quotes do not protect it), so a literal `;` in keep-alive data needs
//!   `format=cstring` and `\x3b`. A value is quoted only when `"` immediately follows `=`; inside
//!   quotes `\` escapes the next byte, and anything between the closing quote and the next `;`
//!   is ignored. Tokens are trimmed of ASCII whitespace.
//! - An element whose quoting is broken (unterminated quote, trailing `\`) is dropped silently
//!   from a list header and makes a single header read as absent, as in Pushpin.

use crate::internal::Header;

/// How the first segment of an element is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseMode {
    /// The first segment is an opaque token (`Grip-Channel: name; prev-id=…`).
    FirstIsToken,
    /// The first segment is a `name=value` parameter like the rest (`Grip-Set-Meta: user=alice`).
    AllParams,
}

/// One `name[=value]` parameter. For [`ParseMode::FirstIsToken`] the first entry holds the token
/// as its name and no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// Parameter name (or the first token), trimmed.
    pub name: Vec<u8>,
    /// The value: `None` without `=`, unquoted and unescaped otherwise.
    pub value: Option<Vec<u8>>,
}

/// A parsed header element: its parameters in order, the first one being the leading token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderParams(pub Vec<Param>);

impl HeaderParams {
    /// The leading token (name of the first parameter); empty if there are no parameters.
    pub fn first(&self) -> &[u8] {
        self.0.first().map_or(&[][..], |p| &p.name[..])
    }

    /// True if some parameter after the first is named `name` (ASCII case-insensitive).
    pub fn contains(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|p| p.name.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// The value of the first parameter named `name` (ASCII case-insensitive). The first entry
    /// takes part too, as in Pushpin, which only matters for [`ParseMode::AllParams`].
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|p| p.value.as_deref())
    }

    /// True if there are no parameters at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Value of the first header named `name`, not split. `None` if there is no such header.
pub fn first_value<'a>(headers: &'a [Header], name: &str) -> Option<&'a [u8]> {
    headers.iter().find(|h| h.is(name)).map(|h| &h.1[..])
}

/// Every comma-separated element of every header named `name`, in order.
pub fn all_values<'a>(headers: &'a [Header], name: &str) -> Vec<&'a [u8]> {
    headers
        .iter()
        .filter(|h| h.is(name))
        .flat_map(|h| split_list(&h.1))
        .collect()
}

/// Parameters of every element of every header named `name`; elements with broken quoting are
/// skipped.
pub fn all_params(headers: &[Header], name: &str, mode: ParseMode) -> Vec<HeaderParams> {
    all_values(headers, name)
        .into_iter()
        .filter_map(|v| parse_params(v, mode))
        .collect()
}

/// Parameters of the first header named `name` (not split). `None` if the header is absent,
/// empty, or its quoting is broken.
pub fn single_params(headers: &[Header], name: &str, mode: ParseMode) -> Option<HeaderParams> {
    let value = first_value(headers, name)?;
    if value.is_empty() {
        return None;
    }
    parse_params(value, mode)
}

/// Splits a header value on commas outside double quotes and trims each part. A trailing comma
/// adds nothing, but an empty part between two commas is kept (as an empty slice). If the
/// quoting is broken the rest of the value from the current part on is one part.
pub fn split_list(value: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut pos = 0;
    while pos < value.len() {
        match find_unquoted_comma(value, pos) {
            Some(end) => {
                parts.push(trim(&value[pos..end]));
                pos = if end < value.len() {
                    end + 1
                } else {
                    value.len()
                };
            }
            None => {
                parts.push(trim(&value[pos..]));
                pos = value.len();
            }
        }
    }
    parts
}

/// Position of the next comma outside quotes, `value.len()` if there is none, `None` if the
/// quoting is broken.
fn find_unquoted_comma(value: &[u8], from: usize) -> Option<usize> {
    let mut in_quote = false;
    let mut n = from;
    while n < value.len() {
        let c = value[n];
        if in_quote {
            if c == b'\\' {
                n += 1;
                if n >= value.len() {
                    return None;
                }
            } else if c == b'"' {
                in_quote = false;
            }
        } else if c == b'"' {
            in_quote = true;
        } else if c == b',' {
            return Some(n);
        }
        n += 1;
    }
    if in_quote {
        None
    } else {
        Some(value.len())
    }
}

/// Parses one element into its parameters. `None` if a quoted value is unterminated or ends in
/// a lone `\`.
pub fn parse_params(input: &[u8], mode: ParseMode) -> Option<HeaderParams> {
    let mut out = Vec::new();
    let mut start = 0;
    if mode == ParseMode::FirstIsToken {
        let end = find(input, b';', 0).unwrap_or(input.len());
        out.push(Param {
            name: trim(&input[..end]).to_vec(),
            value: None,
        });
        start = (end + 1).min(input.len());
    }

    while start < input.len() {
        let Some(at) = input[start..]
            .iter()
            .position(|&c| c == b'=' || c == b';')
            .map(|p| p + start)
        else {
            out.push(Param {
                name: trim(&input[start..]).to_vec(),
                value: None,
            });
            break;
        };
        let name = trim(&input[start..at]).to_vec();
        if input[at] == b';' {
            out.push(Param { name, value: None });
            start = at + 1;
            continue;
        }
        let vstart = at + 1;
        if input.get(vstart) == Some(&b'"') {
            let mut value = Vec::new();
            let mut n = vstart + 1;
            let mut closed = None;
            while n < input.len() {
                match input[n] {
                    b'\\' => {
                        n += 1;
                        value.push(*input.get(n)?);
                    }
                    b'"' => {
                        closed = Some(n + 1);
                        break;
                    }
                    c => value.push(c),
                }
                n += 1;
            }
            let after = closed?;
            out.push(Param {
                name,
                value: Some(value),
            });
            start = find(input, b';', after).map_or(input.len(), |p| p + 1);
        } else {
            let end = find(input, b';', vstart).unwrap_or(input.len());
            out.push(Param {
                name,
                value: Some(trim(&input[vstart..end]).to_vec()),
            });
            start = end + 1;
        }
    }
    Some(HeaderParams(out))
}

fn find(input: &[u8], c: u8, from: usize) -> Option<usize> {
    input
        .get(from..)?
        .iter()
        .position(|&b| b == c)
        .map(|p| p + from)
}

/// Trims ASCII whitespace (space, `\t`, `\n`, `\v`, `\f`, `\r`) like `QByteArray::trimmed`.
pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_space(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_space(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Parses a decimal `int` the way `QByteArray::toInt` does: surrounding whitespace allowed, an
/// optional `+` or `-`, digits only, and the value must fit an `i32`.
pub(crate) fn parse_qt_int(s: &[u8]) -> Option<i32> {
    let s = trim(s);
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: i64 = 0;
    for d in digits {
        value = value * 10 + i64::from(d - b'0');
        if value > i64::from(i32::MAX) + 1 {
            return None;
        }
    }
    let value = if negative { -value } else { value };
    i32::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, value: Option<&str>) -> Param {
        Param {
            name: name.as_bytes().to_vec(),
            value: value.map(|v| v.as_bytes().to_vec()),
        }
    }

    fn params(input: &str, mode: ParseMode) -> Vec<Param> {
        parse_params(input.as_bytes(), mode).unwrap().0
    }

    #[test]
    fn split_respects_quotes_and_trims() {
        let parts = split_list(br#" a ; filter="x, y" , b,,c, "#);
        assert_eq!(
            parts,
            vec![&br#"a ; filter="x, y""#[..], b"b", b"", b"c", b""]
        );
        assert_eq!(split_list(b"a,"), vec![&b"a"[..]]);
        assert_eq!(split_list(b""), Vec::<&[u8]>::new());
        // Broken quoting: the rest is one part.
        assert_eq!(split_list(br#"a, "b, c"#), vec![&b"a"[..], br#""b, c"#]);
        assert_eq!(split_list(br#"a, "b\"#), vec![&b"a"[..], br#""b\"#]);
        assert_eq!(split_list(br#""a\",b",c"#), vec![&br#""a\",b""#[..], b"c"]);
    }

    #[test]
    fn first_token_and_params() {
        assert_eq!(
            params(
                "chan ; prev-id=12 ;filter=skip-self; filter = build-id",
                ParseMode::FirstIsToken
            ),
            vec![
                p("chan", None),
                p("prev-id", Some("12")),
                p("filter", Some("skip-self")),
                p("filter", Some("build-id")),
            ]
        );
        assert_eq!(params("x", ParseMode::FirstIsToken), vec![p("x", None)]);
        assert_eq!(params("", ParseMode::FirstIsToken), vec![p("", None)]);
        assert_eq!(
            params(";x", ParseMode::FirstIsToken),
            vec![p("", None), p("x", None)]
        );
        // The first token ends at the first ';' even inside quotes.
        assert_eq!(
            params(r#""a;b"; c=d"#, ParseMode::FirstIsToken),
            vec![p("\"a", None), p("b\"", None), p("c", Some("d"))]
        );
    }

    #[test]
    fn quoted_values_unescape_and_skip_to_next_semicolon() {
        assert_eq!(
            params(r#"a; x="p\"q;r" junk ; y = "z""#, ParseMode::FirstIsToken),
            vec![p("a", None), p("x", Some("p\"q;r")), p("y", Some("\"z\""))]
        );
        assert_eq!(
            params(r#"a; x="""#, ParseMode::FirstIsToken),
            vec![p("a", None), p("x", Some(""))]
        );
        assert_eq!(
            parse_params(br#"a; x="open"#, ParseMode::FirstIsToken),
            None
        );
        assert_eq!(
            parse_params(br#"a; x="open\"#, ParseMode::FirstIsToken),
            None
        );
    }

    #[test]
    fn empty_and_valueless_params() {
        assert_eq!(
            params("a;;b;c=", ParseMode::FirstIsToken),
            vec![p("a", None), p("", None), p("b", None), p("c", Some(""))]
        );
        assert_eq!(
            params("user=alice; other=1", ParseMode::AllParams),
            vec![p("user", Some("alice")), p("other", Some("1"))]
        );
        assert_eq!(params("", ParseMode::AllParams), vec![]);
        assert_eq!(params("a=", ParseMode::AllParams), vec![p("a", Some(""))]);
    }

    #[test]
    fn lookup_is_case_insensitive() {
        let hp = parse_params(b"x; Rel=next; TIMEOUT=5", ParseMode::FirstIsToken).unwrap();
        assert_eq!(hp.first(), b"x");
        assert_eq!(hp.get("rel"), Some(&b"next"[..]));
        assert!(hp.contains("timeout"));
        assert_eq!(hp.get("format"), None);
    }

    #[test]
    fn header_occurrences() {
        let headers = vec![
            Header::new("Grip-Channel", "a, b"),
            Header::new("X", "y"),
            Header::new("grip-channel", r#"c; filter="bad"#),
            Header::new("GRIP-CHANNEL", "d"),
            Header::new("Grip-Timeout", "5, 6"),
            Header::new("Grip-Timeout", "7"),
            Header::new("Grip-Keep-Alive", ""),
        ];
        assert_eq!(all_values(&headers, "grip-channel").len(), 4);
        let channels: Vec<_> = all_params(&headers, "Grip-Channel", ParseMode::FirstIsToken)
            .iter()
            .map(|hp| hp.first().to_vec())
            .collect();
        assert_eq!(channels, vec![b"a".to_vec(), b"b".to_vec(), b"d".to_vec()]);
        assert_eq!(first_value(&headers, "grip-timeout"), Some(&b"5, 6"[..]));
        assert_eq!(
            single_params(&headers, "Grip-Timeout", ParseMode::FirstIsToken)
                .unwrap()
                .first(),
            b"5, 6"
        );
        assert_eq!(
            single_params(&headers, "Grip-Keep-Alive", ParseMode::FirstIsToken),
            None
        );
        assert_eq!(
            single_params(&headers, "Grip-Hold", ParseMode::FirstIsToken),
            None
        );
    }

    #[test]
    fn qt_int() {
        assert_eq!(parse_qt_int(b"55"), Some(55));
        assert_eq!(parse_qt_int(b" +6 "), Some(6));
        assert_eq!(parse_qt_int(b"-1"), Some(-1));
        assert_eq!(parse_qt_int(b"2147483647"), Some(i32::MAX));
        assert_eq!(parse_qt_int(b"-2147483648"), Some(i32::MIN));
        for bad in [
            &b""[..],
            b"5x",
            b"0x10",
            b"99999999999",
            b"2147483648",
            b"+",
            b"1 2",
        ] {
            assert_eq!(
                parse_qt_int(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
