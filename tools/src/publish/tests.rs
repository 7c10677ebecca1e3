//! Item building: every option down to the exact JSON and tnetstring bytes, which were
//! compared with what `pushpin-publish` 1.36 sends (JSON byte-identical; tnetstring identical up
//! to map key order, which is random in Pushpin).

use std::io;
use std::path::Path;

use clap::Parser;
use holdfast_proto::publish::{parse_item_json, parse_item_tnet};
use holdfast_proto::tnetstring;

use super::*;

fn args(argv: &[&str]) -> Args {
    let mut full = vec!["holdfast-publish"];
    full.extend_from_slice(argv);
    Args::try_parse_from(full).unwrap()
}

fn no_files(path: &Path) -> io::Result<Vec<u8>> {
    panic!("unexpected file read: {}", path.display())
}

fn item(argv: &[&str]) -> Item {
    build_item(&args(argv), no_files).unwrap()
}

fn err(argv: &[&str]) -> String {
    build_item(&args(argv), no_files).unwrap_err().to_string()
}

/// The compact JSON of the item, and a check that Holdfast's own parser accepts both encodings.
fn json(item: &Item) -> String {
    let value = item.to_json();
    parse_item_json(&value).unwrap();
    parse_item_tnet(&item.to_tnet().unwrap(), None).unwrap();
    value.to_string()
}

fn tnet(item: &Item) -> String {
    String::from_utf8_lossy(&item.to_tnet().unwrap().to_vec()).into_owned()
}

#[test]
fn content_goes_to_all_three_formats_with_newline_for_http() {
    let it = item(&["ch", "hello"]);
    assert_eq!(
        json(&it),
        r#"{"channel":"ch","formats":{"http-response":{"body":"hello\n","code":200},"http-stream":{"content":"hello\n"},"ws-message":{"content":"hello"}}}"#
    );
    assert_eq!(
        String::from_utf8(it.to_publish_body()).unwrap(),
        format!("{{\"items\":[{}]}}", json(&it))
    );
}

#[test]
fn no_eol_drops_the_newline() {
    assert_eq!(
        json(&item(&["--no-eol", "ch", "hello"])),
        r#"{"channel":"ch","formats":{"http-response":{"body":"hello","code":200},"http-stream":{"content":"hello"},"ws-message":{"content":"hello"}}}"#
    );
}

#[test]
fn every_item_option() {
    let it = item(&[
        "--id",
        "i1",
        "--prev-id",
        "i0",
        "--sender",
        "alice",
        "--code",
        "404",
        "-H",
        "X-A: 1",
        "-H",
        "X-B:  two ",
        "-M",
        "k=v",
        "-M",
        "sender= bob ",
        "--no-seq",
        "ch",
        "hello",
    ]);
    assert_eq!(
        json(&it),
        r#"{"channel":"ch","formats":{"http-response":{"body":"hello\n","code":404,"headers":[["X-A","1"],["X-B","two"]]},"http-stream":{"content":"hello\n"},"ws-message":{"content":"hello"}},"id":"i1","meta":{"k":"v","sender":"bob"},"no-seq":true,"prev-id":"i0"}"#
    );
    assert_eq!(
        tnet(&it),
        "273:7:channel,2:ch,7:formats,168:13:http-response,73:4:body,6:hello\n,4:code,3:404#\
         7:headers,30:10:3:X-A,1:1,]12:3:X-B,3:two,]]}11:http-stream,19:7:content,6:hello\n,}\
         10:ws-message,18:7:content,5:hello,}}2:id,2:i1,4:meta,23:1:k,1:v,6:sender,3:bob,}\
         6:no-seq,4:true!7:prev-id,2:i0,}"
    );
}

#[test]
fn sender_alone_and_empty_values_are_absent() {
    assert_eq!(
        json(&item(&["--sender", "alice", "--no-eol", "ch", "x"])),
        r#"{"channel":"ch","formats":{"http-response":{"body":"x","code":200},"http-stream":{"content":"x"},"ws-message":{"content":"x"}},"meta":{"sender":"alice"}}"#
    );
    let it = item(&["--id", "", "--prev-id", "", "--sender", "", "ch", "x"]);
    assert_eq!((&it.id, &it.prev_id, it.meta.len()), (&None, &None, 0));
}

