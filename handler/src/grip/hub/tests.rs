use super::*;
use crate::grip::item::{ResponseAction, ResponseBody, ResponseFormat, StreamFormat};
use holdfast_proto::internal::{HttpVersion, RequestHead};

fn key(worker: &str, id: u64) -> SessionKey {
    SessionKey {
        worker: WorkerId::new(worker.as_bytes().to_vec()),
        id: StreamId(id),
    }
}

fn origin() -> Arc<Origin> {
    Arc::new(Origin {
        head: RequestHead {
            id: StreamId(0),
            method: "GET".into(),
            target: "/".into(),
            version: HttpVersion::Http11,
            headers: Vec::new(),
            peer_addr: "127.0.0.1".into(),
            peer_port: 1,
            secure: false,
            local_port: 1,
            body: Bytes::new(),
            more: false,
            credits: 0,
        },
        body: Bytes::new(),
        gone: None,
    })
}

fn sub(name: &str) -> Sub {
    Sub {
        name: Arc::from(name),
        prefix_len: 0,
        filters: Filters::default(),
        prev_id: None,
    }
}

fn reply(body: &'static str) -> Reply {
    Reply {
        code: 200,
        reason: "OK".into(),
        headers: vec![Header::new("Content-Type", "text/plain")],
        body: Bytes::from_static(body.as_bytes()),
    }
}

fn stream_hold(k: SessionKey, credits: u64, channels: &[&str]) -> Hold {
    Hold {
        key: k,
        serial: 1,
        credits,
        subs: channels.iter().map(|c| sub(c)).collect(),
        meta: None,
        origin: origin(),
        route: None,
        mode: HoldMode::Stream {
            head: Some(reply("start\n")),
            keep_alive: None,
            next_link: None,
            link_timeout: Duration::from_secs(120),
        },
    }
}

fn response_hold(k: SessionKey, channels: &[&str], timeout: u64) -> Hold {
    Hold {
        key: k,
        serial: 1,
        credits: 1000,
        subs: channels.iter().map(|c| sub(c)).collect(),
        meta: None,
        origin: origin(),
        route: None,
        mode: HoldMode::Response {
            jsonp: None,
            timeout: Duration::from_secs(timeout),
            reply: Arc::new(reply("timeout\n")),
        },
    }
}

fn stream_item(channel: &str, content: &'static str) -> Item {
    Item {
        channel: channel.into(),
        id: None,
        prev_id: None,
        no_seq: false,
        meta: Vec::new(),
        response: None,
        stream: Some(StreamFormat::Send(Bytes::from_static(content.as_bytes()))),
        ws: None,
    }
}

fn response_item(channel: &str, body: &'static str) -> Item {
    Item {
        response: Some(Arc::new(ResponseFormat {
            action: ResponseAction::Send,
            code: Some(201),
            reason: None,
            headers: vec![Header::new("X-Foo", "bar")],
            body: ResponseBody::Bytes(Bytes::from_static(body.as_bytes())),
        })),
        stream: None,
        ..stream_item(channel, "")
    }
}

fn hub() -> Hub {
    Hub::new(HubConfig {
        update_on_first_subscription: false,
        ..HubConfig::default()
    })
}

