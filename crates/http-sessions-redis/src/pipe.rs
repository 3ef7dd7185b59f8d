//! [`Pipe`]: one TCP connection to a Redis node that many calls share at
//! once, and that sends the commands of every call made in the same pass of
//! the scheduler with a single write.
//!
//! It exists because a write per command, which is what the driver's
//! multiplexed connection makes, was most of what a store call cost under
//! load. Replies are matched to calls by their order alone, so the first
//! error, or a silence as long as the store's timeout while a reply is due,
//! breaks a pipe for good. Plain TCP only. The design, the failure rules and
//! their costs: `docs/redis-internals.md`.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use deadpool_redis::redis::{self, Cmd, RedisError, RedisResult, Value};
use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};
use tokio::task::AbortHandle;
use tokio::time::{Instant, Sleep};

/// How many commands appended in one pass of the scheduler make the call
/// that appends the last of them write them at once, instead of leaving
/// them to the writer task at the end of the pass.
///
/// Tuned on `cargo xtask bench`: 8, 16, and no early write at all, each
/// served fewer requests a second (docs/redis-internals.md).
const FLUSH_AT: usize = 32;

/// How much the reader asks the socket for at least, per read.
const READ_CHUNK: usize = 16 * 1024;

/// How long a connection sits idle before the kernel sends its first
/// keepalive probe. Short enough to keep a NAT or load balancer entry alive
/// (their idle timeouts are minutes), and to find a dead path within a
/// minute of idling.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(15);

/// How long between probes that get no answer.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);

/// How many unanswered probes make the kernel close the connection: an idle
/// connection whose path died fails within
/// `KEEPALIVE_IDLE + KEEPALIVE_RETRIES * KEEPALIVE_INTERVAL`, 30 s.
const KEEPALIVE_RETRIES: u32 = 3;

/// The TCP keepalive every connection the store opens uses, its own
/// [`Pipe`]s and the driver's (`conn` hands it to redis-rs's TCP settings).
///
/// Keepalive only covers an idle connection: one with a command in flight
/// that gets no answer is found by the store's timeout instead (see
/// [`Pipe::send_by`]).
pub(crate) fn keepalive() -> TcpKeepalive {
    let keepalive = TcpKeepalive::new().with_time(KEEPALIVE_IDLE);
    // Elsewhere the system's interval and count apply.
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "windows"
    ))]
    let keepalive = keepalive
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    keepalive
}

/// Deepest nesting of arrays accepted in a reply. The store's commands
/// answer flat arrays at most; a deeper reply means the stream is not what
/// it should be.
const MAX_DEPTH: usize = 8;

/// A shared connection to one Redis node. Cheap to clone; the connection
/// closes when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Pipe {
    shared: Arc<Shared>,
    _tasks: Arc<Tasks>,
}

/// What the calls and the two tasks share.
struct Shared {
    /// Read by the reader task only; written by whoever holds the state's
    /// lock, so that commands go out in the order they were appended.
    stream: TcpStream,
    state: Mutex<State>,
    /// Wakes the writer when the buffer goes from empty to not empty, or the
    /// pipe breaks.
    wake_writer: Notify,
    /// Wakes the reader when a call's deadline is earlier than the one its
    /// timer is set for (or it has none), so that it sets it again.
    wake_reader: Notify,
}

struct State {
    /// Encoded commands not yet written.
    out: Vec<u8>,
    /// How many commands were appended to `out` since it was last empty.
    queued: usize,
    /// One entry per command appended and not yet answered, in order.
    waiting: VecDeque<Waiter>,
    /// Why the pipe broke, once it has.
    broken: Option<io::ErrorKind>,
    /// The deadline the reader's timer is set for, or is about to be: a
    /// call with an earlier one wakes the reader to set it again.
    timer: Option<Instant>,
    /// When the reader last read anything (or the pipe was opened).
    last_read: Instant,
}

