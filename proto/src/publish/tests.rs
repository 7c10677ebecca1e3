//! Publish parsing tests. Messages marked "observed" are the 400 bodies Pushpin 1.36's control
//! API returned for the same JSON.

use bytes::Bytes;
use serde_json::json;

use super::*;
use crate::tnetstring::Value as T;

fn body_err(body: &str) -> String {
    parse_publish_body(body.as_bytes()).unwrap_err().to_string()
}

fn items_err(items: serde_json::Value) -> String {
    body_err(&json!({ "items": items }).to_string())
}

fn one(item: serde_json::Value) -> PublishItem {
    let mut items = parse_publish_body(json!({ "items": [item] }).to_string().as_bytes()).unwrap();
    assert_eq!(items.len(), 1);
    items.remove(0)
}

#[test]
fn full_item() {
    let item = one(json!({
        "channel": "c",
        "id": "2",
        "prev-id": "1",
        "formats": {
            "http-response": {
                "code": 201,
                "headers": [["X-Foo", "bar"], ["Grip-Expose-Headers", "x"]],
                "body": "hello\n",
                "content-filters": ["build-id"]
            },
            "http-stream": {"content": "data: x\n\n"},
            "ws-message": {"content-bin": "AAE="}
        },
        "meta": {"sender": "alice", "skip_users": "a, b"},
        "size": 10,
        "no-seq": true
    }));
    assert_eq!(item.channel, "c");
    assert_eq!(item.id.as_deref(), Some("2"));
    assert_eq!(item.prev_id.as_deref(), Some("1"));
    assert_eq!(
        item.formats.http_response,
        Some(HttpResponseFormat::Send(HttpResponseSend {
            code: 201,
            reason: "Created".into(),
            headers: vec![
                Header::new("X-Foo", "bar"),
                Header::new("Grip-Expose-Headers", "x")
            ],
            body: ResponseBody::Bytes(Bytes::from_static(b"hello\n")),
            content_filters: Some(vec!["build-id".into()]),
        }))
    );
    assert_eq!(
        item.formats.http_stream,
        Some(HttpStreamFormat::Send(HttpStreamSend {
            content: Bytes::from_static(b"data: x\n\n"),
            content_filters: None,
        }))
    );
    assert_eq!(
        item.formats.ws_message,
        Some(WsMessageFormat::Send(WsMessageSend {
            kind: WsMessageType::Binary,
            content: Bytes::from_static(&[0, 1]),
            content_filters: None,
        }))
    );
    assert_eq!(item.meta.len(), 2);
    assert_eq!(item.meta["sender"], "alice");
    assert_eq!(item.size, Some(10));
    assert!(item.no_seq);
}

#[test]
fn top_level_formats_and_defaults() {
    let item = one(
        json!({"channel": "c", "http-stream": {"content": "x"}, "ws-message": {"content": "t"}}),
    );
    assert_eq!(item.id, None);
    assert_eq!(item.size, None);
    assert!(!item.no_seq);
    assert!(item.formats.http_response.is_none());
    assert!(matches!(
        item.formats.http_stream,
        Some(HttpStreamFormat::Send(_))
    ));
    assert_eq!(
        item.formats.ws_message,
        Some(WsMessageFormat::Send(WsMessageSend {
            kind: WsMessageType::Text,
            content: Bytes::from_static(b"t"),
            content_filters: None,
        }))
    );
    // `formats` wins over top-level keys.
    let item = one(
        json!({"channel": "c", "formats": {"http-stream": {"content": "f"}}, "ws-message": {"content": "t"}}),
    );
    assert!(item.formats.ws_message.is_none());
    // Observed: a formats object naming only unknown formats is accepted.
    let item = one(json!({"channel": "c", "formats": {"foo": {}}}));
    assert_eq!(item.formats, Formats::default());
}

