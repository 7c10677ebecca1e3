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

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use bytes::Bytes;
use holdfast_proto::internal::{
    Body, CloseReason, Closed, Credit, Header, RequestHead, ResponseHead, StreamId, ToConnmgr,
    ToHandler, WsClose, WsMessage, INITIAL_REQUEST_CREDITS,
};
use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;

use crate::ipc::{Inbound, Outbox, OutboxClosed, WorkerId};
use crate::observe::{conn_id, ConnKind, Event, Observers};

/// Address of one stream.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// The connmgr worker.
    pub worker: WorkerId,
    /// The stream on that worker.
    pub id: StreamId,
}

/// Why the inbox refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InboxError {
    /// The connmgr sent more request body than it held credits for.
    #[error("request body exceeds granted credits ({received} > {window})")]
    CreditsExceeded {
        /// Body bytes received so far.
        received: u64,
        /// Bytes the connmgr was allowed to send.
        window: u64,
    },
    /// Body arrived after the body had ended.
    #[error("request body after its end")]
    BodyAfterEnd,
}

/// Where the connmgr's messages for one stream wait for the session task.
#[derive(Debug)]
pub struct Inbox {
    state: Mutex<InboxState>,
    /// Wakes the session task (credits arrived).
    notify: Notify,
}

#[derive(Debug, Default)]
struct InboxState {
    body: VecDeque<Bytes>,
    body_ended: bool,
    /// Request body bytes received (head included).
    received: u64,
    /// Request body bytes the connmgr may send in total (initial window plus grants).
    window: u64,
    /// Response body bytes the session may still send.
    credits: u64,
    /// The response credits the stream started with (the connmgr's whole window): a WebSocket
    /// message larger than this costs exactly this much (see [`Inbox::try_take_message`]).
    resp_window: u64,
    /// Set when the stream is being torn down; the body reader then fails.
    closed: bool,
    /// The request body reader waiting for data.
    body_waker: Option<Waker>,
    /// Request body chunks handed out so far (shared `Bytes`, not copies), kept so a GRIP
    /// hold can re-request the origin later; `None` once more than [`CAPTURE_LIMIT`] bytes
    /// went by.
    captured: Option<Vec<Bytes>>,
    captured_len: usize,
}

impl InboxState {
    /// See [`Inbox::message_cost`]. Without a window (an inbox that started with no credits,
    /// e.g. a resumed hold) a message costs its length.
    fn message_cost(&self, len: usize) -> u64 {
        match self.resp_window {
            0 => len as u64,
            window => (len as u64).min(window),
        }
    }
}

/// Request body bytes remembered for GRIP retries (Pushpin's limit: a larger request body
/// cannot be held, §4.1).
pub const CAPTURE_LIMIT: usize = 100_000;

/// A chunk taken from the inbox's request body.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyPoll {
    /// Bytes; more may follow.
    Data(Bytes),
    /// The body is complete.
    End,
    /// Nothing yet; the waker will be called.
    Pending,
    /// The stream is gone.
    Closed,
}

