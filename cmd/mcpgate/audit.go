package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/mcpgate/mcpgate/internal/audit"
)

const auditUsage = `Usage:
  mcpgate audit <command> [flags]

Commands:
  verify   check the hash chain of audit files

Run "mcpgate audit <command> --help" for a command's flags.
`

func auditCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return 2
	}
	switch args[0] {
	case "verify":
		return auditVerifyCmd(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stderr, auditUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "mcpgate audit: unknown command %q\n\n%s", args[0], auditUsage)
		return 2
	}
}

func auditVerifyCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("audit verify", "mcpgate audit verify FILE...",
		`Check the hash chain of audit files written by the file sink (audit.file).
Give every file of the chain, oldest first: the rotated files (FILE.<time>)
and then the current one, for example:

  mcpgate audit verify audit.jsonl.* audit.jsonl

It finds edited, deleted, inserted and reordered records, a truncated last
line, and missing files. Prints "ok: ..." and exits 0 when the chain is
intact; otherwise prints each break with its file, line and record number
and exits 1.`, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	files := fs.Args()
	if len(files) == 0 {
		fmt.Fprintln(stderr, "mcpgate audit verify: name the audit files to check, oldest first")
		return 2
	}
	r, err := audit.Verify(files)
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate audit verify: %v\n", err)
		return 1
	}
	if !r.Intact() {
		for _, p := range r.Problems {
			fmt.Fprintln(stderr, p)
		}
		fmt.Fprintf(stderr, "chain broken: %d problem(s) in %d records\n", len(r.Problems), r.Records)
		return 1
	}
	fmt.Fprintf(stdout, "ok: %d records, chain intact (first seq %d, last seq %d)\n", r.Records, r.FirstSeq, r.LastSeq)
	if r.FirstSeq > 1 {
		fmt.Fprintf(stdout, "note: the chain starts at seq %d; the records before it are in files not given\n", r.FirstSeq)
	}
	return 0
}
