package main

import (
	"fmt"
	"io"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/gateway"
)

func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "mcpgate validate --config FILE",
		"Check a config file: its YAML, every key, value and reference. Prints every\nproblem with its line and field path and exits 1 if there is any. Secrets\nreferenced with {env: NAME} or {file: PATH} are checked to be readable, and\nkeys, certificates and CA files are loaded as serve loads them.", stderr)
	var path string
	fs.StringVar(&path, "config", "", "config file (YAML)")
	fs.StringVar(&path, "c", "", "shorthand for --config")
	if code, done := parse(fs, args); done {
		return code
	}
	if path == "" {
		fmt.Fprintln(stderr, "mcpgate validate: --config FILE is required")
		return 2
	}
	cfg, err := loadConfig(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// Build the gateway without listening: keys, certificates and CA files
	// are loaded as serve would load them.
	g, err := gateway.New(cfg, gateway.Options{Version: buildVersion(), CheckOnly: true})
	if err != nil {
		fmt.Fprintln(stderr, config.FileError(path, err))
		return 1
	}
	g.Close()
	fmt.Fprintf(stdout, "%s: ok (%d servers)\n", path, len(cfg.Servers))
	return 0
}

// loadConfig loads, validates and resolves the secrets of a config file.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := cfg.ResolveSecrets(); err != nil {
		return nil, config.FileError(path, err)
	}
	return cfg, nil
}
