// Package hostile holds the gateway's hostile-input tests: it builds the
// real mcpgate binary, runs it as a process, and drives it with malformed
// JSON-RPC, oversized and deeply nested bodies, header abuse, session
// misuse, slow clients and faulty upstreams (crashing, hanging, lying,
// flooding). Every case asserts the safe outcome, that nothing reached an
// upstream that should not have, and that the gateway keeps serving with
// bounded memory and goroutines.
//
// The package has no code outside its tests; run it with
//
//	go test ./internal/hostile/
package hostile
