// Package telemetry owns what the gateway tells operators about itself:
// Prometheus metrics on a private registry ([Metrics]), OpenTelemetry traces
// with MCP's semantic conventions and W3C trace context carried in HTTP
// headers and in params._meta ([Tracing]), and the log helpers that tie
// records to traces and keep untrusted text from forging them
// ([LogHandler], [SafeString]).
//
// Every label value is bounded: servers, tools, methods and outcomes come
// from closed sets the gateway declares, and anything else is counted as
// [Other]. docs/observability.md lists every metric.
package telemetry
