//! Instruct parsing tests. Error texts marked "observed" were produced by Pushpin 1.36 on a
//! `debug` route (`Failed to parse accept instructions: <text>`).

use bytes::Bytes;
use serde_json::json;

use super::*;
use crate::internal::Header;

const URI: &str = "http://example.com/stream/1?x=y";

fn hdrs(pairs: &[(&str, &str)]) -> Vec<Header> {
    pairs
        .iter()
        .map(|(n, v)| Header::new(*n, v.as_bytes().to_vec()))
        .collect()
}

fn parse_full(code: u16, headers: &[(&str, &str)], body: &str) -> Result<Instruct, InstructError> {
    let headers = hdrs(headers);
    Instruct::parse(
        &OriginResponse {
            code,
            reason: "Origin Reason",
            headers: &headers,
            body: body.as_bytes(),
        },
        URI,
    )
}

fn parse(headers: &[(&str, &str)]) -> Result<Instruct, InstructError> {
    parse_full(200, headers, "body\n")
}

fn err(headers: &[(&str, &str)]) -> String {
    parse(headers).unwrap_err().to_string()
}

fn json_instruct(value: serde_json::Value) -> Result<Instruct, InstructError> {
    parse_full(
        200,
        &[
            ("Content-Type", "application/grip-instruct"),
            ("X-Orig", "1"),
        ],
        &value.to_string(),
    )
}

fn json_err(value: serde_json::Value) -> String {
    json_instruct(value).unwrap_err().to_string()
}

fn names(headers: &[Header]) -> Vec<String> {
    headers
        .iter()
        .map(|h| format!("{}: {}", h.0, String::from_utf8_lossy(&h.1)))
        .collect()
}

#[test]
fn detection() {
    assert!(is_grip_response(&hdrs(&[(
        "Content-Type",
        "application/grip-instruct"
    )])));
    assert!(is_grip_response(&hdrs(&[(
        "Content-Type",
        " application/grip-instruct ; charset=utf-8"
    )])));
    assert!(is_grip_response(&hdrs(&[("grip-foo", "x")])));
    assert!(is_grip_response(&hdrs(&[
        ("X", "y"),
        ("GRIP-HOLD", "stream")
    ])));
    assert!(!is_grip_response(&hdrs(&[("X-Grip-Hold", "stream")])));
    assert!(!is_grip_response(&hdrs(&[("Grip", "x")])));
    // Observed: the media type comparison is case-sensitive and only the first Content-Type counts.
    assert!(!is_grip_response(&hdrs(&[(
        "Content-Type",
        "Application/Grip-Instruct"
    )])));
    assert!(!is_grip_response(&hdrs(&[
        ("Content-Type", "text/plain"),
        ("Content-Type", "application/grip-instruct"),
    ])));
}

#[test]
fn defaults_without_hold() {
    let i = parse(&[("Grip-Set-Meta", "user=alice"), ("X-Foo", "y")]).unwrap();
    assert_eq!(i.hold, None);
    assert!(i.channels.is_empty());
    assert_eq!(i.timeout, 55);
    assert_eq!(i.keep_alive, None);
    assert_eq!(i.next_link, None);
    assert_eq!(i.gone_link, None);
    assert_eq!(i.meta.get("user").map(String::as_str), Some("alice"));
    assert_eq!(i.response.code, 200);
    assert_eq!(i.response.reason, "Origin Reason");
    assert_eq!(names(&i.response.headers), ["X-Foo: y"]);
    assert_eq!(i.response.body, Bytes::from_static(b"body\n"));
}

#[test]
fn hold_modes() {
    assert_eq!(
        parse(&[("Grip-Hold", "response")]).unwrap().hold,
        Some(HoldMode::Response)
    );
    assert_eq!(
        parse(&[("grip-hold", "stream")]).unwrap().hold,
        Some(HoldMode::Stream)
    );
    // Observed: the value is case-sensitive.
    assert_eq!(
        err(&[("Grip-Hold", "Stream")]),
        "Grip-Hold must be set to either 'response' or 'stream'"
    );
    assert_eq!(
        err(&[("Grip-Hold", "")]),
        "Grip-Hold must be set to either 'response' or 'stream'"
    );
    // Only the first occurrence counts.
    assert_eq!(
        parse(&[("Grip-Hold", "stream"), ("Grip-Hold", "bogus")])
            .unwrap()
            .hold,
        Some(HoldMode::Stream)
    );
}