impl Inbox {
    /// An inbox for a new request: its first body bytes and its initial response credits.
    pub fn new(head_body: Bytes, more: bool, credits: u32) -> Self {
        let mut state = InboxState {
            body_ended: !more,
            received: head_body.len() as u64,
            window: u64::from(INITIAL_REQUEST_CREDITS),
            credits: u64::from(credits),
            resp_window: u64::from(credits),
            captured: Some(Vec::new()),
            ..InboxState::default()
        };
        if !head_body.is_empty() {
            state.body.push_back(head_body);
        }
        Self {
            state: Mutex::new(state),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, InboxState> {
        // A panic while holding this short lock cannot leave the state half-updated in a way
        // that matters more than losing the stream, so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends request body from the connmgr.
    pub fn push_body(&self, data: Bytes, more: bool) -> Result<(), InboxError> {
        let waker = {
            let mut st = self.lock();
            if st.body_ended {
                return Err(InboxError::BodyAfterEnd);
            }
            st.received += data.len() as u64;
            if st.received > st.window {
                return Err(InboxError::CreditsExceeded {
                    received: st.received,
                    window: st.window,
                });
            }
            if !data.is_empty() {
                st.body.push_back(data);
            }
            st.body_ended = !more;
            st.body_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Takes the next request body chunk, registering `waker` if there is none yet. Returns the
    /// chunk plus whether credit should be granted for it (not once the body has ended: the
    /// connmgr has nothing more to send).
    pub fn poll_body(&self, waker: &Waker) -> (BodyPoll, bool) {
        let mut st = self.lock();
        if st.closed {
            return (BodyPoll::Closed, false);
        }
        if let Some(chunk) = st.body.pop_front() {
            st.captured_len += chunk.len();
            if st.captured_len > CAPTURE_LIMIT {
                st.captured = None;
            } else if let Some(captured) = &mut st.captured {
                captured.push(chunk.clone());
            }
            let grant = !st.body_ended;
            if grant {
                st.window += chunk.len() as u64;
            }
            return (BodyPoll::Data(chunk), grant);
        }
        if st.body_ended {
            return (BodyPoll::End, false);
        }
        st.body_waker = Some(waker.clone());
        (BodyPoll::Pending, false)
    }

    /// The request body read so far, if it fit in [`CAPTURE_LIMIT`]; `None` if it was larger.
    pub fn captured_body(&self) -> Option<Bytes> {
        let st = self.lock();
        if !st.body_ended {
            return None;
        }
        let chunks = st.captured.as_ref()?;
        let chunks: Vec<Bytes> = chunks
            .iter()
            .cloned()
            .chain(st.body.iter().cloned())
            .collect();
        if chunks.iter().map(Bytes::len).sum::<usize>() > CAPTURE_LIMIT {
            return None;
        }
        Some(match chunks.len() {
            0 => Bytes::new(),
            1 => chunks[0].clone(),
            _ => Bytes::from(chunks.concat()),
        })
    }

    /// True when the whole request body is in the inbox or consumed.
    pub fn body_complete(&self) -> bool {
        self.lock().body_ended
    }

    /// True when the body has ended and every chunk has been taken.
    pub fn body_exhausted(&self) -> bool {
        let st = self.lock();
        st.body_ended && st.body.is_empty()
    }

    /// Adds response credits from the connmgr.
    pub fn add_credits(&self, bytes: u32) {
        self.add_credits_u64(u64::from(bytes));
    }

    /// Adds response credits carried over from a held session.
    pub fn add_credits_u64(&self, bytes: u64) {
        self.lock().credits += bytes;
        self.notify.notify_one();
    }

    /// Takes every response credit left (the stream is being handed to the GRIP hub).
    pub fn take_all_credits(&self) -> u64 {
        std::mem::take(&mut self.lock().credits)
    }

    /// Waits until at least one response credit is available and takes up to `max`.
    pub async fn take_credits(&self, max: usize) -> usize {
        loop {
            let notified = self.notify.notified();
            {
                let mut st = self.lock();
                if st.credits > 0 {
                    let n = st.credits.min(max as u64);
                    st.credits -= n;
                    // n <= max, which is a usize.
                    return n as usize;
                }
            }
            notified.await;
        }
    }

    /// Takes up to `max` credits without waiting.
    pub fn try_take_credits(&self, max: usize) -> usize {
        let mut st = self.lock();
        let n = st.credits.min(max as u64);
        st.credits -= n;
        n as usize
    }

    /// Takes exactly `n` credits if that many are available (all or nothing).
    pub fn try_take_exact(&self, n: usize) -> bool {
        let mut st = self.lock();
        if st.credits >= n as u64 {
            st.credits -= n as u64;
            true
        } else {
            false
        }
    }

    /// The response credits the stream started with (a WebSocket's whole window).
    pub fn response_window(&self) -> u64 {
        self.lock().resp_window
    }

    /// What a WebSocket message of `len` payload bytes costs in credits: its length, or the
    /// whole window for a message larger than the window (the rule of
    /// [`holdfast_proto::internal::WsMessage`]).
    pub fn message_cost(&self, len: usize) -> u64 {
        self.lock().message_cost(len)
    }

    /// Takes the credits for a WebSocket message of `len` bytes if they are all there (all or
    /// nothing): `len` credits, or for a message larger than the window the whole window, which
    /// the inbox only holds when nothing is outstanding.
    pub fn try_take_message(&self, len: usize) -> bool {
        let mut st = self.lock();
        let cost = st.message_cost(len);
        if st.credits >= cost {
            st.credits -= cost;
            true
        } else {
            false
        }
    }

    /// Marks the stream as torn down and wakes the body reader.
    pub fn close(&self) {
        let waker = {
            let mut st = self.lock();
            st.closed = true;
            st.body_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        self.notify.notify_one();
    }
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

/// The answer to a WebSocket handshake while the handler cannot proxy WebSockets.
const WEBSOCKETS_NOT_SUPPORTED: &str =
    "WebSockets are not supported by this Holdfast version yet.\n";

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

/// What the dispatcher needs from the proxy layer: a way to start a session task.
pub trait SessionSpawner: Send + Sync + 'static {
    /// Starts the task for a new request. The task must hold `guard` until it ends.
    fn spawn(
        &self,
        head: RequestHead,
        inbox: Arc<Inbox>,
        out: StreamOut,
        guard: SessionGuard,
    ) -> tokio::task::JoinHandle<()>;

    /// Response credits for a held stream (see [`SessionGuard::into_held`]).
    fn held_credit(&self, _key: &SessionKey, _bytes: u32) {}

    /// Response credits for several held streams of one worker, in order (a run of `Credit`
    /// messages in one packet, typically one per subscriber after a fan-out). The default
    /// hands them to [`SessionSpawner::held_credit`] one by one; an implementation can apply
    /// them all under one lock.
    fn held_credits(&self, worker: &WorkerId, credits: &[(StreamId, u32)]) {
        for &(id, bytes) in credits {
            let key = SessionKey {
                worker: worker.clone(),
                id,
            };
            self.held_credit(&key, bytes);
        }
    }

    /// A held stream ended on the client side (or its worker went away).
    fn held_closed(&self, _key: &SessionKey) {}

    /// True if [`SessionSpawner::spawn_ws`] serves WebSockets (otherwise handshakes are
    /// refused with 501).
    fn serves_websockets(&self) -> bool {
        false
    }

    /// Starts the task for a WebSocket handshake (`Upgrade`). The task must hold `guard`
    /// until it ends (it is dropped inside the task: the table lock is held during the call).
    fn spawn_ws(
        &self,
        _head: RequestHead,
        _inbox: Arc<Inbox>,
        _ws: Arc<crate::ws::WsInbox>,
        _out: StreamOut,
        guard: SessionGuard,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { drop(guard) })
    }
}

/// Routes the connmgr's messages to sessions. Runs until `inbound` closes.
#[derive(Debug)]
pub struct Dispatcher<S> {
    sessions: Sessions,
    outbox: Outbox,
    spawner: S,
    max_sessions: usize,
    accepting: Arc<std::sync::atomic::AtomicBool>,
}

impl<S: SessionSpawner> Dispatcher<S> {
    /// A dispatcher admitting at most `max_sessions` concurrent sessions.
    pub fn new(sessions: Sessions, outbox: Outbox, spawner: S, max_sessions: usize) -> Self {
        Self {
            sessions,
            outbox,
            spawner,
            max_sessions: max_sessions.max(1),
            accepting: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    /// Clearing this flag makes the dispatcher refuse new requests (shutdown).
    pub fn accepting(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.accepting.clone()
    }

    /// Processes inbound events until the bridge goes away.
    pub async fn run(self, mut inbound: mpsc::Receiver<Inbound>) {
        while let Some(event) = inbound.recv().await {
            match event {
                Inbound::Messages { worker, msgs } => self.handle_batch(&worker, msgs),
                Inbound::WorkerGone { worker, reason } => {
                    let entries = lock(&self.sessions).remove_worker(&worker);
                    if !entries.is_empty() {
                        tracing::info!(
                            "connmgr worker {worker} {reason}: cancelling {} sessions",
                            entries.len()
                        );
                    }
                    for (id, entry) in entries {
                        if entry.is_held() {
                            self.spawner.held_closed(&SessionKey {
                                worker: worker.clone(),
                                id,
                            });
                        }
                        abort_entry(entry);
                    }
                }
            }
        }
    }

    /// Handles one packet's messages in order. Consecutive `Credit`s (after a fan-out the
    /// connmgr returns one per subscriber, side by side) are applied together: one table lookup
    /// pass under one lock, and the held streams' share handed over in one call.
    fn handle_batch(&self, worker: &WorkerId, msgs: Vec<ToHandler>) {
        let mut run: Vec<(StreamId, u32)> = Vec::new();
        for msg in msgs {
            match msg {
                ToHandler::Credit(credit) => run.push((credit.id, credit.bytes)),
                other => {
                    if !run.is_empty() {
                        self.credits(worker, &run);
                        run.clear();
                    }
                    self.handle(worker, other);
                }
            }
        }
        if !run.is_empty() {
            self.credits(worker, &run);
        }
    }

    /// Response credits for streams of `worker`: to the session's inbox, or to the GRIP hub for
    /// a held stream.
    fn credits(&self, worker: &WorkerId, run: &[(StreamId, u32)]) {
        let mut inboxes = Vec::new();
        let mut held = Vec::new();
        {
            let table = lock(&self.sessions);
            let streams = table.workers.get(worker);
            for &(id, bytes) in run {
                match streams.and_then(|m| m.get(&id)).map(|e| e.inbox.clone()) {
                    Some(Some(inbox)) => inboxes.push((inbox, bytes)),
                    Some(None) => held.push((id, bytes)),
                    None => tracing::debug!("credit for unknown stream {id} of {worker}"),
                }
            }
        }
        // Woken outside the table lock, as for every other message.
        for (inbox, bytes) in inboxes {
            inbox.add_credits(bytes);
        }
        if !held.is_empty() {
            self.spawner.held_credits(worker, &held);
        }
    }

    fn handle(&self, worker: &WorkerId, msg: ToHandler) {
        match msg {
            ToHandler::Request(head) => self.start(worker, head),
            ToHandler::Body(body) => {
                let key = SessionKey {
                    worker: worker.clone(),
                    id: body.id,
                };
                let inbox = lock(&self.sessions).get(&key).map(|e| e.inbox.clone());
                match inbox {
                    // A held request's body was read completely before the hold.
                    Some(None) => {
                        tracing::debug!("body for held stream {} of {worker}", body.id)
                    }
                    Some(Some(inbox)) => {
                        if let Err(err) = inbox.push_body(body.data, body.more) {
                            tracing::warn!("stream {} of {worker}: {err}; closing", body.id);
                            self.cancel(&key);
                            StreamOut::new(self.outbox.clone(), key).close(CloseReason::BadRequest);
                        }
                    }
                    None => tracing::debug!("body for unknown stream {} of {worker}", body.id),
                }
            }
            ToHandler::Credit(credit) => self.credits(worker, &[(credit.id, credit.bytes)]),
            ToHandler::Closed(closed) => {
                let key = SessionKey {
                    worker: worker.clone(),
                    id: closed.id,
                };
                tracing::debug!(
                    "stream {} of {worker} closed by connmgr: {:?}",
                    closed.id,
                    closed.reason
                );
                self.cancel(&key);
            }
            // The bridge answers these itself.
            ToHandler::Hello(_) | ToHandler::Heartbeat => {}
            ToHandler::Upgrade(head) => self.start_ws(worker, head),
            ToHandler::WsMessage(WsMessage { id, kind, data }) => {
                self.ws_event(worker, id, crate::ws::ClientEvent::Message(kind, data));
            }
            ToHandler::WsClose(WsClose { id, code, reason }) => {
                self.ws_event(worker, id, crate::ws::ClientEvent::Close(code, reason));
            }
        }
    }

    /// Hands a client WebSocket event to its stream's task.
    fn ws_event(&self, worker: &WorkerId, id: StreamId, event: crate::ws::ClientEvent) {
        let key = SessionKey {
            worker: worker.clone(),
            id,
        };
        let found = lock(&self.sessions).get(&key).map(|e| e.ws.clone());
        match found {
            Some(Some(ws)) => ws.push(event),
            Some(None) => {
                tracing::warn!("WebSocket message for HTTP stream {id} of {worker}; closing");
                self.cancel(&key);
                StreamOut::new(self.outbox.clone(), key).close(CloseReason::BadRequest);
            }
            None => tracing::debug!("WebSocket message for unknown stream {id} of {worker}"),
        }
    }

    /// Starts a WebSocket stream (`Upgrade`), or refuses it with 501 when the spawner does not
    /// serve WebSockets.
    fn start_ws(&self, worker: &WorkerId, head: RequestHead) {
        let key = SessionKey {
            worker: worker.clone(),
            id: head.id,
        };
        let out = StreamOut::new(self.outbox.clone(), key.clone());
        if !self.accepting.load(std::sync::atomic::Ordering::Acquire) {
            out.close(CloseReason::Shutdown);
            return;
        }
        if !self.spawner.serves_websockets() {
            tracing::info!(
                "WebSocket handshake on stream {} of {worker} refused",
                head.id
            );
            let head = ResponseHead {
                id: head.id,
                code: 501,
                reason: "Not Implemented".into(),
                headers: vec![Header::new("Content-Type", "text/plain")],
                body: Bytes::from_static(WEBSOCKETS_NOT_SUPPORTED.as_bytes()),
                more: false,
            };
            let _ = self.outbox.push(worker, ToConnmgr::Response(head));
            return;
        }
        let mut table = lock(&self.sessions);
        if table.get(&key).is_some() {
            tracing::warn!(
                "duplicate handshake for live stream {} of {worker}; ignored",
                head.id
            );
            return;
        }
        if table.len() >= self.max_sessions {
            drop(table);
            out.close(CloseReason::Shutdown);
            return;
        }
        let inbox = Arc::new(Inbox::new(Bytes::new(), false, head.credits));
        let ws = Arc::new(crate::ws::WsInbox::default());
        let serial = table.insert(key.clone(), inbox.clone());
        if let Some(entry) = table.get_mut(&key) {
            entry.ws = Some(ws.clone());
        }
        table.opened(&key, &head.peer_addr);
        let guard = SessionGuard {
            sessions: self.sessions.clone(),
            key: key.clone(),
            serial,
            inbox: inbox.clone(),
            armed: true,
        };
        // The table lock is held across the spawn, as in `start`.
        let handle = self.spawner.spawn_ws(head, inbox, ws, out, guard);
        table.set_abort(&key, handle.abort_handle());
    }

    fn cancel(&self, key: &SessionKey) {
        let entry = lock(&self.sessions).remove(key, None);
        if let Some(entry) = entry {
            if entry.is_held() {
                self.spawner.held_closed(key);
            }
            abort_entry(entry);
        }
    }

    fn start(&self, worker: &WorkerId, head: RequestHead) {
        let key = SessionKey {
            worker: worker.clone(),
            id: head.id,
        };
        let out = StreamOut::new(self.outbox.clone(), key.clone());
        if !self.accepting.load(std::sync::atomic::Ordering::Acquire) {
            out.close(CloseReason::Shutdown);
            return;
        }
        let mut table = lock(&self.sessions);
        if table.get(&key).is_some() {
            tracing::warn!(
                "duplicate request for live stream {} of {worker}; ignored",
                head.id
            );
            return;
        }
        if table.len() >= self.max_sessions {
            drop(table);
            tracing::warn!(
                "{} sessions live (client_maxconn); refusing request on stream {} of {worker}",
                self.max_sessions,
                head.id
            );
            out.close(CloseReason::Shutdown);
            return;
        }
        let inbox = Arc::new(Inbox::new(head.body.clone(), head.more, head.credits));
        let serial = table.insert(key.clone(), inbox.clone());
        table.opened(&key, &head.peer_addr);
        let guard = SessionGuard {
            sessions: self.sessions.clone(),
            key: key.clone(),
            serial,
            inbox: inbox.clone(),
            armed: true,
        };
        // The table lock is held across the spawn so the task cannot finish (and remove its
        // entry) before the abort handle is stored.
        let handle = self.spawner.spawn(head, inbox, out, guard);
        table.set_abort(&key, handle.abort_handle());
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