/// A call waiting for its reply.
struct Waiter {
    /// Taken when the call's deadline passes: its reply, when it comes, is
    /// then discarded (as it is when the call was dropped meanwhile).
    sender: Option<oneshot::Sender<RedisResult<Value>>>,
    /// When the call's command was appended.
    sent: Instant,
    /// When the call gives up waiting, if ever.
    deadline: Option<Deadline>,
}

/// When a call gives up waiting for its reply, and the timeout that
/// deadline comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    /// When the call gives up.
    pub(crate) at: Instant,
    /// The store's timeout: how long a pipe may stay silent while a reply
    /// is due before a call that times out on it breaks it.
    pub(crate) limit: Duration,
}

/// The writer and reader tasks, stopped when the last [`Pipe`] clone goes.
struct Tasks {
    writer: AbortHandle,
    reader: AbortHandle,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        // No call is waiting: each holds a clone while it waits.
        self.writer.abort();
        self.reader.abort();
    }
}

impl State {
    /// Writes as much of `out` as the socket takes without waiting. `Ok`
    /// with bytes left means the socket is full: the writer task waits for
    /// it and writes the rest.
    fn write_out(&mut self, stream: &TcpStream) -> io::Result<()> {
        while !self.out.is_empty() {
            match stream.try_write(&self.out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) if n >= self.out.len() => self.out.clear(),
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        self.queued = 0;
        Ok(())
    }

    /// The earliest deadline of the calls still waiting for their reply.
    fn earliest_deadline(&self) -> Option<Instant> {
        self.waiting
            .iter()
            .filter(|w| w.sender.is_some())
            .filter_map(|w| w.deadline)
            .map(|d| d.at)
            .min()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something did, the
        // state is still consistent (each step leaves it so).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fails every waiting call whose deadline is `now` or past, and breaks
    /// the pipe if it has been silent for one of those calls' whole timeout
    /// while a reply was due: with replies matched by order, a pipe that
    /// left one unanswered cannot be trusted with the next. Every other
    /// waiting call then fails as *connection dropped*, so that it is sent
    /// again on a new connection. Whether it broke the pipe.
    fn expire(&self, now: Instant) -> bool {
        let mut expired = Vec::new();
        let mut dead = false;
        let waiting = {
            let mut state = self.lock();
            // Silent since the oldest reply due was asked for, or since the
            // last bytes came, whichever is later.
            let silent = state
                .waiting
                .front()
                .map(|oldest| now.saturating_duration_since(oldest.sent.max(state.last_read)));
            for waiter in state.waiting.iter_mut() {
                if let Some(deadline) = waiter.deadline
                    && deadline.at <= now
                    && let Some(sender) = waiter.sender.take()
                {
                    dead |= silent.is_some_and(|silent| silent >= deadline.limit);
                    expired.push(sender);
                }
            }
            if dead {
                state.broken.get_or_insert(io::ErrorKind::TimedOut);
                state.out.clear();
                std::mem::take(&mut state.waiting)
            } else {
                VecDeque::new()
            }
        };
        let why = if dead {
            "no reply from Redis within the store's timeout; the connection was closed"
        } else {
            "no reply from Redis within the store's timeout"
        };
        for sender in expired {
            let _ = sender.send(Err(io_error(io::ErrorKind::TimedOut, why)));
        }
        if dead {
            self.close();
            for sender in waiting.into_iter().filter_map(|w| w.sender) {
                let _ = sender.send(Err(io_error(
                    io::ErrorKind::ConnectionAborted,
                    "the Redis connection was closed: a call ahead of this one got no reply in time",
                )));
            }
        }
        dead
    }

    /// Breaks the pipe: every waiting call gets `error`, later calls fail
    /// at once.
    fn break_with(&self, error: &io::Error) {
        let waiting = {
            let mut state = self.lock();
            if state.broken.is_none() {
                state.broken = Some(error.kind());
            }
            state.out.clear();
            std::mem::take(&mut state.waiting)
        };
        self.close();
        for sender in waiting.into_iter().filter_map(|w| w.sender) {
            let _ = sender.send(Err(io_error(error.kind(), "the Redis connection broke")));
        }
    }

    /// Stops both tasks and shuts the socket down, so that the server (or
    /// whatever still holds the other end) is told at once, not when the
    /// last handle on the pipe is dropped.
    fn close(&self) {
        // The writer checks `broken` when woken; the reader sees the
        // shutdown as the end of the stream, if it is still reading.
        self.wake_writer.notify_one();
        // An error only says the socket was already closed.
        let _ = SockRef::from(&self.stream).shutdown(std::net::Shutdown::Both);
    }
}

/// An I/O error as the driver reports it, so that `is_connection_dropped`,
/// `is_io_error` and the rest judge it as they judge the driver's own.
fn io_error(kind: io::ErrorKind, what: &'static str) -> RedisError {
    RedisError::from(io::Error::new(kind, what))
}

impl Pipe {
    /// Connects to `host:port`, then authenticates and selects the
    /// database as `info` says.
    pub(crate) async fn connect(
        host: &str,
        port: u16,
        info: &redis::RedisConnectionInfo,
    ) -> RedisResult<Pipe> {
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        SockRef::from(&stream).set_tcp_keepalive(&keepalive())?;
        let shared = Arc::new(Shared {
            stream,
            state: Mutex::new(State {
                out: Vec::with_capacity(READ_CHUNK),
                queued: 0,
                waiting: VecDeque::new(),
                broken: None,
                timer: None,
                last_read: Instant::now(),
            }),
            wake_writer: Notify::new(),
            wake_reader: Notify::new(),
        });
        let writer = tokio::spawn(write_loop(Arc::clone(&shared))).abort_handle();
        let reader = tokio::spawn(read_loop(Arc::clone(&shared))).abort_handle();
        let pipe = Pipe {
            shared,
            _tasks: Arc::new(Tasks { writer, reader }),
        };
        pipe.handshake(info).await?;
        Ok(pipe)
    }

    /// Whether the pipe is broken: every call on it fails at once.
    pub(crate) fn is_broken(&self) -> bool {
        self.shared.lock().broken.is_some()
    }

    /// `AUTH` (with the user name, if the URL has one) and `SELECT`, as
    /// the URL says.
    async fn handshake(&self, info: &redis::RedisConnectionInfo) -> RedisResult<()> {
        if let Some(password) = info.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(username) = info.username() {
                auth.arg(username);
            }
            auth.arg(password);
            // Every refusal of `AUTH` is about the credentials: `WRONGPASS`
            // (a wrong password, or an unknown or disabled user), or `ERR`
            // from a server that has no password set. Named so, as the
            // driver's own handshake does, with the server's words.
            if let Value::ServerError(refusal) = self.send(&auth).await? {
                let said = match refusal.details() {
                    Some(details) => format!("{} {details}", refusal.code()),
                    None => refusal.code().to_owned(),
                };
                return Err(RedisError::from((
                    redis::ErrorKind::AuthenticationFailed,
                    "authentication failed",
                    said,
                )));
            }
        }
        if info.db() != 0 {
            self.send(redis::cmd("SELECT").arg(info.db()))
                .await?
                .extract_error()?;
        }
        Ok(())
    }

    /// Sends `cmd` and waits for its reply. An error reply of the server is
    /// an `Ok(Value::ServerError)`, as on the driver's connections.
    pub(crate) async fn send(&self, cmd: &Cmd) -> RedisResult<Value> {
        self.send_by(cmd, None).await
    }

    /// [`send`](Self::send), giving up at `deadline` with an I/O error of
    /// kind `TimedOut` (`is_timeout`). If the pipe was silent for the whole
    /// timeout, that breaks it: the other calls waiting on it fail as
    /// *connection dropped* (`is_connection_dropped`), and so do later ones
    /// ([`is_broken`](Self::is_broken) tells). Otherwise (the call had
    /// little time left when it was sent) the pipe stays usable, and the
    /// reply is discarded when it comes.
    ///
    /// The reader task keeps the deadline, with one timer for all the calls
    /// waiting: cheaper than a timeout around each call.
    pub(crate) async fn send_by(
        &self,
        cmd: &Cmd,
        deadline: Option<Deadline>,
    ) -> RedisResult<Value> {
        let (sender, reply) = oneshot::channel();
        let failed = {
            let mut state = self.shared.lock();
            if let Some(kind) = state.broken {
                return Err(io_error(
                    dropped_kind(kind),
                    "the Redis connection was dropped",
                ));
            }
            let first = state.out.is_empty();
            cmd.write_packed_command(&mut state.out);
            state.waiting.push_back(Waiter {
                sender: Some(sender),
                sent: Instant::now(),
                deadline,
            });
            state.queued += 1;
            // Enough for one write: sent now rather than at the end of the
            // scheduler's pass, so that Redis works on these while this
            // thread goes on with the other tasks.
            let failed = if state.queued >= FLUSH_AT {
                state.write_out(&self.shared.stream).err()
            } else {
                None
            };
            if first || !state.out.is_empty() {
                self.shared.wake_writer.notify_one();
            }
            // Calls come in deadline order when they share one timeout:
            // the reader is woken once per timer, not once per call.
            if let Some(Deadline { at, .. }) = deadline
                && state.timer.is_none_or(|timer| at < timer)
            {
                state.timer = Some(at);
                self.shared.wake_reader.notify_one();
            }
            failed
        };
        if let Some(error) = failed {
            self.shared.break_with(&error);
        }
        // The sender is only dropped unanswered if the tasks are gone.
        reply.await.unwrap_or_else(|_| {
            Err(io_error(
                io::ErrorKind::BrokenPipe,
                "the Redis connection was dropped",
            ))
        })
    }
}

/// How a call on a pipe broken by `kind` fails: as a dropped connection,
/// unless the stream broke because its bytes made no sense.
fn dropped_kind(kind: io::ErrorKind) -> io::ErrorKind {
    match kind {
        io::ErrorKind::InvalidData => io::ErrorKind::InvalidData,
        _ => io::ErrorKind::BrokenPipe,
    }
}

/// Writes what calls append and did not write themselves, at the end of
/// the scheduler's pass.
async fn write_loop(shared: Arc<Shared>) {
    loop {
        shared.wake_writer.notified().await;
        // Every task ready now runs before this one resumes: the requests
        // among them append their commands to this same write.
        tokio::task::yield_now().await;
        loop {
            let written = {
                let mut state = shared.lock();
                if state.broken.is_some() {
                    return;
                }
                state
                    .write_out(&shared.stream)
                    .map(|()| state.out.is_empty())
            };
            match written {
                Ok(true) => break,
                // The socket is full: wait until Redis has read some.
                Ok(false) => {
                    if let Err(e) = shared.stream.writable().await {
                        shared.break_with(&e);
                        return;
                    }
                }
                Err(e) => {
                    shared.break_with(&e);
                    return;
                }
            }
        }
    }
}

/// Reads replies and hands each to the call waiting longest; fails the
/// calls whose deadline passes, and breaks the pipe on the first error.
async fn read_loop(shared: Arc<Shared>) {
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut reader = Reader {
        shared: &shared,
        timer,
        timer_at: None,
        buf: Vec::with_capacity(READ_CHUNK),
        parser: ReplyParser::default(),
        replies: Vec::new(),
        senders: Vec::new(),
    };
    loop {
        // Deadlines are checked here as well as by the timer: while replies
        // keep coming, `wait` returns before it polls the timer.
        let woke = if reader.set_timer() {
            Woke::Deadline
        } else {
            reader.wait().await
        };
        let handled = match woke {
            Woke::Read(read) => read.and_then(|len| reader.received(len)),
            Woke::Deadline => {
                if shared.expire(Instant::now()) {
                    return;
                }
                Ok(())
            }
            Woke::Again => Ok(()),
        };
        if let Err(error) = handled {
            shared.break_with(&error);
            return;
        }
    }
}

/// The reader task's state, kept from one read to the next so that nothing
/// is allocated again per read.
struct Reader<'a> {
    shared: &'a Shared,
    /// One timer for every call waiting, set to the earliest deadline.
    timer: Pin<&'a mut Sleep>,
    /// What `timer` is set for; `None` once it has fired, or if no call
    /// waiting has a deadline.
    timer_at: Option<Instant>,
    /// Bytes read and not parsed yet.
    buf: Vec<u8>,
    parser: ReplyParser,
    /// The replies completed by the last read.
    replies: Vec<Value>,
    /// The waiters those replies go to, taken from the queue together.
    senders: Vec<Option<oneshot::Sender<RedisResult<Value>>>>,
}