#[test]
fn channels_with_params() {
    let i = parse(&[
        ("Grip-Hold", "stream"),
        (
            "Grip-Channel",
            r#"a; filter="x, y", b ; prev-id="p\"q"; filter=skip-self; Filter=ignored"#,
        ),
        ("grip-channel", "c; prev-id=; filter"),
        ("Grip-Channel", r#"dropped; filter="unterminated"#),
        ("Grip-Link", "</n>; rel=next"),
    ])
    .unwrap();
    assert_eq!(
        i.channels,
        vec![
            Channel {
                name: "a".into(),
                prev_id: None,
                filters: vec!["x, y".into()],
            },
            Channel {
                name: "b".into(),
                prev_id: Some("p\"q".into()),
                filters: vec!["skip-self".into()],
            },
            Channel {
                name: "c".into(),
                prev_id: Some(String::new()),
                filters: vec![String::new()],
            },
        ]
    );
}

#[test]
fn many_filters_are_accepted_like_1_36() {
    // Observed: 1.36 accepts six filters (HEAD would refuse more than five).
    let i = parse(&[(
        "Grip-Channel",
        "a; filter=f1; filter=f2; filter=f3; filter=f4; filter=f5; filter=f6",
    )])
    .unwrap();
    assert_eq!(i.channels[0].filters.len(), 6);
}

#[test]
fn empty_channel_names_are_errors() {
    // Holdfast choice (reference §4.2); 1.36 silently subscribes to "".
    assert_eq!(
        err(&[("Grip-Channel", "a,,b")]),
        "failed to parse Grip-Channel"
    );
    assert_eq!(
        err(&[("Grip-Channel", ";x")]),
        "failed to parse Grip-Channel"
    );
    // An empty header value or a trailing comma adds no element at all.
    assert!(parse(&[("Grip-Channel", "")]).unwrap().channels.is_empty());
    assert_eq!(parse(&[("Grip-Channel", "a,")]).unwrap().channels.len(), 1);
    // The JSON instruct refuses an empty name too (found by the grip_instruct fuzz target).
    assert_eq!(
        json_err(serde_json::json!({
            "hold": {"mode": "stream", "channels": [{"name": "a"}, {"name": ""}]}
        })),
        "channel contains 'name' with invalid value"
    );
}

#[test]
fn timeouts() {
    let t = |v: &str| parse(&[("Grip-Hold", "response"), ("Grip-Timeout", v)]);
    assert_eq!(t("120").unwrap().timeout, 120);
    assert_eq!(t("+6").unwrap().timeout, 6);
    assert_eq!(t("0").unwrap().timeout, 5);
    assert_eq!(t("4").unwrap().timeout, 5);
    // All observed.
    for bad in ["5x", "0x10", "99999999999", "", "1.5"] {
        assert_eq!(
            t(bad).unwrap_err().to_string(),
            "failed to parse Grip-Timeout",
            "{bad:?}"
        );
    }
    assert_eq!(
        t("-1").unwrap_err().to_string(),
        "Grip-Timeout has invalid value"
    );
}

#[test]
fn keep_alive_formats_and_modes() {
    let ka =
        |v: &str| parse(&[("Grip-Hold", "stream"), ("Grip-Keep-Alive", v)]).map(|i| i.keep_alive);
    assert_eq!(
        ka("  x, y  ").unwrap(),
        Some(KeepAlive {
            data: Bytes::from_static(b"x, y"),
            timeout: 55,
            mode: KeepAliveMode::Idle,
        })
    );
    assert_eq!(
        ka(r":\n\n; format=cstring; timeout=20; mode=interval").unwrap(),
        Some(KeepAlive {
            data: Bytes::from_static(b":\n\n"),
            timeout: 20,
            mode: KeepAliveMode::Interval,
        })
    );
    // Observed: unknown escapes vanish, \x takes two hex digits of either case.
    assert_eq!(
        ka(r"a\qb; format=cstring").unwrap().unwrap().data,
        Bytes::from_static(b"ab")
    );
    assert_eq!(
        ka(r"\x4A\x4a\x3b\\\r; format=cstring")
            .unwrap()
            .unwrap()
            .data,
        Bytes::from_static(b"JJ;\\\r")
    );
    assert_eq!(
        ka("aGk=; format=base64; timeout=0")
            .unwrap()
            .unwrap()
            .timeout,
        1
    );
    assert_eq!(
        ka("aGk=; format=base64").unwrap().unwrap().data,
        Bytes::from_static(b"hi")
    );
    assert_eq!(ka("!!!; format=base64").unwrap(), None);
    assert_eq!(
        ka("x; format=raw; mode=idle").unwrap().unwrap().mode,
        KeepAliveMode::Idle
    );
    // Observed: broken quoting makes the header read as absent.
    assert_eq!(ka(r#"ka; format="cstring; timeout=1"#).unwrap(), None);

    let e = |v: &str| ka(v).unwrap_err().to_string();
    assert_eq!(e("; timeout=5"), "Grip-Keep-Alive cannot be empty");
    assert_eq!(e("x; mode=foo"), "no such Grip-Keep-Alive mode 'foo'");
    assert_eq!(e("x; format=hex"), "no such Grip-Keep-Alive format 'hex'");
    assert_eq!(
        e(r"x\; format=cstring"),
        "failed to parse Grip-Keep-Alive cstring format"
    );
    assert_eq!(
        e(r"x\xZZ; format=cstring"),
        "failed to parse Grip-Keep-Alive cstring format"
    );
    assert_eq!(
        e(r"ab\x4; format=cstring"),
        "failed to parse Grip-Keep-Alive cstring format"
    );
    // Observed: a cstring that decodes to nothing is a parse error too.
    assert_eq!(
        e(r"\q; format=cstring"),
        "failed to parse Grip-Keep-Alive cstring format"
    );
    assert_eq!(
        e("x; timeout=abc"),
        "failed to parse Grip-Keep-Alive timeout value"
    );
    assert_eq!(
        e("x; timeout"),
        "failed to parse Grip-Keep-Alive timeout value"
    );
    assert_eq!(
        e("x; timeout=-3"),
        "Grip-Keep-Alive timeout has invalid value"
    );
}

#[test]
fn cstring_decoding() {
    assert_eq!(decode_cstring(br"a\\b\r\n"), Some(b"a\\b\r\n".to_vec()));
    assert_eq!(decode_cstring(br"\x00\xff"), Some(vec![0, 255]));
    assert_eq!(decode_cstring(br"\t"), Some(vec![]));
    assert_eq!(decode_cstring(br"\"), None);
    assert_eq!(decode_cstring(br"\x4"), None);
    assert_eq!(decode_cstring(br"\xg0"), None);
}

#[test]
fn set_meta() {
    let i = parse(&[
        ("Grip-Set-Meta", r#"user=alice, id_format="%(c)s, x", flag"#),
        ("Grip-Set-Meta", "user=bob; ignored=1"),
    ])
    .unwrap();
    assert_eq!(i.meta.get("user").map(String::as_str), Some("bob"));
    assert_eq!(
        i.meta.get("id_format").map(String::as_str),
        Some("%(c)s, x")
    );
    assert_eq!(i.meta.get("flag").map(String::as_str), Some(""));
    assert_eq!(i.meta.get("ignored"), None);
    // Observed.
    assert_eq!(
        err(&[("Grip-Set-Meta", "a=b,,c=d")]),
        "Grip-Set-Meta cannot be empty"
    );
}

#[test]
fn status_override() {
    let s = |v: &str| parse(&[("Grip-Status", v)]).map(|i| (i.response.code, i.response.reason));
    // All observed on 1.36.
    assert_eq!(s("299").unwrap(), (299, "Undefined Reason".into()));
    assert_eq!(s("404").unwrap(), (404, "Not Found".into()));
    assert_eq!(s("299 Custom Thing").unwrap(), (299, "Custom Thing".into()));
    assert_eq!(s("200  Two Spaces").unwrap(), (200, " Two Spaces".into()));
    assert_eq!(s("+201 P").unwrap(), (201, "P".into()));
    assert_eq!(s("0").unwrap(), (0, "Undefined Reason".into()));
    assert_eq!(
        parse(&[("Grip-Status", "202 First"), ("Grip-Status", "203 Second")])
            .unwrap()
            .response
            .code,
        202
    );
    assert_eq!(
        s("abc").unwrap_err().to_string(),
        "Grip-Status contains invalid status code"
    );
    assert_eq!(
        s("1000 X").unwrap_err().to_string(),
        "Grip-Status contains invalid status code"
    );
    assert_eq!(
        s("-1").unwrap_err().to_string(),
        "Grip-Status contains invalid status code"
    );
    // An empty Grip-Status is ignored.
    assert_eq!(s("").unwrap(), (200, "Origin Reason".into()));
}

#[test]
fn links() {
    let l = |v: &str| parse(&[("Grip-Hold", "stream"), ("Grip-Link", v)]);
    let i = l("</stream/2?a=b>; rel=next").unwrap();
    assert_eq!(
        i.next_link,
        Some(NextLink {
            url: "http://example.com/stream/2?a=b".into(),
            timeout: 120,
        })
    );
    let i = l("<3>; rel=next; timeout=30, <http://other/gone>; rel=gone, <x>; rel=prev").unwrap();
    assert_eq!(i.next_link.unwrap().url, "http://example.com/stream/3");
    assert_eq!(i.gone_link.as_deref(), Some("http://other/gone"));
    // Last next link wins; unknown relations and links without parameters are ignored,
    // whatever they contain, and `rel` is case-sensitive (all observed).
    let i = l(concat!(
        "</a>; rel=next, </b>; rel=next; timeout=7, <http://[bad>, ",
        "<http://a:b/>; rel=prev, /x; rel=prev, /y; foo=bar, <http://a:b/>; rel=NEXT"
    ))
    .unwrap();
    assert_eq!(
        i.next_link,
        Some(NextLink {
            url: "http://example.com/b".into(),
            timeout: 7
        })
    );

    let e = |v: &str| l(v).unwrap_err().to_string();
    // All observed.
    assert_eq!(e("/x; rel=next"), "failed to parse Grip-Link value");
    assert_eq!(e("<>; rel=next"), "failed to parse Grip-Link value");
    assert_eq!(
        e("<http://a:b/>; rel=next"),
        "Grip-Link contains invalid link"
    );
    assert_eq!(
        e("<http://[bad/>; rel=next"),
        "Grip-Link contains invalid link"
    );
    assert_eq!(
        e("</x>; rel=next; timeout=q"),
        "failed to parse Grip-Link timeout value"
    );
    assert_eq!(
        e("</x>; rel=next; timeout=-1"),
        "Grip-Link timeout has invalid value"
    );
    assert_eq!(e("<:x>; rel=gone"), "Grip-Link contains invalid link");
}

#[test]
fn prev_id_needs_next_link_for_streams() {
    let i = parse(&[("Grip-Hold", "stream"), ("Grip-Channel", "a, b; prev-id=1")]).unwrap();
    // Observed text (sent after the stream started).
    assert_eq!(
        i.check_prev_ids().unwrap_err().to_string(),
        "channel 'b' specifies prev-id, but no next link found"
    );
    let ok = parse(&[
        ("Grip-Hold", "stream"),
        ("Grip-Channel", "a; prev-id=1"),
        ("Grip-Link", "</n>; rel=next"),
    ])
    .unwrap();
    assert_eq!(ok.check_prev_ids(), Ok(()));
    let response_hold =
        parse(&[("Grip-Hold", "response"), ("Grip-Channel", "a; prev-id=1")]).unwrap();
    assert_eq!(response_hold.check_prev_ids(), Ok(()));
}

#[test]
fn response_headers_are_filtered() {
    let i = parse(&[
        ("Grip-Hold", "response"),
        ("grip-foo", "x"),
        ("X-A", "1"),
        ("Connection", "keep-alive"),
        ("Keep-Alive", "timeout=5"),
        ("Content-Encoding", "identity"),
        ("Transfer-Encoding", "chunked"),
        ("content-length", "5"),
        ("Content-Type", "text/plain"),
    ])
    .unwrap();
    assert_eq!(
        names(&i.response.headers),
        ["X-A: 1", "Content-Type: text/plain"]
    );

    // Observed: Grip-Expose-Headers keeps only the listed headers.
    let i = parse(&[
        ("Grip-Expose-Headers", "x-a, X-C"),
        ("X-A", "1"),
        ("X-B", "2"),
        ("X-C", "3"),
        ("Content-Type", "text/plain"),
    ])
    .unwrap();
    assert_eq!(names(&i.response.headers), ["X-A: 1", "X-C: 3"]);
    assert_eq!(i.expose_headers, ["x-a", "X-C"]);
}

#[test]
fn session_id() {
    let i = parse(&[("Grip-Session-Id", "s1, s2"), ("Grip-Session-Id", "s3")]).unwrap();
    assert_eq!(i.session_id.as_deref(), Some("s1, s2"));
}

#[test]
fn error_order_follows_pushpin() {
    // Grip-Hold is checked before Grip-Timeout, which is checked before Grip-Status.
    assert_eq!(
        err(&[
            ("Grip-Status", "x"),
            ("Grip-Timeout", "x"),
            ("Grip-Hold", "x")
        ]),
        "Grip-Hold must be set to either 'response' or 'stream'"
    );
    assert_eq!(
        err(&[("Grip-Status", "x"), ("Grip-Timeout", "x")]),
        "failed to parse Grip-Timeout"
    );
}

#[test]
fn json_instruct_overrides_headers() {
    let headers = [
        ("Content-Type", "application/grip-instruct"),
        ("Grip-Channel", "from-header; prev-id=9"),
        ("Grip-Keep-Alive", "hdr; mode=idle"),
        ("Grip-Status", "299 Hdr"),
        ("Grip-Set-Meta", "a=1, b=2"),
        ("X-Orig", "1"),
    ];
    let body = json!({
        "hold": {
            "mode": "stream",
            "channels": [{"name": "c", "prev-id": "p", "filters": ["skip-self", "build-id"]}],
            "timeout": 7,
            "keep-alive": {"content": "ka\n", "timeout": 10},
            "meta": {"b": "3", "user": "alice"}
        },
        "response": {
            "headers": [["X-A", "b"], ["Grip-Leak", "no"], ["Content-Length", "99"]],
            "body": "json\n"
        }
    });
    let i = parse_full(200, &headers, &body.to_string()).unwrap();
    assert_eq!(i.hold, Some(HoldMode::Stream));
    assert_eq!(i.channels.len(), 2);
    assert_eq!(i.channels[0].name, "from-header");
    assert_eq!(
        i.channels[1],
        Channel {
            name: "c".into(),
            prev_id: Some("p".into()),
            filters: vec!["skip-self".into(), "build-id".into()],
        }
    );
    assert_eq!(i.timeout, 7);
    assert_eq!(
        i.keep_alive,
        Some(KeepAlive {
            data: Bytes::from_static(b"ka\n"),
            timeout: 10,
            mode: KeepAliveMode::Idle,
        })
    );
    assert_eq!(i.meta.len(), 3);
    assert_eq!(i.meta["b"], "3");
    // Observed: Grip-Status survives when the JSON gives no code.
    assert_eq!((i.response.code, i.response.reason.as_str()), (299, "Hdr"));
    assert_eq!(names(&i.response.headers), ["X-A: b"]);
    assert_eq!(i.response.body, Bytes::from_static(b"json\n"));
}

#[test]
fn json_instruct_observed_responses() {
    // {"hold":{…,"timeout":5},"response":{"code":202,"headers":{"X-A":"b"},"body":"json timeout\n"}}
    let i = json_instruct(json!({
        "hold": {"channels": [{"name": "x"}], "timeout": 5},
        "response": {"code": 202, "headers": {"X-A": "b"}, "body": "json timeout\n"}
    }))
    .unwrap();
    assert_eq!(i.hold, Some(HoldMode::Response));
    assert_eq!(
        (i.response.code, i.response.reason.as_str()),
        (202, "Accepted")
    );
    assert_eq!(names(&i.response.headers), ["X-A: b"]);
    assert_eq!(i.response.body, Bytes::from_static(b"json timeout\n"));

    let code = |v: serde_json::Value| {
        json_instruct(json!({"response": {"code": v, "body": "b\n"}}))
            .map(|i| (i.response.code, i.response.reason))
    };
    assert_eq!(code(json!("201")).unwrap(), (201, "Created".into()));
    assert_eq!(code(json!(" 204 ")).unwrap(), (204, "No Content".into()));
    assert_eq!(code(json!("abc")).unwrap(), (0, "Undefined Reason".into()));
    assert_eq!(code(json!(201.6)).unwrap(), (202, "Accepted".into()));
    assert_eq!(
        code(json!(202.5)).unwrap(),
        (203, "Non-Authoritative Information".into())
    );
    assert_eq!(code(json!(-0.4)).unwrap(), (0, "Undefined Reason".into()));
    assert_eq!(code(json!(true)).unwrap(), (1, "Undefined Reason".into()));

    let r = |v: serde_json::Value| {
        json_instruct(v).map(|i| (i.response.code, i.response.reason, i.response.body))
    };
    assert_eq!(
        r(json!({"response": {"reason": "Fine", "body": "b\n"}})).unwrap(),
        (200, "Fine".into(), Bytes::from_static(b"b\n"))
    );
    assert_eq!(
        r(json!({"response": {"code": 203, "reason": "", "body": "b\n"}}))
            .unwrap()
            .1,
        "Non-Authoritative Information"
    );
    // body-bin wins over body, and is decoded leniently.
    assert_eq!(
        r(json!({"response": {"body": "text\n", "body-bin": "YmluCg=="}}))
            .unwrap()
            .2,
        Bytes::from_static(b"bin\n")
    );
    assert_eq!(
        r(json!({"response": {"body-bin": "aGk=!!x"}})).unwrap().2,
        Bytes::from_static(b"hi1")
    );
    // Headers and body are cleared even without "response"; the origin reason stays.
    let i = json_instruct(json!({})).unwrap();
    assert!(i.response.headers.is_empty());
    assert!(i.response.body.is_empty());
    assert_eq!(i.response.reason, "Origin Reason");

    // Object headers come out sorted by name, like Qt's QVariantMap (observed A before B).
    let i = json_instruct(json!({"response": {"headers": {"B": "2", "A": "1"}, "body": "b\n"}}))
        .unwrap();
    assert_eq!(names(&i.response.headers), ["A: 1", "B: 2"]);
}

#[test]
fn json_keep_alive_without_header_is_interval() {
    let i = json_instruct(json!({
        "hold": {"mode": "stream", "channels": [{"name": "a"}], "keep-alive": {"content-bin": "a2EK"}}
    }))
    .unwrap();
    assert_eq!(
        i.keep_alive,
        Some(KeepAlive {
            data: Bytes::from_static(b"ka\n"),
            timeout: 55,
            mode: KeepAliveMode::Interval,
        })
    );
    let i = json_instruct(json!({
        "hold": {"mode": "stream", "channels": [], "keep-alive": {"content": "x", "timeout": 0}}
    }))
    .unwrap();
    assert_eq!(i.keep_alive.unwrap().timeout, 1);
    let i = json_instruct(json!({"hold": {"channels": [], "keep-alive": {}}})).unwrap();
    assert_eq!(i.keep_alive, None);
}

#[test]
fn json_instruct_errors() {
    // Every text below was observed on 1.36.
    let status = parse_full(201, &[("Content-Type", "application/grip-instruct")], "{}");
    assert_eq!(
        status.unwrap_err().to_string(),
        "response code for application/grip-instruct content must be 200"
    );
    let with_param = parse_full(
        201,
        &[("Content-Type", "application/grip-instruct; charset=utf-8")],
        "{}",
    );
    assert_eq!(with_param.unwrap_err(), InstructError::InstructCode);
    for body in ["{x", "5", "\"x\"", "null", ""] {
        assert_eq!(
            parse_full(200, &[("Content-Type", "application/grip-instruct")], body)
                .unwrap_err()
                .to_string(),
            "failed to parse application/grip-instruct content as JSON",
            "{body:?}"
        );
    }
    let cases = [
        (json!([]), "instruct must be an object"),
        (
            json!({"hold": 1}),
            "instruct contains 'hold' with wrong type",
        ),
        (
            json!({"hold": null}),
            "instruct contains 'hold' with wrong type",
        ),
        (json!({"response": 1}), ""),
        (json!({"hold": {}}), "hold does not contain 'channels'"),
        (
            json!({"hold": {"channels": {}}}),
            "hold contains 'channels' with wrong type",
        ),
        (
            json!({"hold": {"channels": [1]}}),
            "channel is not an object",
        ),
        (
            json!({"hold": {"mode": "x", "channels": []}}),
            "hold 'mode' must be set to either 'response' or 'stream'",
        ),
        (
            json!({"hold": {"mode": null, "channels": []}}),
            "hold contains 'mode' with wrong type",
        ),
        (
            json!({"hold": {"mode": 1, "channels": []}}),
            "hold contains 'mode' with wrong type",
        ),
        (
            json!({"hold": {"channels": [{}]}}),
            "channel does not contain 'name'",
        ),
        (
            json!({"hold": {"channels": [{"name": null}]}}),
            "channel contains 'name' with wrong type",
        ),
        (
            json!({"hold": {"channels": [{"name": 1}]}}),
            "channel contains 'name' with wrong type",
        ),
        (
            json!({"hold": {"channels": [{"name": "a", "prev-id": 1}]}}),
            "channel contains 'prev-id' with wrong type",
        ),
        (
            json!({"hold": {"channels": [{"name": "a", "filters": "x"}]}}),
            "channel contains 'filters' with wrong type",
        ),
        (
            json!({"hold": {"channels": [{"name": "a", "filters": ["x", 1]}]}}),
            "filters contains value with wrong type",
        ),
        (
            json!({"hold": {"channels": [], "timeout": []}}),
            "hold contains 'timeout' with wrong type",
        ),
        (
            json!({"hold": {"channels": [], "timeout": null}}),
            "hold contains 'timeout' with wrong type",
        ),
        (
            json!({"hold": {"channels": [], "timeout": -1}}),
            "hold contains 'timeout' with invalid value",
        ),
        (
            json!({"hold": {"channels": [], "keep-alive": 5}}),
            "hold contains 'keep-alive' with wrong type",
        ),
        (
            json!({"hold": {"channels": [], "keep-alive": null}}),
            "hold contains 'keep-alive' with wrong type",
        ),
        (
            json!({"hold": {"channels": [], "keep-alive": {"content": 5}}}),
            "keep-alive contains 'content' with wrong type",
        ),
        (
            json!({"hold": {"channels": [], "keep-alive": {"content-bin": 5}}}),
            "keep-alive contains 'content-bin' with wrong type",
        ),
        (
            json!({"hold": {"channels": [], "keep-alive": {"content": "x", "timeout": []}}}),
            "keep-alive contains 'timeout' with wrong type",
        ),
        (
            json!({"hold": {"channels": [], "keep-alive": {"content": "x", "timeout": -2}}}),
            "keep-alive contains 'timeout' with invalid value",
        ),
        (
            json!({"hold": {"channels": [], "meta": 5}}),
            "hold contains 'meta' with wrong type",
        ),
        (
            json!({"hold": {"channels": [], "meta": {"u": 5}}}),
            "'meta' contains 'u' with wrong type",
        ),
        (
            json!({"hold": {"channels": [], "meta": {"u": null}}}),
            "'meta' contains 'u' with wrong type",
        ),
        (
            json!({"response": {"code": null}}),
            "response contains 'code' with wrong type",
        ),
        (
            json!({"response": {"code": [1]}}),
            "response contains 'code' with wrong type",
        ),
        (
            json!({"response": {"code": {}}}),
            "response contains 'code' with wrong type",
        ),
        (
            json!({"response": {"code": -1}}),
            "response contains 'code' with invalid value",
        ),
        (
            json!({"response": {"code": 1000}}),
            "response contains 'code' with invalid value",
        ),
        (
            json!({"response": {"reason": null}}),
            "response contains 'reason' with wrong type",
        ),
        (
            json!({"response": {"reason": 5}}),
            "response contains 'reason' with wrong type",
        ),
        (
            json!({"response": {"headers": [5]}}),
            "headers contains element with wrong type",
        ),
        (
            json!({"response": {"headers": [["a", "b", "c"]]}}),
            "headers contains list with wrong number of elements",
        ),
        (
            json!({"response": {"headers": [[1, "b"]]}}),
            "header contains name element with wrong type",
        ),
        (
            json!({"response": {"headers": [["a", 2]]}}),
            "header contains value element with wrong type",
        ),
        (
            json!({"response": {"headers": {"a": 2}}}),
            "headers contains 'a' with wrong type",
        ),
        (
            json!({"response": {"headers": "x"}}),
            "response contains 'headers' with wrong type",
        ),
        (
            json!({"response": {"headers": null}}),
            "response contains 'headers' with wrong type",
        ),
        (
            json!({"response": {"body": null}}),
            "response contains 'body' with wrong type",
        ),
        (
            json!({"response": {"body": 5}}),
            "response contains 'body' with wrong type",
        ),
        (
            json!({"response": {"body-bin": 5}}),
            "response contains 'body-bin' with wrong type",
        ),
        (
            json!({"response": {"body-bin": null, "body": "zz"}}),
            "response contains 'body-bin' with wrong type",
        ),
    ];
    for (body, message) in cases {
        assert_eq!(json_err(body.clone()), message, "{body}");
    }
    assert_eq!(
        json_instruct(json!({"response": 1})).unwrap_err(),
        InstructError::ResponseNotObject
    );
}
