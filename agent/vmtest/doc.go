// Package vmtest checks smith-agent against the real module inside the
// test VM (files with the vmtest build tag; scripts/vm/scenarios/agent.sh
// runs them): a known scenario's events, field by field, in both formats.
package vmtest