/// What woke the reader.
enum Woke {
    /// The socket was readable: how many bytes the read added to `buf`.
    Read(io::Result<usize>),
    /// A call's deadline passed.
    Deadline,
    /// Nothing to do but look again: a new earlier deadline, or a
    /// readiness that turned out spurious.
    Again,
}

impl Reader<'_> {
    /// Sets the timer to the earliest deadline of the calls waiting;
    /// whether that deadline has passed already.
    fn set_timer(&mut self) -> bool {
        let earliest = {
            let mut state = self.shared.lock();
            state.timer = state.earliest_deadline();
            state.timer
        };
        if earliest.is_some_and(|at| at <= Instant::now()) {
            return true;
        }
        if earliest != self.timer_at {
            if let Some(at) = earliest {
                self.timer.as_mut().reset(at);
            }
            self.timer_at = earliest;
        }
        false
    }

    /// Waits for bytes to read, the timer, or a call that wants the timer
    /// set earlier; reads what the socket has.
    async fn wait(&mut self) -> Woke {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        let stream = &self.shared.stream;
        tokio::select! {
            biased;
            ready = stream.readable() => match ready {
                Ok(()) => match stream.try_read_buf(&mut self.buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Woke::Again,
                    read => Woke::Read(read),
                },
                Err(e) => Woke::Read(Err(e)),
            },
            () = self.timer.as_mut(), if self.timer_at.is_some() => {
                self.timer_at = None;
                Woke::Deadline
            }
            () = self.shared.wake_reader.notified() => Woke::Again,
        }
    }

    /// Parses the `len` bytes just read, with those before them, and hands
    /// out the replies they complete. An error breaks the pipe.
    fn received(&mut self, len: usize) -> io::Result<()> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "Redis closed the connection",
            ));
        }
        self.shared.lock().last_read = Instant::now();
        let used = self
            .parser
            .parse(&self.buf, &mut self.replies)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
        self.buf.drain(..used);
        if self.replies.is_empty() {
            return Ok(());
        }
        self.hand_out()
    }

    /// Hands each reply parsed to the waiter at the front of the queue, in
    /// order; a reply with no waiter left for it is an error.
    fn hand_out(&mut self) -> io::Result<()> {
        let mut unasked = false;
        {
            let mut state = self.shared.lock();
            for _ in 0..self.replies.len() {
                match state.waiting.pop_front() {
                    Some(waiter) => self.senders.push(waiter.sender),
                    None => {
                        unasked = true;
                        break;
                    }
                }
            }
        }
        // A call that gave up (its deadline passed, or it was dropped) no
        // longer takes its reply: the reply is discarded here.
        for (sender, value) in self.senders.drain(..).zip(self.replies.drain(..)) {
            if let Some(sender) = sender {
                let _ = sender.send(Ok(value));
            }
        }
        self.replies.clear();
        if unasked {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a reply nobody asked for",
            ));
        }
        Ok(())
    }
}

