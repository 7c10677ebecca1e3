//! The one info line per request (reference §8.4), e.g.
//! `GET http://127.0.0.1:7999/echo -> 127.0.0.1:8080 code=200 5`.
//!
//! The line is written when the [`RequestLog`] is dropped, so a session that is cancelled
//! (client gone, worker gone, shutdown) still logs, with `error`.

/// How the request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A response was sent completely: status and body bytes sent.
    Response {
        /// Status code.
        code: u16,
        /// Body bytes sent to the connmgr.
        body_bytes: u64,
    },
    /// The exchange failed or was cancelled.
    Error,
    /// The request was handed to the GRIP hub (held).
    Accept,
}

/// The fields of one log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLog {
    /// Method.
    pub method: String,
    /// Request URI (as the client sent it, before rewrites).
    pub uri: String,
    /// The target tried last (`host:port` or `test`).
    pub target: Option<String>,
    /// Client address, when `log_from` is on.
    pub from: Option<String>,
    /// `Referer` header.
    pub referer: Option<String>,
    /// Explicit route id.
    pub route_id: Option<String>,
    /// `User-Agent`, when `log_user_agent` is on.
    pub user_agent: Option<String>,
    /// The outcome.
    pub outcome: Outcome,
    /// This request is a GRIP retry of a held request (Pushpin appends ` retry`).
    pub retry: bool,
    /// Set once written.
    written: bool,
}

impl RequestLog {
    /// A line for a request; the outcome is `error` until set.
    pub fn new(method: &str, uri: String) -> Self {
        Self {
            method: method.to_string(),
            uri,
            target: None,
            from: None,
            referer: None,
            route_id: None,
            user_agent: None,
            outcome: Outcome::Error,
            retry: false,
            written: false,
        }
    }

    /// The formatted line.
    pub fn line(&self) -> String {
        let mut line = format!("{} {}", self.method, self.uri);
        if let Some(target) = &self.target {
            line.push_str(" -> ");
            line.push_str(target);
        }
        if let Some(from) = &self.from {
            line.push_str(" from=");
            line.push_str(from);
        }
        if let Some(referer) = &self.referer {
            line.push_str(" ref=");
            line.push_str(referer);
        }
        if let Some(id) = &self.route_id {
            line.push_str(" route=");
            line.push_str(id);
        }
        match self.outcome {
            Outcome::Response { code, body_bytes } => {
                line.push_str(&format!(" code={code} {body_bytes}"));
            }
            Outcome::Error => line.push_str(" error"),
            Outcome::Accept => line.push_str(" accept"),
        }
        if self.retry {
            line.push_str(" retry");
        }
        if let Some(ua) = &self.user_agent {
            line.push_str(" ua=");
            line.push_str(ua);
        }
        line
    }

    /// Writes the line now (at most once).
    pub fn write(&mut self) {
        if !self.written {
            self.written = true;
            tracing::info!("{}", self.line());
        }
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        self.write();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_pushpin() {
        let mut log = RequestLog::new("GET", "http://127.0.0.1:17999/echo".into());
        log.target = Some("127.0.0.1:18080".into());
        log.outcome = Outcome::Response {
            code: 200,
            body_bytes: 5,
        };
        assert_eq!(
            log.line(),
            "GET http://127.0.0.1:17999/echo -> 127.0.0.1:18080 code=200 5"
        );
        log.route_id = Some("api".into());
        log.from = Some("10.0.0.1".into());
        log.referer = Some("http://r/".into());
        log.user_agent = Some("curl/8".into());
        log.outcome = Outcome::Error;
        assert_eq!(
            log.line(),
            "GET http://127.0.0.1:17999/echo -> 127.0.0.1:18080 from=10.0.0.1 ref=http://r/ route=api error ua=curl/8"
        );
        log.write();
        assert!(log.written);
    }

    #[test]
    fn no_target_for_route_not_found() {
        let mut log = RequestLog::new("POST", "http://x/".into());
        log.outcome = Outcome::Response {
            code: 502,
            body_bytes: 16,
        };
        assert_eq!(log.line(), "POST http://x/ code=502 16");
    }
}
