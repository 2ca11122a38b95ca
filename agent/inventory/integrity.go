// SPDX-License-Identifier: GPL-2.0

package inventory

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"smith/agent/encode"
	"smith/agent/integrity"
)

// integrityTimeout bounds one file_integrity task; what it did not reach
// is reported incomplete.
const integrityTimeout = 15 * time.Minute

// integrity verifies the packages' files (agent/integrity): one item per
// changed file, the counts in the summary and facts.
func (t *Tasks) integrity(ctx context.Context) ([]encode.TaskItem, string, map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, integrityTimeout)
	defer cancel()
	res, err := integrity.Check(ctx, integrity.Options{Root: t.Root, Rate: t.IntegrityRate, MaxChanges: maxItems})
	if err != nil {
		return nil, "", nil, fmt.Errorf("file integrity: %w", err)
	}
	var items []encode.TaskItem
	var paths []string
	for _, c := range res.Changes {
		it := itemOf("package", c.Package, "path", c.Path, "change", c.What, "manager", res.Manager)
		if c.Expected != "" {
			it.Fields = append(it.Fields, [2]string{"expected_md5", c.Expected})
		}
		if c.Actual != "" {
			it.Fields = append(it.Fields, [2]string{"actual_md5", c.Actual})
		}
		if c.Config {
			it.Fields = append(it.Fields, [2]string{"config", "true"})
		}
		items = append(items, it)
		paths = append(paths, c.Path+" ("+c.What+")")
	}
	state := ""
	if res.Incomplete {
		state = ", incomplete"
	}
	summary := fmt.Sprintf("%s: %d packages, %d files, %d changed, %d missing%s", res.Manager, res.Packages, res.Files, res.Changed, res.Missing, state)
	if len(paths) > 0 {
		summary = summarize([]string{summary + ": " + summarize(paths)})
	}
	facts := map[string]string{
		"manager": res.Manager, "packages": strconv.Itoa(res.Packages), "files": strconv.Itoa(res.Files),
		"bytes": strconv.FormatInt(res.Bytes, 10), "changed": strconv.Itoa(res.Changed),
		"missing": strconv.Itoa(res.Missing), "errors": strconv.Itoa(res.Errors),
		"incomplete": strconv.FormatBool(res.Incomplete),
	}
	return items, summary, facts, nil
}
