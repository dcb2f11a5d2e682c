package proc

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestCPUAndMem(t *testing.T) {
	pid := os.Getpid()
	before, err := CPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Burn enough CPU to cross several 10 ms ticks.
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
		runtime.Gosched()
	}
	after, err := CPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("CPU did not advance: %v then %v", before, after)
	}
	m, err := Mem(pid)
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.Peak < m.RSS {
		t.Errorf("Mem = %+v", m)
	}
}

func TestResetPeak(t *testing.T) {
	pid := os.Getpid()
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = 1
	}
	runtime.KeepAlive(big)
	m, err := Mem(pid)
	if err != nil {
		t.Fatal(err)
	}
	big = nil
	runtime.GC()
	// Return the freed pages so that RSS actually drops below the peak.
	debug.FreeOSMemory()
	if err := ResetPeak(pid); err != nil {
		t.Skipf("clear_refs not writable here: %v", err)
	}
	m2, err := Mem(pid)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Peak >= m.Peak {
		t.Errorf("peak not reset: %d before, %d after", m.Peak, m2.Peak)
	}
}

func TestSyscallsAndMachine(t *testing.T) {
	pid := os.Getpid()
	a, err := Syscalls(pid)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		os.ReadFile("/proc/self/stat")
	}
	b, err := Syscalls(pid)
	if err != nil {
		t.Fatal(err)
	}
	if b-a < 10 {
		t.Errorf("syscalls advanced by %d, want at least 10", b-a)
	}
	if n, err := TCPActiveOpens(); err != nil || n < 0 {
		t.Errorf("TCPActiveOpens = %d, %v", n, err)
	}
	busy, total, err := MachineCPU()
	if err != nil {
		t.Fatal(err)
	}
	if busy <= 0 || total < busy {
		t.Errorf("MachineCPU = %v busy of %v", busy, total)
	}
}
