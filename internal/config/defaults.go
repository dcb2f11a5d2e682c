package config

import "time"

// Defaults, and the limits Validate enforces.
const (
	defaultListen          = "127.0.0.1:8080"
	defaultAdminListen     = "127.0.0.1:9090"
	defaultLogLevel        = "info"
	defaultLogFormat       = "json"
	defaultMaxBodyBytes    = 4 << 20
	defaultMaxJSONDepth    = 64
	defaultIdleTimeout     = 30 * time.Minute
	defaultMaxPerPrincipal = 100
	defaultShutdownGrace   = 15 * time.Second
	defaultStorePath       = "mcpgate.db"

	defaultConnectTimeout    = 5 * time.Second
	defaultResponseTimeout   = 5 * time.Minute
	defaultRestartBackoffMax = 30 * time.Second

	minBodyBytes   = 1 << 10
	maxBodyBytes   = 64 << 20
	minJSONDepth   = 2
	maxJSONDepth   = 1000
	minIdleTimeout = time.Second
	maxServerName  = 40
)

// Default returns a configuration holding every default and no servers.
func Default() *Config {
	return &Config{
		Listen: defaultListen,
		Admin:  Admin{Listen: defaultAdminListen},
		Log:    Log{Level: defaultLogLevel, Format: defaultLogFormat},
		HTTP: HTTP{
			MaxBodyBytes: defaultMaxBodyBytes,
			MaxJSONDepth: defaultMaxJSONDepth,
		},
		Sessions: Sessions{
			IdleTimeout:     Duration(defaultIdleTimeout),
			MaxPerPrincipal: defaultMaxPerPrincipal,
		},
		ShutdownGrace: Duration(defaultShutdownGrace),
		Servers:       map[string]*Server{},
		Store:         Store{Path: defaultStorePath},
	}
}

// defaultServer returns a server holding the per-server defaults.
func defaultServer() *Server {
	return &Server{
		ConnectTimeout:    Duration(defaultConnectTimeout),
		ResponseTimeout:   Duration(defaultResponseTimeout),
		RestartBackoffMax: Duration(defaultRestartBackoffMax),
		Pin:               PinEnforce,
	}
}

// Pin modes (servers.<name>.pin).
const (
	PinEnforce    = "enforce"
	PinAutoAccept = "auto_accept"
	PinOff        = "off"
)
