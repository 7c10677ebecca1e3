//! Headers of WebSocket-over-HTTP requests and of the `101` sent to the client (reference §5.3,
//! observed 1.36 list in `holdfast_proto::wsevents`).

use holdfast_proto::internal::Header;
use holdfast_proto::wsevents::CONTENT_TYPE;

/// Client handshake headers never copied into a WebSocket-over-HTTP request.
const DROPPED_CLIENT_HEADERS: &[&str] = &[
    "Upgrade",
    "Connection",
    "Accept",
    "Connection-Id",
    "Content-Length",
    "Content-Type",
    "Sec-WebSocket-Extensions",
];

/// OPEN reply headers never copied into the `101`.
const DROPPED_ACCEPT_HEADERS: &[&str] = &[
    "Content-Length",
    "Content-Type",
    "Keep-Alive-Interval",
    "Sec-WebSocket-Extensions",
    // Framing and hop-by-hop headers: the connmgr writes its own 101.
    "Transfer-Encoding",
    "Connection",
    "Upgrade",
    "Keep-Alive",
];

fn starts_with_ignore_case(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// A random version-4 UUID in its text form (`Connection-Id`).
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Everything of one connection's requests that does not change between them.
#[derive(Clone, Debug)]
pub struct RequestBase {
    /// The client's headers after the §4.9 rules and the WebSocket-over-HTTP removals.
    pub client: Vec<Header>,
    /// Offer `Sec-WebSocket-Extensions: grip` and sign (GRIP enabled on the route).
    pub grip: bool,
    /// `Connection-Id`.
    pub connection_id: String,
}

impl RequestBase {
    /// `forwarded` are the client headers after [`crate::proxy::headers::forward_headers`].
    pub fn new(forwarded: &[Header], grip: bool) -> Self {
        let client = forwarded
            .iter()
            .filter(|h| {
                !DROPPED_CLIENT_HEADERS.iter().any(|d| h.is(d))
                    && !starts_with_ignore_case(&h.0, "Meta-")
            })
            .cloned()
            .collect();
        Self {
            client,
            grip,
            connection_id: uuid_v4(),
        }
    }

    /// The headers of one request, in Pushpin's order; `grip_headers` are `Grip-Sig` (fresh)
    /// and `Grip-Feature`, `meta` the values set by `Set-Meta-*`. `Content-Length` is left to
    /// the request builder.
    pub fn request_headers(
        &self,
        grip_headers: Vec<Header>,
        meta: &[(String, String)],
    ) -> Vec<Header> {
        let mut out = self.client.clone();
        if self.grip {
            out.push(Header::new("Sec-WebSocket-Extensions", "grip"));
            out.extend(grip_headers);
        }
        out.push(Header::new("Accept", CONTENT_TYPE));
        out.push(Header::new("Connection-Id", self.connection_id.clone()));
        out.push(Header::new("Content-Type", CONTENT_TYPE));
        for (name, value) in meta {
            out.push(Header::new(format!("Meta-{name}"), value.clone()));
        }
        out
    }
}

/// The OPEN reply's headers for the `101` (reference §5.3).
pub fn accept_headers(origin: &[Header]) -> Vec<Header> {
    origin
        .iter()
        .filter(|h| {
            !DROPPED_ACCEPT_HEADERS.iter().any(|d| h.is(d))
                && !starts_with_ignore_case(&h.0, "Set-Meta-")
        })
        .cloned()
        .collect()
}

/// True if the reply is a valid events reply: 200 and `Content-Type` exactly
/// [`CONTENT_TYPE`].
pub fn is_events_reply(code: u16, headers: &[Header]) -> bool {
    code == 200
        && headers
            .iter()
            .find(|h| h.is("Content-Type"))
            .is_some_and(|h| h.1.as_ref() == CONTENT_TYPE.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_has_v4_shape() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(id, uuid_v4());
    }

    #[test]
    fn request_headers_follow_pushpin() {
        let forwarded = vec![
            Header::new("Sec-WebSocket-Key", "k"),
            Header::new("Accept", "*/*"),
            Header::new("Meta-Evil", "x"),
            Header::new("Connection-Id", "fake"),
            Header::new("Sec-WebSocket-Extensions", "permessage-deflate"),
            Header::new("Cookie", "c=1"),
        ];
        let base = RequestBase::new(&forwarded, true);
        let headers = base.request_headers(
            vec![Header::new("Grip-Feature", "status")],
            &[("User".into(), "alice".into())],
        );
        let names: Vec<&str> = headers.iter().map(|h| h.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "Sec-WebSocket-Key",
                "Cookie",
                "Sec-WebSocket-Extensions",
                "Grip-Feature",
                "Accept",
                "Connection-Id",
                "Content-Type",
                "Meta-User"
            ]
        );
        assert_eq!(headers[2].1.as_ref(), b"grip");
        assert_eq!(headers[5].1.as_ref(), base.connection_id.as_bytes());
    }

    #[test]
    fn accept_headers_drop_framing_and_meta() {
        let origin = vec![
            Header::new("Content-Type", CONTENT_TYPE),
            Header::new("Content-Length", "6"),
            Header::new("Set-Meta-User", "a"),
            Header::new("Keep-Alive-Interval", "30"),
            Header::new("Sec-WebSocket-Extensions", "grip"),
            Header::new("Sec-WebSocket-Protocol", "chat"),
            Header::new("Server", "x"),
        ];
        let kept: Vec<String> = accept_headers(&origin).into_iter().map(|h| h.0).collect();
        assert_eq!(kept, ["Sec-WebSocket-Protocol", "Server"]);
        assert!(is_events_reply(200, &origin));
        assert!(!is_events_reply(201, &origin));
        assert!(!is_events_reply(
            200,
            &[Header::new(
                "Content-Type",
                "application/websocket-events; x=1"
            )]
        ));
    }
}
