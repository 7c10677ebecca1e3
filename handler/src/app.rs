//! Process wiring and lifecycle.
//!
//! Start: load config and routes, bind the ROUTER socket (bridge thread), start the dispatcher,
//! the routes reloader and the idle-connection reaper.
//!
//! Stop (SIGINT/SIGTERM), staged:
//! 1. refuse new requests (the connmgr gets `Close(Shutdown)` for them);
//! 2. let sessions in flight finish for up to [`SHUTDOWN_GRACE`];
//! 3. abort the rest, telling the connmgr (`Close(Shutdown)`);
//! 4. flush the bridge and exit 0.
//!
//! A second signal during the drain exits at once (status 1).

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::cli::{Args, Settings};
use crate::client::tls::TlsConfigs;
use crate::client::{Client, REAP_INTERVAL};
use crate::command::{zrpc, CommandContext};
use crate::control::ControlServer;
use crate::error::RunError;
use crate::grip::hub::HubConfig;
use crate::grip::sign::Signer;
use crate::grip::GripRuntime;
use crate::ipc::bridge;
use crate::metrics::Metrics;
use crate::observe::{Observer, Observers};
use crate::proxy::{Proxy, ProxyContext};
use crate::session::{abort_all, live_tasks, lock_table, Dispatcher, Sessions};
use crate::stats::{Reporter, ReporterConfig, StatsObserver};
use crate::zmqin::{InputConfig, SubInterest};
use crate::{command, logging, metrics, routes, stats, zmqin};

/// How long sessions in flight may take to finish after a stop signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Inbound batches queued between the bridge and the dispatcher.
const INBOUND_CAPACITY: usize = 1024;

/// Builds the runtime for `[proxy] workers` threads.
///
/// One worker (the default, as in Pushpin) is a current-thread runtime: every task of the
/// handler (the ROUTER bridge, sessions, backend connections, the publish API) runs on the
/// thread that waits in `block_on`. A request then crosses no thread of the handler's own, and
/// no worker has to be woken to steal it: with `wrk -c50` through Holdfast that is a quarter
/// less handler CPU per request (33 µs against 43 µs on average with a 2-worker runtime on 2
/// cores, docs/performance-log.md) and a few to twenty percent more requests per second. More
/// workers let the handler use more cores where one is not enough.
fn runtime(workers: usize) -> Result<tokio::runtime::Runtime, std::io::Error> {
    let mut builder = if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    builder.enable_all().thread_name("handler").build()
}

