// SPDX-License-Identifier: GPL-2.0

package sink

import (
	"context"
	"io"
	"time"

	"github.com/sirupsen/logrus"

	"smith/agent/config"
	"smith/agent/metrics"
)

// Set is the sinks a configuration names (output.sinks), in its order.
type Set struct {
	Sinks []Sink
	// Kafka is the Kafka sink, nil when output.sinks has none.
	Kafka *Kafka
	log   logrus.FieldLogger
}

// Open opens the sinks cfg names, each with queue batches of room;
// stdout is the stdout sink's writer, hostKey the Kafka message key (the
// host name).  On an error it closes the sinks it opened.
func Open(cfg config.Config, hostKey string, stdout io.Writer, queue int, c *metrics.Counters, log logrus.FieldLogger) (*Set, error) {
	set := &Set{log: log}
	for _, name := range cfg.Output.Sinks {
		var s Sink
		var err error
		switch name {
		case "stdout":
			s = NewWriter("stdout", stdout, queue, c, log)
		case "file":
			s, err = NewFile(cfg.Output.File.Path, int64(cfg.Output.File.MaxBytes), cfg.Output.File.MaxFiles, queue, c, log)
		case "kafka":
			set.Kafka, err = openKafkaSink(cfg, hostKey, queue, c, log)
			s = set.Kafka
		default:
			continue
		}
		if err != nil {
			set.Close(time.Second)
			return nil, err
		}
		set.Sinks = append(set.Sinks, s)
	}
	return set, nil
}

func openKafkaSink(cfg config.Config, hostKey string, queue int, c *metrics.Counters, log logrus.FieldLogger) (*Kafka, error) {
	sp, err := OpenSpool(cfg.SpoolDir(), int64(cfg.Spool.MaxBytes), int64(cfg.Spool.SegmentBytes))
	if err != nil {
		return nil, err
	}
	k, err := NewKafka(cfg.Kafka, hostKey, sp, queue, c, log)
	if err != nil {
		sp.Close()
		return nil, err
	}
	return k, nil
}

// LastError is the Kafka sink's last delivery error ("" without one or
// without a Kafka sink), for the heartbeat.
func (s *Set) LastError() string {
	if s.Kafka != nil {
		return s.Kafka.LastError()
	}
	return ""
}

// Close closes every sink, waiting at most timeout for what they hold;
// it logs what fails.
func (s *Set) Close(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, k := range s.Sinks {
		if err := k.Close(ctx); err != nil {
			s.log.WithError(err).Warnf("closing %s sink", k.Name())
		}
	}
}

// Reopen opens every sink's files again (SIGHUP, after logrotate moved
// them); it logs what fails.
func (s *Set) Reopen() {
	for _, k := range s.Sinks {
		if r, ok := k.(Reopener); ok {
			if err := r.Reopen(); err != nil {
				s.log.WithError(err).Errorf("SIGHUP: reopen the %s sink's file", k.Name())
			}
		}
	}
}
