//! Publishing test messages: over the HTTP control API (`POST <prefix>/publish/` with
//! `{"items":[…]}`, each request waiting for its answer, on a connection kept while the server
//! agrees: Holdfast keeps it, Pushpin closes after every answer) or over
//! ZeroMQ PUSH (`zmq:tcp://…`, one `J`+JSON item per message, as Pushpin's PULL input takes).
//! Every item's content embeds its sequence number and publish time: `<seq> <ts>`.

use serde_json::{json, Value};
use tokio::net::TcpStream;

use super::http::{self, Target};
use super::subscriber::Transport;

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub channel: String,
    pub id: String,
    pub seq: u64,
}

/// The JSON item for `item` published at `ts` (ns since the epoch), shaped for `transport`.
pub fn item_json(item: &Item, ts: u64, transport: Transport) -> Value {
    let formats = match transport {
        Transport::Stream => json!({"http-stream": {"content": format!("{} {ts}\n", item.seq)}}),
        Transport::Sse => {
            json!({"http-stream": {"content": format!("event: m\ndata: {} {ts}\n\n", item.seq)}})
        }
        Transport::Ws => json!({"ws-message": {"content": format!("{} {ts}", item.seq)}}),
    };
    json!({"channel": item.channel, "id": item.id, "formats": formats})
}

/// Where messages go.
pub enum Publisher {
    Http {
        target: Target,
        conn: Option<TcpStream>,
        buf: Vec<u8>,
    },
    Zmq {
        socket: zmq::Socket,
        _ctx: zmq::Context,
    },
}

impl Publisher {
    /// `http://host:port[/prefix]` or `zmq:tcp://host:port`.
    pub fn new(spec: &str) -> Result<Publisher, String> {
        if let Some(endpoint) = spec.strip_prefix("zmq:") {
            let ctx = zmq::Context::new();
            let socket = ctx
                .socket(zmq::PUSH)
                .map_err(|e| format!("zmq socket: {e}"))?;
            socket
                .set_linger(2000)
                .map_err(|e| format!("zmq linger: {e}"))?;
            socket.set_sndhwm(0).map_err(|e| format!("zmq hwm: {e}"))?;
            socket
                .connect(endpoint)
                .map_err(|e| format!("zmq connect {endpoint}: {e}"))?;
            Ok(Publisher::Zmq { socket, _ctx: ctx })
        } else {
            Ok(Publisher::Http {
                target: Target::parse(spec)?,
                conn: None,
                buf: Vec::new(),
            })
        }
    }

    /// Publishes `items`, stamped with the current time, in one request (HTTP) or one message
    /// each (ZeroMQ).
    pub async fn publish(&mut self, items: &[Item], transport: Transport) -> Result<(), String> {
        let ts = super::stats::now_ns();
        match self {
            Publisher::Http { target, conn, buf } => {
                let body = json!({"items": items.iter().map(|i| item_json(i, ts, transport)).collect::<Vec<_>>()});
                let body = body.to_string().into_bytes();
                let path = format!("{}/publish/", target.prefix);
                // One retry on a fresh connection (the server may have closed an idle one).
                for attempt in 0..2 {
                    if conn.is_none() {
                        *conn = Some(
                            http::connect(target, 0, 0)
                                .await
                                .map_err(|e| format!("publish connect: {e}"))?,
                        );
                        buf.clear();
                    }
                    let Some(stream) = conn.as_mut() else {
                        continue;
                    };
                    match http::post(stream, buf, &target.host, &path, "application/json", &body)
                        .await
                    {
                        Ok(resp) => {
                            if resp.head.close {
                                *conn = None;
                            }
                            if resp.head.status != 200 {
                                return Err(format!(
                                    "publish status {}: {}",
                                    resp.head.status,
                                    String::from_utf8_lossy(&resp.body).trim()
                                ));
                            }
                            return Ok(());
                        }
                        Err(e) => {
                            *conn = None;
                            if attempt == 1 {
                                return Err(format!("publish: {e}"));
                            }
                        }
                    }
                }
                Err("publish failed".into())
            }
            Publisher::Zmq { socket, .. } => {
                let frames: Vec<Vec<u8>> = items
                    .iter()
                    .map(|i| {
                        let mut f = b"J".to_vec();
                        f.extend_from_slice(item_json(i, ts, transport).to_string().as_bytes());
                        f
                    })
                    .collect();
                // A PUSH send only queues (no high-water mark), but it is a blocking call.
                tokio::task::block_in_place(|| {
                    for f in &frames {
                        socket
                            .send(f.as_slice(), 0)
                            .map_err(|e| format!("zmq send: {e}"))?;
                    }
                    Ok(())
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_per_transport() {
        let item = Item {
            channel: "c".into(),
            id: "m7".into(),
            seq: 7,
        };
        assert_eq!(
            item_json(&item, 42, Transport::Stream),
            json!({"channel": "c", "id": "m7", "formats": {"http-stream": {"content": "7 42\n"}}})
        );
        assert_eq!(
            item_json(&item, 42, Transport::Sse)["formats"]["http-stream"]["content"],
            "event: m\ndata: 7 42\n\n"
        );
        assert_eq!(
            item_json(&item, 42, Transport::Ws)["formats"]["ws-message"]["content"],
            "7 42"
        );
    }
}
