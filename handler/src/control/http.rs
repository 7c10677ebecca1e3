//! The control API's HTTP/1 framing, pure: request head parsing with Pushpin's limits and
//! texts, content negotiation, response encoding. A response closes the connection unless the
//! request asked to keep it (`Connection: keep-alive`, see [`Head::keep_alive`]).

/// One parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Method.
    pub method: String,
    /// Path with query, as sent.
    pub path: String,
    /// `Accept` header values.
    pub accept: Option<String>,
    /// `Content-Length`, if given.
    pub content_length: Option<usize>,
    /// A `Transfer-Encoding` header was given.
    pub transfer_encoding: bool,
    /// The client asked to keep the connection: a `Connection` header lists `keep-alive` and
    /// none lists `close`. Pushpin closes after every answer, and a client that does not ask
    /// still gets that (one reading to the end of the stream keeps working); one that asks is
    /// spared a TCP handshake per publish.
    pub keep_alive: bool,
    /// Length of the head including the blank line.
    pub len: usize,
}

/// A request the API refuses before reading its body (status, text without `\n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal(pub u16, pub &'static str);

/// `Request header too large.`
pub const HEADER_TOO_LARGE: Refusal = Refusal(400, "Request header too large.");
/// `Request body too large.`
pub const BODY_TOO_LARGE: Refusal = Refusal(400, "Request body too large.");
/// `Request requires Content-Length.`
pub const LENGTH_REQUIRED: Refusal = Refusal(411, "Request requires Content-Length.");
/// Unparseable head.
pub const BAD_REQUEST: Refusal = Refusal(400, "Bad Request");
/// 406 text.
pub const NOT_ACCEPTABLE: &str =
    "Not Acceptable. Supported formats are text/plain and application/json.";

/// Parses the head in `buf`: `Ok(None)` while incomplete.
pub fn parse_head(buf: &[u8], max_headers_size: usize) -> Result<Option<Head>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let status = match req.parse(buf) {
        Ok(status) => status,
        Err(httparse::Error::TooManyHeaders) => return Err(HEADER_TOO_LARGE),
        Err(_) => return Err(BAD_REQUEST),
    };
    let len = match status {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => {
            return if buf.len() > max_headers_size {
                Err(HEADER_TOO_LARGE)
            } else {
                Ok(None)
            }
        }
    };
    if len > max_headers_size {
        return Err(HEADER_TOO_LARGE);
    }
    let mut head = Head {
        method: req.method.unwrap_or("").to_string(),
        path: req.path.unwrap_or("/").to_string(),
        accept: None,
        content_length: None,
        transfer_encoding: false,
        keep_alive: false,
        len,
    };
    let mut accept: Vec<String> = Vec::new();
    let (mut keep, mut close) = (false, false);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("Content-Length") {
            let v = std::str::from_utf8(h.value).map_err(|_| BAD_REQUEST)?;
            head.content_length = Some(v.trim().parse().map_err(|_| BAD_REQUEST)?);
        } else if h.name.eq_ignore_ascii_case("Transfer-Encoding") {
            head.transfer_encoding = true;
        } else if h.name.eq_ignore_ascii_case("Accept") {
            accept.push(String::from_utf8_lossy(h.value).into_owned());
        } else if h.name.eq_ignore_ascii_case("Connection") {
            for token in String::from_utf8_lossy(h.value).split(',') {
                let token = token.trim();
                keep |= token.eq_ignore_ascii_case("keep-alive");
                close |= token.eq_ignore_ascii_case("close");
            }
        }
    }
    head.keep_alive = keep && !close;
    if !accept.is_empty() {
        head.accept = Some(accept.join(","));
    }
    Ok(Some(head))
}

/// Checks framing before the body is read.
pub fn check_framing(head: &Head, max_body_size: usize) -> Result<usize, Refusal> {
    if head.transfer_encoding {
        return Err(LENGTH_REQUIRED);
    }
    match head.content_length {
        None if matches!(head.method.as_str(), "POST" | "PUT" | "PATCH") => Err(LENGTH_REQUIRED),
        None => Ok(0),
        Some(n) if n > max_body_size => Err(BODY_TOO_LARGE),
        Some(n) => Ok(n),
    }
}

/// Response body format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain`.
    Text,
    /// `application/json`.
    Json,
}

/// Pushpin's negotiation: without `Accept`, text; else the last recognised media type wins;
/// none recognised → `None` (406).
pub fn negotiate(accept: Option<&str>) -> Option<Format> {
    let Some(accept) = accept else {
        return Some(Format::Text);
    };
    let mut found = None;
    for part in accept.split(',') {
        let media = part.split(';').next().unwrap_or("").trim();
        match media {
            "text/plain" | "text/*" | "*/*" | "*" => found = Some(Format::Text),
            "application/json" | "application/*" => found = Some(Format::Json),
            _ => {}
        }
    }
    found
}

/// The path without one trailing `/` (except the root).
pub fn normalize_path(path: &str) -> &str {
    let path = path.split('?').next().unwrap_or("");
    if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    }
}