/// Parses the replies of a stream as their bytes arrive, taking a reply cut
/// by a read up where the last call left it: the arrays begun are kept with
/// the items they have, and a line or a bulk string still arriving is not
/// looked at again until more of it has come. Each byte is examined a small
/// constant number of times, whatever the read sizes, so that a large reply
/// costs time linear in its size (the tests count the bytes examined).
///
/// RESP2, which a connection speaks unless it asks for RESP3 (this one
/// never does).
#[derive(Default)]
struct ReplyParser {
    /// The arrays begun and not complete, outermost first: how many items
    /// each still lacks (never 0), and the items it has.
    open: Vec<(usize, Vec<Value>)>,
    /// Where the search for the end of the first line of the unparsed
    /// bytes starts again: how far it looked without finding it, or where
    /// it found it if the item needs more bytes.
    scanned: usize,
    /// How many unparsed bytes the item at their start needs: set when a
    /// bulk string's header has come and not all of its bytes.
    need: usize,
}

/// One item of a reply: a whole value, or the header of a non-empty array
/// whose items follow.
enum Item {
    Value(Value),
    Array(usize),
}

impl ReplyParser {
    /// Parses what it can of `buf`, the bytes read and not parsed yet,
    /// pushing each reply it completes onto `replies`, and returns how many
    /// bytes of `buf` it parsed (those of a reply begun and not complete
    /// included). The caller drops them: the next call's `buf` starts with
    /// the bytes that followed them.
    fn parse(&mut self, buf: &[u8], replies: &mut Vec<Value>) -> Result<usize, &'static str> {
        let mut used = 0;
        while let Some((item, len)) = self.item(buf.get(used..).unwrap_or_default())? {
            used += len;
            self.scanned = 0;
            self.need = 0;
            if let Some(reply) = self.add(item) {
                replies.push(reply);
            }
        }
        Ok(used)
    }

    /// The item at the start of `buf` and its length in bytes; `None` if it
    /// has not fully arrived yet.
    fn item(&mut self, buf: &[u8]) -> Result<Option<(Item, usize)>, &'static str> {
        if buf.len() < self.need {
            return Ok(None);
        }
        // A CR last in what was searched may be followed by its LF now.
        let from = self.scanned;
        let found = buf
            .get(from..)
            .and_then(|rest| rest.windows(2).position(|w| w == b"\r\n"));
        let Some(end) = found.map(|at| from + at) else {
            examined(buf.len().saturating_sub(from));
            self.scanned = buf.len().saturating_sub(1).max(from);
            return Ok(None);
        };
        examined(end + 2 - from);
        // Found again at once if this item has to wait for more bytes.
        self.scanned = end;
        let Some((&kind, line)) = buf.get(..end).and_then(<[u8]>::split_first) else {
            return Err("an empty line where a reply was due");
        };
        examined(line.len());
        let after = end + 2;
        let value = match kind {
            b'+' if line == b"OK" => Value::Okay,
            b'+' => Value::SimpleString(String::from_utf8_lossy(line).into_owned()),
            // The driver's own parser makes the error value, so that codes
            // and kinds come out exactly as on its connections.
            b'-' => buf
                .get(..after)
                .map(redis::parse_redis_value)
                .and_then(Result::ok)
                .ok_or("an error reply that does not parse")?,
            b':' => Value::Int(number(line)?),
            b'$' => {
                let Ok(len) = usize::try_from(number(line)?) else {
                    return Ok(Some((Item::Value(Value::Nil), after)));
                };
                let end = after.checked_add(len).ok_or("a bulk string too long")?;
                let next = end.checked_add(2).ok_or("a bulk string too long")?;
                return match (buf.get(after..end), buf.get(end..next)) {
                    (Some(bytes), Some(b"\r\n")) => {
                        examined(len + 2);
                        Ok(Some((Item::Value(Value::BulkString(bytes.to_vec())), next)))
                    }
                    (Some(_), Some(_)) => Err("a bulk string not followed by CRLF"),
                    _ => {
                        self.need = next;
                        Ok(None)
                    }
                };
            }
            b'*' => match usize::try_from(number(line)?) {
                Err(_) => Value::Nil,
                Ok(_) if self.open.len() >= MAX_DEPTH => return Err("a reply nested too deep"),
                Ok(0) => Value::Array(Vec::new()),
                Ok(count) => return Ok(Some((Item::Array(count), after))),
            },
            _ => return Err("a reply of a type this client does not speak"),
        };
        Ok(Some((Item::Value(value), after)))
    }

    /// Adds `item` to the innermost array begun; returns the reply it
    /// completes, if any.
    fn add(&mut self, item: Item) -> Option<Value> {
        let mut value = match item {
            Item::Value(value) => value,
            Item::Array(count) => {
                // Items are added as they come: nothing is allocated for
                // those announced and not arrived.
                self.open.push((count, Vec::new()));
                return None;
            }
        };
        while let Some((lacks, items)) = self.open.last_mut() {
            items.push(value);
            *lacks -= 1;
            if *lacks > 0 {
                return None;
            }
            value = Value::Array(std::mem::take(items));
            self.open.pop();
        }
        Some(value)
    }
}