#[test]
fn header_and_meta_split_at_first_separator_and_trim() {
    let it = item(&["-H", " Link : <a:b>; rel=x ", "-M", "a = b=c ", "ch", "x"]);
    match &it.action {
        Action::Send { headers, .. } => {
            assert_eq!(headers, &[("Link".to_string(), "<a:b>; rel=x".to_string())]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(it.meta.get("a").map(String::as_str), Some("b=c"));
}

#[test]
fn hint_goes_to_all_three_formats() {
    let it = item(&["--hint", "--id", "h", "ch"]);
    assert_eq!(
        json(&it),
        r#"{"channel":"ch","formats":{"http-response":{"action":"hint"},"http-stream":{"action":"hint"},"ws-message":{"action":"hint"}},"id":"h"}"#
    );
    assert_eq!(
        tnet(&it),
        "145:7:channel,2:ch,7:formats,106:13:http-response,16:6:action,4:hint,}\
         11:http-stream,16:6:action,4:hint,}10:ws-message,16:6:action,4:hint,}}2:id,1:h,}"
    );
    // Content, code range and headers are ignored, as in Pushpin; hint wins over close.
    assert_eq!(
        item(&["--hint", "--close", "--code", "5000", "-H", "A: b", "ch", "x"]),
        item(&["--hint", "ch"])
    );
}

#[test]
fn close_goes_to_stream_and_websocket_only() {
    assert_eq!(
        json(&item(&["--close", "ch"])),
        r#"{"channel":"ch","formats":{"http-stream":{"action":"close"},"ws-message":{"action":"close"}}}"#
    );
}

#[test]
fn patch_goes_to_http_response_only() {
    let it = item(&["--patch", "ch", r#"[{"op":"add","path":"/a","value":1.5}]"#]);
    assert_eq!(
        json(&it),
        r#"{"channel":"ch","formats":{"http-response":{"body-patch":[{"op":"add","path":"/a","value":1.5}],"code":200}}}"#
    );
    assert_eq!(
        tnet(&it),
        "122:7:channel,2:ch,7:formats,93:13:http-response,72:10:body-patch,\
         41:37:2:op,3:add,4:path,2:/a,5:value,3:1.5^}]4:code,3:200#}}}"
    );
    let it = item(&["--patch", "ch", r#"[{"x":null,"y":true,"z":-3,"w":[1]}]"#]);
    assert!(tnet(&it).contains("1:w,4:1:1#]1:x,0:~1:y,4:true!1:z,2:-3#"));
    assert_eq!(
        err(&["--patch", "ch", r#"{"op":"add"}"#]),
        "patch content must be a JSON array"
    );
    assert_eq!(
        err(&["--patch", "ch", "nojson"]),
        "patch content is not valid JSON: expected ident at line 1 column 2"
    );
    let huge = item(&["--patch", "ch", r#"[{"value":18446744073709551615}]"#]);
    assert!(huge.to_json().to_string().contains("18446744073709551615"));
    assert!(huge.to_tnet().is_err());
}

#[test]
fn file_content_is_sent_as_is_and_binary_becomes_bin_in_json() {
    let read = |path: &Path| {
        assert_eq!(path, Path::new("data.bin"));
        Ok(b"a\xffb".to_vec())
    };
    let it = build_item(&args(&["ch", "@data.bin"]), read).unwrap();
    assert_eq!(
        json(&it),
        r#"{"channel":"ch","formats":{"http-response":{"body-bin":"Yf9i","code":200},"http-stream":{"content-bin":"Yf9i"},"ws-message":{"content-bin":"Yf9i"}}}"#
    );
    assert_eq!(
        it.to_tnet().unwrap().to_vec(),
        b"146:7:channel,2:ch,7:formats,116:13:http-response,26:4:body,3:a\xffb,4:code,3:200#}\
          11:http-stream,16:7:content,3:a\xffb,}10:ws-message,16:7:content,3:a\xffb,}}}"
    );
    // No newline is added to file content, even for HTTP.
    let it = build_item(&args(&["ch", "@f"]), |_: &Path| Ok(b"line\n".to_vec())).unwrap();
    assert_eq!(
        json(&it),
        r#"{"channel":"ch","formats":{"http-response":{"body":"line\n","code":200},"http-stream":{"content":"line\n"},"ws-message":{"content":"line\n"}}}"#
    );
    let missing = build_item(&args(&["ch", "@/nonexistent"]), |_: &Path| {
        Err(io::Error::from(io::ErrorKind::NotFound))
    });
    assert_eq!(
        missing.unwrap_err().to_string(),
        "can't read file /nonexistent: entity not found"
    );
    // --patch reads files too.
    let it = build_item(&args(&["--patch", "ch", "@p.json"]), |_: &Path| {
        Ok(br#"[{"op":"remove","path":"/a"}]"#.to_vec())
    })
    .unwrap();
    assert!(json(&it).contains(r#""body-patch":[{"op":"remove","path":"/a"}]"#));
}

#[test]
fn pushpin_error_messages() {
    assert_eq!(err(&["ch"]), "must specify content");
    assert_eq!(
        err(&["--code", "1000", "ch", "x"]),
        "code must be an integer between 0 and 999"
    );
    assert_eq!(
        err(&["--code", "abc", "ch", "x"]),
        "failed to parse code: invalid digit found in string"
    );
    assert_eq!(
        err(&["--code", "-1", "--hint", "ch"]),
        "failed to parse code: invalid digit found in string"
    );
    assert_eq!(
        err(&["-H", "noval", "ch", "x"]),
        r#"header must be in the form "name: value" (got "noval")"#
    );
    assert_eq!(
        err(&["-M", "noval", "ch", "x"]),
        r#"meta must be in the form "name=value" (got "noval")"#
    );
    assert!(json(&item(&["--code", "0", "ch", "x"])).contains(r#""code":0"#));
    assert!(json(&item(&["--code", "999", "ch", "x"])).contains(r#""code":999"#));
}

#[test]
fn plan_picks_target_auth_and_timeout() {
    let p = plan(
        &args(&["--spec", "http://127.0.0.1:5561", "ch", "x"]),
        no_files,
    )
    .unwrap();
    assert!(matches!(&p.target, Target::Http(u) if u.port == 5561 && !u.tls));
    assert_eq!(p.auth, None);
    assert_eq!(p.timeout, Some(Duration::from_secs(10)));

    let p = plan(
        &args(&[
            "--spec",
            "tcp://127.0.0.1:5560",
            "--timeout",
            "0",
            "ch",
            "x",
        ]),
        no_files,
    )
    .unwrap();
    assert_eq!(p.target, Target::Zmq("tcp://127.0.0.1:5560".into()));
    assert_eq!(p.timeout, None);

    let p = plan(
        &args(&["--spec", "https://h", "-u", "a:b", "ch", "x"]),
        no_files,
    )
    .unwrap();
    assert_eq!(p.auth, Some(Auth::Basic("a:b".into())));
    assert_eq!(p.auth.unwrap().header_value(), "Basic YTpi");
    let p = plan(
        &args(&["--spec", "https://h", "-B", "tok", "ch", "x"]),
        no_files,
    )
    .unwrap();
    assert_eq!(p.auth, Some(Auth::Bearer("tok".into())));

    for spec in ["http://h", "tcp://h:1"] {
        let e = plan(&args(&["--spec", spec, "-u", "a:b", "ch", "x"]), no_files).unwrap_err();
        assert_eq!(e.to_string(), "Authentication requires https");
    }
    let e = plan(&args(&["--spec", "http:foo", "ch", "x"]), no_files).unwrap_err();
    assert!(e.to_string().starts_with("invalid URL http:foo"), "{e}");
    // Item errors come before spec errors, as in Pushpin.
    let e = plan(&args(&["--spec", "http:foo", "ch"]), no_files).unwrap_err();
    assert_eq!(e.to_string(), "must specify content");
}

#[test]
fn command_line_shape() {
    assert!(Args::try_parse_from(["holdfast-publish"]).is_err());
    assert!(Args::try_parse_from(["holdfast-publish", "ch", "x", "extra"]).is_err());
    assert!(Args::try_parse_from(["holdfast-publish", "-u", "a:b", "-B", "t", "ch", "x"]).is_err());
    let a = args(&["-H", "A: 1", "--header", "B: 2", "ch", "--", "--not-a-flag"]);
    assert_eq!(a.headers, ["A: 1", "B: 2"]);
    assert_eq!(a.content.as_deref(), Some("--not-a-flag"));
    assert_eq!(a.code, "200");
}

#[test]
fn tnet_round_trips_through_the_proto_parser() {
    let it = item(&["--id", "i", "-M", "k=v", "--no-seq", "ch", "x"]);
    let parsed = tnetstring::parse(&it.to_tnet().unwrap().to_vec()).unwrap();
    let publish = parse_item_tnet(&parsed, None).unwrap();
    assert_eq!(publish.channel, "ch");
    assert_eq!(publish.id.as_deref(), Some("i"));
    assert!(publish.no_seq);
    assert_eq!(publish.meta.get("k").map(String::as_str), Some("v"));
}