/// Runs the handler until it is stopped; the process exit code.
pub fn run(args: Args) -> ExitCode {
    let settings = match Settings::from_args(args) {
        Ok(settings) => settings,
        Err(err) => {
            logging::init(2);
            tracing::error!("{err}");
            return ExitCode::FAILURE;
        }
    };
    logging::init(settings.log_level);
    for warning in &settings.config_warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match runtime(settings.config.proxy.workers) {
        Ok(runtime) => runtime,
        Err(source) => {
            tracing::error!(
                "{}",
                RunError::Os {
                    what: "tokio runtime",
                    source
                }
            );
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(settings));
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

fn os_error(what: &'static str) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Os { what, source }
}

async fn serve(settings: Settings) -> Result<(), RunError> {
    tracing::info!(
        "holdfast-handler {} starting (instance {}, {} worker thread{})",
        env!("CARGO_PKG_VERSION"),
        settings.instance_id,
        settings.config.proxy.workers,
        if settings.config.proxy.workers == 1 {
            ""
        } else {
            "s"
        }
    );
    let mut term = signal(SignalKind::terminate()).map_err(os_error("SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(os_error("SIGINT handler"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(os_error("SIGHUP handler"))?;

    let (routes, updater) = routes::load(settings.routes.clone());
    let client = Client::new(TlsConfigs::new()?);
    let epoch: u64 = rand::random();
    let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CAPACITY);
    // Binding is immediate; the bridge task starts on the runtime.
    let bridge = bridge::start(&settings.connmgr_spec, epoch, inbound_tx)?;
    let outbox = bridge.outbox();

    let sessions: Sessions = Arc::default();
    let handler_cfg = &settings.config.handler;
    let hub_config = HubConfig {
        update_on_first_subscription: handler_cfg.update_on_first_subscription,
        subscription_linger: Duration::from_secs(u64::from(handler_cfg.subscription_linger)),
        message_wait: Duration::from_millis(u64::from(handler_cfg.message_wait)),
        id_cache_ttl: Duration::from_secs(u64::from(handler_cfg.id_cache_ttl)),
        connection_subscription_max: handler_cfg.connection_subscription_max as usize,
        message_rate: handler_cfg.message_rate,
        message_hwm: handler_cfg.message_hwm,
    };
    let (grip, resumes) = GripRuntime::new(hub_config.clone(), outbox.clone(), sessions.clone());

    // Stats, metrics and the SUB socket's interest all hear the hub's and the session table's
    // events (see `observe`).
    let metrics = Arc::new(Metrics::default());
    let stats_observer = Arc::new(StatsObserver::default());
    let interest = Arc::new(SubInterest::default());
    let observers = Observers::new(vec![
        metrics.clone() as Arc<dyn Observer>,
        stats_observer.clone(),
        interest.clone(),
    ]);
    lock_table(&sessions).set_observers(observers.clone());
    grip.set_observers(observers);
    let mut stats_socket = match &handler_cfg.stats_spec {
        Some(spec) => match stats::socket::start(spec) {
            Ok(socket) => Some(socket),
            Err(err) => {
                tracing::warn!("{err}; stats are off");
                None
            }
        },
        None => None,
    };
    let reporter = Reporter::new(
        ReporterConfig {
            from: settings.instance_id.clone(),
            // Set from the socket's subscriptions before every pass (`stats::run`).
            send: false,
            connection_send: settings.config.stats_connection_send,
            connection_ttl: settings.config.stats_connection_ttl,
            subscription_ttl: handler_cfg.stats_subscription_ttl,
            report_interval: Duration::from_secs(u64::from(handler_cfg.stats_report_interval)),
        },
        Instant::now(),
    );
    let stats_task = tokio::spawn(stats::run(
        stats_observer,
        reporter,
        handler_cfg.stats_format,
        stats_socket.as_mut().and_then(|s| s.take_sender()),
        metrics.clone(),
    ));
    let metrics_task = match &handler_cfg.prometheus {
        Some(listen) => match metrics::server::bind(listen).await {
            Ok(listener) => {
                tracing::info!("prometheus metrics on {listen:?}");
                Some(tokio::spawn(metrics::server::run(
                    listener,
                    metrics.clone(),
                    handler_cfg.prometheus_prefix.clone(),
                )))
            }
            Err(err) => {
                tracing::warn!("cannot bind prometheus_port {listen:?}: {err}; metrics are off");
                None
            }
        },
        None => None,
    };
    let runtime = tokio::runtime::Handle::current();
    let inputs = zmqin::start(
        &InputConfig {
            pull: handler_cfg.push_in_spec.clone(),
            sub: handler_cfg.push_in_sub_specs.clone(),
            sub_connect: handler_cfg.push_in_sub_connect,
        },
        grip.clone(),
        runtime.clone(),
        interest,
    )?;
    let command = match &handler_cfg.command_spec {
        Some(spec) => {
            let sub_bind = if handler_cfg.push_in_sub_connect {
                None
            } else {
                handler_cfg.push_in_sub_specs.first().map(String::as_str)
            };
            let ctx = CommandContext {
                grip: grip.clone(),
                sessions: sessions.clone(),
                uris: zrpc::zmq_uris(Some(spec), handler_cfg.push_in_spec.as_deref(), sub_bind),
                runtime,
            };
            match command::start(spec, ctx) {
                Ok(socket) => Some(socket),
                Err(err) => {
                    tracing::warn!("{err}; the command socket is off");
                    None
                }
            }
        }
        None => None,
    };
    let proxy_cfg = &settings.config.proxy;
    let routes_dir = proxy_cfg
        .routesfile
        .as_deref()
        .and_then(|p| p.parent())
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| settings.config.dir.clone());
    let signer = Signer::new(
        &proxy_cfg.sig_iss,
        &proxy_cfg.sig_key,
        &proxy_cfg.upstream_key,
        &settings.config.dir,
        &routes_dir,
    );
    let proxy = Proxy::new(ProxyContext {
        config: settings.config.proxy.clone(),
        routes,
        client: client.clone(),
        grip: grip.clone(),
        hub_config,
        signer,
        outbox: outbox.clone(),
        gone: Default::default(),
    });
    let ticker = tokio::spawn(grip.clone().run_ticker());
    let resumer = tokio::spawn(proxy.clone().run_resumer(resumes));
    let control = match handler_cfg.push_in_http_listen() {
        Some(addr) => match ControlServer::bind(addr).await {
            Ok(listener) => {
                tracing::info!("control API listening on {addr}");
                let server = ControlServer {
                    grip: grip.clone(),
                    max_headers_size: handler_cfg.push_in_http_max_headers_size,
                    max_body_size: handler_cfg.push_in_http_max_body_size,
                };
                Some(tokio::spawn(server.run(listener)))
            }
            Err(err) => {
                tracing::warn!(
                    "cannot bind the control API at {addr}: {err}; publishing over HTTP is off"
                );
                None
            }
        },
        None => None,
    };
    // Pushpin: max_open_requests, capped by client_maxconn.
    let max_sessions = settings
        .config
        .proxy
        .max_open_requests
        .unwrap_or(usize::MAX)
        .min(settings.config.runner.client_maxconn);
    let dispatcher = Dispatcher::new(sessions.clone(), outbox.clone(), proxy, max_sessions);
    let accepting = dispatcher.accepting();
    let mut dispatch = tokio::spawn(dispatcher.run(inbound_rx));

    let (hup_tx, hup_rx) = mpsc::channel(4);
    let reloader = tokio::spawn(updater.run(hup_rx));
    let reaper = {
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REAP_INTERVAL).await;
                let closed = client.reap_idle();
                if closed > 0 {
                    tracing::debug!("closed {closed} idle backend connections");
                }
            }
        })
    };
    tracing::info!("started");

    let failure = loop {
        tokio::select! {
            _ = term.recv() => break None,
            _ = int.recv() => break None,
            _ = hup.recv() => {
                let _ = hup_tx.try_send(());
            }
            _ = &mut dispatch => break Some(RunError::BridgeStopped),
        }
    };

    if failure.is_none() {
        accepting.store(false, Ordering::Release);
        let n = live_tasks(&sessions);
        tracing::info!(
            "stopping: refusing new requests, waiting up to {}s for {n} sessions",
            SHUTDOWN_GRACE.as_secs()
        );
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while live_tasks(&sessions) > 0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                _ = term.recv() => second_signal(),
                _ = int.recv() => second_signal(),
            }
            if tokio::time::Instant::now() >= deadline {
                let aborted = abort_all(&sessions, &outbox);
                tracing::warn!("shutdown deadline reached: aborted {aborted} sessions");
                break;
            }
        }
        // Held GRIP requests have nothing to finish: close them.
        let held = abort_all(&sessions, &outbox);
        if held > 0 {
            tracing::info!("closed {held} held requests");
        }
    }

    // Publish inputs first: nothing new enters the pipeline.
    let stopped = tokio::task::spawn_blocking(move || {
        if let Some(inputs) = inputs {
            inputs.stop();
        }
        if let Some(command) = command {
            command.stop();
        }
    })
    .await;
    if stopped.is_err() {
        tracing::error!("publish input shutdown task failed");
    }
    stats_task.abort();
    let _ = stats_task.await;
    if let Some(socket) = stats_socket {
        if tokio::task::spawn_blocking(move || socket.stop())
            .await
            .is_err()
        {
            tracing::error!("stats socket shutdown task failed");
        }
    }
    if let Some(task) = metrics_task {
        task.abort();
    }
    reloader.abort();
    reaper.abort();
    ticker.abort();
    resumer.abort();
    if let Some(control) = control {
        control.abort();
    }
    dispatch.abort();
    bridge.stop().await;
    match failure {
        Some(err) => Err(err),
        None => {
            tracing::info!("stopped");
            Ok(())
        }
    }
}

fn second_signal() -> ! {
    tracing::warn!("second stop signal: exiting now");
    std::process::exit(1)
}