#[test]
fn http_response_details() {
    let send =
        |f: serde_json::Value| match one(json!({"channel": "c", "formats": {"http-response": f}}))
            .formats
            .http_response
        {
            Some(HttpResponseFormat::Send(s)) => s,
            other => panic!("{other:?}"),
        };
    let s = send(json!({"body": ""}));
    assert_eq!((s.code, s.reason.as_str()), (200, "OK"));
    // Observed: numeric strings convert, junk becomes 0; reasons default per code.
    assert_eq!(send(json!({"code": "abc", "body": ""})).code, 0);
    assert_eq!(send(json!({"code": " 201 ", "body": ""})).code, 201);
    let s = send(json!({"code": 299, "reason": "", "body": ""}));
    assert_eq!((s.code, s.reason.as_str()), (299, "Undefined Reason"));
    assert_eq!(
        send(json!({"code": 404, "reason": "Gone Fishing", "body": ""})).reason,
        "Gone Fishing"
    );
    // Object headers are sorted by name.
    assert_eq!(
        send(json!({"headers": {"b": "2", "a": "1"}, "body": ""})).headers,
        vec![Header::new("a", "1"), Header::new("b", "2")]
    );
    // Observed: base64 errors are ignored; body-bin wins over body.
    assert_eq!(
        send(json!({"body-bin": "%%%", "body": "x"})).body,
        ResponseBody::Bytes(Bytes::new())
    );
    assert_eq!(
        send(json!({"body-bin": "aGk="})).body,
        ResponseBody::Bytes(Bytes::from_static(b"hi"))
    );
    // body wins over body-patch; body-patch ops are kept as JSON, unvalidated (observed).
    assert_eq!(
        send(json!({"body": "b", "body-patch": []})).body,
        ResponseBody::Bytes(Bytes::from_static(b"b"))
    );
    assert_eq!(
        send(json!({"body-patch": [{"op": "bogus"}]})).body,
        ResponseBody::Patch(vec![json!({"op": "bogus"})])
    );
}

#[test]
fn actions() {
    let f =
        |fmt: &str, v: serde_json::Value| one(json!({"channel": "c", "formats": {fmt: v}})).formats;
    // Observed: non-send actions skip the other fields entirely.
    assert_eq!(
        f("http-response", json!({"action": "hint", "code": "x"})).http_response,
        Some(HttpResponseFormat::Hint)
    );
    assert_eq!(
        f("http-response", json!({"action": "close"})).http_response,
        Some(HttpResponseFormat::Close)
    );
    assert_eq!(
        f("http-stream", json!({"action": "hint"})).http_stream,
        Some(HttpStreamFormat::Hint)
    );
    assert_eq!(
        f("http-stream", json!({"action": "close", "content": 5})).http_stream,
        Some(HttpStreamFormat::Close)
    );
    assert_eq!(
        f("ws-message", json!({"action": "hint", "code": "x"})).ws_message,
        Some(WsMessageFormat::Hint)
    );
    assert_eq!(
        f(
            "ws-message",
            json!({"action": "close", "content": 5, "type": "zz"})
        )
        .ws_message,
        Some(WsMessageFormat::Close(WsClose {
            code: None,
            reason: None
        }))
    );
    assert_eq!(
        f(
            "ws-message",
            json!({"action": "close", "code": 4000, "reason": "bye"})
        )
        .ws_message,
        Some(WsMessageFormat::Close(WsClose {
            code: Some(4000),
            reason: Some("bye".into())
        }))
    );
    // Refresh is HEAD (≥1.38) behaviour; 1.36 answers `Invalid format: ` (observed).
    assert_eq!(
        f("ws-message", json!({"action": "refresh"})).ws_message,
        Some(WsMessageFormat::Refresh)
    );
    assert!(f("http-stream", json!({"action": "send", "content": "x"}))
        .http_stream
        .is_some());
    // ws ping/pong may omit content.
    assert_eq!(
        f("ws-message", json!({"type": "ping"})).ws_message,
        Some(WsMessageFormat::Send(WsMessageSend {
            kind: WsMessageType::Ping,
            content: Bytes::new(),
            content_filters: None,
        }))
    );
    assert_eq!(
        f("ws-message", json!({"type": "text", "content-bin": "aGk="})).ws_message,
        Some(WsMessageFormat::Send(WsMessageSend {
            kind: WsMessageType::Text,
            content: Bytes::from_static(b"hi"),
            content_filters: None,
        }))
    );
}

