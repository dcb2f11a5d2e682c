// Package proc reads what the benchmark reports about a process from
// Linux's /proc: CPU time consumed and resident memory.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ticksPerSecond is USER_HZ, the unit of utime and stime in /proc/PID/stat;
// Linux fixes it at 100 on every architecture it exposes to user space.
const ticksPerSecond = 100

// CPU returns the user plus system CPU time pid has consumed so far
// (10 ms resolution).
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is parenthesized and may contain spaces;
	// fields are counted after its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc: malformed stat of %d", pid)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("proc: short stat of %d", pid)
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("proc: malformed stat times of %d", pid)
	}
	return time.Duration(ut+st) * time.Second / ticksPerSecond, nil
}

// Memory is a process's resident set, in bytes.
type Memory struct {
	RSS  int64 // VmRSS: resident now
	Peak int64 // VmHWM: the peak since start or the last ResetPeak
}

// Mem reads VmRSS and VmHWM of pid.
func Mem(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(k) {
		case "VmRSS":
			dst = &m.RSS
		case "VmHWM":
			dst = &m.Peak
		default:
			continue
		}
		f := bytes.Fields(v)
		if len(f) != 2 || string(f[1]) != "kB" {
			return Memory{}, fmt.Errorf("proc: malformed %s of %d", k, pid)
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("proc: malformed %s of %d", k, pid)
		}
		*dst = n << 10
	}
	return m, nil
}

// ResetPeak sets pid's VmHWM back to its current RSS (clear_refs value 5,
// Linux 4.0+), so that a later Mem reports the peak of what came after.
func ResetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// Syscalls returns how many read- and write-family system calls pid has
// made (syscr + syscw of /proc/PID/io); socket I/O counts.
func Syscalls(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	var n int64
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || (string(k) != "syscr" && string(k) != "syscw") {
			continue
		}
		c, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc: malformed io of %d", pid)
		}
		n += c
	}
	return n, nil
}

// MachineCPU returns the CPU time all processes spent busy and the CPU
// time elapsed on all cores, from /proc/stat, so that the share of the
// machine used by others during a window can be told apart.
func MachineCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return 0, 0, errors.New("proc: malformed /proc/stat")
	}
	var sum, idle int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, 0, errors.New("proc: malformed /proc/stat")
		}
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		sum += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	tick := time.Second / ticksPerSecond
	return time.Duration(sum-idle) * tick, time.Duration(sum) * tick, nil
}

// TCPActiveOpens returns the network namespace's count of outgoing TCP
// connections opened (Tcp ActiveOpens in /proc/net/snmp). It is not per
// process: other processes' connections count too.
func TCPActiveOpens() (int64, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	var names [][]byte
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("Tcp:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if string(n) == "ActiveOpens" && i < len(f) {
				return strconv.ParseInt(string(f[i]), 10, 64)
			}
		}
	}
	return 0, errors.New("proc: no Tcp ActiveOpens in /proc/net/snmp")
}
