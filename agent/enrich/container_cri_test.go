// SPDX-License-Identifier: GPL-2.0

package enrich

import (
	"os"
	"path/filepath"
	"testing"

	"smith/agent/decode"
	"smith/agent/encode"
	"smith/internal/testfs"
)

// testdata holds a containerd task directory, CRI-O's container storage
// and a docker container started by the kubelet, laid out as on a node.
const (
	idContainerd = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	idCrio       = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	idDocker     = "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999"
)

func TestContainerdCrioDockerNamesAndPods(t *testing.T) {
	root := t.TempDir()
	opt := Options{
		ProcDir: filepath.Join(root, "proc"), DockerDir: "testdata/docker", KubeletDir: filepath.Join(root, "kubelet"),
		ContainerdDir: "testdata/containerd", CrioDirs: []string{filepath.Join(root, "none"), "testdata/crio"},
		CacheSize: 8, Containers: true,
	}
	testfs.WriteFile(t, filepath.Join(opt.ProcDir, "10/cgroup"), "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6a2b9a3e_1f4c_4d2b_9c1e_7f2a3b4c5d6e.slice/cri-containerd-"+idContainerd+".scope\n")
	testfs.WriteFile(t, filepath.Join(opt.ProcDir, "11/cgroup"), "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1d2e3f40_5a6b_4c7d_8e9f_0a1b2c3d4e5f.slice/crio-"+idCrio+".scope\n")
	testfs.WriteFile(t, filepath.Join(opt.ProcDir, "12/cgroup"), "11:memory:/kubepods/burstable/pod7e8f9a0b-1c2d-4e3f-8a9b-0c1d2e3f4a5b/"+idDocker+"\n")
	testfs.WriteFile(t, filepath.Join(opt.ProcDir, "13/cgroup"), "0::/system.slice/docker-"+idContainerd+".scope\n")
	e := New(opt)
	defer e.Close()
	e.hostMntNS = 1
	for _, tc := range []struct {
		pid                                uint32
		runtime, name, pod, ns, uid, cntID string
	}{
		{10, "containerd", "nginx", "web-7d4f9", "shop", "6a2b9a3e-1f4c-4d2b-9c1e-7f2a3b4c5d6e", idContainerd},
		{11, "cri-o", "redis", "cache-0", "data", "1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f", idCrio},
		// cgroupfs v1 names no runtime: docker's metadata is read first.
		{12, "", "api", "api-5f6b7", "prod", "7e8f9a0b-1c2d-4e3f-8a9b-0c1d2e3f4a5b", idDocker},
		// A docker-named cgroup whose metadata only containerd has.
		{13, "docker", "nginx", "web-7d4f9", "shop", "6a2b9a3e-1f4c-4d2b-9c1e-7f2a3b4c5d6e", idContainerd},
	} {
		var m encode.Meta
		e.Enrich(&decode.Event{Tgid: tc.pid, MntNS: 50 + tc.pid, CgroupID: uint64(tc.pid)}, &m)
		if m.ContainerID != tc.cntID || m.ContainerRuntime != tc.runtime || m.ContainerName != tc.name ||
			m.PodName != tc.pod || m.PodNamespace != tc.ns || m.PodUID != tc.uid {
			t.Errorf("pid %d: got id %.12s runtime %q name %q pod %q ns %q uid %q, want %.12s %q %q %q %q %q", tc.pid,
				m.ContainerID, m.ContainerRuntime, m.ContainerName, m.PodName, m.PodNamespace, m.PodUID,
				tc.cntID, tc.runtime, tc.name, tc.pod, tc.ns, tc.uid)
		}
	}
	// Bounded: more containers than cache_size never grow the cache past it.
	for i := uint64(0); i < 50; i++ {
		e.Enrich(&decode.Event{Tgid: 10, MntNS: 7, CgroupID: 1000 + i}, &encode.Meta{})
	}
	if n := e.containers.len(); n > opt.CacheSize {
		t.Errorf("container cache holds %d, bound %d", n, opt.CacheSize)
	}
	// Unreadable metadata: the id stays, names are left out.
	os.WriteFile(filepath.Join(root, "bad.json"), []byte("{"), 0o644)
	if a := ociAnnotations(filepath.Join(root, "bad.json")); a != nil {
		t.Errorf("annotations of a broken file: %v", a)
	}
}
