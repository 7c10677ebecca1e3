//! Subscription reference counts per (mode, channel), with Pushpin's linger, turned into
//! [`Event`]s for stats (`sub` packets) and for the ZeroMQ SUB input (which subscribes the
//! socket to a channel exactly while this instance has listeners for it).
//!
//! Rules (reference §6.4, §6.7):
//! * a (mode, channel) subscription appears with its first subscriber and reports every count
//!   change (`Subscribed`);
//! * when its last subscriber leaves, a stream (or WebSocket) subscription goes at once; a
//!   response subscription lingers `subscription_linger` first (a long-poll client is usually
//!   back within moments with its next request), and a new subscriber during the linger
//!   revives it without any event for the SUB socket;
//! * the channel is `Listen`ed when its first (mode) subscription appears and `Unlisten`ed when
//!   its last one goes.
//!
//! Pure: time is passed in, events go to [`Observers`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::observe::{Event, Observers, SubMode};

#[derive(Debug)]
struct Entry {
    subscribers: usize,
    /// Set while a response subscription lingers with no subscriber.
    empty_since: Option<Instant>,
}

/// The reference counts. Bounded by the live subscriptions plus those lingering.
#[derive(Debug, Default)]
pub struct SubTracker {
    linger: Duration,
    entries: HashMap<(SubMode, Arc<str>), Entry>,
    /// Live (mode) subscriptions per channel.
    modes: HashMap<Arc<str>, usize>,
    lingering: VecDeque<(Instant, SubMode, Arc<str>)>,
    observers: Observers,
}

impl SubTracker {
    /// A tracker with `subscription_linger`.
    pub fn new(linger: Duration) -> Self {
        Self {
            linger,
            ..Self::default()
        }
    }

    /// Sets who hears about changes.
    pub fn set_observers(&mut self, observers: Observers) {
        self.observers = observers;
    }

    /// The observers, for the hub's other events.
    pub fn observers(&self) -> &Observers {
        &self.observers
    }

    /// Live (mode, channel) subscriptions, lingering ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is subscribed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// One more subscriber.
    pub fn add(&mut self, mode: SubMode, channel: &Arc<str>) {
        let key = (mode, channel.clone());
        let entry = match self.entries.get_mut(&key) {
            Some(entry) => entry,
            None => {
                let n = self.modes.entry(channel.clone()).or_default();
                *n += 1;
                if *n == 1 {
                    self.observers.emit(Event::Listen(channel.clone()));
                }
                self.entries.entry(key).or_insert(Entry {
                    subscribers: 0,
                    empty_since: None,
                })
            }
        };
        entry.subscribers += 1;
        entry.empty_since = None;
        let subscribers = entry.subscribers;
        self.observers.emit(Event::Subscribed {
            mode,
            channel: channel.clone(),
            subscribers,
        });
    }

    /// One subscriber fewer.
    pub fn remove(&mut self, mode: SubMode, channel: &Arc<str>, now: Instant) {
        let key = (mode, channel.clone());
        let Some(entry) = self.entries.get_mut(&key) else {
            return;
        };
        entry.subscribers = entry.subscribers.saturating_sub(1);
        if entry.subscribers > 0 {
            let subscribers = entry.subscribers;
            self.observers.emit(Event::Subscribed {
                mode,
                channel: channel.clone(),
                subscribers,
            });
            return;
        }
        if mode == SubMode::Response && !self.linger.is_zero() {
            entry.empty_since = Some(now);
            self.lingering.push_back((now, mode, channel.clone()));
        } else {
            self.drop_entry(mode, channel);
        }
    }

    /// Ends the response subscriptions whose linger is over.
    pub fn tick(&mut self, now: Instant) {
        while let Some((at, _, _)) = self.lingering.front() {
            if now.saturating_duration_since(*at) < self.linger {
                break;
            }
            let Some((at, mode, channel)) = self.lingering.pop_front() else {
                break;
            };
            let expired = self
                .entries
                .get(&(mode, channel.clone()))
                .is_some_and(|e| e.subscribers == 0 && e.empty_since == Some(at));
            if expired {
                self.drop_entry(mode, &channel);
            }
        }
    }

