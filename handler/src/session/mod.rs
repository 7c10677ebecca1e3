//! Live streams: the session table, per-stream inboxes, and the dispatcher that routes the
//! connmgr's messages to them.
//!
//! Every stream is keyed by (worker identity, [`StreamId`]): stream ids are only unique per
//! worker. A plain proxied request is a tokio task; the table holds its [`Inbox`] (where request
//! body and credits wait) and its abort handle, so `Closed` from the connmgr or a dead worker
//! cancels the task, and with it the backend request. GRIP holds will later be entries of the
//! same table that outlive their backend request.
//!
//! The dispatcher never waits on a session: body and credits are appended to the inbox under a
//! short mutex and the session is woken. The inbox is bounded by the protocol itself: the
//! connmgr may only send as much request body as the handler granted, and a connmgr that sends
//! more gets the stream closed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use holdfast_proto::internal::{
    Body, CloseReason, Closed, Credit, Header, ResponseHead, StreamId, ToConnmgr,
};
use tokio::task::AbortHandle;

use crate::ipc::{Outbox, OutboxClosed, WorkerId};
use crate::observe::{conn_id, ConnKind, Event, Observers};

mod dispatch;
mod inbox;

pub use self::dispatch::{Dispatcher, SessionSpawner};
pub use self::inbox::{BodyPoll, Inbox, InboxError, CAPTURE_LIMIT};

/// Address of one stream.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// The connmgr worker.
    pub worker: WorkerId,
    /// The stream on that worker.
    pub id: StreamId,
}

/// The way back to the connmgr for one stream.
#[derive(Clone, Debug)]
pub struct StreamOut {
    outbox: Outbox,
    key: SessionKey,
}

impl StreamOut {
    /// Output for the stream `key`.
    pub fn new(outbox: Outbox, key: SessionKey) -> Self {
        Self { outbox, key }
    }

    /// The stream's address.
    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    /// Sends the response head (waits for outbox budget).
    pub async fn respond(
        &self,
        code: u16,
        reason: String,
        headers: Vec<Header>,
        body: Bytes,
        more: bool,
    ) -> Result<(), OutboxClosed> {
        let head = ResponseHead {
            id: self.key.id,
            code,
            reason,
            headers,
            body,
            more,
        };
        self.outbox
            .send(&self.key.worker, ToConnmgr::Response(head))
            .await
    }

    /// Sends response body (waits for outbox budget).
    pub async fn body(&self, data: Bytes, more: bool) -> Result<(), OutboxClosed> {
        let body = Body {
            id: self.key.id,
            data,
            more,
        };
        self.outbox
            .send(&self.key.worker, ToConnmgr::Body(body))
            .await
    }

    /// Grants request body credit (never waits).
    pub fn credit(&self, bytes: u32) {
        let credit = Credit {
            id: self.key.id,
            bytes,
        };
        let _ = self
            .outbox
            .push(&self.key.worker, ToConnmgr::Credit(credit));
    }

    /// Aborts the stream on the connmgr side (never waits).
    pub fn close(&self, reason: CloseReason) {
        let closed = Closed {
            id: self.key.id,
            reason,
        };
        let _ = self.outbox.push(&self.key.worker, ToConnmgr::Close(closed));
    }
}

/// One entry of the session table.
///
/// A *held* entry (a GRIP hold owned by the hub) has no task and no inbox: its credits and its
/// end go to the [`SessionSpawner`]'s hold hooks instead, so an idle held request costs only
/// this entry plus the hub's record of it.
#[derive(Debug)]
struct Entry {
    serial: u64,
    inbox: Option<Arc<Inbox>>,
    abort: Option<AbortHandle>,
    /// A WebSocket stream's message inbox; such a task is told the client is gone instead of
    /// being aborted, so it can tell the origin (`DISCONNECT`).
    ws: Option<Arc<crate::ws::WsInbox>>,
}

impl Entry {
    fn is_held(&self) -> bool {
        self.inbox.is_none()
    }
}

