//! Adapter from proto's parsed publish items to the hub's [`Item`]: keeps only what HTTP
//! delivery needs and turns `body-patch` into a closure over proto's JSON Patch.

use std::sync::Arc;

use bytes::Bytes;
use holdfast_proto::internal::WsKind;
use holdfast_proto::publish::{
    patch_body, HttpResponseFormat, HttpStreamFormat, PublishItem, ResponseBody as ProtoBody,
    WsMessageFormat, WsMessageType,
};

use super::item::{Item, ResponseAction, ResponseBody, ResponseFormat, StreamFormat, WsFormat};

/// Converts a validated item. A `ws-message` `hint` means nothing to WebSockets and converts
/// to no format (the item still updates ids and sequencing).
pub fn to_item(item: PublishItem) -> Item {
    let response = item.formats.http_response.map(|f| {
        Arc::new(match f {
            HttpResponseFormat::Send(send) => ResponseFormat {
                action: ResponseAction::Send,
                code: Some(send.code),
                reason: Some(send.reason),
                headers: send.headers,
                body: match send.body {
                    ProtoBody::Bytes(b) => ResponseBody::Bytes(b),
                    ProtoBody::Patch(ops) => ResponseBody::Patch(Arc::new(move |body: &[u8]| {
                        // Pushpin sends an empty body when the patch cannot be applied.
                        patch_body(body, &ops).map(Bytes::from).unwrap_or_default()
                    })),
                },
            },
            HttpResponseFormat::Hint => ignore_or(ResponseAction::Hint),
            HttpResponseFormat::Close | HttpResponseFormat::Refresh => {
                ignore_or(ResponseAction::Ignore)
            }
        })
    });
    let stream = item.formats.http_stream.and_then(|f| match f {
        HttpStreamFormat::Send(send) => Some(StreamFormat::Send(send.content)),
        HttpStreamFormat::Close => Some(StreamFormat::Close),
        HttpStreamFormat::Hint => Some(StreamFormat::Hint),
        HttpStreamFormat::Refresh => None,
    });
    let ws = item.formats.ws_message.and_then(|f| match f {
        WsMessageFormat::Send(send) => {
            let kind = match send.kind {
                WsMessageType::Text => WsKind::Text,
                WsMessageType::Binary => WsKind::Binary,
                WsMessageType::Ping => WsKind::Ping,
                WsMessageType::Pong => WsKind::Pong,
            };
            Some(WsFormat::Send(kind, send.content))
        }
        WsMessageFormat::Close(close) => Some(WsFormat::Close(
            close.code,
            close.reason.unwrap_or_default(),
        )),
        WsMessageFormat::Refresh => Some(WsFormat::Refresh),
        WsMessageFormat::Hint => None,
    });
    Item {
        channel: item.channel,
        id: item.id,
        prev_id: item.prev_id,
        no_seq: item.no_seq,
        meta: item.meta.into_iter().collect(),
        response,
        stream,
        ws,
    }
}

fn ignore_or(action: ResponseAction) -> ResponseFormat {
    ResponseFormat {
        action,
        code: None,
        reason: None,
        headers: Vec::new(),
        body: ResponseBody::Bytes(Bytes::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_proto::publish::parse_publish_body;

    #[test]
    fn converts_stream_and_response_formats() {
        let items = parse_publish_body(
            br#"{"items":[{"channel":"c","id":"2","prev-id":"1","meta":{"sender":"a"},
                "formats":{"http-stream":{"content":"hi\n"},
                           "http-response":{"code":201,"body":"x"}}},
                {"channel":"d","formats":{"http-stream":{"action":"close"}}}]}"#,
        )
        .unwrap();
        let mut items = items.into_iter().map(to_item);
        let a = items.next().unwrap();
        assert_eq!((a.channel.as_str(), a.id.as_deref()), ("c", Some("2")));
        assert_eq!(a.meta("sender"), Some("a"));
        assert_eq!(
            a.stream,
            Some(StreamFormat::Send(Bytes::from_static(b"hi\n")))
        );
        let r = a.response.unwrap();
        assert_eq!(r.code, Some(201));
        assert_eq!(items.next().unwrap().stream, Some(StreamFormat::Close));
    }

    #[test]
    fn converts_ws_formats() {
        let items = parse_publish_body(
            br#"{"items":[{"channel":"c","formats":{"ws-message":{"content":"hi"}}},
                {"channel":"c","formats":{"ws-message":{"content-bin":"AAE="}}},
                {"channel":"c","formats":{"ws-message":{"action":"close","code":4000,
                    "reason":"bye"}}},
                {"channel":"c","formats":{"ws-message":{"action":"refresh"}}},
                {"channel":"c","formats":{"ws-message":{"action":"hint"}}}]}"#,
        )
        .unwrap();
        let ws: Vec<_> = items.into_iter().map(|i| to_item(i).ws).collect();
        assert_eq!(
            ws,
            vec![
                Some(WsFormat::Send(WsKind::Text, Bytes::from_static(b"hi"))),
                Some(WsFormat::Send(WsKind::Binary, Bytes::from_static(&[0, 1]))),
                Some(WsFormat::Close(Some(4000), "bye".into())),
                Some(WsFormat::Refresh),
                None,
            ]
        );
    }

    #[test]
    fn body_patch_keeps_newline_and_failure_empties() {
        let items = parse_publish_body(
            br#"{"items":[{"channel":"c","formats":{"http-response":{"body-patch":[
                {"op":"replace","path":"/a","value":2}]}}}]}"#,
        )
        .unwrap();
        let item = to_item(items.into_iter().next().unwrap());
        let ResponseBody::Patch(apply) = &item.response.as_ref().unwrap().body else {
            panic!("expected a patch");
        };
        let patched = apply(b"{\"a\":1}\n");
        assert!(patched.ends_with(b"\n"), "{patched:?}");
        assert!(String::from_utf8_lossy(&patched).contains('2'));
        assert!(apply(b"not json").is_empty());
    }
}
