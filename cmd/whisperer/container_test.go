package main

// The Containerfile, built with podman and run. Opt-in
// (WHISPERER_TEST_PODMAN=1): a build with cold caches compiles the server
// and its dependencies from scratch, several minutes on a small machine.
// TestReleaseBinary always checks the binary the image holds, built with
// the same flags.
//
// No registry has to be reachable: unless WHISPERER_TEST_GO_IMAGE names an
// image with Go (e.g. docker.io/library/golang:1.26), the build stage is
// the host's own Go toolchain imported as an image, and the host's module
// and build caches are mounted into it. Containers that cannot set
// podman's default open-files and process limits (a sandbox's lower hard
// limits) get the test's own; WHISPERER_TEST_PODMAN_RUNTIME picks the OCI runtime (runc
// where crun refuses a hybrid cgroup hierarchy).

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/whisperer/whisperer/internal/poll"
)

func TestContainerImage(t *testing.T) {
	// Wherever podman is installed the image is built and run (about 20 s
	// with warm Go caches); WHISPERER_TEST_PODMAN=0 skips it.
	if os.Getenv("WHISPERER_TEST_PODMAN") == "0" {
		t.Skip("WHISPERER_TEST_PODMAN=0")
	}
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed (apt-get install podman runc): the image is not built here")
	}
	// crun refuses machines that mix cgroup v1 and v2 (these sandboxes):
	// runc, where installed, runs the containers there, unless
	// WHISPERER_TEST_PODMAN_RUNTIME names another runtime.
	rt := os.Getenv("WHISPERER_TEST_PODMAN_RUNTIME")
	if _, err := exec.LookPath("runc"); rt == "" && err == nil {
		rt = "runc"
	}
	podman := func(args ...string) *exec.Cmd {
		if rt != "" {
			args = append([]string{"--runtime", rt}, args...)
		}
		return exec.Command("podman", args...)
	}
	must := func(cmd *exec.Cmd) string {
		t.Helper()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
		}
		return string(out)
	}
	goenv := func(key string) string {
		return strings.TrimSpace(must(exec.Command("go", "env", key)))
	}

	goImage := os.Getenv("WHISPERER_TEST_GO_IMAGE")
	if goImage == "" {
		goImage = "localhost/whisperer-test-go:" + runtime.Version()
		if exec.Command("podman", "image", "exists", goImage).Run() != nil {
			importToolchain(t, goenv("GOROOT"), goImage)
		}
	}
	const image = "localhost/whisperer:test"
	start := time.Now()
	must(exec.Command("podman", "build", "--isolation", "chroot", "--format", "docker",
		"--build-arg", "GO_IMAGE="+goImage,
		"--build-arg", "VERSION="+testVersion, "--build-arg", "REVISION="+testRevision,
		"--volume", goenv("GOMODCACHE")+":/go/pkg/mod",
		"--volume", goenv("GOCACHE")+":/root/.cache/go-build",
		"--tag", image, filepath.Join("..", "..")))
	t.Logf("podman build: %s", time.Since(start).Round(time.Second))

	var inspect []struct {
		Config struct {
			User         string
			ExposedPorts map[string]any
			Volumes      map[string]any
			Env          []string
		}
		Healthcheck struct{ Test []string }
	}
	if err := json.Unmarshal([]byte(must(exec.Command("podman", "image", "inspect", image))), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("podman image inspect: %v", err)
	}
	c := inspect[0]
	if c.Config.User != "65532:65532" || c.Config.ExposedPorts["8000/tcp"] == nil || c.Config.Volumes["/var/lib/whisperer"] == nil ||
		!slices.Contains(c.Config.Env, "WHISPERER_CONFIG=/etc/whisperer/whisperer.yaml") || !slices.Contains(c.Healthcheck.Test, "health") {
		t.Errorf("image config = %+v, healthcheck %v", c.Config, c.Healthcheck.Test)
	}

	// podman's defaults for open files and processes may exceed this
	// machine's hard limits; the container gets the test's own.
	var ulimits []string
	for name, res := range map[string]int{"nofile": syscall.RLIMIT_NOFILE, "nproc": 6 /* RLIMIT_NPROC */} {
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(res, &lim); err != nil {
			t.Fatal(err)
		}
		n := min(lim.Cur, 4096) // at most what the server needs: raising any is refused
		ulimits = append(ulimits, "--ulimit", fmt.Sprintf("%s=%d:%d", name, n, n))
	}
	run := func(args ...string) *exec.Cmd {
		return podman(append(append([]string{"run"}, ulimits...), args...)...)
	}

	var v versionInfo
	out := must(run("--rm", image, "version", "--json"))
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &v); err != nil || v.Version != testVersion || v.Revision != testRevision {
		t.Errorf("version in the image = %+v (%v), want %s at %s", v, err, testVersion, testRevision)
	}

	id := strings.TrimSpace(lastLine(must(run("--detach", image))))
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := exec.Command("podman", "logs", id).CombinedOutput()
			t.Logf("container logs:\n%s", logs)
		}
		_ = podman("rm", "--force", "--volumes", id).Run()
	})
	// The plugins compile on first start (cached in the volume after).
	poll.UntilNil(t, 90*time.Second, func() error {
		if out, err := podman("exec", id, "/usr/bin/whisperer", "health").CombinedOutput(); err != nil {
			return fmt.Errorf("whisperer health in the container: %v: %s", err, out)
		}
		return nil
	})
	must(podman("healthcheck", "run", id))
	out = must(podman("exec", id, "/usr/bin/whisperer", "plugins", "list"))
	if !strings.Contains(out, "custom-countdown.wasm") || !strings.Contains(out, "callback.wasm") || strings.Contains(out, "error") {
		t.Errorf("plugins in the image:\n%s", out)
	}
	must(podman("exec", id, "/usr/bin/whisperer", "users", "create", "alice"))
	must(podman("stop", "--time", "30", id))
	if out := must(exec.Command("podman", "inspect", "--format", "{{.State.ExitCode}}", id)); strings.TrimSpace(out) != "0" {
		t.Errorf("the server exited with %s after SIGTERM", out)
	}
}

// importToolchain makes an image holding the Go installation at goroot,
// the host's CA certificates and a /tmp: enough for the Containerfile's
// build stage, whose steps need no shell.
func importToolchain(t *testing.T, goroot, image string) {
	t.Helper()
	stage := t.TempDir()
	if err := os.Mkdir(filepath.Join(stage, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(stage, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	tar := exec.Command("tar", "-cf", "-", "-C", "/", strings.TrimPrefix(goroot, "/"), "etc/ssl/certs/ca-certificates.crt", "-C", stage, "tmp")
	imp := exec.Command("podman", "import",
		"--change", "ENV PATH="+filepath.Join(goroot, "bin")+":/usr/bin:/bin",
		"--change", "ENV GOPATH=/go", "--change", "ENV HOME=/root", "-", image)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	out, err := imp.CombinedOutput()
	if werr := tar.Wait(); err != nil || werr != nil {
		t.Fatalf("importing %s as %s: %v, tar: %v\n%s", goroot, image, err, werr, out)
	}
}