#[cfg(test)]
thread_local! {
    /// How many bytes the reply parser examined on this thread, for the
    /// tests that bound its work.
    static EXAMINED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts `bytes` examined by the reply parser, in tests (see `EXAMINED`).
fn examined(bytes: usize) {
    #[cfg(test)]
    EXAMINED.with(|n| n.set(n.get() + bytes));
    #[cfg(not(test))]
    let _ = bytes;
}

/// The decimal integer of a reply's header line.
fn number(line: &[u8]) -> Result<i64, &'static str> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or("a length or integer that is not a number")
}

#[cfg(test)]
mod parser_tests;

#[cfg(test)]
mod tests {
    use super::*;

    /// The replies `bytes` holds, parsed in one piece, and how many of its
    /// bytes were parsed.
    fn parse(bytes: &[u8]) -> Result<(Vec<Value>, usize), &'static str> {
        let mut replies = Vec::new();
        let used = ReplyParser::default().parse(bytes, &mut replies)?;
        Ok((replies, used))
    }

    fn whole(bytes: &[u8]) -> Value {
        let (mut replies, used) = parse(bytes).unwrap();
        assert_eq!(used, bytes.len(), "{bytes:?}");
        assert_eq!(replies.len(), 1, "{bytes:?}");
        replies.pop().unwrap()
    }

    #[test]
    fn every_reply_the_store_meets_parses() {
        assert_eq!(whole(b"+OK\r\n"), Value::Okay);
        assert_eq!(whole(b"+PONG\r\n"), Value::SimpleString("PONG".into()));
        assert_eq!(whole(b":-42\r\n"), Value::Int(-42));
        assert_eq!(whole(b"$-1\r\n"), Value::Nil);
        assert_eq!(whole(b"*-1\r\n"), Value::Nil);
        assert_eq!(whole(b"*0\r\n"), Value::Array(vec![]));
        assert_eq!(whole(b"$0\r\n\r\n"), Value::BulkString(vec![]));
        assert_eq!(
            whole(b"$4\r\na\r\nb\r\n"),
            Value::BulkString(b"a\r\nb".to_vec())
        );
        assert_eq!(
            whole(b"*2\r\n$1\r\nk\r\n*1\r\n:1\r\n"),
            Value::Array(vec![
                Value::BulkString(b"k".to_vec()),
                Value::Array(vec![Value::Int(1)])
            ])
        );
        let error = whole(b"-WRONGTYPE Operation against a key\r\n")
            .extract_error()
            .unwrap_err();
        assert_eq!(error.code(), Some("WRONGTYPE"));
        let error = whole(b"-NOSCRIPT No matching script\r\n")
            .extract_error()
            .unwrap_err();
        assert_eq!(error.code(), Some("NOSCRIPT"));
    }

    #[test]
    fn a_reply_cut_anywhere_waits_for_the_rest() {
        let reply = b"*3\r\n$5\r\nhello\r\n:7\r\n*2\r\n$-1\r\n*0\r\n";
        let expected = whole(reply);
        for cut in 0..reply.len() {
            let mut parser = ReplyParser::default();
            let mut replies = Vec::new();
            let used = parser.parse(&reply[..cut], &mut replies).unwrap();
            assert_eq!(replies, [], "cut at {cut}");
            let rest = &reply[used..];
            assert_eq!(parser.parse(rest, &mut replies), Ok(rest.len()));
            assert_eq!(replies, std::slice::from_ref(&expected), "cut at {cut}");
        }
        // Replies that follow one another come out one by one.
        assert_eq!(
            parse(b":1\r\n:2\r\n:3"),
            Ok((vec![Value::Int(1), Value::Int(2)], 8))
        );
    }

    #[test]
    fn a_stream_that_is_not_resp_is_refused() {
        for bad in [
            &b"?1\r\n"[..],
            b"\r\n",
            b":x\r\n",
            b"$2\r\nabcd\r\n",
            b"$nope\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*0\r\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        // A huge announced array allocates nothing up front.
        assert_eq!(parse(b"*9223372036854775807\r\n"), Ok((vec![], 22)));
    }

    /// Bounds every wait on the peer: never expected to trip.
    const GUARD: Duration = Duration::from_secs(10);

    /// A pipe to a peer of the test's own on a free port, and the peer's
    /// end of the connection.
    async fn pipe_and_peer() -> (Pipe, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let info = redis::RedisConnectionInfo::default();
        let (pipe, peer) = tokio::join!(Pipe::connect("127.0.0.1", port, &info), listener.accept());
        (pipe.unwrap(), peer.unwrap().0)
    }

    /// Reads from `peer` until it has `len` bytes or the stream ends; how
    /// many it read.
    async fn read_at_least(peer: &mut TcpStream, len: usize) -> usize {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0; len.max(64)];
        let mut read = 0;
        while read < len {
            match tokio::time::timeout(GUARD, peer.read(&mut buf))
                .await
                .unwrap()
            {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
        read
    }

    fn deadline(after: Duration, limit: Duration) -> Option<Deadline> {
        Some(Deadline {
            at: Instant::now() + after,
            limit,
        })
    }

    #[tokio::test]
    async fn a_pipe_silent_for_a_whole_timeout_breaks_and_closes() {
        let (pipe, mut peer) = pipe_and_peer().await;
        let ping = redis::cmd("PING");
        let limit = Duration::from_millis(50);
        let error = pipe
            .send_by(&ping, deadline(limit, limit))
            .await
            .unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        assert!(pipe.is_broken());
        // Later calls fail at once, as dropped, so the pool replaces it.
        let error = pipe.send(&ping).await.unwrap_err();
        assert!(error.is_connection_dropped(), "{error:?}");
        // The socket was shut down: the peer reads the command, then the end.
        let sent = ping.get_packed_command().len();
        assert_eq!(read_at_least(&mut peer, sent + 1).await, sent);
    }

    #[tokio::test]
    async fn a_call_waiting_behind_one_that_breaks_the_pipe_fails_as_dropped() {
        let (pipe, _peer) = pipe_and_peer().await;
        let ping = redis::cmd("PING");
        let limit = Duration::from_millis(50);
        let (first, second) = tokio::join!(
            pipe.send_by(&ping, deadline(limit, limit)),
            pipe.send_by(&ping, deadline(GUARD, GUARD)),
        );
        assert!(first.unwrap_err().is_timeout());
        let second = second.unwrap_err();
        assert!(
            second.is_connection_dropped() && !second.is_timeout(),
            "{second:?}"
        );
    }

    /// A call that had little time left when it was sent times out alone:
    /// the pipe was not silent for a whole timeout, so it stays up, and the
    /// late reply goes to nobody, not to the next call.
    #[tokio::test]
    async fn a_call_with_little_time_left_times_out_alone() {
        use tokio::io::AsyncWriteExt;
        let (pipe, mut peer) = pipe_and_peer().await;
        let first = redis::cmd("PING");
        let mut second = redis::cmd("ECHO");
        second.arg("second");
        let error = pipe
            .send_by(&first, deadline(Duration::from_millis(20), GUARD))
            .await
            .unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        assert!(!pipe.is_broken());

        let (reply, ()) = tokio::join!(pipe.send_by(&second, deadline(GUARD, GUARD)), async {
            let both = first.get_packed_command().len() + second.get_packed_command().len();
            assert_eq!(read_at_least(&mut peer, both).await, both);
            peer.write_all(b"+PONG\r\n$6\r\nsecond\r\n").await.unwrap();
        });
        assert_eq!(reply.unwrap(), Value::BulkString(b"second".to_vec()));
        assert!(!pipe.is_broken());
    }
}
