package enrich

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Container is what the cgroup path and the runtime's metadata tell about
// the container a process runs in.
type Container struct {
	ID      string // 64 hex digits (docker, containerd, cri-o, podman)
	Runtime string // docker, containerd, cri-o, podman, or "" when unsure
	Name    string // from the runtime's metadata, when readable
	PodName string // Kubernetes pod, from the runtime or the kubelet's pod directory
	PodUID  string
	// PodNamespace is the pod's Kubernetes namespace (runtime metadata).
	PodNamespace string
}

// Cgroup path shapes, from real hosts:
//
//	docker, cgroup v1:   12:pids:/docker/<id>
//	docker, systemd:     0::/system.slice/docker-<id>.scope
//	containerd (k8s):    0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope
//	cri-o:               0::/kubepods.slice/.../crio-<id>.scope
//	podman:              0::/machine.slice/libpod-<id>.scope
//	                     0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-<id>.scope/container
//	k8s, cgroupfs v1:    11:memory:/kubepods/burstable/pod<uid>/<id>
//	containerd, no k8s:  0::/default/<id>   (namespace "default")
var (
	reScope  = regexp.MustCompile(`(docker|cri-containerd|crio|libpod)-([0-9a-f]{64})\.scope`)
	reBare   = regexp.MustCompile(`/(docker|kubepods[^:]*|default|moby|libpod_parent|[a-z0-9_-]+)/(?:.*/)?([0-9a-f]{64})(?:/|$)`)
	rePodUID = regexp.MustCompile(`pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})`)
)

// ParseCgroup finds the container in the lines of /proc/<pid>/cgroup.
// ok is false for a process outside any container.
func ParseCgroup(data []byte) (c Container, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		// hierarchy-id:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		path := parts[2]
		if m := reScope.FindStringSubmatch(path); m != nil {
			c.ID = m[2]
			c.Runtime = map[string]string{"docker": "docker", "cri-containerd": "containerd", "crio": "cri-o", "libpod": "podman"}[m[1]]
		} else if m := reBare.FindStringSubmatch(path); m != nil {
			c.ID = m[2]
			switch {
			case m[1] == "docker" || m[1] == "moby":
				c.Runtime = "docker"
			case m[1] == "libpod_parent":
				c.Runtime = "podman"
			case m[1] == "default":
				c.Runtime = "containerd"
			}
		} else {
			continue
		}
		if m := rePodUID.FindStringSubmatch(path); m != nil {
			c.PodUID = strings.ReplaceAll(m[1], "_", "-")
		}
		return c, true
	}
	return Container{}, false
}

// dockerMeta reads the container's name, and the pod labels the kubelet
// sets, from docker's config.v2.json.
func dockerMeta(dockerDir, id string, c *Container) bool {
	raw, err := readLimited(filepath.Join(dockerDir, "containers", id, "config.v2.json"), 1<<20)
	if err != nil {
		return false
	}
	var cfg struct {
		Name   string `json:"Name"`
		Config struct {
			Labels map[string]string `json:"Labels"`
		} `json:"Config"`
	}
	if json.Unmarshal(raw, &cfg) != nil {
		return false
	}
	c.fromAnnotations(cfg.Config.Labels)
	if c.Name == "" {
		c.Name = strings.TrimPrefix(cfg.Name, "/")
	}
	return true
}

// podName reads the pod's name from the kubelet's pod directory: the
// etc-hosts file the kubelet writes for every pod names the pod's host
// name, which is the pod name unless spec.hostname overrides it.
func podName(kubeletDir, uid string) string {
	raw, err := readLimited(filepath.Join(kubeletDir, "pods", uid, "etc-hosts"), 64<<10)
	if err != nil {
		return ""
	}
	// The last line is "<pod ip>\t<pod name>" (plus a domain for
	// subdomain pods).
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) >= 2 && !strings.HasPrefix(f[0], "#") {
		name := f[len(f)-1]
		if i := strings.IndexByte(name, '.'); i > 0 {
			name = name[:i]
		}
		return name
	}
	return ""
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(io.LimitReader(f, limit))
	return buf.Bytes(), err
}
