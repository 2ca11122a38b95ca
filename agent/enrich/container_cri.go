// SPDX-License-Identifier: GPL-2.0

package enrich

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// Container names and pods from containerd and CRI-O.  Both keep the OCI
// runtime spec of each running container on disk, and their Kubernetes
// integration writes the pod into its annotations:
//
//	containerd: <containerd_dir>/io.containerd.runtime.v2.task/<namespace>/<id>/config.json
//	            io.kubernetes.cri.container-name, io.kubernetes.cri.sandbox-name,
//	            io.kubernetes.cri.sandbox-namespace, io.kubernetes.cri.sandbox-uid;
//	            nerdctl/name outside Kubernetes
//	CRI-O:      <crio_dir>/overlay-containers/<id>/userdata/config.json
//	            io.kubernetes.container.name, io.kubernetes.pod.name,
//	            io.kubernetes.pod.namespace, io.kubernetes.pod.uid
//
// Docker's config.v2.json carries the same io.kubernetes.* keys as
// labels when the kubelet drove docker (dockershim, cri-dockerd).

// ociAnnotations reads the annotations of an OCI config.json (at most
// 4 MiB; nil when unreadable).
func ociAnnotations(path string) map[string]string {
	raw, err := readLimited(path, 4<<20)
	if err != nil {
		return nil
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(raw, &spec) != nil {
		return nil
	}
	return spec.Annotations
}

// fromAnnotations fills c's name and pod from runtime annotations or
// labels, keeping what c already has.
func (c *Container) fromAnnotations(a map[string]string) {
	first := func(keys ...string) string {
		for _, k := range keys {
			if v := a[k]; v != "" {
				return v
			}
		}
		return ""
	}
	set := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	set(&c.Name, first("io.kubernetes.cri.container-name", "io.kubernetes.container.name", "nerdctl/name"))
	set(&c.PodName, first("io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"))
	set(&c.PodNamespace, first("io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"))
	set(&c.PodUID, first("io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid"))
}

// containerdMeta finds the container's spec in any containerd namespace
// (k8s.io for Kubernetes, default, moby, ...).
func containerdMeta(dir, id string, c *Container) bool {
	matches, _ := filepath.Glob(filepath.Join(dir, "io.containerd.runtime.v2.task", "*", id, "config.json"))
	for _, m := range matches {
		if a := ociAnnotations(m); a != nil {
			c.fromAnnotations(a)
			return true
		}
	}
	return false
}

// crioMeta reads CRI-O's (and podman's, same storage) container spec.
func crioMeta(dirs []string, id string, c *Container) bool {
	for _, d := range dirs {
		p := filepath.Join(d, "overlay-containers", id, "userdata", "config.json")
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if a := ociAnnotations(p); a != nil {
			c.fromAnnotations(a)
			return true
		}
	}
	return false
}