#[test]
fn body_level_errors() {
    // All observed.
    assert_eq!(body_err(""), "Body is not valid JSON.");
    assert_eq!(body_err("{x"), "Body is not valid JSON.");
    assert_eq!(body_err("5"), "Body is not valid JSON.");
    assert_eq!(body_err("\"x\""), "Body is not valid JSON.");
    assert_eq!(body_err("null"), "Body is not valid JSON.");
    assert_eq!(body_err("   "), "Body is not valid JSON.");
    assert_eq!(body_err("{\"items\":[]} x"), "Body is not valid JSON.");
    assert_eq!(body_err("[]"), "Invalid format.");
    assert_eq!(
        body_err("{}"),
        "Invalid format: object does not contain 'items'"
    );
    assert_eq!(
        body_err("{\"items\":{}}"),
        "Invalid format: object contains 'items' with wrong type"
    );
    assert_eq!(
        body_err("{\"items\":null}"),
        "Invalid format: object contains 'items' with wrong type"
    );
    assert_eq!(parse_publish_body(b"{\"items\":[]}").unwrap(), vec![]);
}

#[test]
fn item_errors_match_pushpin() {
    // Every message below was observed on 1.36, prefixed by "Invalid format: ".
    let cases = [
        (json!([5]), "publish item object is not an object"),
        (
            json!([{"formats": {}}]),
            "publish item object does not contain 'channel'",
        ),
        (
            json!([{"channel": 5, "formats": {}}]),
            "publish item object contains 'channel' with wrong type",
        ),
        (
            json!([{"channel": null, "http-stream": {"content": "x"}}]),
            "publish item object contains 'channel' with wrong type",
        ),
        (
            json!([{"channel": "c", "id": 5, "http-stream": {"content": "x"}}]),
            "publish item object contains 'id' with wrong type",
        ),
        (
            json!([{"channel": "c", "id": null, "http-stream": {"content": "x"}}]),
            "publish item object contains 'id' with wrong type",
        ),
        (
            json!([{"channel": "c", "prev-id": [], "http-stream": {"content": "x"}}]),
            "publish item object contains 'prev-id' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": "x"}]),
            "publish item object contains 'formats' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": null}]),
            "publish item object contains 'formats' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {}}]),
            "no formats specified",
        ),
        (json!([{"channel": "c"}]), "no formats specified"),
        (
            json!([{"channel": "c", "http-stream": null}]),
            "'http-stream' is not an object",
        ),
        (
            json!([{"channel": "c", "formats": {"http-stream": "x"}}]),
            "'http-stream' is not an object",
        ),
        (
            json!([{"channel": "c", "formats": {"http-stream": {"action": "nope"}}}]),
            "",
        ),
        (
            json!([{"channel": "c", "formats": {"http-stream": {"action": 1}}}]),
            "'http-stream' contains 'action' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-stream": {"action": null, "content": "x"}}}]),
            "'http-stream' contains 'action' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {}}}]),
            "'http-response' does not contain 'body', 'body-bin', or 'body-patch'",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"code": {}, "body": ""}}}]),
            "'http-response' contains 'code' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"code": null, "body": ""}}}]),
            "'http-response' contains 'code' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"code": -5, "body": ""}}}]),
            "'http-response' contains 'code' with invalid value",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"code": 1000, "body": ""}}}]),
            "'http-response' contains 'code' with invalid value",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"reason": 1, "body": ""}}}]),
            "'http-response' contains 'reason' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"reason": null, "body": ""}}}]),
            "'http-response' contains 'reason' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"headers": "x", "body": ""}}}]),
            "'http-response' contains 'headers' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"headers": null, "body": ""}}}]),
            "'http-response' contains 'headers' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"headers": [1], "body": ""}}}]),
            "headers contains element with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"headers": [["a"]], "body": ""}}}]),
            "headers contains list with wrong number of elements",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"headers": [[1, "a"]], "body": ""}}}]),
            "header contains name element with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"headers": [["a", 1]], "body": ""}}}]),
            "header contains value element with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"headers": {"X": 1}, "body": ""}}}]),
            "headers contains 'X' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"content-filters": "x", "body": ""}}}]),
            "'http-response' contains 'content-filters' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"content-filters": [1], "body": ""}}}]),
            "content-filters contains element with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"body": 1}}}]),
            "'http-response' contains 'body' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"body": null}}}]),
            "'http-response' contains 'body' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"body-bin": 1}}}]),
            "'http-response' contains 'body-bin' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"body-bin": null, "body": "x"}}}]),
            "'http-response' contains 'body-bin' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-response": {"body-patch": {}}}}]),
            "'http-response' contains 'body-patch' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-stream": {}}}]),
            "'http-stream' does not contain 'content' or 'content-bin'",
        ),
        (
            json!([{"channel": "c", "formats": {"http-stream": {"content": 1}}}]),
            "'http-stream' contains 'content' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-stream": {"content-bin": 1}}}]),
            "'http-stream' contains 'content-bin' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"http-stream": {"content-filters": {}, "content": "x"}}}]),
            "'http-stream' contains 'content-filters' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"ws-message": {}}}]),
            "'ws-message' does not contain 'content' or 'content-bin'",
        ),
        (
            json!([{"channel": "c", "formats": {"ws-message": {"type": "text"}}}]),
            "'ws-message' does not contain 'content' or 'content-bin'",
        ),
        (
            json!([{"channel": "c", "formats": {"ws-message": {"type": "foo", "content": "x"}}}]),
            "'ws-message' contains 'type' with unknown value",
        ),
        (
            json!([{"channel": "c", "formats": {"ws-message": {"type": 1, "content": "x"}}}]),
            "'ws-message' contains 'type' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"ws-message": {"content-bin": 1}}}]),
            "'ws-message' contains 'content-bin' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"ws-message": {"content-bin": null, "content": "x"}}}]),
            "'ws-message' contains 'content-bin' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"ws-message": {"content": 1}}}]),
            "'ws-message' contains 'content' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"ws-message": {"action": "close", "code": []}}}]),
            "'ws-message' contains 'code' with wrong type",
        ),
        (
            json!([{"channel": "c", "formats": {"ws-message": {"action": "close", "code": -1}}}]),
            "'ws-message' contains 'code' with invalid value",
        ),
        (
            json!([{"channel": "c", "formats": {"ws-message": {"action": "close", "reason": 1}}}]),
            "'ws-message' contains 'reason' with wrong type",
        ),
        (
            json!([{"channel": "c", "meta": [], "http-stream": {"content": "x"}}]),
            "publish item object contains 'meta' with wrong type",
        ),
        (
            json!([{"channel": "c", "meta": null, "http-stream": {"content": "x"}}]),
            "publish item object contains 'meta' with wrong type",
        ),
        (
            json!([{"channel": "c", "meta": {"a": 1}, "http-stream": {"content": "x"}}]),
            "'meta' contains 'a' with wrong type",
        ),
        (
            json!([{"channel": "c", "size": [], "http-stream": {"content": "x"}}]),
            "publish item object contains 'size' with wrong type",
        ),
        (
            json!([{"channel": "c", "size": -1, "http-stream": {"content": "x"}}]),
            "publish item object contains 'size' with invalid value",
        ),
        (
            json!([{"channel": "c", "no-seq": "true", "http-stream": {"content": "x"}}]),
            "publish item object contains 'no-seq' with wrong type",
        ),
        (
            json!([{"channel": "c", "no-seq": 1, "http-stream": {"content": "x"}}]),
            "publish item object contains 'no-seq' with wrong type",
        ),
        // The first invalid item decides; formats are checked before meta.
        (
            json!([{"channel": "c", "http-stream": {"content": "x"}}, {"channel": "d"}]),
            "no formats specified",
        ),
        (
            json!([{"channel": "c", "formats": {"http-stream": {}, "ws-message": {"type": "zzz"}}}]),
            "'http-stream' does not contain 'content' or 'content-bin'",
        ),
        (
            json!([{"channel": "c", "meta": {"a": 1}, "formats": {"http-stream": {}}}]),
            "'http-stream' does not contain 'content' or 'content-bin'",
        ),
    ];
    for (items, message) in cases {
        assert_eq!(
            items_err(items.clone()),
            format!("Invalid format: {message}"),
            "{items}"
        );
    }
    // Observed: numeric-string sizes are accepted ("abc" → 0).
    assert_eq!(
        one(json!({"channel": "c", "size": "abc", "http-stream": {"content": "x"}})).size,
        Some(0)
    );
    assert_eq!(
        parse_publish_body(
            br#"{"items":[{"channel":"c","formats":{"http-stream":{"action":"nope"}}}]}"#
        ),
        Err(PublishError::Item(ItemError::UnknownAction("nope".into())))
    );
}

