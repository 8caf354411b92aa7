package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/whisperer/whisperer/core/app"
	"github.com/whisperer/whisperer/internal/poll"
)

// node is one `whisperer serve` subprocess (or the floor relay).
type node struct {
	bin, addr, logPath string
	args               []string // before --addr: serve, or floor-relay and its flags
	env                []string
	// extPID is the process of a server this tool did not start
	// (--server-pid), measured but never signalled.
	extPID int

	// mu guards what a restart (--kill-after) changes while the
	// publishers and the samplers read it.
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	// cpu accumulates the CPU seconds of earlier incarnations (restarts).
	cpuBefore float64
	peakKiB   int64
}

// proc is the current incarnation: its command (nil when this tool did
// not start the server) and the channel closed when it exits.
func (n *node) proc() (*exec.Cmd, chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd, n.done
}

// pid is the server's process id, 0 when unknown.
func (n *node) pid() int {
	if n.extPID != 0 {
		return n.extPID
	}
	if cmd, _ := n.proc(); cmd != nil && cmd.Process != nil {
		return cmd.Process.Pid
	}
	return 0
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// serverEnv configures a node like the e2e tests do: its database,
// deliveries to loopback allowed, no plugins, quiet logs; extra overrides
// (KEY=VALUE) come last.
func serverEnv(dbURL, dir string, extra []string) []string {
	env := append(os.Environ(),
		"WHISPERER_CONFIG=/dev/null",
		"WHISPERER_DATABASE_URL="+dbURL,
		"WHISPERER_DELIVERY_ALLOW_NETWORKS=127.0.0.0/8",
		"WHISPERER_PLUGINS_DIR="+filepath.Join(dir, "no-plugins"),
		"WHISPERER_REQUEST_TIMEOUT=2",
		"WHISPERER_DELIVERY_LEASE=10s",
		"WHISPERER_DELIVERY_POLL_INTERVAL=200ms",
		"WHISPERER_LOG_LEVEL=warn",
		// PostgreSQL nodes need a key; one per run, shared by its nodes.
		"WHISPERER_SECURITY_ENCRYPTION_KEYS="+benchKey,
	)
	return append(env, extra...)
}

// benchKey encrypts the hooks' secrets of this run's servers.
var benchKey = app.GenerateKey()

func startNode(bin string, args []string, dir string, env []string, i int) (*node, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	n := &node{bin: bin, args: args, addr: addr, env: env, logPath: filepath.Join(dir, fmt.Sprintf("node%d.log", i))}
	return n, n.start()
}

func (n *node) start() error {
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(n.bin, append(slices.Clip(n.args), "--addr", n.addr)...)
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	switch err := poll.Healthy("http://"+n.addr+"/healthz", 30*time.Second, done); {
	case errors.Is(err, poll.ErrExited):
		return fmt.Errorf("node exited at start; see %s", n.logPath)
	case err != nil:
		return fmt.Errorf("node %s never became healthy; see %s", n.addr, n.logPath)
	}
	return nil
}

func (n *node) alive() bool {
	_, done := n.proc()
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the exit, keeping the CPU time used.
func (n *node) kill() {
	n.sample()
	cmd, done := n.proc()
	cpu, _ := procCPU(cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	n.mu.Lock()
	n.cpuBefore += cpu
	n.mu.Unlock()
}

// stop ends the node gracefully (SIGTERM), bounded.
func (n *node) stop() {
	if !n.alive() {
		return
	}
	cmd, done := n.proc()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// sample updates the node's peak RSS (VmHWM covers the current process's
// lifetime; restarts keep the larger).
func (n *node) sample() {
	if !n.alive() {
		return
	}
	if kib, ok := procStatusKiB(n.pid(), "VmHWM:"); ok {
		n.mu.Lock()
		n.peakKiB = max(n.peakKiB, kib)
		n.mu.Unlock()
	}
}

// restarts are the CPU seconds of earlier incarnations and the peak RSS.
func (n *node) restarts() (cpuBefore float64, peakKiB int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cpuBefore, n.peakKiB
}

func (n *node) cpu() float64 {
	c, _ := n.restarts()
	if n.alive() {
		cur, _ := procCPU(n.pid())
		c += cur
	}
	return c
}

func (n *node) rssKiB() int64 {
	if !n.alive() {
		return 0
	}
	kib, _ := procStatusKiB(n.pid(), "VmRSS:")
	return kib
}

// wakeCounts are a process's kernel-side counts: context switches of all
// its threads (each sleep and wake-up of one) and read/write-family
// syscalls (/proc/PID/io). Per event, they are the wake-ups and syscalls
// a delivery costs, steady however busy the machine is.
type wakeCounts struct{ switches, syscalls int64 }

func procWakeCounts(pid int) wakeCounts {
	var c wakeCounts
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		for _, key := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
			if n, ok := statusField(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()), key); ok {
				c.switches += n
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok && (k == "syscr" || k == "syscw") {
				n, _ := strconv.ParseInt(v, 10, 64)
				c.syscalls += n
			}
		}
	}
	return c
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// procCPU returns user+system CPU seconds of pid from /proc/pid/stat.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks, nil
}

func procStatusKiB(pid int, key string) (int64, bool) {
	return statusField(fmt.Sprintf("/proc/%d/status", pid), key)
}

// statusField reads the number after key in a /proc status file.
func statusField(path, key string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			v, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// postgresCPU sums the CPU seconds of every process named postgres: the
// database's share of the machine during a run (other sessions' queries
// included, if any run at the same time).
func postgresCPU() float64 {
	ents, _ := os.ReadDir("/proc")
	var sum float64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		if c, err := procCPU(pid); err == nil {
			sum += c
		}
	}
	return sum
}

// freshPostgres creates an empty database on the server base points at
// and returns its URL and a function that drops it.
func freshPostgres(ctx context.Context, base string) (string, func(), error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "whisperer_bench_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("connect %s: %w", base, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return u.String(), drop, nil
}