/// A complete response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Status.
    pub code: u16,
    /// `Allow: POST` (405).
    pub allow_post: bool,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
    /// Say `Connection: keep-alive` instead of `close`.
    pub keep_alive: bool,
}

impl Answer {
    /// A `text/plain` answer; `\n` is appended to `text`.
    pub fn text(code: u16, text: &str) -> Self {
        Self {
            code,
            allow_post: false,
            content_type: "text/plain",
            body: format!("{text}\n"),
            keep_alive: false,
        }
    }

    /// A success message in the negotiated format.
    pub fn message(format: Format, text: &str) -> Self {
        match format {
            Format::Text => Self::text(200, text),
            Format::Json => Self {
                code: 200,
                allow_post: false,
                content_type: "application/json",
                body: format!("{}\n", serde_json::json!({ "message": text })),
                keep_alive: false,
            },
        }
    }

    /// 405 with `Allow: POST`.
    pub fn method_not_allowed(method: &str) -> Self {
        Self {
            allow_post: true,
            ..Self::text(405, &format!("Method not allowed: {method}."))
        }
    }

    /// The bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let reason = crate::proxy::response::reason_phrase(self.code);
        let mut out = format!("HTTP/1.1 {} {reason}\r\n", self.code);
        if self.allow_post {
            out.push_str("Allow: POST\r\n");
        }
        let connection = if self.keep_alive {
            "keep-alive"
        } else {
            "close"
        };
        out.push_str(&format!(
            "Content-Type: {}\r\nConnection: {connection}\r\nContent-Length: {}\r\n\r\n",
            self.content_type,
            self.body.len()
        ));
        out.push_str(&self.body);
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_and_limits() {
        let raw = b"POST /publish/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nAccept: text/plain\r\n\r\nhello";
        let head = parse_head(raw, 10_000).unwrap().unwrap();
        assert_eq!(head.method, "POST");
        assert_eq!(head.content_length, Some(5));
        assert_eq!(head.len, raw.len() - 5);
        assert_eq!(parse_head(&raw[..20], 10_000), Ok(None));
        assert_eq!(parse_head(raw, 30), Err(HEADER_TOO_LARGE));
        assert_eq!(
            parse_head(b"POST /x HTTP/1.1\r\nHost: x", 10),
            Err(HEADER_TOO_LARGE)
        );
        assert_eq!(check_framing(&head, 4), Err(BODY_TOO_LARGE));
        assert_eq!(check_framing(&head, 5), Ok(5));
        let no_len = Head {
            content_length: None,
            ..head.clone()
        };
        assert_eq!(check_framing(&no_len, 5), Err(LENGTH_REQUIRED));
        let get = Head {
            method: "GET".into(),
            ..no_len.clone()
        };
        assert_eq!(check_framing(&get, 5), Ok(0));
        let chunked = Head {
            transfer_encoding: true,
            ..get
        };
        assert_eq!(check_framing(&chunked, 5), Err(LENGTH_REQUIRED));
    }

    #[test]
    fn keep_alive_only_when_asked_and_never_with_close() {
        let keep = |conn: &str| {
            let raw = format!("GET / HTTP/1.1\r\nHost: x\r\n{conn}\r\n");
            parse_head(raw.as_bytes(), 10_000)
                .unwrap()
                .unwrap()
                .keep_alive
        };
        assert!(!keep(""));
        assert!(keep("Connection: keep-alive\r\n"));
        assert!(keep("Connection: Upgrade, Keep-Alive\r\n"));
        assert!(!keep("Connection: keep-alive, close\r\n"));
        assert!(!keep("Connection: keep-alive\r\nConnection: close\r\n"));
        let mut a = Answer::text(200, "Pushpin API");
        a.keep_alive = true;
        assert!(String::from_utf8(a.encode())
            .unwrap()
            .contains("\r\nConnection: keep-alive\r\nContent-Length: 12\r\n"));
    }

    #[test]
    fn negotiation_last_match_wins() {
        assert_eq!(negotiate(None), Some(Format::Text));
        assert_eq!(negotiate(Some("application/json")), Some(Format::Json));
        assert_eq!(
            negotiate(Some("application/json,text/plain")),
            Some(Format::Text)
        );
        assert_eq!(
            negotiate(Some("text/plain;q=0.1,application/*")),
            Some(Format::Json)
        );
        assert_eq!(negotiate(Some("image/png")), None);
    }

    #[test]
    fn paths_and_encoding() {
        assert_eq!(normalize_path("/publish/"), "/publish");
        assert_eq!(normalize_path("/publish//"), "/publish/");
        assert_eq!(normalize_path("/"), "/");
        let a = Answer::method_not_allowed("GET");
        assert_eq!(
            String::from_utf8(a.encode()).unwrap(),
            "HTTP/1.1 405 Method Not Allowed\r\nAllow: POST\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 25\r\n\r\nMethod not allowed: GET.\n"
        );
        assert_eq!(
            Answer::message(Format::Json, "Published").body,
            "{\"message\":\"Published\"}\n"
        );
    }
}
