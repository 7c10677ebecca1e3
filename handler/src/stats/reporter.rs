//! The stats state machine, pure: connection and subscription tables with their refresh
//! times, and the counters of the current report interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::packet::{Packet, Report};
use super::Pending;
use crate::observe::{ConnKind, SubMode};

/// How often the tables are scanned for refreshes.
const REFRESH_SCAN: Duration = Duration::from_secs(1);

/// Settings.
#[derive(Clone, Debug)]
pub struct ReporterConfig {
    /// `from` of every packet (the handler instance id).
    pub from: String,
    /// Whether packets are wanted (a stats socket is bound and somebody subscribes to it).
    /// Without them the tables and counters are still kept (the metrics read
    /// connection-minutes and subscriptions from them), but no packet is built: a `conn`
    /// packet per opened and per closed connection and a `message` packet per delivery were
    /// built only to be dropped.
    pub send: bool,
    /// `stats_connection_send`: whether `conn` packets are sent.
    pub connection_send: bool,
    /// `stats_connection_ttl` (seconds).
    pub connection_ttl: u32,
    /// `stats_subscription_ttl` (seconds).
    pub subscription_ttl: u32,
    /// `stats_report_interval`; zero disables reports.
    pub report_interval: Duration,
}

#[derive(Debug)]
struct Conn {
    kind: ConnKind,
    peer: Arc<str>,
    /// Explicit id of its route, once known.
    route: Option<Arc<str>>,
    opened: Instant,
    /// Connection-minutes already counted for it.
    minutes: u64,
    refresh_at: Instant,
}

#[derive(Debug)]
struct Sub {
    subscribers: usize,
    refresh_at: Instant,
}

/// See the module docs.
#[derive(Debug)]
pub struct Reporter {
    cfg: ReporterConfig,
    conns: HashMap<Arc<str>, Conn>,
    subs: HashMap<(SubMode, Arc<str>), Sub>,
    report: Report,
    report_start: Instant,
    next_scan: Instant,
    minutes_for_metrics: u64,
}

/// Adds `route` when the connection's route has an explicit id (Pushpin leaves it out
/// otherwise).
fn with_route(p: Packet, route: Option<&str>) -> Packet {
    match route {
        Some(r) => p.str("route", r),
        None => p,
    }
}

fn ttl_refresh(ttl: u32) -> Duration {
    Duration::from_millis(u64::from(ttl) * 750).max(Duration::from_secs(1))
}

/// Minutes a connection open since `opened` has started by `now` (a connection counts for
/// the minute it opens in, as Pushpin's first report shows `minutes: 1`).
fn minutes_started(opened: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(opened).as_secs() / 60 + 1
}

impl Reporter {
    /// An empty reporter whose first interval starts at `now`.
    pub fn new(cfg: ReporterConfig, now: Instant) -> Self {
        Self {
            cfg,
            conns: HashMap::new(),
            subs: HashMap::new(),
            report: Report::default(),
            report_start: now,
            next_scan: now + REFRESH_SCAN,
            minutes_for_metrics: 0,
        }
    }

    /// Live subscriptions.
    pub fn subscriptions(&self) -> usize {
        self.subs.len()
    }

    /// Whether packets are wanted from the next step on (see [`ReporterConfig::send`]).
    pub fn set_send(&mut self, send: bool) {
        self.cfg.send = send;
    }

    /// Connection-minutes counted since the last call (for the metrics counter).
    pub fn take_minutes_for_metrics(&mut self) -> u64 {
        std::mem::take(&mut self.minutes_for_metrics)
    }

    fn add_minutes(&mut self, n: u64) {
        self.report.minutes += n;
        self.minutes_for_metrics += n;
    }

    fn conn_packet(&self, id: &str, conn: &Conn) -> Packet {
        let p = Packet::new("conn", &self.cfg.from)
            .str("id", id)
            .str("type", conn.kind.as_str())
            .str("peer-address", &*conn.peer)
            .int("ttl", self.cfg.connection_ttl);
        with_route(p, conn.route.as_deref())
    }

