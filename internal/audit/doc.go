// Package audit owns the audit trail: the record written for every write
// call, every denial and every admin action, the keyed HMAC that stands in
// for a call's arguments, the sinks that store records (a hash-chained JSONL
// file, stdout, PostgreSQL) and the verification of a chained file set.
//
// A record is durable when [Auditor.Write] returns nil: every configured
// sink has accepted it (the file sink has fsync'd it, PostgreSQL has
// committed it). Concurrent writers share one fsync or one INSERT.
package audit
