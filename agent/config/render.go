package config

import (
	"bytes"
	"fmt"

	"github.com/BurntSushi/toml"
)

// Render writes c as TOML that Load reads back to the same configuration:
// tests and benchmarks build a Config from Default and write it, instead of
// writing TOML by hand.
func Render(c Config) ([]byte, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return b.Bytes(), nil
}