#[test]
fn stream_hold_subscribes_then_sends_head() {
    let mut hub = hub();
    let mut fx = Effects::default();
    let now = Instant::now();
    hub.hold(stream_hold(key("w0", 1), 100, &["a", "b"]), now, &mut fx);
    assert_eq!(hub.subscribers("a"), 1);
    assert_eq!(hub.subscribers("b"), 1);
    match &fx.msgs[..] {
        [(_, ToConnmgr::Response(head))] => {
            assert!(head.more);
            assert_eq!(head.body, Bytes::from_static(b"start\n"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn publish_is_one_fanout_per_worker_sharing_the_payload() {
    let mut hub = hub();
    let now = Instant::now();
    let mut fx = Effects::default();
    for (w, id) in [("w0", 1), ("w0", 2), ("w1", 3), ("w0", 4)] {
        hub.hold(stream_hold(key(w, id), 100, &["c"]), now, &mut fx);
    }
    let mut fx = Effects::default();
    let item = stream_item("c", "hello\n");
    let Some(StreamFormat::Send(payload)) = item.stream.clone() else {
        unreachable!()
    };
    assert_eq!(hub.publish(item, now, &mut fx), 4);
    assert_eq!(fx.msgs.len(), 2, "one message per worker");
    let mut total = 0;
    for (worker, msg) in &fx.msgs {
        let ToConnmgr::Fanout(f) = msg else {
            panic!("expected fanout, got {msg:?}")
        };
        assert_eq!(
            f.data.as_ptr(),
            payload.as_ptr(),
            "payload shared, not copied"
        );
        total += f.ids.len();
        if worker == &WorkerId::new("w1") {
            assert_eq!(f.ids, vec![StreamId(3)]);
        }
    }
    assert_eq!(total, 4);
}

#[test]
fn slow_receivers_queue_then_flush_on_credit_and_overflow_is_counted() {
    let mut hub = hub();
    let now = Instant::now();
    let mut fx = Effects::default();
    // 6 credits: the head's "start\n" uses them all.
    hub.hold(stream_hold(key("w", 1), 6, &["c"]), now, &mut fx);
    let mut fx = Effects::default();
    for _ in 0..outflow::MAX_QUEUED_ITEMS + 3 {
        hub.publish(stream_item("c", "x"), now, &mut fx);
    }
    assert!(fx.msgs.is_empty(), "no credit: nothing sent");
    assert_eq!(hub.dropped(), 3);
    let mut fx = Effects::default();
    hub.credit(&key("w", 1), 2, now, &mut fx);
    assert_eq!(fx.msgs.len(), 2);
    assert!(matches!(&fx.msgs[0].1, ToConnmgr::Body(b) if b.data.as_ref() == b"x" && b.more));
}

#[test]
fn close_ends_streams_after_their_queue() {
    let mut hub = hub();
    let now = Instant::now();
    let mut fx = Effects::default();
    hub.hold(stream_hold(key("w", 1), 6, &["c"]), now, &mut fx);
    hub.hold(stream_hold(key("w", 2), 100, &["c"]), now, &mut fx);
    let mut fx = Effects::default();
    hub.publish(stream_item("c", "abc"), now, &mut fx);
    let mut close = stream_item("c", "");
    close.stream = Some(StreamFormat::Close);
    hub.publish(close, now, &mut fx);
    // Stream 2 ended at once; stream 1 waits for credit.
    assert_eq!(fx.released, vec![(key("w", 2), 1)]);
    assert_eq!(hub.len(), 1);
    assert_eq!(hub.subscribers("c"), 0);
    let mut fx = Effects::default();
    hub.credit(&key("w", 1), 10, now, &mut fx);
    let bodies: Vec<(Bytes, bool)> = fx
        .msgs
        .iter()
        .map(|(_, m)| match m {
            ToConnmgr::Body(b) => (b.data.clone(), b.more),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        bodies,
        vec![(Bytes::from_static(b"abc"), true), (Bytes::new(), false)]
    );
    assert_eq!(fx.released, vec![(key("w", 1), 1)]);
    assert!(hub.is_empty());
}

#[test]
fn response_hold_completed_by_publish_with_content_length() {
    let mut hub = hub();
    let now = Instant::now();
    let mut fx = Effects::default();
    hub.hold(response_hold(key("w", 1), &["a", "b"], 55), now, &mut fx);
    assert!(fx.msgs.is_empty(), "nothing sent while held");
    let mut fx = Effects::default();
    assert_eq!(
        hub.publish(response_item("b", "created\n"), now, &mut fx),
        1
    );
    let [(_, ToConnmgr::Response(head))] = &fx.msgs[..] else {
        panic!("unexpected {:?}", fx.msgs)
    };
    assert_eq!((head.code, head.reason.as_str()), (201, "Created"));
    assert!(!head.more);
    assert_eq!(head.body, Bytes::from_static(b"created\n"));
    let names: Vec<&str> = head.headers.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(names, ["Content-Type", "X-Foo", "Content-Length"]);
    assert_eq!(fx.released.len(), 1);
    assert_eq!(hub.subscribers("a"), 0);
    assert!(hub.is_empty());
    // A stream item does not complete response holds.
    hub.hold(response_hold(key("w", 2), &["a"], 55), now, &mut fx);
    let mut fx = Effects::default();
    assert_eq!(hub.publish(stream_item("a", "x"), now, &mut fx), 0);
    assert!(fx.msgs.is_empty());
}

#[test]
fn response_hold_times_out_with_the_original_response() {
    let mut hub = hub();
    let t0 = Instant::now();
    let mut fx = Effects::default();
    hub.hold(response_hold(key("w", 1), &["a"], 5), t0, &mut fx);
    hub.tick(t0 + Duration::from_secs(4), &mut fx);
    assert!(fx.msgs.is_empty());
    hub.tick(t0 + Duration::from_secs(5), &mut fx);
    let [(_, ToConnmgr::Response(head))] = &fx.msgs[..] else {
        panic!("unexpected {:?}", fx.msgs)
    };
    assert_eq!(head.body, Bytes::from_static(b"timeout\n"));
    assert_eq!(head.code, 200);
    assert!(hub.is_empty());
}

#[test]
fn keep_alive_only_while_idle() {
    let mut hub = hub();
    let t0 = Instant::now();
    let mut fx = Effects::default();
    let mut hold = stream_hold(key("w", 1), 1000, &["c"]);
    hold.mode = HoldMode::Stream {
        head: None,
        keep_alive: Some(Arc::new(KeepAlive {
            data: Bytes::from_static(b"ka\n"),
            timeout: Duration::from_secs(10),
            idle: true,
        })),
        next_link: None,
        link_timeout: Duration::from_secs(120),
    };
    hub.hold(hold, t0, &mut fx);
    // Output at t0+8 pushes the keep-alive to t0+18 (minus jitter).
    hub.publish(stream_item("c", "x"), t0 + Duration::from_secs(8), &mut fx);
    let mut fx = Effects::default();
    hub.tick(t0 + Duration::from_secs(11), &mut fx);
    assert!(fx.msgs.is_empty(), "data was sent recently");
    hub.tick(t0 + Duration::from_secs(18), &mut fx);
    assert!(
        matches!(&fx.msgs[..], [(_, ToConnmgr::Fanout(f))] if f.data.as_ref() == b"ka\n"),
        "{:?}",
        fx.msgs
    );
}

#[test]
fn filters_skip_self_users_and_require_sub() {
    let mut hub = hub();
    let now = Instant::now();
    let mut fx = Effects::default();
    let mut hold = stream_hold(key("w", 1), 1000, &["c", "other"]);
    hold.subs[0].filters = Filters::from_names(&["skip-self", "skip-users", "require-sub", "x"]);
    hold.meta = Some(Arc::new(BTreeMap::from([(
        "user".to_string(),
        "alice".to_string(),
    )])));
    hub.hold(hold, now, &mut fx);
    let with_meta = |pairs: &[(&str, &str)]| {
        let mut item = stream_item("c", "m");
        item.meta = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        item
    };
    let mut fx = Effects::default();
    assert_eq!(
        hub.publish(with_meta(&[("sender", "alice")]), now, &mut fx),
        0
    );
    assert_eq!(
        hub.publish(with_meta(&[("sender", "bob")]), now, &mut fx),
        1
    );
    assert_eq!(
        hub.publish(with_meta(&[("skip_users", "bob, alice")]), now, &mut fx),
        0
    );
    assert_eq!(
        hub.publish(with_meta(&[("require_sub", "nope")]), now, &mut fx),
        0
    );
    assert_eq!(
        hub.publish(with_meta(&[("require_sub", "other")]), now, &mut fx),
        1
    );
}

#[test]
fn stale_prev_id_at_accept_is_retried_with_grip_last() {
    let mut hub = hub();
    let now = Instant::now();
    let mut fx = Effects::default();
    let mut item = stream_item("c", "x");
    item.id = Some("7".into());
    hub.publish(item, now, &mut fx);
    let mut hold = response_hold(key("w", 1), &["c"], 55);
    hold.subs[0].prev_id = Some("5".into());
    let mut fx = Effects::default();
    hub.hold(hold, now, &mut fx);
    assert!(hub.is_empty());
    assert_eq!(fx.resumes.len(), 1);
    assert_eq!(fx.resumes[0].kind, ResumeKind::Retry);
    assert_eq!(
        fx.resumes[0].grip_last,
        vec![("c".to_string(), "7".to_string())]
    );
}

#[test]
fn first_subscription_update_retries_response_holds_once_and_lingers() {
    let mut hub = Hub::new(HubConfig::default());
    let t0 = Instant::now();
    let mut fx = Effects::default();
    hub.hold(response_hold(key("w", 1), &["c"], 55), t0, &mut fx);
    hub.hold(stream_hold(key("w", 2), 100, &["c"]), t0, &mut fx);
    let mut fx = Effects::default();
    hub.tick(t0 + Duration::from_millis(999), &mut fx);
    assert!(fx.resumes.is_empty());
    hub.tick(t0 + FIRST_SUBSCRIPTION_DELAY, &mut fx);
    assert_eq!(fx.resumes.len(), 1, "only the response hold");
    assert_eq!(fx.resumes[0].key, key("w", 1));
    // The retried request comes back: the channel still exists, no second update.
    let mut fx = Effects::default();
    hub.hold(
        response_hold(key("w", 1), &["c"], 55),
        t0 + Duration::from_secs(2),
        &mut fx,
    );
    hub.tick(t0 + Duration::from_secs(4), &mut fx);
    assert!(fx.resumes.is_empty());
}

#[test]
fn hint_on_response_hold_retries_and_on_stream_without_link_is_ignored() {
    let mut hub = hub();
    let now = Instant::now();
    let mut fx = Effects::default();
    hub.hold(response_hold(key("w", 1), &["c"], 55), now, &mut fx);
    hub.hold(stream_hold(key("w", 2), 100, &["c"]), now, &mut fx);
    let mut fx = Effects::default();
    let mut item = response_item("c", "");
    item.response = Some(Arc::new(ResponseFormat {
        action: ResponseAction::Hint,
        code: None,
        reason: None,
        headers: Vec::new(),
        body: ResponseBody::Bytes(Bytes::new()),
    }));
    item.stream = Some(StreamFormat::Hint);
    hub.publish(item, now, &mut fx);
    assert_eq!(fx.resumes.len(), 1);
    assert_eq!(fx.resumes[0].key, key("w", 1));
    assert_eq!(hub.len(), 1);
}

#[test]
fn closed_streams_leave_the_channel() {
    let mut hub = hub();
    let now = Instant::now();
    let mut fx = Effects::default();
    hub.hold(stream_hold(key("w", 1), 100, &["c"]), now, &mut fx);
    hub.closed(&key("w", 1), now);
    assert!(hub.is_empty());
    assert_eq!(hub.subscribers("c"), 0);
    let mut fx = Effects::default();
    assert_eq!(hub.publish(stream_item("c", "x"), now, &mut fx), 0);
}

#[test]
fn subscriptions_are_capped() {
    let mut hub = Hub::new(HubConfig {
        connection_subscription_max: 2,
        ..HubConfig::default()
    });
    let mut fx = Effects::default();
    hub.hold(
        stream_hold(key("w", 1), 100, &["a", "b", "c"]),
        Instant::now(),
        &mut fx,
    );
    assert_eq!(hub.subscribers("c"), 0);
    assert_eq!(hub.subscribers("b"), 1);
}

fn limited_hub(rate: Option<u32>, hwm: Option<u32>) -> Hub {
    Hub::new(HubConfig {
        update_on_first_subscription: false,
        message_rate: rate,
        message_hwm: hwm,
        ..HubConfig::default()
    })
}

/// Stream ids delivered by fan-outs in `fx`.
fn fanned_out(fx: &Effects) -> Vec<u64> {
    fx.msgs
        .iter()
        .filter_map(|(_, m)| match m {
            ToConnmgr::Fanout(f) => Some(f.ids.iter().map(|i| i.0).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn a_run_of_items_to_one_channel_leaves_as_one_fanout_per_worker() {
    let mut hub = Hub::new(HubConfig::default());
    let t0 = Instant::now();
    let mut fx = Effects::default();
    for (w, id) in [("w0", 1), ("w0", 2), ("w1", 3)] {
        hub.hold(stream_hold(key(w, id), 1000, &["c"]), t0, &mut fx);
    }
    let mut fx = Effects::default();
    for data in ["a\n", "b\n", "c\n"] {
        hub.publish(stream_item("c", data), t0, &mut fx);
    }
    let mut sent: Vec<(Vec<u64>, Vec<u8>)> = fx
        .msgs
        .iter()
        .map(|(_, m)| match m {
            ToConnmgr::Fanout(f) => (f.ids.iter().map(|i| i.0).collect(), f.data.to_vec()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        vec![
            (vec![1, 2], b"a\nb\nc\n".to_vec()),
            (vec![3], b"a\nb\nc\n".to_vec())
        ]
    );
}

#[test]
fn message_rate_paces_deliveries_across_ticks() {
    let mut hub = limited_hub(Some(20), None);
    assert_eq!(hub.limiter_interval(), Some(Duration::from_millis(50)));
    let t0 = Instant::now();
    let mut fx = Effects::default();
    for id in 1..=5 {
        hub.hold(stream_hold(key("w", id), 1000, &["c"]), t0, &mut fx);
    }
    let mut fx = Effects::default();
    assert_eq!(hub.publish(stream_item("c", "a"), t0, &mut fx), 5);
    assert_eq!(hub.publish(stream_item("c", "b"), t0, &mut fx), 5);
    assert_eq!(fanned_out(&fx).len(), 1, "first action at once");
    let mut delivered = 1;
    let mut t = t0;
    let mut last = t0;
    while delivered < 10 {
        t += Duration::from_millis(10);
        let mut fx = Effects::default();
        hub.tick(t, &mut fx);
        let n = fanned_out(&fx).len();
        if n > 0 {
            last = t;
        }
        delivered += n;
        assert!(t < t0 + Duration::from_secs(2), "stalled");
    }
    // Nine more actions, one per 50 ms.
    assert_eq!(last - t0, Duration::from_millis(450));
    assert_eq!(hub.counters().hwm_dropped, 0);
}

#[test]
fn message_hwm_drops_beyond_the_bucket() {
    let mut hub = limited_hub(Some(20), Some(10));
    let t0 = Instant::now();
    let mut fx = Effects::default();
    for id in 1..=50 {
        hub.hold(stream_hold(key("w", id), 1000, &["c"]), t0, &mut fx);
    }
    let mut fx = Effects::default();
    // All 50 count as receivers; 10 fit the bucket (queued before the first batch runs).
    assert_eq!(hub.publish(stream_item("c", "a"), t0, &mut fx), 50);
    assert_eq!(fanned_out(&fx).len(), 1);
    assert_eq!(hub.counters().hwm_dropped, 40);
    let mut sent = 1;
    let mut t = t0;
    for _ in 0..100 {
        t += Duration::from_millis(50);
        let mut fx = Effects::default();
        hub.tick(t, &mut fx);
        sent += fanned_out(&fx).len();
    }
    assert_eq!(sent, 10);
}

#[test]
fn limited_response_holds_complete_when_their_turn_comes() {
    let mut hub = limited_hub(Some(1000), Some(100));
    let t0 = Instant::now();
    let mut fx = Effects::default();
    hub.hold(response_hold(key("w", 1), &["c"], 60), t0, &mut fx);
    let mut fx = Effects::default();
    assert_eq!(hub.publish(response_item("c", "hi\n"), t0, &mut fx), 1);
    assert!(matches!(
        &fx.msgs[..],
        [(_, ToConnmgr::Response(head))] if head.code == 201
    ));
    assert!(hub.is_empty());
}

#[test]
fn hwm_without_rate_caps_each_publish() {
    let mut hub = limited_hub(None, Some(2));
    let t0 = Instant::now();
    let mut fx = Effects::default();
    for id in 1..=3 {
        hub.hold(stream_hold(key("w", id), 1000, &["c"]), t0, &mut fx);
    }
    let mut fx = Effects::default();
    hub.publish(stream_item("c", "a"), t0, &mut fx);
    assert_eq!(fanned_out(&fx).len(), 2);
    let mut fx = Effects::default();
    hub.publish(stream_item("c", "b"), t0, &mut fx);
    assert_eq!(fanned_out(&fx).len(), 2);
    assert_eq!(hub.counters().hwm_dropped, 2);
}

fn linked_hold(k: SessionKey, channels: &[&str], timeout: u64) -> Hold {
    let mut hold = stream_hold(k, 1000, channels);
    hold.mode = HoldMode::Stream {
        head: Some(reply("start\n")),
        keep_alive: None,
        next_link: Some(Arc::from("http://example.com/next")),
        link_timeout: Duration::from_secs(timeout),
    };
    hold
}

#[test]
fn next_link_is_fetched_when_a_channel_stays_silent() {
    let mut hub = hub();
    let t0 = Instant::now();
    let mut fx = Effects::default();
    hub.hold(linked_hold(key("w", 1), &["a", "b"], 5), t0, &mut fx);
    // Both channels deliver in the first period: a new period starts.
    hub.publish(stream_item("a", "x"), t0 + Duration::from_secs(1), &mut fx);
    hub.publish(stream_item("b", "y"), t0 + Duration::from_secs(2), &mut fx);
    let mut fx = Effects::default();
    hub.tick(t0 + Duration::from_secs(5), &mut fx);
    assert!(fx.resumes.is_empty());
    assert_eq!(hub.len(), 1);
    // Only `a` delivers in the second: recovery through the next link.
    hub.publish(stream_item("a", "x"), t0 + Duration::from_secs(6), &mut fx);
    hub.tick(t0 + Duration::from_secs(9), &mut fx);
    assert!(fx.resumes.is_empty(), "not yet due");
    hub.tick(t0 + Duration::from_secs(10), &mut fx);
    match &fx.resumes[..] {
        [r] => assert_eq!(
            r.kind,
            ResumeKind::NextLink(Arc::from("http://example.com/next"))
        ),
        other => panic!("unexpected {other:?}"),
    }
    assert!(hub.is_empty());
}

#[test]
fn streams_without_a_link_never_recover() {
    let mut hub = hub();
    let t0 = Instant::now();
    let mut fx = Effects::default();
    hub.hold(stream_hold(key("w", 1), 1000, &["a"]), t0, &mut fx);
    hub.tick(t0 + Duration::from_secs(1000), &mut fx);
    assert!(fx.resumes.is_empty());
    assert_eq!(hub.len(), 1);
}

#[test]
fn first_subscription_update_fetches_stream_next_links() {
    let mut hub = Hub::new(HubConfig::default());
    let t0 = Instant::now();
    let mut fx = Effects::default();
    hub.hold(linked_hold(key("w", 1), &["a"], 120), t0, &mut fx);
    hub.hold(stream_hold(key("w", 2), 1000, &["a"]), t0, &mut fx);
    let mut fx = Effects::default();
    hub.tick(t0 + FIRST_SUBSCRIPTION_DELAY, &mut fx);
    assert_eq!(fx.resumes.len(), 1, "only the stream with a link");
    assert_eq!(hub.len(), 1);
}

#[test]
fn batched_credits_flush_each_stream_in_order_and_skip_unknown_ids() {
    let mut hub = hub();
    let now = Instant::now();
    let mut fx = Effects::default();
    // 6 credits each: the head's "start\n" uses them all.
    hub.hold(stream_hold(key("w", 1), 6, &["c"]), now, &mut fx);
    hub.hold(stream_hold(key("w", 2), 6, &["c"]), now, &mut fx);
    let mut fx = Effects::default();
    hub.publish(stream_item("c", "ab"), now, &mut fx);
    hub.publish(stream_item("c", "cd"), now, &mut fx);
    assert!(fx.msgs.is_empty(), "no credit: both queued");
    let mut fx = Effects::default();
    let grants = [
        (StreamId(1), 3),
        (StreamId(99), 5),
        (StreamId(2), 2),
        (StreamId(1), 1),
    ];
    hub.credits(&WorkerId::new("w"), &grants, now, &mut fx);
    let bodies: Vec<(u64, &[u8])> = fx
        .msgs
        .iter()
        .map(|(w, m)| match m {
            ToConnmgr::Body(b) if w == &WorkerId::new("w") && b.more => (b.id.0, b.data.as_ref()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        bodies,
        vec![
            (1, &b"ab"[..]),
            (1, &b"c"[..]),
            (2, &b"ab"[..]),
            (1, &b"d"[..])
        ],
        "each grant applied in order, split to fit; the unknown id changes nothing"
    );
}

#[test]
fn subscriptions_share_the_channel_name_and_still_match_by_value() {
    let mut hub = hub();
    let now = Instant::now();
    let mut fx = Effects::default();
    hub.hold(stream_hold(key("w", 1), 100, &["c", "d"]), now, &mut fx);
    hub.hold(stream_hold(key("w", 2), 100, &["d"]), now, &mut fx);
    for held in hub.sessions.values() {
        for sub in &held.subs {
            let (shared, _) = hub.channels.get_key_value(&*sub.name).unwrap();
            assert!(Arc::ptr_eq(shared, &sub.name), "{}", sub.name);
        }
    }
    // A subscription holding its own copy of the name is still found (by value).
    if let Some(held) = hub.sessions.values_mut().find(|h| h.key == key("w", 2)) {
        held.subs[0].name = Arc::from("d");
    }
    let mut fx = Effects::default();
    assert_eq!(hub.publish(stream_item("d", "x"), now, &mut fx), 2);
    assert_eq!(hub.publish(stream_item("c", "y"), now, &mut fx), 1);
    let ids: Vec<Vec<StreamId>> = fx
        .msgs
        .iter()
        .map(|(_, m)| match m {
            ToConnmgr::Fanout(f) => {
                let mut ids = f.ids.clone();
                ids.sort();
                ids
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        ids,
        vec![vec![StreamId(1), StreamId(2)], vec![StreamId(1)]],
        "one Fanout per worker and publish"
    );
}

/// Every table of the hub that grows with held requests, as `(name, entries)`.
fn footprint(hub: &Hub) -> Vec<(&'static str, usize)> {
    vec![
        ("sessions", hub.sessions.len()),
        ("by_key", hub.by_key.len()),
        ("channels", hub.channels.len()),
        ("timers", hub.timers.len()),
        ("link_timers", hub.link_timers.len()),
        ("updates", hub.updates.len()),
        ("lingering", hub.lingering.len()),
        ("sequencing", hub.sequencing.len()),
        ("ws_cids", hub.ws_cids.len()),
        ("subscriptions", hub.watch.len()),
    ]
}

/// The churn soak's pattern (issue 7): long-polls answered by publishes and re-polled, stream
/// holds with keep-alives and next links, WebSockets, all closed by their clients. Nothing
/// may stay behind once a session ended: in particular an answered long-poll's timeout entry,
/// which used to wait in `timers` for its 55 s, so that thousands of answers a second piled
/// up megabytes of dead entries.
#[test]
fn finished_sessions_leave_no_state_behind() {
    let mut hub = Hub::new(HubConfig {
        update_on_first_subscription: false,
        subscription_linger: Duration::from_secs(5),
        ..HubConfig::default()
    });
    let t0 = Instant::now();
    let mut fx = Effects::default();
    let mut next = 0u64;
    for round in 0..20u64 {
        let now = t0 + Duration::from_millis(500 * round);
        let polls: Vec<SessionKey> = (0..50)
            .map(|_| {
                next += 1;
                key("w", next)
            })
            .collect();
        for k in &polls {
            hub.hold(response_hold(k.clone(), &["poll"], 55), now, &mut fx);
        }
        next += 1;
        let stream = key("w", next);
        let mut hold = linked_hold(stream.clone(), &["stream"], 120);
        if let HoldMode::Stream { keep_alive, .. } = &mut hold.mode {
            *keep_alive = Some(Arc::new(KeepAlive {
                data: Bytes::from_static(b":\n\n"),
                timeout: Duration::from_secs(55),
                idle: true,
            }));
        }
        hub.hold(hold, now, &mut fx);
        next += 1;
        let ws = key("w", next);
        let inbox = Arc::new(crate::session::Inbox::new(Bytes::new(), false, 1000));
        let sink = Arc::new(WsSink::new(inbox, now));
        hub.ws_open(
            ws.clone(),
            Arc::from(format!("cid-{next}")),
            sink,
            None,
            now,
        );
        assert_eq!(hub.ws_subscribe(&ws, sub("ws"), now), WsSubscribed::Added);

        assert_eq!(hub.publish(response_item("poll", "m\n"), now, &mut fx), 50);
        // Output pushes the stream's keep-alive back: its timer entry goes stale.
        hub.publish(stream_item("stream", "m\n"), now, &mut fx);
        assert_eq!(
            hub.len(),
            2,
            "round {round}: the stream and the WebSocket remain"
        );
        assert_eq!(
            hub.timers.len(),
            1,
            "round {round}: only the stream's timer remains"
        );
        assert_eq!(hub.link_timers.len(), 1);
        hub.tick(now + Duration::from_millis(100), &mut fx);
        hub.closed(&stream, now);
        hub.ws_close(&ws, now);
        assert!(hub.is_empty(), "round {round}");
    }
    let left: Vec<_> = footprint(&hub)
        .into_iter()
        .filter(|&(name, n)| n > 0 && !matches!(name, "channels" | "lingering" | "subscriptions"))
        .collect();
    assert!(left.is_empty(), "left after every client went: {left:?}");
    // Past the linger the emptied channels go too.
    hub.tick(t0 + Duration::from_secs(30), &mut fx);
    let left: Vec<_> = footprint(&hub)
        .into_iter()
        .filter(|&(_, n)| n > 0)
        .collect();
    assert!(left.is_empty(), "left after the linger: {left:?}");

    // A crowd's tables are given back once it left.
    let t1 = t0 + Duration::from_secs(31);
    for id in 0..2_000 {
        hub.hold(
            response_hold(key("w", 100_000 + id), &["crowd"], 55),
            t1,
            &mut fx,
        );
    }
    let crowd = hub.sessions.capacity();
    assert!(crowd >= 2_000);
    assert_eq!(
        hub.publish(response_item("crowd", "m\n"), t1, &mut fx),
        2_000
    );
    let kept = [
        hub.sessions.capacity(),
        hub.by_key.capacity(),
        hub.channels.get("crowd").map_or(0, |c| c.subs.capacity()),
    ];
    assert!(kept.iter().all(|&c| c < 1_024), "{kept:?} (crowd {crowd})");
}
