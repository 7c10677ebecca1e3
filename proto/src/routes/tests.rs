//! Unit tests for the routes parser and selection.
use super::*;

fn table(text: &str) -> RouteTable {
    let (table, warnings) = RouteTable::parse(text);
    assert!(warnings.is_empty(), "unexpected warnings: {warnings:?}");
    table
}

fn one(line: &str) -> Route {
    let t = table(line);
    assert_eq!(t.len(), 1);
    t.routes()[0].clone()
}

fn rejected(line: &str) -> String {
    let (t, w) = RouteTable::parse(line);
    assert!(t.is_empty(), "line was accepted: {line}");
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].line, 1);
    w[0].message.clone()
}

fn sections(line: &str) -> Vec<(String, Vec<(String, String)>)> {
    parse_sections(line)
        .unwrap()
        .into_iter()
        .map(|s| {
            let props = s.props;
            (s.value, props)
        })
        .collect()
}

fn prop(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

fn req<'a>(host: &'a str, path: &'a str) -> RouteRequest<'a> {
    RouteRequest {
        host,
        path,
        websocket: false,
        secure: false,
    }
}

fn selected(t: &RouteTable, r: RouteRequest<'_>) -> Option<String> {
    t.select(&r).map(|r| r.log_id())
}

// ---- tokenizer ----

#[test]
fn sections_value_and_props() {
    assert_eq!(
        sections("a,b=1,c x,y"),
        vec![
            ("a".into(), vec![prop("b", "1"), prop("c", "")]),
            ("x".into(), vec![prop("y", "")]),
        ]
    );
}

#[test]
fn first_item_with_equals_means_empty_value() {
    assert_eq!(
        sections("id=x,path_beg=/a test"),
        vec![
            ("".into(), vec![prop("id", "x"), prop("path_beg", "/a")]),
            ("test".into(), vec![]),
        ]
    );
    // The '=' is looked for in the decoded item, quotes included (as Pushpin does).
    assert_eq!(sections("\"id=x\"")[0], ("".into(), vec![prop("id", "x")]));
}

#[test]
fn leading_comma_gives_empty_value() {
    assert_eq!(sections(",id=x")[0], ("".into(), vec![prop("id", "x")]));
}

#[test]
fn quotes_wrap_any_part() {
    assert_eq!(sections("\"example.com\"")[0].0, "example.com");
    assert_eq!(
        sections("*,header=\"X-A: b, c # d\"")[0].1,
        vec![prop("header", "X-A: b, c # d")]
    );
    assert_eq!(sections("*,\"sub=a b\"")[0].1, vec![prop("sub", "a b")]);
    assert_eq!(sections("ab\"c d\"ef")[0].0, "abc def");
    assert_eq!(sections("\"a\"\"b\"")[0].0, "ab");
    assert_eq!(sections("\"\"")[0].0, "");
    // A quoted '=' in a property value does not split again.
    assert_eq!(
        sections("*,prefix=\"a=b\"")[0].1,
        vec![prop("prefix", "a=b")]
    );
}

#[test]
fn quote_escapes() {
    assert_eq!(sections(r#""a\"b\\c""#)[0].0, r#"a"b\c"#);
    // Outside quotes a backslash is an ordinary character.
    assert_eq!(sections(r"a\b")[0].0, r"a\b");
}

#[test]
fn quote_errors() {
    assert_eq!(
        parse_sections("\"abc").unwrap_err(),
        "unterminated quoted string"
    );
    assert_eq!(
        parse_sections("\"abc\\").unwrap_err(),
        "unterminated quoted string"
    );
    assert!(parse_sections(r#""a\nb""#)
        .unwrap_err()
        .contains("invalid escape"));
    assert_eq!(rejected("* test,host=\"x"), "unterminated quoted string");
}

#[test]
fn utf8_in_quotes_and_values() {
    assert_eq!(sections("é\"ü ö\"x")[0].0, "éü öx");
}

#[test]
fn comments() {
    assert!(sections("# comment").is_empty());
    assert!(sections("   # comment").is_empty());
    assert!(sections("").is_empty());
    assert!(sections(" \t ").is_empty());
    assert_eq!(sections("a b # c d").len(), 2);
    // An unquoted '#' ends the item and the line.
    assert_eq!(sections("a#b c"), vec![("a".into(), vec![])]);
    assert_eq!(sections("a,x=1#c d")[0].1, vec![prop("x", "1")]);
    assert_eq!(sections("a \"#\"")[1].0, "#");
}

#[test]
fn separators() {
    assert_eq!(sections("a    b").len(), 2);
    assert_eq!(sections("\ta\tb\t").len(), 2);
}

#[test]
fn prop_errors() {
    assert_eq!(parse_sections("a,,b").unwrap_err(), "expecting prop");
    assert_eq!(parse_sections("a,").unwrap_err(), "expecting prop");
    assert_eq!(parse_sections("a, b").unwrap_err(), "expecting prop");
    assert_eq!(parse_sections("a,=x").unwrap_err(), "empty prop name");
    assert_eq!(rejected("* test,"), "expecting prop");
}

#[test]
fn repeated_props_last_wins_for_get() {
    let s = &parse_sections("a,x=1,x=2").unwrap()[0];
    assert_eq!(s.get("x"), Some("2"));
    assert_eq!(s.all("x").collect::<Vec<_>>(), vec!["1", "2"]);
}

// ---- lines ----

#[test]
fn blank_and_comment_lines_are_not_routes() {
    let (t, w) = RouteTable::parse("\n# hello\n   \n");
    assert!(t.is_empty());
    assert!(w.is_empty());
}

#[test]
fn condition_without_target_rejected() {
    assert_eq!(
        rejected("example.com"),
        "must specify condition and at least one target"
    );
    assert_eq!(
        rejected("example.com # 1.2.3.4:80"),
        "must specify condition and at least one target"
    );
}

#[test]
fn reference_example() {
    let t = table(
        "example.com 192.0.2.10:80\n\
         *,path_beg=/api/,replace_beg=/,id=api 10.0.0.5:8080,ssl,host=api.internal 10.0.0.6:8080\n\
         *,proto=ws,path_beg=/ws 127.0.0.1:8000,over_http\n\
         * zhttpreq/tcp://127.0.0.1:10000\n\
         *,path_beg=/t/ test\n",
    );
    let r = t.routes();
    assert_eq!(r.len(), 5);
    assert_eq!(r[0].domain.as_deref(), Some("example.com"));
    assert_eq!(
        r[0].targets[0].kind,
        TargetKind::Host {
            host: "192.0.2.10".into(),
            port: 80
        }
    );
    assert_eq!(r[1].id.as_deref(), Some("api"));
    assert_eq!(r[1].domain, None);
    assert_eq!(r[1].path_beg.as_deref(), Some("/api/"));
    assert_eq!(r[1].props.replace_beg.as_deref(), Some("/"));
    assert_eq!(r[1].targets.len(), 2);
    assert!(r[1].targets[0].ssl);
    assert_eq!(r[1].targets[0].host.as_deref(), Some("api.internal"));
    assert!(!r[1].targets[1].ssl);
    assert_eq!(r[2].proto, Some(Proto::Ws));
    assert!(r[2].targets[0].over_http);
    assert_eq!(
        r[3].targets[0].kind,
        TargetKind::ZhttpReq("tcp://127.0.0.1:10000".into())
    );
    assert_eq!(r[4].targets[0].kind, TargetKind::Test);
    assert_eq!(r[4].line, 5);
}

#[test]
fn every_condition_property() {
    let r = one(
        "example.org,proto=http,ssl=yes,path_beg=/p,id=r1,sig_iss=iss,sig_key=base64:AAAA,\
         prefix=pre-,orig_headers,as_host=backend:8080,path_rem=2,replace_beg=/x,debug,aco,\
         jsonp_mode=basic,jsonp_cb=cb,jsonp_body=b,jsonp_defcb=dcb,jsonp_defmethod=PUT,session,\
         sockjs=/sockjs,sockjs_as_path=/ws,header=X-A:1,header=\"X-B:  two\",header=X-C:,no_grip,\
         log_level=3 test",
    );
    assert_eq!(r.domain.as_deref(), Some("example.org"));
    assert_eq!(r.proto, Some(Proto::Http));
    assert_eq!(r.ssl, Some(true));
    assert_eq!(r.path_beg.as_deref(), Some("/p"));
    assert_eq!(r.id.as_deref(), Some("r1"));
    let p = &r.props;
    assert_eq!(p.sig_iss.as_deref(), Some("iss"));
    assert_eq!(p.sig_key.as_deref(), Some("base64:AAAA"));
    assert_eq!(p.prefix, "pre-");
    assert!(p.orig_headers);
    assert_eq!(p.as_host.as_deref(), Some("backend:8080"));
    assert_eq!(p.path_rem, Some(2));
    assert_eq!(p.replace_beg.as_deref(), Some("/x"));
    assert!(p.debug && p.aco && p.session && p.no_grip);
    assert_eq!(p.jsonp.mode, JsonpMode::Basic);
    assert_eq!(p.jsonp.callback_param, "cb");
    assert_eq!(p.jsonp.body_param.as_deref(), Some("b"));
    assert_eq!(p.jsonp.default_callback.as_deref(), Some("dcb"));
    assert_eq!(p.jsonp.default_method, "PUT");
    assert_eq!(p.sockjs.as_deref(), Some("/sockjs"));
    assert_eq!(p.sockjs_as_path.as_deref(), Some("/ws"));
    assert_eq!(
        p.headers,
        vec![
            ("X-A".to_string(), "1".to_string()),
            ("X-B".to_string(), "two".to_string()),
            ("X-C".to_string(), String::new()),
        ]
    );
    assert_eq!(p.log_level, Some(3));
    assert!(r.separate_stats());
}

#[test]
fn condition_defaults() {
    let r = one("* test");
    assert_eq!(r.domain, None);
    assert_eq!(r.props, RouteProps::default());
    assert_eq!(r.props.jsonp.mode, JsonpMode::Extended);
    assert_eq!(r.props.jsonp.callback_param, "callback");
    assert_eq!(r.props.jsonp.default_method, "GET");
    assert!(!r.separate_stats());
}

#[test]
fn jsonp_basic_defaults_to_post() {
    assert_eq!(
        one("*,jsonp_mode=basic test").props.jsonp.default_method,
        "POST"
    );
    assert_eq!(
        one("*,jsonp_mode=extended test").props.jsonp.default_method,
        "GET"
    );
}

#[test]
fn quoted_header_value_with_comma_and_space() {
    let r = one("*,header=\"Cache-Control: no-cache, no-store\" test");
    assert_eq!(
        r.props.headers,
        vec![(
            "Cache-Control".to_string(),
            "no-cache, no-store".to_string()
        )]
    );
}

#[test]
fn invalid_condition_values_reject_the_line() {
    assert_eq!(
        rejected("*,proto=tcp test"),
        "proto must be set to 'http' or 'ws'"
    );
    assert_eq!(
        rejected("*,proto test"),
        "proto must be set to 'http' or 'ws'"
    );
    assert_eq!(
        rejected("*,ssl=true test"),
        "ssl must be set to 'yes' or 'no'"
    );
    assert_eq!(rejected("*,path_beg= test"), "path_beg cannot be empty");
    assert_eq!(rejected("*,path_beg test"), "path_beg cannot be empty");
    assert_eq!(
        rejected("*,jsonp_mode=x test"),
        "jsonp_mode must be set to 'basic' or 'extended'"
    );
    assert_eq!(
        rejected("*,header=nocolon test"),
        "header must use format 'name:value'"
    );
    assert_eq!(
        rejected("*,header=:v test"),
        "header must use format 'name:value'"
    );
    assert!(rejected("*,path_rem=x test").contains("path_rem"));
    assert!(rejected("*,path_rem=-1 test").contains("path_rem"));
    assert!(rejected("*,log_level=high test").contains("log_level"));
}

#[test]
fn unknown_properties_warn_but_keep_the_line() {
    let (t, w) = RouteTable::parse("*,bogus=1 test,frobnicate");
    assert_eq!(t.len(), 1);
    assert_eq!(
        w,
        vec![
            RouteWarning {
                line: 1,
                message: "unknown condition property 'bogus' (ignored)".into()
            },
            RouteWarning {
                line: 1,
                message: "unknown target property 'frobnicate' (ignored)".into()
            },
        ]
    );
    assert_eq!(
        w[0].to_string(),
        "routes line 1: unknown condition property 'bogus' (ignored)"
    );
}

#[test]
fn domain_warnings() {
    let (t, w) = RouteTable::parse("*.example.com test\nexample.com:80 test");
    assert_eq!(t.len(), 2);
    assert_eq!(w.len(), 2);
    assert!(w[0].message.contains("partial wildcards"));
    assert!(w[1].message.contains("port"));
}

#[test]
fn id_only_routes() {
    let r = one(",id=special,path_beg=/s test");
    assert_eq!(r.domain.as_deref(), Some(""));
    assert_eq!(r.log_id(), "special");
    assert!(rejected(",path_beg=/s test").contains("no domain or id"));
    let (t, w) = RouteTable::parse(",id= test");
    assert!(t.is_empty());
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!(w[0].message, "empty id ignored");
}

#[test]
fn empty_id_on_domain_route_is_ignored() {
    let (t, w) = RouteTable::parse("*,id= test");
    assert_eq!(t.routes()[0].id, None);
    assert_eq!(w[0].message, "empty id ignored");
}

// ---- targets ----

#[test]
fn target_kinds() {
    let t = table(
        "a 10.0.0.1:80 backend.local:8080 [::1]:9000 test zhttp/ipc:///tmp/x zhttpreq/tcp://127.0.0.1:10000",
    );
    let kinds: Vec<_> = t.routes()[0]
        .targets
        .iter()
        .map(|t| t.kind.clone())
        .collect();
    assert_eq!(
        kinds,
        vec![
            TargetKind::Host {
                host: "10.0.0.1".into(),
                port: 80
            },
            TargetKind::Host {
                host: "backend.local".into(),
                port: 8080
            },
            TargetKind::Host {
                host: "::1".into(),
                port: 9000
            },
            TargetKind::Test,
            TargetKind::Zhttp("ipc:///tmp/x".into()),
            TargetKind::ZhttpReq("tcp://127.0.0.1:10000".into()),
        ]
    );
    let shown: Vec<_> = kinds.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec![
            "10.0.0.1:80",
            "backend.local:8080",
            "[::1]:9000",
            "test",
            "zhttp/ipc:///tmp/x",
            "zhttpreq/tcp://127.0.0.1:10000"
        ]
    );
}

#[test]
fn bad_targets_reject_the_line() {
    assert!(rejected("* backend").contains("target bad format"));
    assert!(rejected("* backend:http").contains("target invalid port"));
    assert!(rejected("* backend:0").contains("target invalid port"));
    assert!(rejected("* backend:65536").contains("target invalid port"));
    assert!(rejected("* fe80::1:80").contains("target invalid port"));
    assert!(rejected("* ::1:80").contains("empty host"));
    assert!(rejected("* [::1]80").contains("target bad format"));
    assert!(rejected("* [::1:80").contains("missing ']'"));
    assert!(rejected("* :80").contains("empty host"));
    assert!(rejected("* zhttp/").contains("target bad format"));
    assert!(rejected("* zhttpreq/").contains("target bad format"));
    // One bad target rejects the whole line.
    assert!(rejected("* 1.2.3.4:80 nope").contains("target bad format"));
}

#[test]
fn every_target_property() {
    let r = one(
        "* h:1,ssl,untrusted,trust_connect_host,insecure,host=example.com:443,sub=a,sub=,sub=b,\
         over_http,one_event,ipc_file_mode=750,client_cert=c.pem,client_key=k.pem",
    );
    let t = &r.targets[0];
    assert!(t.ssl && t.untrusted && t.trust_connect_host && t.insecure);
    assert!(t.over_http && t.one_event);
    assert_eq!(t.host.as_deref(), Some("example.com:443"));
    assert_eq!(t.subs, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(t.ipc_file_mode, Some(0o750));
    assert_eq!(t.client_cert.as_deref(), Some("c.pem"));
    assert_eq!(t.client_key.as_deref(), Some("k.pem"));
}

#[test]
fn target_defaults() {
    let t = &one("* h:1").targets[0];
    assert_eq!(*t, Target::new(t.kind.clone()));
}

#[test]
fn bad_ipc_file_mode_warns_and_is_ignored() {
    let (t, w) = RouteTable::parse("* zhttp/ipc://x,ipc_file_mode=999");
    assert_eq!(t.routes()[0].targets[0].ipc_file_mode, None);
    assert!(w[0].message.contains("octal"));
}

#[test]
fn zhttp_targets_are_deduplicated() {
    let t = table("a zhttp/ipc://x test\nb zhttp/ipc://x zhttpreq/tcp://h:1 c:2");
    let kinds = t.zhttp_targets();
    assert_eq!(kinds.len(), 2);
    assert_eq!(*kinds[0], TargetKind::Zhttp("ipc://x".into()));
}

// ---- duplicates ----

#[test]
fn duplicate_conditions_are_skipped() {
    let (t, w) = RouteTable::parse(
        "* a:1\n*,id=other b:1\nexample.com a:1\nEXAMPLE.com b:1\n*,path_beg=/x a:1\n*,path_beg=/x,ssl=no a:1\n",
    );
    assert_eq!(t.len(), 4);
    assert_eq!(
        w,
        vec![
            RouteWarning {
                line: 2,
                message: "skipping duplicate condition (same as line 1)".into()
            },
            RouteWarning {
                line: 4,
                message: "skipping duplicate condition (same as line 3)".into()
            },
        ]
    );
    // The first one stays.
    assert_eq!(t.routes()[0].id, None);
}

#[test]
fn id_only_routes_are_not_duplicates_by_condition() {
    let t = table(",id=a a:1\n,id=b b:1");
    assert_eq!(t.len(), 2);
}

// ---- selection ----

#[test]
fn exact_domain_beats_wildcard() {
    let t = table("* a:1\nexample.com b:1");
    assert_eq!(
        selected(&t, req("example.com", "/")).as_deref(),
        Some("example.com,*,*,*")
    );
    assert_eq!(
        selected(&t, req("other.com", "/")).as_deref(),
        Some("*,*,*,*")
    );
}

#[test]
fn domain_match_ignores_ascii_case() {
    let t = table("Example.COM b:1");
    assert!(t.select(&req("example.com", "/")).is_some());
}

#[test]
fn no_fallback_to_wildcard_when_domain_exists() {
    let t = table("* a:1\nexample.com,path_beg=/only b:1");
    assert_eq!(t.select(&req("example.com", "/other")), None);
    assert!(t.select(&req("example.com", "/only/x")).is_some());
}

#[test]
fn no_route_when_nothing_matches() {
    assert_eq!(table("example.com a:1").select(&req("x.com", "/")), None);
    assert_eq!(RouteTable::default().select(&req("x.com", "/")), None);
}

#[test]
fn proto_condition() {
    let t = table("*,proto=ws a:1\n*,proto=http b:1");
    let mut r = req("h", "/");
    assert_eq!(selected(&t, r).as_deref(), Some("*,http,*,*"));
    r.websocket = true;
    assert_eq!(selected(&t, r).as_deref(), Some("*,ws,*,*"));
    let only_ws = table("*,proto=ws a:1");
    assert_eq!(only_ws.select(&req("h", "/")), None);
}

#[test]
fn ssl_condition() {
    let t = table("*,ssl=yes a:1\n*,ssl=no b:1");
    let mut r = req("h", "/");
    assert_eq!(selected(&t, r).as_deref(), Some("*,*,ssl,*"));
    r.secure = true;
    assert_eq!(selected(&t, r).as_deref(), Some("*,*,no-ssl,*"));
    assert_eq!(table("*,ssl=yes a:1").select(&req("h", "/")), None);
}

#[test]
fn path_beg_condition_ignores_query() {
    let t = table("*,path_beg=/api a:1");
    assert!(t.select(&req("h", "/api/x?y=1")).is_some());
    assert!(t.select(&req("h", "/api")).is_some());
    assert!(t.select(&req("h", "/ap?i")).is_none());
    assert!(t.select(&req("h", "/other")).is_none());
}

#[test]
fn proto_beats_longer_path_beg() {
    // Both orders: the ranking does not depend on line order.
    for text in [
        "*,path_beg=/api/long a:1\n*,proto=http b:1",
        "*,proto=http b:1\n*,path_beg=/api/long a:1",
    ] {
        let t = table(text);
        assert_eq!(
            selected(&t, req("h", "/api/long/x")).as_deref(),
            Some("*,http,*,*"),
            "{text}"
        );
    }
}

#[test]
fn longer_path_beg_wins() {
    for text in [
        "*,path_beg=/a a:1\n*,path_beg=/a/b b:1\n* c:1",
        "* c:1\n*,path_beg=/a/b b:1\n*,path_beg=/a a:1",
    ] {
        let t = table(text);
        assert_eq!(
            selected(&t, req("h", "/a/b/c")).as_deref(),
            Some("*,*,*,/a/b")
        );
        assert_eq!(selected(&t, req("h", "/a/x")).as_deref(), Some("*,*,*,/a"));
        assert_eq!(selected(&t, req("h", "/z")).as_deref(), Some("*,*,*,*"));
    }
}

#[test]
fn longer_path_beg_beats_ssl() {
    // Pushpin picks differently depending on the order here; Holdfast always picks the
    // longer path_beg.
    for text in [
        "*,path_beg=/api/long a:1\n*,ssl=no,path_beg=/api b:1",
        "*,ssl=no,path_beg=/api b:1\n*,path_beg=/api/long a:1",
    ] {
        let t = table(text);
        assert_eq!(
            selected(&t, req("h", "/api/long")).as_deref(),
            Some("*,*,*,/api/long"),
            "{text}"
        );
    }
}

#[test]
fn ssl_beats_no_ssl_on_equal_path() {
    for text in ["* a:1\n*,ssl=no b:1", "*,ssl=no b:1\n* a:1"] {
        let t = table(text);
        assert_eq!(selected(&t, req("h", "/")).as_deref(), Some("*,*,ssl,*"));
    }
}

#[test]
fn ties_go_to_file_order() {
    let t = table(
        "*,proto=http,id=first a:1\n*,ssl=no,id=second b:1\n*,proto=http,ssl=no,id=third c:1",
    );
    // first and third both have proto; third also has ssl, so it ranks higher.
    assert_eq!(selected(&t, req("h", "/")).as_deref(), Some("third"));
    let t = table("*,proto=http,id=first a:1\n*,proto=ws,id=second b:1");
    assert_eq!(selected(&t, req("h", "/")).as_deref(), Some("first"));
    let t = table("*,path_beg=/a,id=x a:1\n*,path_beg=/b,id=y a:1");
    assert_eq!(selected(&t, req("h", "/a")).as_deref(), Some("x"));
}

#[test]
fn id_only_routes_are_never_selected() {
    let t = table(",id=hidden a:1");
    assert_eq!(t.select(&req("", "/")), None);
    assert_eq!(t.select(&req("anything", "/")), None);
}

// ---- by id ----

#[test]
fn by_id_explicit() {
    let t = table("example.com,id=a,path_beg=/x a:1\n,id=b b:1");
    assert_eq!(t.by_id("a", "/x/y").map(|r| r.line), Some(1));
    assert_eq!(t.by_id("a", "/x?q"), t.by_id("a", "/x"));
    assert_eq!(t.by_id("a", "/y"), None);
    assert_eq!(t.by_id("b", "/anything").map(|r| r.line), Some(2));
    assert_eq!(t.by_id("c", "/"), None);
}

#[test]
fn by_id_shared_is_none() {
    let t = table("a.com,id=s a:1\nb.com,id=s b:1\nc.com,id=u c:1");
    assert_eq!(t.by_id("s", "/"), None);
    assert!(t.by_id("u", "/").is_some());
}

#[test]
fn by_id_automatic_ids() {
    let t = table("* a:1\nexample.com,proto=ws,ssl=yes,path_beg=/w b:1");
    assert_eq!(t.by_id("*,*,*,*", "/").map(|r| r.line), Some(1));
    assert_eq!(
        t.by_id("example.com,ws,no-ssl,/w", "/w").map(|r| r.line),
        Some(2)
    );
    // An explicit id equal to another route's automatic id makes both unusable.
    let t = table("* a:1\nx.com,id=\"*,*,*,*\" b:1");
    assert_eq!(t.by_id("*,*,*,*", "/"), None);
}

// ---- log id ----

#[test]
fn log_ids() {
    let t = table(
        "n.com,id=named a:1\n* a:1\nexample.com,proto=http,ssl=no,path_beg=/p a:1\n*,proto=ws,ssl=yes a:1",
    );
    let ids: Vec<_> = t.routes().iter().map(Route::log_id).collect();
    assert_eq!(
        ids,
        vec![
            "named",
            "*,*,*,*",
            "example.com,http,ssl,/p",
            "*,ws,no-ssl,*"
        ]
    );
}

// ---- path rewriting ----

#[test]
fn rewrite_path_rem() {
    let r = one("*,path_rem=4 a:1");
    assert_eq!(r.rewrite_path("/api/items?x=1"), "/items?x=1");
    assert_eq!(r.rewrite_path("/api"), "/");
    assert_eq!(r.rewrite_path("/a"), "/");
    assert_eq!(r.rewrite_path("/api?q"), "/?q");
}

#[test]
fn rewrite_replace_beg() {
    let r = one("*,path_beg=/api/,replace_beg=/v2/ a:1");
    assert_eq!(r.rewrite_path("/api/items?x=/api/"), "/v2/items?x=/api/");
    let r = one("*,path_beg=/api/,replace_beg=/ a:1");
    assert_eq!(r.rewrite_path("/api/items"), "/items");
    // replace_beg wins over path_rem.
    let r = one("*,path_beg=/ab,path_rem=1,replace_beg=/x a:1");
    assert_eq!(r.rewrite_path("/abc"), "/xc");
    // Without path_beg nothing is removed, the prefix is still added.
    let r = one("*,replace_beg=/pre a:1");
    assert_eq!(r.rewrite_path("/x"), "/pre/x");
}

#[test]
fn rewrite_without_options_is_identity() {
    let r = one("* a:1");
    assert_eq!(r.rewrite_path("/a/b?c=d"), "/a/b?c=d");
}

#[test]
fn rewrite_respects_char_boundaries() {
    let r = one("*,path_rem=2 a:1");
    assert_eq!(r.rewrite_path("/é/x"), "/x");
}

// ---- parse_lines ----

#[test]
fn parse_lines_numbers_arguments() {
    let (t, w) = RouteTable::parse_lines(["* a:1", "bad", "x.com b:2"]);
    assert_eq!(t.len(), 2);
    assert_eq!(w[0].line, 2);
    assert_eq!(t.routes()[1].line, 3);
}

#[test]
fn crlf_lines() {
    let t = table("* a:1\r\nx.com b:1\r\n");
    assert_eq!(t.len(), 2);
}