/// All live sessions, per worker.
#[derive(Debug, Default)]
pub struct SessionTable {
    workers: HashMap<WorkerId, HashMap<StreamId, Entry>>,
    count: usize,
    next_serial: u64,
    /// Told when a stream starts and ends (stats `conn` packets, connection metrics); called
    /// under the table lock, see [`crate::observe`].
    observers: Observers,
}

impl SessionTable {
    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no session is live.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sets who hears about streams starting and ending.
    pub fn set_observers(&mut self, observers: Observers) {
        self.observers = observers;
    }

    /// True while the stream is live (proxied, held or streaming): the command socket's
    /// `conncheck`.
    pub fn contains(&self, key: &SessionKey) -> bool {
        self.get(key).is_some()
    }

    fn opened(&self, key: &SessionKey, peer: &str) {
        if !self.observers.is_empty() {
            self.observers.emit(Event::ConnOpened {
                id: conn_id(&key.worker, key.id).into(),
                kind: ConnKind::Http,
                peer: peer.into(),
            });
        }
    }

    fn closed(&self, worker: &WorkerId, id: StreamId) {
        if !self.observers.is_empty() {
            self.observers.emit(Event::ConnClosed {
                id: conn_id(worker, id).into(),
            });
        }
    }

    fn get(&self, key: &SessionKey) -> Option<&Entry> {
        self.workers.get(&key.worker)?.get(&key.id)
    }

    fn get_mut(&mut self, key: &SessionKey) -> Option<&mut Entry> {
        self.workers.get_mut(&key.worker)?.get_mut(&key.id)
    }

    fn insert(&mut self, key: SessionKey, inbox: Arc<Inbox>) -> u64 {
        self.next_serial += 1;
        let serial = self.next_serial;
        let entry = Entry {
            serial,
            inbox: Some(inbox),
            abort: None,
            ws: None,
        };
        if self
            .workers
            .entry(key.worker)
            .or_default()
            .insert(key.id, entry)
            .is_none()
        {
            self.count += 1;
        }
        serial
    }

    fn set_abort(&mut self, key: &SessionKey, abort: AbortHandle) {
        if let Some(entry) = self
            .workers
            .get_mut(&key.worker)
            .and_then(|m| m.get_mut(&key.id))
        {
            entry.abort = Some(abort);
        }
    }

    /// Removes an entry; with `serial`, only if it is still that incarnation.
    fn remove(&mut self, key: &SessionKey, serial: Option<u64>) -> Option<Entry> {
        let streams = self.workers.get_mut(&key.worker)?;
        if let Some(serial) = serial {
            if streams.get(&key.id)?.serial != serial {
                return None;
            }
        }
        let entry = streams.remove(&key.id)?;
        self.count -= 1;
        if streams.is_empty() {
            self.workers.remove(&key.worker);
        } else {
            crate::grip::hub::shrink_sparse(streams);
        }
        self.closed(&key.worker, key.id);
        Some(entry)
    }

    fn remove_worker(&mut self, worker: &WorkerId) -> Vec<(StreamId, Entry)> {
        let entries: Vec<(StreamId, Entry)> = self
            .workers
            .remove(worker)
            .map(|m| m.into_iter().collect())
            .unwrap_or_default();
        self.count -= entries.len();
        for (id, _) in &entries {
            self.closed(worker, *id);
        }
        entries
    }

    fn drain(&mut self) -> Vec<(SessionKey, Entry)> {
        self.count = 0;
        let entries: Vec<(SessionKey, Entry)> = self
            .workers
            .drain()
            .flat_map(|(worker, streams)| {
                streams.into_iter().map(move |(id, entry)| {
                    (
                        SessionKey {
                            worker: worker.clone(),
                            id,
                        },
                        entry,
                    )
                })
            })
            .collect();
        for (key, _) in &entries {
            self.closed(&key.worker, key.id);
        }
        entries
    }
}

/// Shared handle on the table.
pub type Sessions = Arc<Mutex<SessionTable>>;

/// Locks the table for a short look-up (e.g. several [`SessionTable::contains`] in a row).
pub fn lock_table(sessions: &Sessions) -> MutexGuard<'_, SessionTable> {
    lock(sessions)
}

