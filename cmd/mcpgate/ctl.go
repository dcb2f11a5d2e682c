package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/store"
)

const ctlUsage = `Usage:
  mcpgate ctl tools list [--config FILE | --store PATH]
  mcpgate ctl tools approve [--config FILE | --store PATH] SERVER/TOOL...

Operate on the gateway's state in its store file (store.path in the config).
The gateway pins every tool it sees; a tool whose definition changes later is
quarantined until approved here. A running gateway sees an approval within a
few seconds.

Run "mcpgate ctl tools <command> --help" for a command's flags.
`

func ctlCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, ctlUsage)
		return 2
	}
	switch args[0] {
	case "tools":
		return ctlToolsCmd(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stderr, ctlUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "mcpgate ctl: unknown command %q\n\n%s", args[0], ctlUsage)
		return 2
	}
}

func ctlToolsCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, ctlUsage)
		return 2
	}
	switch args[0] {
	case "list":
		return ctlToolsList(args[1:], stdout, stderr)
	case "approve":
		return ctlToolsApprove(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stderr, ctlUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "mcpgate ctl tools: unknown command %q\n\n%s", args[0], ctlUsage)
		return 2
	}
}

// storeFlags are the flags that say which store a ctl command works on.
type storeFlags struct {
	config, store string
}

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "the gateway's config file; its store.path is the store")
	fs.StringVar(&f.config, "c", "", "shorthand for --config")
	fs.StringVar(&f.store, "store", "", "the store file itself, instead of --config")
}

// open opens the store the flags name. It never creates one: a missing
// file means a wrong path, not an empty store.
func (f *storeFlags) open(ctx context.Context, name string, stderr io.Writer) (*store.Store, int) {
	path := f.store
	switch {
	case f.config != "" && f.store != "":
		fmt.Fprintf(stderr, "mcpgate ctl tools %s: give --config or --store, not both\n", name)
		return nil, 2
	case f.config == "" && f.store == "":
		fmt.Fprintf(stderr, "mcpgate ctl tools %s: --config FILE or --store PATH is required\n", name)
		return nil, 2
	case f.config != "":
		// Secrets are not resolved: only store.path is needed, and the
		// gateway's secrets may not be readable from an operator's shell.
		cfg, err := config.Load(f.config)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return nil, 1
		}
		path = cfg.Store.Path
		if path == store.MemoryPath {
			fmt.Fprintf(stderr, "mcpgate ctl tools %s: %s keeps its store in memory (store.path: %q): nothing to work on; set store.path to a file\n", name, f.config, store.MemoryPath)
			return nil, 1
		}
	}
	if _, err := os.Stat(path); err != nil {
		fmt.Fprintf(stderr, "mcpgate ctl tools %s: store %s: %v (a relative store.path is relative to the gateway's working directory; has the gateway run yet?)\n", name, path, errors.Unwrap(err))
		return nil, 1
	}
	st, err := store.Open(ctx, path)
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate ctl tools %s: %v\n", name, err)
		return nil, 1
	}
	return st, 0
}

func ctlToolsList(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ctl tools list", "mcpgate ctl tools list [--config FILE | --store PATH]",
		"List every pinned tool: its state (pinned, or quarantined while a changed\ndefinition waits for approval), when and by whom its definition was approved,\nand since when a change is pending. The change of each quarantined tool\nfollows the table.", stderr)
	var sf storeFlags
	sf.register(fs)
	if code, done := parse(fs, args); done {
		return code
	}
	ctx := context.Background()
	st, code := sf.open(ctx, "list", stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	pins, err := st.List(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate ctl tools list: %v\n", err)
		return 1
	}
	if len(pins) == 0 {
		fmt.Fprintf(stdout, "no tools pinned in %s\n", st.Path())
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOOL\tSTATE\tAPPROVED\tPENDING SINCE")
	for _, p := range pins {
		state, since := "pinned", "-"
		if p.PendingHash != "" {
			state, since = "quarantined", formatTime(p.PendingSince)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s by %s\t%s\n", toolRef(p.Server, p.Tool), state, formatTime(p.ApprovedAt), printable(p.ApprovedBy), since)
	}
	tw.Flush()
	for _, p := range pins {
		if p.PendingHash != "" {
			ref := toolRef(p.Server, p.Tool)
			fmt.Fprintf(stdout, "\n%s changed (approve with: mcpgate ctl tools approve %s):\n%s\n", ref, ref, indent(p.Diff))
		}
	}
	return 0
}

func ctlToolsApprove(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ctl tools approve", "mcpgate ctl tools approve [--config FILE | --store PATH] SERVER/TOOL...",
		"Approve the changed definition of each quarantined tool, named by its server\nand its own (unprefixed) name, and print the change approved. A running\ngateway serves the tool again within a few seconds.", stderr)
	var sf storeFlags
	sf.register(fs)
	var refs []string
	// Flags may follow the tool names.
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		refs = append(refs, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(refs) == 0 {
		fmt.Fprintln(stderr, "mcpgate ctl tools approve: name at least one tool, as SERVER/TOOL")
		return 2
	}
	type ref struct{ server, tool string }
	var tools []ref
	for _, r := range refs {
		server, tool, ok := strings.Cut(r, "/")
		if !ok || server == "" || tool == "" {
			fmt.Fprintf(stderr, "mcpgate ctl tools approve: %q is not SERVER/TOOL\n", r)
			return 2
		}
		tools = append(tools, ref{server, tool})
	}
	ctx := context.Background()
	st, code := sf.open(ctx, "approve", stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	by := approver()
	code = 0
	for _, t := range tools {
		name := toolRef(t.server, t.tool)
		res, err := st.Approve(ctx, t.server, t.tool, by)
		switch {
		case errors.Is(err, store.ErrNotFound):
			fmt.Fprintf(stderr, "mcpgate ctl tools approve: %s: no such tool in %s (see mcpgate ctl tools list)\n", name, st.Path())
			code = 1
		case errors.Is(err, store.ErrNothingPending):
			fmt.Fprintf(stderr, "mcpgate ctl tools approve: %s: nothing to approve: its definition has not changed\n", name)
			code = 1
		case err != nil:
			fmt.Fprintf(stderr, "mcpgate ctl tools approve: %v\n", err)
			code = 1
		default:
			fmt.Fprintf(stdout, "%s: approved this change:\n%s\n", name, indent(res.Diff))
		}
	}
	return code
}

// approver names who approves, for the store's record.
func approver() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "ctl:" + u.Username
	}
	return "ctl"
}

func toolRef(server, tool string) string { return printable(server + "/" + tool) }

// printable escapes a name that came from an upstream server if it holds
// anything a terminal would interpret.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// indent indents each line of a diff (already escaped by the store).
func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
