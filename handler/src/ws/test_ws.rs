//! The built-in `test` target over WebSockets, answering like Pushpin 1.36's test handler
//! (observed):
//!
//! - the path is taken as for HTTP ([`test_path`]: route `path_beg` stripped, query ignored, one
//!   trailing `/` dropped); only `/ws` is a WebSocket, every other path is rejected with
//!   `404` and `no such test resource`;
//! - `/ws` accepts with no extra headers and echoes every TEXT and BINARY message as it is;
//! - when GRIP is enabled on the route (Pushpin's test handler is a GRIP origin that got the
//!   `grip` offer) it subscribes to the channels of `?channel=` (default `test`), so a
//!   `ws-message` publish reaches the client; the subscriptions go through the same
//!   [`ConnState`] as a real origin's `subscribe` control messages;
//! - a client close is answered with the same code and reason.

use bytes::Bytes;
use holdfast_proto::internal::WsKind;
use holdfast_proto::routes::{Route, Target};
use tokio::time::Instant;

use super::conn::{Applied, ConnState, WsOut};
use super::woh::Action;
use super::ClientEvent;
use crate::proxy::test_target::{self, test_path, NOT_FOUND};

/// Serves a WebSocket handshake on the `test` target (`target`, of route `route`). `path` is
/// the rewritten path with its query.
pub async fn run(
    w: &mut WsOut<'_>,
    route: &Route,
    target: &Target,
    path: &str,
    grip_enabled: bool,
) {
    let local = test_path(path, route.path_beg.as_deref());
    let local = if local.len() >= 2 {
        local.strip_suffix('/').unwrap_or(&local)
    } else {
        &local
    };
    if local != "/ws" {
        w.text_response(404, NOT_FOUND).await;
        return;
    }
    if w.accept(Vec::new()).await.is_err() {
        return;
    }
    let mut st = ConnState::new(w, route, target, &super::headers::uuid_v4());
    st.connected(w).await;
    if grip_enabled && st.apply(w, subscriptions(path)).await == Applied::End {
        return;
    }
    echo(w, &mut st).await;
}

/// `subscribe` control messages for the channels named by `?channel=` (default `test`).
fn subscriptions(path: &str) -> Vec<Action> {
    test_target::channels(path)
        .split(", ")
        .map(|channel| {
            let json = serde_json::json!({ "type": "subscribe", "channel": channel });
            Action::Control(Bytes::from(json.to_string()))
        })
        .collect()
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Echoes client messages until the close handshake ends or the client is gone.
async fn echo(w: &mut WsOut<'_>, st: &mut ConnState) {
    let out = w.out();
    loop {
        while let Some(event) = w.ws().pop() {
            let actions = match event {
                ClientEvent::Message(kind, data) => {
                    out.credit(u32::try_from(data.len()).unwrap_or(u32::MAX));
                    match kind {
                        WsKind::Text | WsKind::Binary if st.client_closed.is_none() => {
                            vec![Action::Send(kind, data)]
                        }
                        _ => continue,
                    }
                }
                ClientEvent::Close(code, reason) => {
                    if st.client_closed.is_some() {
                        continue;
                    }
                    st.client_closed = Some((code, reason.clone()));
                    vec![Action::Close(code, reason)]
                }
            };
            if st.apply(w, actions).await == Applied::End {
                return;
            }
        }
        if w.ws().is_gone() || (st.client_closed.is_some() && st.origin_closed) {
            return;
        }
        if !st.service(w).await {
            return;
        }
        let wakeup = st.next_wakeup();
        tokio::select! {
            () = w.ws().wait() => {}
            () = st.changed() => {}
            () = sleep_until(wakeup), if wakeup.is_some() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribes_to_query_channels() {
        let json = |a: &Action| match a {
            Action::Control(j) => serde_json::from_slice::<serde_json::Value>(j).unwrap(),
            other => panic!("{other:?}"),
        };
        let default = subscriptions("/ws");
        assert_eq!(default.len(), 1);
        assert_eq!(
            json(&default[0]),
            serde_json::json!({"type": "subscribe", "channel": "test"})
        );
        let two = subscriptions("/t/ws?channel=a&channel=b%20c");
        let channels: Vec<_> = two.iter().map(|a| json(a)["channel"].clone()).collect();
        assert_eq!(channels, ["a", "b c"]);
    }
}