    fn sub_packet(&self, mode: SubMode, channel: &str, subscribers: usize) -> Packet {
        Packet::new("sub", &self.cfg.from)
            .str("mode", mode.as_str())
            .str("channel", channel)
            .int("ttl", self.cfg.subscription_ttl)
            .int("subscribers", subscribers)
    }

    /// Applies what happened and returns the packets due at `now`, in order.
    pub fn step(&mut self, pending: Pending, now: Instant) -> Vec<Packet> {
        let mut out = Vec::new();
        let (send, conn_send) = (self.cfg.send, self.cfg.send && self.cfg.connection_send);
        let from = self.cfg.from.clone();
        let conn_refresh = ttl_refresh(self.cfg.connection_ttl);
        let sub_refresh = ttl_refresh(self.cfg.subscription_ttl);

        for (id, change) in pending.conns {
            if let Some((kind, peer, opened)) = change.opened {
                let conn = Conn {
                    kind,
                    peer,
                    route: change.route.clone(),
                    opened,
                    minutes: 1,
                    refresh_at: now + conn_refresh,
                };
                self.add_minutes(1);
                if conn_send {
                    out.push(self.conn_packet(&id, &conn));
                }
                self.conns.insert(id.clone(), conn);
                self.report.connections = self.report.connections.max(self.conns.len() as u64);
            } else if let Some(route) = change.route {
                // The route became known after the open packet went out: say it now rather
                // than at the next refresh.
                let resend = match self.conns.get_mut(&id) {
                    Some(conn) if conn.route.as_ref() != Some(&route) => {
                        conn.route = Some(route);
                        !change.closed
                    }
                    _ => false,
                };
                if resend && conn_send {
                    if let Some(conn) = self.conns.get(&id) {
                        out.push(self.conn_packet(&id, conn));
                    }
                }
            }
            if change.closed {
                if let Some(conn) = self.conns.remove(&id) {
                    crate::grip::hub::shrink_sparse(&mut self.conns);
                    let due = minutes_started(conn.opened, now).saturating_sub(conn.minutes);
                    self.add_minutes(due);
                    if conn_send {
                        let p = Packet::new("conn", &from)
                            .str("id", &*id)
                            .bool("unavailable", true);
                        out.push(with_route(p, conn.route.as_deref()));
                    }
                }
            }
        }

        for ((mode, channel), state) in pending.subs {
            match state {
                Some(subscribers) => {
                    let known = self
                        .subs
                        .get(&(mode, channel.clone()))
                        .map(|s| s.subscribers);
                    if send && known != Some(subscribers) {
                        out.push(self.sub_packet(mode, &channel, subscribers));
                    }
                    self.subs.insert(
                        (mode, channel),
                        Sub {
                            subscribers,
                            refresh_at: now + sub_refresh,
                        },
                    );
                }
                None => {
                    if self.subs.remove(&(mode, channel.clone())).is_some() && send {
                        out.push(
                            Packet::new("sub", &from)
                                .str("mode", mode.as_str())
                                .str("channel", &*channel)
                                .bool("unavailable", true),
                        );
                    }
                }
            }
        }

        if send {
            for m in pending.messages {
                let mut p = Packet::new("message", &from).str("channel", &*m.channel);
                if let Some(id) = &m.item_id {
                    p = p.str("item-id", &**id);
                }
                out.push(
                    p.int("count", m.count)
                        .str("transport", m.transport.as_str()),
                );
            }
        }
        self.report.received += pending.received;
        self.report.sent += pending.sent;
        self.report.http_response_sent += pending.http_response_sent;
        self.report.client_content_bytes_sent += pending.content_bytes_sent;

        if now >= self.next_scan {
            self.next_scan = now + REFRESH_SCAN;
            self.refresh(now, &mut out);
        }

        if !self.cfg.report_interval.is_zero()
            && now.saturating_duration_since(self.report_start) >= self.cfg.report_interval
        {
            // Connection-minutes of connections still open.
            let mut due = 0;
            for conn in self.conns.values_mut() {
                let started = minutes_started(conn.opened, now);
                due += started.saturating_sub(conn.minutes);
                conn.minutes = conn.minutes.max(started);
            }
            self.add_minutes(due);
            let mut report = std::mem::take(&mut self.report);
            report.connections = report.connections.max(self.conns.len() as u64);
            report.duration_ms =
                now.saturating_duration_since(self.report_start).as_millis() as u64;
            if send {
                out.push(report.packet(&from));
            }
            self.report_start = now;
            self.report.connections = self.conns.len() as u64;
        }
        out
    }

