//! Adapter from proto's parsed publish items to the hub's [`Item`]: keeps only what HTTP
//! delivery needs and turns `body-patch` into a closure over proto's JSON Patch.

use std::sync::Arc;

use bytes::Bytes;
use holdfast_proto::publish::{
    patch_body, HttpResponseFormat, HttpStreamFormat, PublishItem, ResponseBody as ProtoBody,
};

use super::item::{Item, ResponseAction, ResponseBody, ResponseFormat, StreamFormat};

/// Converts a validated item. Items carrying only formats HTTP holds ignore (`ws-message`)
/// still convert (they update ids and sequencing) with no HTTP format.
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
    Item {
        channel: item.channel,
        id: item.id,
        prev_id: item.prev_id,
        no_seq: item.no_seq,
        meta: item.meta.into_iter().collect(),
        response,
        stream,
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
