//! The run's side of the control socket: a private Unix socket in the run folder, a thread that
//! accepts viewers of the run's own user only, a thread per viewer reading its requests, and the
//! hub that sends every trainer message to the subscribed viewers without ever waiting for one.
//!
//! Nothing here can stall the trainer: requests are read on their own threads, commands go
//! into the trainer's channel, and events are written with non-blocking sends; a viewer that
//! falls too far behind is dropped.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, BufReader, ErrorKind};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::protocol::{Command, TrainMsg};
use crate::run::state::{Note, NoteKind};

use super::wire::{self, LineRead, Reply, Request, VERSION};

/// The socket's name in the run folder.
pub const SOCKET_NAME: &str = "control.sock";

/// Viewers connected at once, at most; more are refused.
pub const MAX_CONNECTIONS: usize = 16;

/// Bytes queued for one viewer before it counts as dead and is dropped (a few sample grids).
pub const MAX_BACKLOG_BYTES: usize = 4 << 20;

/// Why the run has no control socket.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("another process is serving this run folder ({0} answers)")]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket; it was left alone")]
    NotASocket(PathBuf),
    #[error("cannot create the socket {path}: {cause}")]
    Create {
        path: PathBuf,
        #[source]
        cause: io::Error,
    },
    #[error("cannot start the control thread: {0}")]
    Thread(#[source] io::Error),
}

