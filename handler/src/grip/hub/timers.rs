//! The hub's clock: everything [`Hub::tick`] does when time passes (response timeouts,
//! keep-alives, first-subscription updates, sequencing waits, channel lingers, next-link
//! recovery checks). Split from `mod.rs` to keep each file readable; it works on the hub's
//! private state like the rest of the module.

use super::*;

impl Hub {
    /// Runs every timer due at `now`: response timeouts, keep-alives, first-subscription
    /// updates, sequencing waits and channel lingers.
    pub fn tick(&mut self, now: Instant, fx: &mut Effects) {
        let mut keep_alives: HashMap<(WorkerId, Bytes), Vec<StreamId>> = HashMap::new();
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(held) = self.sessions.get_mut(&id) else {
                continue;
            };
            held.timer_at = None;
            let Some(deadline) = held.deadline else {
                continue;
            };
            if deadline > now {
                // Pushed back since this entry was made (idle keep-alive).
                if deadline != at {
                    let next = match &held.state {
                        State::Stream {
                            keep_alive: Some(ka),
                            ..
                        } => ka.next(deadline - ka.timeout, rand::random::<u64>()),
                        _ => deadline,
                    };
                    held.deadline = Some(next);
                    held.timer_at = Some(next);
                    self.timers.insert((next, id));
                }
                continue;
            }
            match &held.state {
                State::Response { .. } => {
                    self.complete_with(id, Reply::clone, now, fx);
                }
                State::Stream {
                    keep_alive: Some(ka),
                    ..
                } => {
                    let ka = ka.clone();
                    if held.flow.take_for_keep_alive(ka.data.len()) {
                        keep_alives
                            .entry((held.key.worker.clone(), ka.data.clone()))
                            .or_default()
                            .push(held.key.id);
                    }
                    let next = ka.next(now, rand::random::<u64>());
                    held.deadline = Some(next);
                    held.timer_at = Some(next);
                    self.timers.insert((next, id));
                }
                _ => held.deadline = None,
            }
        }
        self.check_links(now, fx);
        // Streams sharing keep-alive data on one worker get it in one message.
        for ((worker, data), ids) in keep_alives {
            fx.msgs
                .push((worker, ToConnmgr::Fanout(Fanout { ids, data })));
        }

        while let Some((at, _)) = self.updates.front() {
            if *at > now {
                break;
            }
            let Some((_, name)) = self.updates.pop_front() else {
                break;
            };
            let ids: Vec<u64> = self
                .channels
                .get(&name)
                .map(|c| c.subs.keys().copied().collect())
                .unwrap_or_default();
            for id in ids {
                // Pushpin updates stream holds with a next link too (a link fetch).
                if matches!(
                    self.sessions.get(&id).map(|h| &h.state),
                    Some(
                        State::Response { .. }
                            | State::Stream {
                                next_link: Some(_),
                                ..
                            }
                    )
                ) {
                    self.recover(id, now, fx);
                }
            }
        }

        if !self.sequencing.is_empty() {
            let names: Vec<Arc<str>> = self.sequencing.iter().cloned().collect();
            for name in names {
                let released = match self.channels.get_mut(&name) {
                    Some(channel) => {
                        let out = channel.seq.expire(now, self.cfg.message_wait);
                        if !channel.seq.has_pending() {
                            self.sequencing.remove(&name);
                        }
                        out
                    }
                    None => {
                        self.sequencing.remove(&name);
                        Vec::new()
                    }
                };
                for item in released {
                    let n = self.deliver(&item, now, fx);
                    tracing::info!("publish channel={} receivers={n}", item.channel);
                }
            }
        }

        self.watch.tick(now);
        while let Some((at, _)) = self.lingering.front() {
            if now.saturating_duration_since(*at) < self.cfg.subscription_linger {
                break;
            }
            let Some((at, name)) = self.lingering.pop_front() else {
                break;
            };
            let expired = self
                .channels
                .get(&name)
                .is_some_and(|c| c.subs.is_empty() && c.empty_since == Some(at));
            if expired {
                // Subscription linger hook: the SUB unsubscribe and stats removal go here.
                self.channels.remove(&name);
                self.sequencing.remove(&name);
            }
        }
        if self.limiter.is_some() {
            self.drain_limiter(now, fx);
        }
        self.warn_drops(now);
    }

    /// Next-link recovery (§4.5): a stream hold whose channels did not all deliver a message
    /// within the link's timeout fetches its next link; otherwise a new period starts.
    fn check_links(&mut self, now: Instant, fx: &mut Effects) {
        while let Some(&(at, id)) = self.link_timers.first() {
            if at > now {
                break;
            }
            self.link_timers.pop_first();
            let Some(held) = self.sessions.get_mut(&id) else {
                continue;
            };
            if held.link_deadline != Some(at) || !matches!(held.state, State::Stream { .. }) {
                continue;
            }
            let n = held.subs.len().min(64);
            let all = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            if held.link_seen & all == all {
                held.link_seen = 0;
                let next = now + held.link_timeout;
                held.link_deadline = Some(next);
                self.link_timers.insert((next, id));
            } else {
                held.link_deadline = None;
                tracing::debug!("stream {}: next-link timeout, recovering", held.key.id);
                self.recover(id, now, fx);
            }
        }
    }
}