#[test]
fn tnetstring_items() {
    let item = T::map([
        ("channel", T::bytes("c")),
        ("id", T::Null),
        (
            "formats",
            T::map([
                (
                    "http-response",
                    T::map([
                        ("code", T::Int(202)),
                        (
                            "headers",
                            T::List(vec![T::List(vec![T::bytes("X"), T::bytes("y")])]),
                        ),
                        ("body-bin", T::bytes("ignored")),
                        (
                            "body-patch",
                            T::List(vec![T::map([
                                ("op", T::bytes("add")),
                                ("value", T::Int(1)),
                            ])]),
                        ),
                    ]),
                ),
                (
                    "http-stream",
                    T::map([("content", T::bytes(&b"\xff\x00"[..]))]),
                ),
                (
                    "ws-message",
                    T::map([("content-bin", T::bytes(&b"\x01"[..]))]),
                ),
            ]),
        ),
        ("size", T::bytes("12")),
    ]);
    let parsed = parse_item_tnet(&item, None).unwrap();
    assert_eq!(parsed.channel, "c");
    // A tnetstring null is Qt's invalid variant: an absent optional field.
    assert_eq!(parsed.id, None);
    assert_eq!(parsed.size, Some(12));
    assert_eq!(
        parsed.formats.http_response,
        Some(HttpResponseFormat::Send(HttpResponseSend {
            code: 202,
            reason: "Accepted".into(),
            headers: vec![Header::new("X", "y")],
            body: ResponseBody::Patch(vec![json!({"op": "add", "value": 1})]),
            content_filters: None,
        }))
    );
    assert_eq!(
        parsed.formats.http_stream,
        Some(HttpStreamFormat::Send(HttpStreamSend {
            content: Bytes::from_static(b"\xff\x00"),
            content_filters: None,
        }))
    );
    assert_eq!(
        parsed.formats.ws_message,
        Some(WsMessageFormat::Send(WsMessageSend {
            kind: WsMessageType::Binary,
            content: Bytes::from_static(b"\x01"),
            content_filters: None,
        }))
    );

    // Tnetstring has no *-bin for http formats, and the messages say so.
    let no_body = T::map([
        ("channel", T::bytes("c")),
        ("http-response", T::map([("body-bin", T::bytes("x"))])),
    ]);
    assert_eq!(
        parse_item_tnet(&no_body, None).unwrap_err().to_string(),
        "'http-response' does not contain 'body' or 'body-patch'"
    );
    let no_content = T::map([("channel", T::bytes("c")), ("http-stream", T::Map(vec![]))]);
    assert_eq!(
        parse_item_tnet(&no_content, None).unwrap_err().to_string(),
        "'http-stream' does not contain 'content'"
    );
    let ws_bin_text = T::map([
        ("channel", T::bytes("c")),
        ("ws-message", T::map([("content-bin", T::Int(1))])),
    ]);
    assert_eq!(
        parse_item_tnet(&ws_bin_text, None).unwrap_err().to_string(),
        "'ws-message' contains 'content-bin' with wrong type"
    );
    // A null top-level format is skipped; a null inside `formats` is not an object.
    let null_top = T::map([("channel", T::bytes("c")), ("http-stream", T::Null)]);
    assert_eq!(parse_item_tnet(&null_top, None), Err(ItemError::NoFormats));
    let null_in_formats = T::map([
        ("channel", T::bytes("c")),
        ("formats", T::map([("http-stream", T::Null)])),
    ]);
    assert_eq!(
        parse_item_tnet(&null_in_formats, None)
            .unwrap_err()
            .to_string(),
        "'http-stream' is not an object"
    );
}

