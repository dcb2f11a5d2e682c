package config

// Validation of the later sections; each moves to its own file as it is
// written.

func (c *Config) validatePolicy(ps *Problems)    {}
func (c *Config) validateStore(ps *Problems)     {}
func (c *Config) validateTelemetry(ps *Problems) {}
func (c *Config) validateAudit(ps *Problems)     {}
func (c *Config) validateLimits(ps *Problems)    {}