    fn drop_entry(&mut self, mode: SubMode, channel: &Arc<str>) {
        self.entries.remove(&(mode, channel.clone()));
        self.observers.emit(Event::Unsubscribed {
            mode,
            channel: channel.clone(),
        });
        let last = match self.modes.get_mut(channel) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            None => false,
        };
        if last {
            self.modes.remove(channel);
            self.observers.emit(Event::Unlisten(channel.clone()));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::observe::Observer;
    use std::sync::Mutex;

    /// Records every event.
    #[derive(Debug, Default)]
    pub(crate) struct Recorder(pub(crate) Mutex<Vec<Event>>);

    impl Observer for Recorder {
        fn observe(&self, event: &Event) {
            self.0.lock().unwrap().push(event.clone());
        }
    }

    impl Recorder {
        pub(crate) fn take(&self) -> Vec<Event> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }

        /// Only Listen/Unlisten, as `+chan` / `-chan`.
        pub(crate) fn take_listens(&self) -> Vec<String> {
            self.take()
                .into_iter()
                .filter_map(|e| match e {
                    Event::Listen(c) => Some(format!("+{c}")),
                    Event::Unlisten(c) => Some(format!("-{c}")),
                    _ => None,
                })
                .collect()
        }
    }

    fn tracker(linger: u64) -> (SubTracker, Arc<Recorder>) {
        let rec = Arc::new(Recorder::default());
        let mut t = SubTracker::new(Duration::from_secs(linger));
        t.set_observers(Observers::new(vec![rec.clone()]));
        (t, rec)
    }

    #[test]
    fn stream_subscriptions_listen_on_first_and_unlisten_on_last() {
        let (mut t, rec) = tracker(60);
        let c: Arc<str> = Arc::from("c");
        let now = Instant::now();
        t.add(SubMode::Stream, &c);
        t.add(SubMode::Stream, &c);
        assert_eq!(rec.take_listens(), ["+c"]);
        t.remove(SubMode::Stream, &c, now);
        assert_eq!(rec.take_listens(), Vec::<String>::new());
        t.remove(SubMode::Stream, &c, now);
        assert_eq!(rec.take_listens(), ["-c"]);
        assert!(t.is_empty());
    }

    #[test]
    fn response_subscriptions_linger_and_revive() {
        let (mut t, rec) = tracker(1);
        let c: Arc<str> = Arc::from("c");
        let t0 = Instant::now();
        t.add(SubMode::Response, &c);
        t.remove(SubMode::Response, &c, t0);
        t.tick(t0 + Duration::from_millis(500));
        assert_eq!(rec.take_listens(), ["+c"]);
        // Back within the linger: no SUB traffic, and the old linger entry is void.
        t.add(SubMode::Response, &c);
        t.tick(t0 + Duration::from_secs(2));
        assert!(rec.take_listens().is_empty());
        let t1 = t0 + Duration::from_secs(3);
        t.remove(SubMode::Response, &c, t1);
        t.tick(t1 + Duration::from_millis(999));
        assert!(rec.take().is_empty());
        t.tick(t1 + Duration::from_secs(1));
        assert_eq!(
            rec.take(),
            [
                Event::Unsubscribed {
                    mode: SubMode::Response,
                    channel: c.clone()
                },
                Event::Unlisten(c)
            ]
        );
    }

    #[test]
    fn a_channel_is_listened_while_any_mode_has_it() {
        let (mut t, rec) = tracker(5);
        let c: Arc<str> = Arc::from("c");
        let t0 = Instant::now();
        t.add(SubMode::Response, &c);
        t.add(SubMode::Stream, &c);
        t.remove(SubMode::Stream, &c, t0);
        assert_eq!(rec.take_listens(), ["+c"]);
        t.remove(SubMode::Response, &c, t0);
        t.tick(t0 + Duration::from_secs(5));
        assert_eq!(rec.take_listens(), ["-c"]);
        // Zero linger: response mode goes at once.
        let (mut t, rec) = tracker(0);
        t.add(SubMode::Response, &c);
        t.remove(SubMode::Response, &c, t0);
        assert_eq!(rec.take_listens(), ["+c", "-c"]);
    }

    #[test]
    fn counts_are_reported() {
        let (mut t, rec) = tracker(0);
        let c: Arc<str> = Arc::from("c");
        t.add(SubMode::Stream, &c);
        t.add(SubMode::Stream, &c);
        t.remove(SubMode::Stream, &c, Instant::now());
        let counts: Vec<usize> = rec
            .take()
            .into_iter()
            .filter_map(|e| match e {
                Event::Subscribed { subscribers, .. } => Some(subscribers),
                _ => None,
            })
            .collect();
        assert_eq!(counts, [1, 2, 1]);
        // Removing an unknown subscription is harmless.
        t.remove(SubMode::Ws, &c, Instant::now());
    }
}