#[test]
fn frames() {
    let json_frame = br#"J{"channel":"c","formats":{"http-stream":{"content":"hi\n"}}}"#;
    assert_eq!(parse_frame(json_frame, None).unwrap().channel, "c");
    // The SUB channel frame overrides the item's channel, and makes it optional.
    assert_eq!(parse_frame(json_frame, Some("sub")).unwrap().channel, "sub");
    assert_eq!(parse_frame(json_frame, Some("")).unwrap().channel, "c");
    assert_eq!(
        parse_frame(
            br#"J{"formats":{"http-stream":{"content":"x"}}}"#,
            Some("sub")
        )
        .unwrap()
        .channel,
        "sub"
    );

    let item = T::map([
        ("channel", T::bytes("t")),
        ("http-stream", T::map([("content", T::bytes("x"))])),
    ]);
    let bare = item.to_vec();
    let mut prefixed = b"T".to_vec();
    prefixed.extend_from_slice(&bare);
    assert_eq!(parse_frame(&bare, None).unwrap().channel, "t");
    assert_eq!(parse_frame(&prefixed, None).unwrap().channel, "t");

    assert_eq!(parse_frame(b"J{x", None), Err(FrameError::Json));
    assert_eq!(parse_frame(b"J5", None), Err(FrameError::Json));
    assert_eq!(parse_frame(b"J[]", None), Err(FrameError::JsonNotObject));
    assert!(matches!(
        parse_frame(b"Tjunk", None),
        Err(FrameError::Tnetstring(_))
    ));
    assert!(matches!(
        parse_frame(b"", None),
        Err(FrameError::Tnetstring(_))
    ));
    assert_eq!(
        parse_frame(b"J{}", None).unwrap_err().to_string(),
        "received message with invalid format: publish item object does not contain 'channel'"
    );
    assert_eq!(
        parse_frame(b"1:x,", None).unwrap_err().to_string(),
        "received message with invalid format: publish item object is not an object"
    );
    assert_eq!(
        parse_frame(b"Tjunk", None).unwrap_err().to_string(),
        "received message with invalid format (tnetstring parse failed)"
    );
}