    fn refresh(&mut self, now: Instant, out: &mut Vec<Packet>) {
        let conn_refresh = ttl_refresh(self.cfg.connection_ttl);
        let sub_refresh = ttl_refresh(self.cfg.subscription_ttl);
        let mut due_conns = Vec::new();
        for (id, conn) in self.conns.iter_mut() {
            if conn.refresh_at <= now {
                conn.refresh_at = now + conn_refresh;
                due_conns.push(id.clone());
            }
        }
        if self.cfg.send && self.cfg.connection_send {
            for id in due_conns {
                if let Some(conn) = self.conns.get(&id) {
                    out.push(self.conn_packet(&id, conn));
                }
            }
        }
        let mut due_subs = Vec::new();
        for ((mode, channel), sub) in self.subs.iter_mut() {
            if sub.refresh_at <= now {
                sub.refresh_at = now + sub_refresh;
                due_subs.push((*mode, channel.clone(), sub.subscribers));
            }
        }
        if self.cfg.send {
            for (mode, channel, subscribers) in due_subs {
                out.push(self.sub_packet(mode, &channel, subscribers));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::packet::Field;
    use super::super::{ConnChange, MessageStat};
    use super::*;
    use crate::observe::Transport;

    fn cfg() -> ReporterConfig {
        ReporterConfig {
            from: "h".into(),
            send: true,
            connection_send: true,
            connection_ttl: 4,
            subscription_ttl: 8,
            report_interval: Duration::from_secs(10),
        }
    }

    fn field<'a>(p: &'a Packet, name: &str) -> Option<&'a Field> {
        p.fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    fn kinds(ps: &[Packet]) -> Vec<&'static str> {
        ps.iter().map(|p| p.kind).collect()
    }

    /// What the observer records when connection `id` closes.
    fn closing(p: &mut Pending, id: &str) {
        p.conns.insert(
            Arc::from(id),
            ConnChange {
                closed: true,
                ..ConnChange::default()
            },
        );
    }

    #[test]
    fn connections_open_refresh_close_and_count_minutes() {
        let t0 = Instant::now();
        let mut r = Reporter::new(cfg(), t0);
        let mut p = Pending::default();
        p.conns.insert(
            Arc::from("w:1-1"),
            ConnChange {
                opened: Some((ConnKind::Http, Arc::from("10.0.0.1"), t0)),
                route: None,
                closed: false,
            },
        );
        let out = r.step(p, t0);
        assert_eq!(kinds(&out), ["conn"]);
        assert_eq!(
            field(&out[0], "peer-address"),
            Some(&Field::Str("10.0.0.1".into()))
        );
        assert_eq!(field(&out[0], "ttl"), Some(&Field::Int(4)));
        assert_eq!(field(&out[0], "from"), Some(&Field::Str("h".into())));
        // Refreshed after ttl*3/4 = 3 s.
        assert!(r
            .step(Pending::default(), t0 + Duration::from_secs(2))
            .is_empty());
        assert_eq!(
            kinds(&r.step(Pending::default(), t0 + Duration::from_secs(4))),
            ["conn"]
        );
        let mut p = Pending::default();
        closing(&mut p, "w:1-1");
        let out = r.step(p, t0 + Duration::from_secs(5));
        assert_eq!(field(&out[0], "unavailable"), Some(&Field::Bool(true)));
        assert_eq!(field(&out[0], "peer-address"), None);
        let out = r.step(Pending::default(), t0 + Duration::from_secs(10));
        assert_eq!(kinds(&out), ["report"]);
        assert_eq!(field(&out[0], "connections"), Some(&Field::Int(1)));
        assert_eq!(field(&out[0], "minutes"), Some(&Field::Int(1)));
        assert_eq!(field(&out[0], "duration"), Some(&Field::Int(10_000)));
        let out = r.step(Pending::default(), t0 + Duration::from_secs(20));
        assert_eq!(field(&out[0], "connections"), Some(&Field::Int(0)));
        assert_eq!(field(&out[0], "minutes"), Some(&Field::Int(0)));
        assert_eq!(r.take_minutes_for_metrics(), 1);
    }

    #[test]
    fn long_connections_count_a_minute_per_started_minute() {
        let t0 = Instant::now();
        let mut c = cfg();
        c.connection_send = false;
        let mut r = Reporter::new(c, t0);
        let mut p = Pending::default();
        p.conns.insert(
            Arc::from("a"),
            ConnChange {
                opened: Some((ConnKind::Http, Arc::from("x"), t0)),
                route: None,
                closed: false,
            },
        );
        assert!(r.step(p, t0).is_empty(), "conn packets are off");
        let mut minutes = 0;
        for s in (10..=130).step_by(10) {
            for p in r.step(Pending::default(), t0 + Duration::from_secs(s)) {
                if let Some(Field::Int(m)) = field(&p, "minutes") {
                    minutes += m;
                }
            }
        }
        // Open 130 s: minutes 1, 2 and 3 have started.
        assert_eq!(minutes, 3);
    }

    #[test]
    fn conn_packets_carry_kind_and_route() {
        let t0 = Instant::now();
        let mut r = Reporter::new(cfg(), t0);
        let opened = |kind, route: Option<&str>| ConnChange {
            opened: Some((kind, Arc::from("127.0.0.1"), t0)),
            route: route.map(Arc::from),
            closed: false,
        };
        let mut p = Pending::default();
        p.conns
            .insert(Arc::from("a"), opened(ConnKind::Ws, Some("r1")));
        p.conns.insert(Arc::from("b"), opened(ConnKind::Http, None));
        let mut out = r.step(p, t0);
        out.sort_by_key(|p| format!("{:?}", field(p, "id")));
        assert_eq!(field(&out[0], "type"), Some(&Field::Str("ws".into())));
        assert_eq!(field(&out[0], "route"), Some(&Field::Str("r1".into())));
        assert_eq!(field(&out[1], "type"), Some(&Field::Str("http".into())));
        assert_eq!(field(&out[1], "route"), None, "no route id, no field");
        // A route learned after the open packet is announced at once and kept for refreshes
        // and the close packet.
        let mut p = Pending::default();
        p.conns.insert(
            Arc::from("b"),
            ConnChange {
                route: Some(Arc::from("r2")),
                ..ConnChange::default()
            },
        );
        let out = r.step(p, t0 + Duration::from_millis(100));
        assert_eq!(kinds(&out), ["conn"]);
        assert_eq!(field(&out[0], "route"), Some(&Field::Str("r2".into())));
        assert_eq!(
            field(&out[0], "peer-address"),
            Some(&Field::Str("127.0.0.1".into()))
        );
        let out = r.step(Pending::default(), t0 + Duration::from_secs(4));
        assert_eq!(kinds(&out), ["conn", "conn"]);
        assert!(out.iter().all(|p| field(p, "route").is_some()));
        let mut p = Pending::default();
        closing(&mut p, "b");
        let out = r.step(p, t0 + Duration::from_secs(5));
        assert_eq!(field(&out[0], "unavailable"), Some(&Field::Bool(true)));
        assert_eq!(field(&out[0], "route"), Some(&Field::Str("r2".into())));
        // Unknown connections are ignored.
        let mut p = Pending::default();
        p.conns.insert(
            Arc::from("zz"),
            ConnChange {
                route: Some(Arc::from("r3")),
                ..ConnChange::default()
            },
        );
        assert!(r.step(p, t0 + Duration::from_secs(6)).is_empty());
    }

    #[test]
    fn subscriptions_and_messages() {
        let t0 = Instant::now();
        let mut r = Reporter::new(cfg(), t0);
        let c: Arc<str> = Arc::from("c");
        let mut p = Pending::default();
        p.subs.insert((SubMode::Stream, c.clone()), Some(2));
        p.messages.push(MessageStat {
            channel: c.clone(),
            item_id: Some(Arc::from("m1")),
            count: 2,
            transport: Transport::HttpStream,
        });
        p.received = 1;
        p.sent = 2;
        let out = r.step(p, t0);
        assert_eq!(kinds(&out), ["sub", "message"]);
        assert_eq!(field(&out[0], "subscribers"), Some(&Field::Int(2)));
        assert_eq!(field(&out[0], "mode"), Some(&Field::Str("stream".into())));
        assert_eq!(field(&out[1], "item-id"), Some(&Field::Str("m1".into())));
        assert_eq!(
            field(&out[1], "transport"),
            Some(&Field::Str("http-stream".into()))
        );
        assert_eq!(r.subscriptions(), 1);
        // Same count again: nothing new; refresh after 6 s.
        let mut p = Pending::default();
        p.subs.insert((SubMode::Stream, c.clone()), Some(2));
        assert!(r.step(p, t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(
            kinds(&r.step(Pending::default(), t0 + Duration::from_secs(7))),
            ["sub"]
        );
        let mut p = Pending::default();
        p.subs.insert((SubMode::Stream, c.clone()), None);
        let out = r.step(p, t0 + Duration::from_secs(8));
        assert_eq!(field(&out[0], "unavailable"), Some(&Field::Bool(true)));
        assert_eq!(field(&out[0], "channel"), Some(&Field::Str("c".into())));
        let out = r.step(Pending::default(), t0 + Duration::from_secs(10));
        assert_eq!(field(&out[0], "received"), Some(&Field::Int(1)));
        assert_eq!(field(&out[0], "sent"), Some(&Field::Int(2)));
    }

    #[test]
    fn without_a_socket_no_packet_is_built_but_the_metrics_still_count() {
        let t0 = Instant::now();
        let mut r = Reporter::new(
            ReporterConfig {
                send: false,
                ..cfg()
            },
            t0,
        );
        let c: Arc<str> = Arc::from("c");
        let mut p = Pending::default();
        p.conns.insert(
            Arc::from("w:1-1"),
            ConnChange {
                opened: Some((ConnKind::Http, Arc::from("10.0.0.1"), t0)),
                route: Some(Arc::from("r1")),
                closed: false,
            },
        );
        p.subs.insert((SubMode::Stream, c.clone()), Some(1));
        p.messages.push(MessageStat {
            channel: c.clone(),
            item_id: None,
            count: 1,
            transport: Transport::HttpStream,
        });
        assert!(r.step(p, t0).is_empty());
        assert_eq!(r.subscriptions(), 1);
        assert_eq!(r.take_minutes_for_metrics(), 1);
        // Refreshes (ttl*3/4) and the report (10 s) are due: still nothing built.
        assert!(r
            .step(Pending::default(), t0 + Duration::from_secs(7))
            .is_empty());
        assert!(r
            .step(Pending::default(), t0 + Duration::from_secs(10))
            .is_empty());
        // The connection closes in its second minute: one more minute counted.
        let mut p = Pending::default();
        closing(&mut p, "w:1-1");
        p.subs.insert((SubMode::Stream, c), None);
        assert!(r.step(p, t0 + Duration::from_secs(70)).is_empty());
        assert_eq!(r.subscriptions(), 0);
        assert_eq!(r.take_minutes_for_metrics(), 1);
    }
}
