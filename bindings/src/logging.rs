//! Logging set-up: [`init_platform`] installs one `tracing` subscriber (level / filter,
//! optional console output, optional app-provided [`LogSink`]), bridges `log` records, and a
//! panic hook that logs panics with a backtrace. The engine never logs secrets or message
//! bodies; raw protocol data appears at `trace` only (target `cubechat_core::xmpp::raw`),
//! with SASL exchanges and message bodies redacted.

use std::cell::Cell;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Once, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::error::ChatError;

/// Severity of a log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    /// Something failed.
    Error,
    /// Something unexpected that the library handled.
    Warn,
    /// A notable event (connect, login, reconnect).
    Info,
    /// Detail for debugging.
    Debug,
    /// Every step.
    Trace,
}

impl LogLevel {
    fn directive(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl From<&Level> for LogLevel {
    fn from(l: &Level) -> Self {
        match *l {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }
}

/// How the library logs.
#[derive(Debug, Clone, uniffi::Record)]
pub struct LogConfig {
    /// Lowest level recorded; `None` = `Info`.
    #[uniffi(default)]
    pub level: Option<LogLevel>,
    /// Comma-separated `target=level` directives and a default level (e.g.
    /// `cubechat_core=debug,warn`: a target is a module path prefix); overrides `level`.
    #[uniffi(default)]
    pub filter: Option<String>,
    /// Also write records to standard error.
    #[uniffi(default = false)]
    pub console: bool,
}

/// One log record handed to a [`LogSink`].
#[derive(Debug, Clone, uniffi::Record)]
pub struct LogRecord {
    /// How severe it is.
    pub level: LogLevel,
    /// The Rust module that logged, e.g. `cubechat_core::auth`.
    pub target: String,
    /// The message followed by its fields (`key=value`).
    pub message: String,
}

/// Receives the library's log records, e.g. to forward them to the app's logger. Called
/// synchronously on whichever thread logged (often a background thread); keep it fast and
/// do not call into cubechat from it.
#[uniffi::export(foreign)]
pub trait LogSink: Send + Sync {
    /// One record. An error is ignored.
    fn log(&self, record: LogRecord) -> Result<(), ChatError>;
}

/// Where tokio-xmpp logs, at `trace`, the raw protocol (SASL credentials and message bodies
/// verbatim) and each parser event.
const RAW_XMPP_UNREDACTED: &str = "tokio_xmpp::xmlstream";

/// Bridges `log` records into `tracing`, except tokio-xmpp's unredacted `trace` records
/// (reported disabled, so they are not even collected): the engine's redacting raw log
/// (`cubechat_core::xmpp::raw`) takes their place.
struct Bridge(tracing_log::LogTracer);

impl Bridge {
    fn unredacted(meta: &log::Metadata<'_>) -> bool {
        meta.level() == log::Level::Trace && meta.target().starts_with(RAW_XMPP_UNREDACTED)
    }
}

impl log::Log for Bridge {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        !Self::unredacted(meta) && self.0.enabled(meta)
    }
    fn log(&self, record: &log::Record<'_>) {
        if !Self::unredacted(record.metadata()) {
            self.0.log(record);
        }
    }
    fn flush(&self) {
        self.0.flush();
    }
}

static SINK: RwLock<Option<Arc<dyn LogSink>>> = RwLock::new(None);
static INIT: Once = Once::new();

thread_local! {
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

/// Sets up the runtime and logging. Call once at app start; later calls only replace the
/// sink (`None` removes it), so calling it again is harmless.
///
/// Errors: `InvalidInput` for a filter directive that does not parse (first call only).
#[uniffi::export]
pub fn init_platform(config: LogConfig, sink: Option<Arc<dyn LogSink>>) -> Result<(), ChatError> {
    let directive = match &config.filter {
        Some(f) => f.clone(),
        None => config
            .level
            .unwrap_or(LogLevel::Info)
            .directive()
            .to_owned(),
    };
    let filter: Targets = directive.parse().map_err(|e| ChatError::InvalidInput {
        reason: format!("bad log filter: {e}"),
    })?;
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = sink;
    let mut first = false;
    INIT.call_once(|| {
        first = true;
        let console = config.console.then(|| {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
        });
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(console)
            .with(SinkLayer)
            .try_init();
        if log::set_boxed_logger(Box::new(Bridge(tracing_log::LogTracer::new()))).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
        install_panic_hook();
    });
    crate::runtime::rt()?;
    if !first {
        tracing::debug!("init_platform called again: sink replaced, filter unchanged");
    }
    Ok(())
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let backtrace = std::backtrace::Backtrace::force_capture();
        tracing::error!(target: "cubechat::panic", %info, %backtrace, "panic");
        previous(info);
    }));
}

/// Forwards every event to the app's sink, guarding against re-entry from the sink itself.
struct SinkLayer;

impl<S: Subscriber> Layer<S> for SinkLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(sink) = SINK.read().unwrap_or_else(|p| p.into_inner()).clone() else {
            return;
        };
        if IN_SINK.with(|f| f.replace(true)) {
            return;
        }
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let meta = event.metadata();
        let record = LogRecord {
            level: meta.level().into(),
            target: meta.target().to_owned(),
            message: visitor.finish(),
        };
        let _ = catch_unwind(AssertUnwindSafe(|| sink.log(record)));
        IN_SINK.with(|f| f.set(false));
    }
}

#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl MessageVisitor {
    fn finish(self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.fields,
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }
}

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else if !field.name().starts_with("log.") {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}