#[test]
fn command_socket_items() {
    let args = T::map([(
        "items",
        T::List(vec![T::map([
            ("channel", T::bytes("c")),
            ("ws-message", T::map([("content", T::bytes("m"))])),
        ])]),
    )]);
    assert_eq!(parse_command_items(&args).unwrap().len(), 1);
    assert_eq!(
        parse_command_items(&T::map([("x", T::Null)]))
            .unwrap_err()
            .to_string(),
        "Invalid format: object does not contain 'items'"
    );
    assert_eq!(
        parse_command_items(&T::map([("items", T::bytes("x"))]))
            .unwrap_err()
            .to_string(),
        "Invalid format: object contains 'items' with wrong type"
    );
    assert_eq!(
        parse_command_items(&T::map([(
            "items",
            T::List(vec![T::map([("channel", T::bytes("c"))])])
        )]))
        .unwrap_err()
        .to_string(),
        "Invalid format: no formats specified"
    );
}

#[test]
fn merged_response_headers() {
    let held = vec![
        Header::new("Content-Type", "text/plain"),
        Header::new("Content-Length", "5"),
        Header::new("X-Foo", "old1"),
        Header::new("x-foo", "old2"),
        Header::new("X-Keep", "k"),
        Header::new("X-Hide", "h"),
    ];
    let publish = vec![
        Header::new("X-Foo", "bar"),
        Header::new("Grip-Expose-Headers", "x-hide, X-New"),
        Header::new("X-New", "n"),
    ];
    assert_eq!(
        merge_response_headers(&held, &publish),
        vec![
            Header::new("Content-Type", "text/plain"),
            Header::new("X-Keep", "k"),
            Header::new("X-Foo", "bar"),
        ]
    );
}
