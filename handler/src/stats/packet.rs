//! Stats packets (reference §6.7) and their two wire forms: `"<type> T<tnetstring map>"` and
//! `"<type> J<json object>"` (`stats_format`). Field names and shapes follow what Pushpin 1.36
//! publishes (observed on its stats socket).

use holdfast_proto::config::StatsFormat;
use holdfast_proto::tnetstring::{self, Value};

/// One field value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// A byte string (JSON string).
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

/// One packet: its type and its fields in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// `conn`, `sub`, `message`, `report`.
    pub kind: &'static str,
    /// Fields, `from` first.
    pub fields: Vec<(&'static str, Field)>,
}

impl Packet {
    /// A packet of `kind` from instance `from`.
    pub fn new(kind: &'static str, from: &str) -> Self {
        Self {
            kind,
            fields: vec![("from", Field::Str(from.to_string()))],
        }
    }

    /// Adds a string field.
    pub fn str(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.fields.push((name, Field::Str(value.into())));
        self
    }

    /// Adds an integer field (saturating at `i64::MAX`).
    pub fn int(mut self, name: &'static str, value: impl TryInto<i64>) -> Self {
        let v = value.try_into().unwrap_or(i64::MAX);
        self.fields.push((name, Field::Int(v)));
        self
    }

    /// Adds a boolean field.
    pub fn bool(mut self, name: &'static str, value: bool) -> Self {
        self.fields.push((name, Field::Bool(value)));
        self
    }

    /// The message for the PUB socket.
    pub fn encode(&self, format: StatsFormat) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.fields.len() * 24);
        out.extend_from_slice(self.kind.as_bytes());
        out.push(b' ');
        match format {
            StatsFormat::Tnetstring => {
                out.push(b'T');
                let map = Value::map(self.fields.iter().map(|(k, v)| {
                    let v = match v {
                        Field::Str(s) => Value::bytes(s.as_bytes()),
                        Field::Int(i) => Value::Int(*i),
                        Field::Bool(b) => Value::Bool(*b),
                    };
                    (k.as_bytes(), v)
                }));
                tnetstring::write(&map, &mut out);
            }
            StatsFormat::Json => {
                out.push(b'J');
                let mut obj = serde_json::Map::with_capacity(self.fields.len());
                for (k, v) in &self.fields {
                    let v = match v {
                        Field::Str(s) => serde_json::Value::from(s.as_str()),
                        Field::Int(i) => serde_json::Value::from(*i),
                        Field::Bool(b) => serde_json::Value::from(*b),
                    };
                    obj.insert((*k).to_string(), v);
                }
                // serde_json writes the keys sorted; order carries no meaning in either form.
                // Serializing a map of plain values cannot fail.
                out.extend_from_slice(
                    serde_json::to_string(&serde_json::Value::Object(obj))
                        .unwrap_or_default()
                        .as_bytes(),
                );
            }
        }
        out
    }
}

/// The counters of one `report` packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Most connections open at once during the interval.
    pub connections: u64,
    /// Connection-minutes.
    pub minutes: u64,
    /// Items received from publishers.
    pub received: u64,
    /// Messages sent to clients (one per receiver).
    pub sent: u64,
    /// Long-polls completed by a publish.
    pub http_response_sent: u64,
    /// Published content bytes sent to clients.
    pub client_content_bytes_sent: u64,
    /// Length of the interval in milliseconds.
    pub duration_ms: u64,
}

impl Report {
    /// The packet. Pushpin's traffic counters Holdfast does not measure (header bytes,
    /// server-side bytes and messages) are sent as 0 so consumers find every field they know.
    pub fn packet(&self, from: &str) -> Packet {
        Packet::new("report", from)
            .int("connections", self.connections)
            .int("minutes", self.minutes)
            .int("received", self.received)
            .int("sent", self.sent)
            .int("http-response-sent", self.http_response_sent)
            .int("duration", self.duration_ms)
            .int("client-header-bytes-received", 0)
            .int("client-header-bytes-sent", 0)
            .int("client-content-bytes-received", 0)
            .int("client-content-bytes-sent", self.client_content_bytes_sent)
            .int("client-messages-received", 0)
            .int("client-messages-sent", 0)
            .int("server-header-bytes-received", 0)
            .int("server-header-bytes-sent", 0)
            .int("server-content-bytes-received", 0)
            .int("server-content-bytes-sent", 0)
            .int("server-messages-received", 0)
            .int("server-messages-sent", 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tnetstring_and_json_forms() {
        let p = Packet::new("sub", "h1")
            .str("mode", "stream")
            .str("channel", "c")
            .int("ttl", 60u32)
            .int("subscribers", 1usize);
        assert_eq!(
            p.encode(StatsFormat::Tnetstring),
            b"sub T72:4:from,2:h1,4:mode,6:stream,7:channel,1:c,3:ttl,2:60#11:subscribers,1:1#}"
        );
        assert_eq!(
            String::from_utf8(p.encode(StatsFormat::Json)).unwrap(),
            r#"sub J{"channel":"c","from":"h1","mode":"stream","subscribers":1,"ttl":60}"#
        );
        let gone = Packet::new("conn", "h1")
            .str("id", "w:1-1")
            .bool("unavailable", true);
        assert_eq!(
            gone.encode(StatsFormat::Tnetstring),
            b"conn T47:4:from,2:h1,2:id,5:w:1-1,11:unavailable,4:true!}"
        );
        assert_eq!(
            String::from_utf8(gone.encode(StatsFormat::Json)).unwrap(),
            r#"conn J{"from":"h1","id":"w:1-1","unavailable":true}"#
        );
    }

    #[test]
    fn report_has_pushpins_fields() {
        let r = Report {
            connections: 2,
            minutes: 1,
            received: 3,
            sent: 4,
            http_response_sent: 1,
            client_content_bytes_sent: 9,
            duration_ms: 10_000,
        };
        let text = String::from_utf8(r.packet("h").encode(StatsFormat::Json)).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(text.strip_prefix("report J").unwrap()).unwrap();
        assert_eq!(json["connections"], 2);
        assert_eq!(json["sent"], 4);
        assert_eq!(json["duration"], 10_000);
        assert_eq!(json["client-content-bytes-sent"], 9);
        assert_eq!(json.as_object().unwrap().len(), 19);
    }
}
