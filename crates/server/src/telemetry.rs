//! JSON logs on stdout; `LOG_LEVEL` is a level or a full filter directive. With
//! `TRACING_ENABLED=true`, spans also go to an OpenTelemetry collector over OTLP/HTTP
//! (protobuf) at `TRACING_ENDPOINT`: the request span is the root (or continues the
//! caller's `traceparent`), with the agent turn, model calls, tools, log appends and
//! fan-out beneath it. The trace id is a field of the request span, so every log line
//! of the request carries it, and display updates written under it carry it as
//! `traceId` (see [`current_trace_id`]).

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where spans go when `TRACING_ENDPOINT` is not set: a collector on this machine.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4318";

/// Keeps the exporter alive; [`Telemetry::shutdown`] flushes spans still queued.
#[derive(Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is queued and stops the exporter (call once, at shutdown).
    pub fn shutdown(&self) {
        if let Some(p) = &self.provider
            && let Err(e) = p.shutdown()
        {
            tracing::warn!(error = %e, "trace exporter did not shut down cleanly");
        }
    }
}

/// The OTLP/HTTP traces URL for `endpoint`: a base URL gets `/v1/traces` appended, a
/// URL already ending in it is kept.
pub fn traces_url(endpoint: Option<&str>) -> String {
    let base = endpoint
        .filter(|e| !e.trim().is_empty())
        .unwrap_or(DEFAULT_ENDPOINT)
        .trim()
        .trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// Installs the global subscriber (later calls are no-ops, which suits tests). With
/// `tracing` (`TRACING_ENABLED`), spans are exported to its endpoint in batches from a
/// background thread; an exporter that cannot be built is logged and tracing stays off
/// rather than stopping the server.
pub fn init(level: &str, tracing: Option<&str>) -> Telemetry {
    let filter = EnvFilter::try_new(level)
        .or_else(|_| EnvFilter::try_new("info"))
        .unwrap_or_default();
    let fmt = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(true)
        .with_writer(std::io::stdout);
    let (provider, problem) = match tracing.map(|e| exporter(&traces_url(Some(e)))) {
        None => (None, None),
        Some(Ok(p)) => (Some(p), None),
        Some(Err(e)) => (None, Some(e)),
    };
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("stonepot"))
            .with_tracked_inactivity(false)
            // The access log's span is for log lines only; the request's exported span
            // is opened under it once the route is known (see `http::record_route`).
            .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                !(m.is_span() && m.target() == crate::http::REQUEST_SPAN_TARGET)
            }))
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
    if let Some(e) = problem {
        tracing::error!(error = %e, "tracing is off: the OTLP exporter could not be built");
    }
    if let Some(url) = tracing
        .map(|e| traces_url(Some(e)))
        .filter(|_| provider.is_some())
    {
        tracing::info!(endpoint = %url, "exporting traces over OTLP/HTTP");
    }
    Telemetry { provider }
}

fn exporter(url: &str) -> Result<SdkTracerProvider, String> {
    // The exporter's reqwest has no bundled TLS provider (ring is the binary's one
    // crypto library, see `objects`); without one installed its client cannot be built.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("stonepot")
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Continues the caller's trace when the request carries a W3C `traceparent`.
pub fn adopt_parent(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = span.set_parent(parent);
}

/// Request headers as the propagator reads them.
struct Headers<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The trace id of `span` in hex, when spans are being exported.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// The trace id of the current span, when spans are being exported.
pub fn current_trace_id() -> Option<String> {
    trace_id(&tracing::Span::current())
}
