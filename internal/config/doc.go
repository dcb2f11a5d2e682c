// Package config owns mcpgate's YAML configuration: its types, strict
// loading, explicit defaults and validation.
//
// A configuration is read with [Load] or [Parse]. Decoding starts from
// [Default], rejects unknown keys, duplicate keys and values of the wrong
// shape (each reported with its line and key path), and then runs
// [Config.Validate], which reports every remaining problem at once as
// [Problems].
//
// Secrets never appear in the file. A [Value] is either a plain string or a
// reference, {env: NAME} or {file: PATH}; Validate checks references without
// touching the environment or the file system so that a configuration can be
// checked offline, and [Config.ResolveSecrets] reads them when the gateway
// starts. A resolved secret does not appear in fmt, YAML or JSON output.
package config
