package enrich

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smith/agent/decode"
	"smith/agent/encode"
	"smith/internal/testfs"
)

const (
	id1 = "3f4e1d2c5b6a79880716253443526170e9f8d7c6b5a4938271605f4e3d2c1b0a"
	pod = "6a2b9a3e-1f4c-4d2b-9c1e-7f2a3b4c5d6e"
)

func TestParseCgroup(t *testing.T) {
	for _, tc := range []struct {
		name, data, id, runtime, podUID string
	}{
		{"docker cgroup v1", "12:pids:/docker/" + id1 + "\n11:memory:/docker/" + id1 + "\n", id1, "docker", ""},
		{"docker systemd v2", "0::/system.slice/docker-" + id1 + ".scope\n", id1, "docker", ""},
		{"containerd in k8s v2", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(pod, "-", "_") + ".slice/cri-containerd-" + id1 + ".scope\n", id1, "containerd", pod},
		{"cri-o", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + strings.ReplaceAll(pod, "-", "_") + ".slice/crio-" + id1 + ".scope\n", id1, "cri-o", pod},
		{"podman rootful", "0::/machine.slice/libpod-" + id1 + ".scope\n", id1, "podman", ""},
		{"podman rootless", "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id1 + ".scope/container\n", id1, "podman", ""},
		{"k8s cgroupfs v1", "11:memory:/kubepods/burstable/pod" + pod + "/" + id1 + "\n", id1, "", pod},
		{"containerd default ns", "0::/default/" + id1 + "\n", id1, "containerd", ""},
		{"host v2", "0::/user.slice/user-1000.slice/session-2.scope\n", "", "", ""},
		{"host v1", "12:pids:/user.slice\n1:name=systemd:/init.scope\n", "", "", ""},
		{"init", "0::/\n", "", "", ""},
		{"garbage", "not a cgroup file", "", "", ""},
	} {
		c, ok := ParseCgroup([]byte(tc.data))
		if ok != (tc.id != "") || c.ID != tc.id || c.Runtime != tc.runtime || c.PodUID != tc.podUID {
			t.Errorf("%s: got %+v ok=%v, want id %q runtime %q pod %q", tc.name, c, ok, tc.id, tc.runtime, tc.podUID)
		}
	}
}

func TestEnrichFromProcDockerAndKubelet(t *testing.T) {
	root := t.TempDir()
	opt := Options{
		ProcDir: filepath.Join(root, "proc"), PasswdFile: filepath.Join(root, "passwd"),
		DockerDir: filepath.Join(root, "docker"), KubeletDir: filepath.Join(root, "kubelet"),
		CacheSize: 4, Usernames: true, Containers: true,
	}
	testfs.WriteFile(t, opt.PasswdFile, "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n")
	testfs.WriteFile(t, filepath.Join(opt.ProcDir, "42/cgroup"), "0::/system.slice/docker-"+id1+".scope\n")
	testfs.WriteFile(t, filepath.Join(opt.DockerDir, "containers", id1, "config.v2.json"), `{"ID":"`+id1+`","Name":"/web"}`)
	testfs.WriteFile(t, filepath.Join(opt.ProcDir, "43/cgroup"), "0::/kubepods.slice/kubepods-pod"+strings.ReplaceAll(pod, "-", "_")+".slice/cri-containerd-"+id1+".scope\n")
	testfs.WriteFile(t, filepath.Join(opt.KubeletDir, "pods", pod, "etc-hosts"), "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n10.244.1.7\tweb-7d4f9\n")

	e := New(opt)
	e.hostMntNS = 1
	var m encode.Meta
	ev := &decode.Event{UID: 1000, Tgid: 42, MntNS: 99, CgroupID: 5}
	e.Enrich(ev, &m)
	if m.Username != "alice" || m.ContainerID != id1 || m.ContainerName != "web" || m.PodName != "" {
		t.Fatalf("docker: %+v", m)
	}
	// Cached by cgroup id: the process may be gone by the next event.
	os.RemoveAll(filepath.Join(opt.ProcDir, "42"))
	e.Enrich(ev, &m)
	if m.ContainerID != id1 {
		t.Fatalf("cache miss after the process left: %+v", m)
	}
	e.Enrich(&decode.Event{UID: 0, Tgid: 43, MntNS: 98, CgroupID: 6}, &m)
	if m.Username != "root" || m.PodName != "web-7d4f9" || m.ContainerID != id1 {
		t.Fatalf("pod: %+v", m)
	}
	// The host's own mount namespace: no container lookup.
	e.Enrich(&decode.Event{UID: 7, Tgid: 43, MntNS: 1, CgroupID: 6}, &m)
	if m.ContainerID != "" || m.Username != "" {
		t.Fatalf("host process: %+v", m)
	}
	for i := uint32(0); i < 100; i++ {
		e.username(5000+i, e.now())
	}
	if n := e.users.len(); n > opt.CacheSize {
		t.Fatalf("user cache holds %d entries, bound %d", n, opt.CacheSize)
	}
}

// An event reads the clock once, whatever it passes through: the user
// and container caches, the process table's aging, its ancestry and its
// exec.  With the process table on the same reading, a container entry
// due for a retry and a table sweep see the same time.
func TestEnrichReadsTheClockOnce(t *testing.T) {
	root := t.TempDir()
	testfs.WriteFile(t, filepath.Join(root, "passwd"), "alice:x:1000:1000::/home/alice:/bin/sh\n")
	procDir := filepath.Join(root, "proc")
	testfs.WriteFile(t, filepath.Join(procDir, "42/cgroup"), "0::/user.slice\n")
	e := New(Options{ProcDir: procDir, PasswdFile: filepath.Join(root, "passwd"), CacheSize: 16,
		Usernames: true, Containers: true, Ancestry: 4, ProcessTableSize: 64})
	e.hostMntNS = 1
	reads := 0
	e.now = func() time.Time { reads++; return time.Now() }
	e.procs.now = func() int64 { t.Fatal("the process table read a clock of its own"); return 0 }
	var m encode.Meta
	for i, ev := range []*decode.Event{
		{Type: decode.TypeExecve, UID: 1000, Pid: 42, Tgid: 42, Ppid: 41, MntNS: 99, CgroupID: 5, TimeNs: uint64(time.Now().UnixNano())},
		{Type: decode.TypeConnect, UID: 1000, Pid: 42, Tgid: 42, Ppid: 41, MntNS: 99, CgroupID: 5, TimeNs: uint64(time.Now().UnixNano())},
	} {
		reads = 0
		e.Enrich(ev, &m)
		if reads != 1 || m.Username != "alice" {
			t.Errorf("event %d: %d clock reads (user %q), want 1", i, reads, m.Username)
		}
	}
}

func TestEnrichHitDoesNotAllocate(t *testing.T) {
	root := t.TempDir()
	testfs.WriteFile(t, filepath.Join(root, "passwd"), "root:x:0:0::/root:/bin/sh\n")
	e := New(Options{ProcDir: root, PasswdFile: filepath.Join(root, "passwd"), CacheSize: 16, Usernames: true, Containers: true})
	ev := &decode.Event{UID: 0, Tgid: 1, MntNS: e.hostMntNS}
	var m encode.Meta
	e.Enrich(ev, &m)
	if a := testing.AllocsPerRun(100, func() { e.Enrich(ev, &m) }); a != 0 {
		t.Fatalf("cache hit allocates %v", a)
	}
}

func TestHostIdentity(t *testing.T) {
	h, err := HostIdentity("")
	if err != nil || h.Name == "" {
		t.Fatal(h, err)
	}
	if h, _ := HostIdentity("override"); h.Name != "override" {
		t.Fatal(h.Name)
	}
}

// A lookup that failed is tried again a little later, not cached as "no
// container" for good.
func TestFailedContainerLookupIsRetried(t *testing.T) {
	root := t.TempDir()
	id := strings.Repeat("ab", 32)
	opt := Options{ProcDir: filepath.Join(root, "proc"), DockerDir: filepath.Join(root, "docker"), CacheSize: 4, Containers: true}
	e := New(opt)
	e.hostMntNS = 1
	now := time.Unix(1000, 0)
	e.now = func() time.Time { return now }
	ev := &decode.Event{Tgid: 44, MntNS: 99, CgroupID: 7}
	var m encode.Meta
	e.Enrich(ev, &m) // /proc/44/cgroup not readable (yet)
	if m.ContainerID != "" {
		t.Fatalf("container from nothing: %+v", m)
	}
	testfs.WriteFile(t, filepath.Join(opt.ProcDir, "44/cgroup"), "0::/system.slice/docker-"+id+".scope\n")
	e.Enrich(ev, &m)
	if m.ContainerID != "" {
		t.Fatalf("retried at once (a file read per event): %+v", m)
	}
	now = now.Add(containerRetry + time.Second)
	e.Enrich(ev, &m)
	if m.ContainerID != id {
		t.Fatalf("not retried: %+v", m)
	}
	// docker's metadata came later still: the name is looked up again.
	testfs.WriteFile(t, filepath.Join(opt.DockerDir, "containers", id, "config.v2.json"), `{"Name":"/web"}`)
	now = now.Add(containerRetry + time.Second)
	e.Enrich(ev, &m)
	if m.ContainerName != "web" {
		t.Fatalf("name not looked up again: %+v", m)
	}
}
