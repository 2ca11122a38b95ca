// SPDX-License-Identifier: GPL-2.0

// Package logging is the agent's own log (logrus) as the [log] table
// configures it: level, text or JSON lines, stderr or a file that SIGHUP
// opens again.
package logging

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/sirupsen/logrus"

	"smith/agent/config"
)

// Open returns the logger [log] configures (writing to stderr without
// log.file), a function that closes its file and one that opens the
// file again (SIGHUP, after logrotate moved it).
func Open(c config.Log, stderr io.Writer) (*logrus.Logger, func(), func() error, error) {
	log := logrus.New()
	log.Out = stderr
	lvl, err := logrus.ParseLevel(c.Level)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("log.level: %w", err)
	}
	log.SetLevel(lvl)
	if c.Format == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	} else {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	}
	if c.File == "" {
		return log, func() {}, func() error { return nil }, nil
	}
	open := func() (*os.File, error) {
		f, err := os.OpenFile(c.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("log file: %w", err)
		}
		return f, nil
	}
	f, err := open()
	if err != nil {
		return nil, nil, nil, err
	}
	log.SetOutput(f)
	var mu sync.Mutex
	reopen := func() error {
		nf, err := open()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		log.SetOutput(nf) // under the logger's lock: no line is split
		f.Close()
		f = nf
		return nil
	}
	closeFn := func() {
		mu.Lock()
		defer mu.Unlock()
		f.Close()
	}
	return log, closeFn, reopen, nil
}