fn lock(sessions: &Sessions) -> MutexGuard<'_, SessionTable> {
    // Entries are plain data; a poisoned lock still holds a consistent map.
    sessions.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes the session from the table when its task ends, however it ends — unless the task
/// handed the stream to the GRIP hub with [`SessionGuard::into_held`].
#[derive(Debug)]
pub struct SessionGuard {
    sessions: Sessions,
    key: SessionKey,
    serial: u64,
    inbox: Arc<Inbox>,
    armed: bool,
}

impl SessionGuard {
    /// The table serial of this incarnation of the stream.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The session table this guard belongs to.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Turns the entry into a held one: it stays in the table after the task ends, without a
    /// task or inbox; from now on the connmgr's credits and close for the stream go to the
    /// spawner's hold hooks. Returns false (and keeps the guard armed) if the entry is gone
    /// (the stream was closed meanwhile).
    pub fn into_held(&mut self) -> bool {
        let mut table = lock(&self.sessions);
        match table.get_mut(&self.key) {
            Some(entry) if entry.serial == self.serial => {
                entry.inbox = None;
                entry.abort = None;
                self.armed = false;
                true
            }
            _ => false,
        }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.inbox.close();
        if self.armed {
            lock(&self.sessions).remove(&self.key, Some(self.serial));
        }
    }
}

/// Gives a held stream a task again (a GRIP retry or next-link fetch): the entry gets a fresh
/// inbox holding `body` (the complete request body) and `credits`, and `spawn` starts the task.
/// False if the entry is gone or not held by incarnation `serial`.
pub fn resume_held(
    sessions: &Sessions,
    key: &SessionKey,
    serial: u64,
    credits: u64,
    body: Bytes,
    spawn: impl FnOnce(Arc<Inbox>, SessionGuard) -> tokio::task::JoinHandle<()>,
) -> bool {
    let mut table = lock(sessions);
    let inbox = match table.get_mut(key) {
        Some(entry) if entry.serial == serial && entry.is_held() => {
            let inbox = Arc::new(Inbox::new(body, false, 0));
            inbox.add_credits_u64(credits);
            entry.inbox = Some(inbox.clone());
            inbox
        }
        _ => return false,
    };
    let guard = SessionGuard {
        sessions: sessions.clone(),
        key: key.clone(),
        serial,
        inbox: inbox.clone(),
        armed: true,
    };
    // The lock is held across the spawn so the task cannot end before its handle is stored.
    let handle = spawn(inbox, guard);
    table.set_abort(key, handle.abort_handle());
    true
}

/// Removes a held entry once the hub is done with it (response complete or stream ended).
pub fn release_held(sessions: &Sessions, key: &SessionKey, serial: u64) {
    lock(sessions).remove(key, Some(serial));
}

fn abort_entry(entry: Entry) {
    if let Some(ws) = entry.ws {
        // The WebSocket task ends on its own within `ws::DISCONNECT_DEADLINE`.
        ws.gone();
        return;
    }
    if let Some(inbox) = entry.inbox {
        inbox.close();
    }
    if let Some(abort) = entry.abort {
        abort.abort();
    }
}

/// Aborts every session (end of the shutdown deadline), telling the connmgr.
pub fn abort_all(sessions: &Sessions, outbox: &Outbox) -> usize {
    let entries = lock(sessions).drain();
    let n = entries.len();
    for (key, entry) in entries {
        StreamOut::new(outbox.clone(), key).close(CloseReason::Shutdown);
        abort_entry(entry);
    }
    n
}

/// Number of live sessions.
pub fn live(sessions: &Sessions) -> usize {
    lock(sessions).len()
}

/// Number of live sessions that have a task (held GRIP requests excluded): what a stop waits
/// for before closing the rest.
pub fn live_tasks(sessions: &Sessions) -> usize {
    let table = lock(sessions);
    table
        .workers
        .values()
        .flat_map(|m| m.values())
        .filter(|e| !e.is_held())
        .count()
}

#[cfg(test)]
mod tests;
