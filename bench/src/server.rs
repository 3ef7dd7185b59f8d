//! The server side: a tokio runtime of one worker thread ([`Servers`]) on
//! which each variant's routes are served on `127.0.0.1:0`, one
//! [`Running`] server at a time.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::serve::{Listener as _, ListenerExt as _};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::Error;
use crate::stats::SERVER_THREADS;
use crate::variants::{self, Backends, Resources, Variant};

/// How long a stopping server may take to close its connections.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The runtime every server runs on: one worker, so the server gets one of
/// the two cores and the load generator the other.
#[derive(Debug)]
pub(crate) struct Servers {
    runtime: Runtime,
}

/// One variant being served.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    resources: Resources,
}

/// A tokio runtime of one worker thread named `name`, pinned to `core` if
/// given: the server and the load generator each run on one.
pub(crate) fn one_thread_runtime(
    name: &'static str,
    core: Option<core_affinity::CoreId>,
) -> Result<Runtime, Error> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .on_thread_start(move || {
            if let Some(core) = core {
                core_affinity::set_for_current(core);
            }
        })
        .enable_all()
        .build()?)
}

impl Servers {
    /// Builds the runtime.
    pub(crate) fn new(core: Option<core_affinity::CoreId>) -> Result<Self, Error> {
        Ok(Self {
            runtime: one_thread_runtime(SERVER_THREADS, core)?,
        })
    }

    /// The runtime, for store-level work that must run where servers run.
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Starts serving `variant`'s routes.
    pub(crate) fn start(&self, variant: Variant, backends: Backends<'_>) -> Result<Running, Error> {
        self.runtime.block_on(async {
            let (router, resources) = variants::router(variant, backends).await?;
            let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await?
                .tap_io(|tcp| {
                    // Responses are one write each: send them at once.
                    let _ = tcp.set_nodelay(true);
                });
            let addr = listener.local_addr()?;
            let (stop, stopped) = oneshot::channel::<()>();
            // Spawned, not awaited here: the worker thread serves while
            // this (main) thread goes back to driving the client.
            let task = tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
            });
            Ok(Running {
                addr,
                stop,
                task,
                resources,
            })
        })
    }

    /// Stops a server once its clients have gone, and closes what it opened.
    pub(crate) fn stop(&self, running: Running) -> Result<(), Error> {
        let Running {
            addr,
            stop,
            task,
            resources,
        } = running;
        let _ = stop.send(());
        self.runtime.block_on(async {
            let served = tokio::time::timeout(STOP_TIMEOUT, task).await;
            resources.close().await;
            match served {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => Err(format!("the server on {addr} failed: {e}").into()),
                Ok(Err(e)) => Err(format!("the server on {addr} panicked: {e}").into()),
                Err(_) => {
                    Err(format!("the server on {addr} did not stop in {STOP_TIMEOUT:?}").into())
                }
            }
        })
    }
}