/// The run's control socket, listening until dropped (which removes the socket file).
pub struct ControlServer {
    path: PathBuf,
    /// The listening socket, to wake the accept loop when the run ends.
    listener: UnixListener,
    hub: Arc<Hub>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Listens on `<run_dir>/control.sock`. Commands from viewers go to `commands`; a line for
    /// the run's log goes to `log` for each command passed on and each request refused.
    pub fn start(
        run_dir: &Path,
        commands: Sender<Command>,
        log: Sender<Note>,
    ) -> Result<ControlServer, ControlError> {
        let path = run_dir.join(SOCKET_NAME);
        clear_stale_socket(&path)?;
        let listener = bind_private(run_dir, &path).map_err(|cause| ControlError::Create {
            path: path.clone(),
            cause,
        })?;
        let hub = Arc::new(Hub::default());
        let stop = Arc::new(AtomicBool::new(false));
        let own = listener.try_clone().map_err(|cause| ControlError::Create {
            path: path.clone(),
            cause,
        })?;
        let accept = {
            let (hub, stop) = (Arc::clone(&hub), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("control".into())
                .spawn(move || accept_loop(listener, hub, stop, commands, log))
        };
        let accept = match accept {
            Ok(handle) => handle,
            Err(e) => {
                let _ = fs::remove_file(&path);
                return Err(ControlError::Thread(e));
            }
        };
        Ok(ControlServer {
            path,
            listener: own,
            hub,
            stop,
            accept: Some(accept),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where trainer messages go to reach the viewers.
    pub fn hub(&self) -> Arc<Hub> {
        Arc::clone(&self.hub)
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop: shutting the listening socket down ends a waiting accept on
        // Linux; a connection of our own does elsewhere (while the socket file is there).
        // SAFETY: the fd is open (we hold the listener); shutdown touches no memory.
        unsafe {
            libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR);
        }
        let _ = UnixStream::connect(&self.path);
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
        let _ = fs::remove_file(&self.path);
        self.hub.close_all();
    }
}

/// Removes a socket left by a run that was killed (nobody answers it); refuses to touch a
/// socket that answers or anything that is not a socket.
fn clear_stale_socket(path: &Path) -> Result<(), ControlError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(cause) => {
            return Err(ControlError::Create {
                path: path.to_path_buf(),
                cause,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ControlError::NotASocket(path.to_path_buf()));
    }
    if UnixStream::connect(path).is_ok() {
        return Err(ControlError::InUse(path.to_path_buf()));
    }
    fs::remove_file(path).map_err(|cause| ControlError::Create {
        path: path.to_path_buf(),
        cause,
    })
}

/// Binds the socket inside a fresh owner-only folder, makes it owner-only, then moves it into
/// place: at no moment can another user reach it, and the process's umask (shared with every
/// thread) is never changed.
fn bind_private(run_dir: &Path, path: &Path) -> io::Result<UnixListener> {
    let private = run_dir.join(format!(".control-{}", std::process::id()));
    let _ = fs::remove_dir_all(&private);
    fs::DirBuilder::new().mode(0o700).create(&private)?;
    let result = (|| {
        let inner = private.join(SOCKET_NAME);
        let listener = UnixListener::bind(&inner)?;
        fs::set_permissions(&inner, fs::Permissions::from_mode(0o600))?;
        fs::rename(&inner, path)?;
        Ok(listener)
    })();
    let _ = fs::remove_dir_all(&private);
    result
}

/// The user id of the process at the other end of `stream`, from the kernel.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given; the fd is open.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(cred.uid)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The user id of the process at the other end of `stream`, from the kernel.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: both pointers are valid for writes; the fd is open.
    let rc = unsafe { libc::getpeereid(stream.as_raw_fd(), &mut uid, &mut gid) };
    if rc == 0 {
        Ok(uid)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The user the run belongs to.
pub fn own_uid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// Whether a peer may use the run: only the run's own user.
pub fn peer_allowed(peer: u32, owner: u32) -> bool {
    peer == owner
}

fn accept_loop(
    listener: UnixListener,
    hub: Arc<Hub>,
    stop: Arc<AtomicBool>,
    commands: Sender<Command>,
    log: Sender<Note>,
) {
    let owner = own_uid();
    let connections = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let refuse = |stream: &UnixStream, why: String| {
            let _ = log.send(warning(format!("control: refused a connection: {why}")));
            let client = Client::new(stream, usize::MAX);
            if let Some(client) = client {
                client.send(&wire::line(&Reply::Refused {
                    v: VERSION,
                    error: why,
                }));
            }
            let _ = stream.shutdown(std::net::Shutdown::Both);
        };
        match peer_uid(&stream) {
            Ok(uid) if peer_allowed(uid, owner) => {}
            Ok(uid) => {
                refuse(
                    &stream,
                    format!("user id {uid} is not the run's user ({owner})"),
                );
                continue;
            }
            Err(e) => {
                refuse(&stream, format!("cannot read the peer's credentials: {e}"));
                continue;
            }
        }
        if connections.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            refuse(
                &stream,
                format!("{MAX_CONNECTIONS} viewers are connected already"),
            );
            continue;
        }
        let Some(client) = Client::new(&stream, hub.next_id()).map(Arc::new) else {
            continue;
        };
        hub.register(Arc::clone(&client));
        connections.fetch_add(1, Ordering::SeqCst);
        let spawned = {
            let (hub, commands, log, connections) = (
                Arc::clone(&hub),
                commands.clone(),
                log.clone(),
                Arc::clone(&connections),
            );
            let client = Arc::clone(&client);
            std::thread::Builder::new()
                .name("control-viewer".into())
                .spawn(move || {
                    serve(stream, &client, &hub, &commands, &log);
                    hub.forget(&client);
                    connections.fetch_sub(1, Ordering::SeqCst);
                })
        };
        if spawned.is_err() {
            hub.forget(&client);
            connections.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Reads one viewer's requests until it hangs up, sends an oversized line, or the run ends.
fn serve(
    stream: UnixStream,
    client: &Client,
    hub: &Hub,
    commands: &Sender<Command>,
    log: &Sender<Note>,
) {
    let mut reader = BufReader::new(stream);
    loop {
        let line = match wire::read_line_bounded(&mut reader, wire::MAX_REQUEST_BYTES) {
            Ok(LineRead::Line(line)) => line,
            Ok(LineRead::Closed) | Err(_) => return,
            Ok(LineRead::TooLong) => {
                let error = wire::RequestError::TooLong.to_string();
                let _ = log.send(warning(format!(
                    "control: refused a request from viewer {}: {error}; closed it",
                    client.id
                )));
                client.send(&wire::line(&Reply::Refused { v: VERSION, error }));
                client.close();
                return;
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match wire::parse_request(&line) {
            Ok(Request::Subscribe { .. }) => hub.subscribe(client),
            Ok(Request::Command { command, .. }) => {
                // The acknowledgement goes out before the command reaches the trainer, so the
                // viewer reads it before any news the command causes (a checkpoint's note).
                client.send(&wire::line(&Reply::Accepted {
                    v: VERSION,
                    command,
                }));
                if commands.send(command).is_ok() {
                    let _ = log.send(Note {
                        kind: NoteKind::Info,
                        text: format!("viewer {}: {}", client.id, command_text(command)),
                    });
                } else {
                    client.send(&wire::line(&Reply::Refused {
                        v: VERSION,
                        error: "the trainer has ended".to_string(),
                    }));
                }
            }
            Err(e) => {
                let error = e.to_string();
                let _ = log.send(warning(format!(
                    "control: refused a request from viewer {}: {error}",
                    client.id
                )));
                client.send(&wire::line(&Reply::Refused { v: VERSION, error }));
            }
        }
    }
}

fn warning(text: String) -> Note {
    Note {
        kind: NoteKind::Warning,
        text,
    }
}

/// What the run's log says a viewer asked for.
pub fn command_text(command: Command) -> String {
    match command {
        Command::Pause => "pause".to_string(),
        Command::Resume => "resume".to_string(),
        Command::SaveCheckpoint => "save a checkpoint".to_string(),
        Command::Resample => "resample the digits".to_string(),
        Command::FreshNoise(true) => "fresh noise at each refresh".to_string(),
        Command::FreshNoise(false) => "fixed noise".to_string(),
        Command::Evaluate => "score the digits now".to_string(),
        Command::ShowDigit(Some(d)) => format!("draw digit {d}"),
        Command::ShowDigit(None) => "draw all ten digits".to_string(),
        Command::Stop => "stop the run".to_string(),
        Command::Probe { probe, on: true } => format!("show the {probe:?} probe"),
        Command::Probe { probe, on: false } => format!("hide the {probe:?} probe"),
    }
}

/// One connected viewer: its socket and what is queued for it.
pub struct Client {
    id: usize,
    stream: UnixStream,
    out: Mutex<Outbox>,
    dead: AtomicBool,
}

#[derive(Default)]
struct Outbox {
    pending: VecDeque<u8>,
}

impl Client {
    fn new(stream: &UnixStream, id: usize) -> Option<Client> {
        Some(Client {
            id,
            stream: stream.try_clone().ok()?,
            out: Mutex::new(Outbox::default()),
            dead: AtomicBool::new(false),
        })
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        // A panic while holding the lock cannot leave the queue inconsistent beyond lost bytes.
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `bytes` and sends what the socket takes now, never waiting. A viewer whose queue
    /// passes `MAX_BACKLOG_BYTES` is cut off.
    fn send(&self, bytes: &[u8]) {
        if self.dead.load(Ordering::SeqCst) {
            return;
        }
        let mut out = self.outbox();
        if out.pending.len() + bytes.len() > MAX_BACKLOG_BYTES {
            drop(out);
            self.close();
            return;
        }
        out.pending.extend(bytes);
        self.flush_locked(&mut out);
    }

    fn flush(&self) {
        if !self.dead.load(Ordering::SeqCst) {
            let mut out = self.outbox();
            self.flush_locked(&mut out);
        }
    }

    fn flush_locked(&self, out: &mut Outbox) {
        while !out.pending.is_empty() {
            let (front, _) = out.pending.as_slices();
            // SAFETY: `front` is valid for reads of its length; MSG_DONTWAIT makes this one
            // call non-blocking without changing the socket (its reader thread blocks on it).
            let sent = unsafe {
                libc::send(
                    self.stream.as_raw_fd(),
                    front.as_ptr().cast(),
                    front.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if sent < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    ErrorKind::WouldBlock => return,
                    ErrorKind::Interrupted => continue,
                    _ => {
                        self.dead.store(true, Ordering::SeqCst);
                        out.pending.clear();
                        return;
                    }
                }
            }
            out.pending.drain(..sent as usize);
        }
    }

    fn close(&self) {
        self.dead.store(true, Ordering::SeqCst);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// The latest of each kind of fact a viewer needs when it joins.
#[derive(Default)]
struct Facts {
    started: Option<TrainMsg>,
    step: Option<TrainMsg>,
    samples: Option<TrainMsg>,
    quality: Option<TrainMsg>,
    epoch: Option<TrainMsg>,
    checkpoint: Option<TrainMsg>,
    /// The latest `Paused` or `Resumed`.
    pause: Option<TrainMsg>,
    /// `Finished`, `Error` or `Diverged`.
    ending: Option<TrainMsg>,
    best: Option<TrainMsg>,
    /// The latest alarms, oldest first, for the plots' markers.
    alarms: std::collections::VecDeque<TrainMsg>,
}

/// Alarms a joining viewer is told of (a run raises a few).
const ALARMS_KEPT: usize = 32;

impl Facts {
    fn note(&mut self, msg: &TrainMsg) {
        let slot = match msg {
            TrainMsg::Started(_) => &mut self.started,
            TrainMsg::Step(_) => &mut self.step,
            TrainMsg::Samples(_) => &mut self.samples,
            TrainMsg::Quality(_) => &mut self.quality,
            TrainMsg::EpochDone(_) => &mut self.epoch,
            TrainMsg::CheckpointSaved { .. } => &mut self.checkpoint,
            TrainMsg::BestCheckpoint { .. } => &mut self.best,
            TrainMsg::Alarm(_) => {
                if self.alarms.len() == ALARMS_KEPT {
                    self.alarms.pop_front();
                }
                self.alarms.push_back(msg.clone());
                return;
            }
            TrainMsg::Paused { .. } | TrainMsg::Resumed { .. } => &mut self.pause,
            TrainMsg::Finished { .. } | TrainMsg::Error(_) | TrainMsg::Diverged { .. } => {
                &mut self.ending
            }
            // Probes come again with the next grid while they are on.
            TrainMsg::Probes(_) | TrainMsg::ProbeFailed { .. } => return,
            TrainMsg::CheckpointFailed { .. }
            | TrainMsg::WriteFailed { .. }
            | TrainMsg::ScoringFailed(_) => return,
        };
        *slot = Some(msg.clone());
    }

    /// In the order a run sends them.
    fn in_order(&self) -> impl Iterator<Item = &TrainMsg> {
        [
            &self.started,
            &self.epoch,
            &self.quality,
            &self.checkpoint,
            &self.best,
            &self.step,
        ]
        .into_iter()
        .flatten()
        .chain(&self.alarms)
        .chain(
            [&self.samples, &self.pause, &self.ending]
                .into_iter()
                .flatten(),
        )
    }
}

/// The viewers and the run's facts, shared by the socket's threads and the relay.
#[derive(Default)]
pub struct Hub {
    state: Mutex<HubState>,
    ids: AtomicUsize,
}

#[derive(Default)]
struct HubState {
    clients: Vec<Arc<Client>>,
    subscribed: Vec<Arc<Client>>,
    facts: Facts,
}

impl Hub {
    fn state(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_id(&self) -> usize {
        self.ids.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn register(&self, client: Arc<Client>) {
        self.state().clients.push(client);
    }

    fn forget(&self, client: &Client) {
        let mut state = self.state();
        state.clients.retain(|c| c.id != client.id);
        state.subscribed.retain(|c| c.id != client.id);
    }

    /// Sends the run's facts so far, then (from `publish`) every message.
    fn subscribe(&self, client: &Client) {
        let mut state = self.state();
        if state.subscribed.iter().any(|c| c.id == client.id) {
            return;
        }
        for msg in state.facts.in_order() {
            client.send(&wire::line(&Reply::Event {
                v: VERSION,
                msg: Box::new(msg.clone()),
            }));
        }
        if let Some(c) = state.clients.iter().find(|c| c.id == client.id) {
            let c = Arc::clone(c);
            state.subscribed.push(c);
        }
    }

    /// Passes a trainer message to every subscribed viewer (serialised once, only if any is
    /// subscribed) and keeps it as a fact for viewers still to come.
    pub fn publish(&self, msg: &TrainMsg) {
        let mut state = self.state();
        state.facts.note(msg);
        state.subscribed.retain(|c| !c.dead.load(Ordering::SeqCst));
        if state.subscribed.is_empty() {
            return;
        }
        let bytes = wire::line(&Reply::Event {
            v: VERSION,
            msg: Box::new(msg.clone()),
        });
        for client in &state.subscribed {
            client.send(&bytes);
        }
    }

    /// Sends what is still queued for slow viewers.
    pub fn flush(&self) {
        for client in &self.state().subscribed {
            client.flush();
        }
    }

    /// Viewers subscribed now.
    pub fn viewers(&self) -> usize {
        self.state()
            .subscribed
            .iter()
            .filter(|c| !c.dead.load(Ordering::SeqCst))
            .count()
    }

    /// Sends what is queued (the run's last messages) and hangs up on every viewer.
    fn close_all(&self) {
        let state = self.state();
        for client in &state.clients {
            client.flush();
            let _ = client.stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod tests;
