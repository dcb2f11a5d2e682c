// Command mcpgate is a production gateway for the Model Context Protocol.
package main

import (
	"fmt"
	"io"
	"os"
	_ "time/tzdata" // policy rules may name time zones; hosts may lack the files
)

const usage = `mcpgate is a production gateway for the Model Context Protocol.

Usage:
  mcpgate <command> [flags]

Commands:
  serve      run the gateway from a config file
  validate   check a config file and print every problem
  demo       run the gateway in front of a built-in demo server
  ctl        operate on the gateway's state (approve changed tools)
  audit      verify audit files
  version    print the version

Run "mcpgate <command> --help" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serveCmd(args[1:], stdout, stderr)
	case "validate":
		return validateCmd(args[1:], stdout, stderr)
	case "demo":
		return demoCmd(args[1:], stdout, stderr)
	case "ctl":
		return ctlCmd(args[1:], stdout, stderr)
	case "audit":
		return auditCmd(args[1:], stdout, stderr)
	case "version", "--version":
		return versionCmd(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "mcpgate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
