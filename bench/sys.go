package bench

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// readRSS returns the resident set size of process pid in bytes, from the
// VmRSS line of /proc/PID/status.
func readRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("server rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("server rss: bad VmRSS line %q", sc.Text())
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("server rss: no VmRSS in /proc/%d/status", pid)
}

// defaultPortsPerAddr is used when the kernel's ephemeral range is unknown.
const defaultPortsPerAddr = 28000

// portsPerAddr returns how many connections one source address can make to
// one server address: the size of the kernel's ephemeral port range, less
// a tenth for TIME_WAIT leftovers and other programs.
func portsPerAddr() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return defaultPortsPerAddr
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return defaultPortsPerAddr
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || hi <= lo {
		return defaultPortsPerAddr
	}
	return (hi - lo + 1) * 9 / 10
}

// sourceAddrs returns the local addresses to spread n connections over, or
// nil to let the kernel choose. Only an IPv4 loopback target gets more than
// one: all of 127.0.0.0/8 is local there, and each source address has its
// own ephemeral ports. Anywhere else the bench never invents addresses.
func sourceAddrs(host string, n, perAddr int) []net.IP {
	ip := net.ParseIP(host)
	if host == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() || perAddr <= 0 || n <= perAddr {
		return nil
	}
	k := min((n+perAddr-1)/perAddr, 254)
	out := make([]net.IP, k)
	for i := range out {
		out[i] = net.IPv4(127, 0, 0, byte(i+1))
	}
	return out
}

// clockTicks is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on every Linux platform Go supports).
const clockTicks = 100

// readCPU returns the CPU time (user plus system, every thread) each of
// pids has used so far, from /proc/PID/stat: 10 ms resolution.
func readCPU(pids []int) ([]time.Duration, error) {
	out := make([]time.Duration, len(pids))
	for i, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil, fmt.Errorf("server cpu of pid %d: %w", pid, err)
		}
		// The command name, field 2, is in parentheses and may hold
		// spaces: count fields from the last ')'. utime and stime are
		// fields 14 and 15, so the 12th and 13th after it.
		j := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[j+1:]))
		if j < 0 || len(f) < 13 {
			return nil, fmt.Errorf("server cpu of pid %d: cannot read /proc/%d/stat", pid, pid)
		}
		ut, err1 := strconv.ParseInt(f[11], 10, 64)
		st, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("server cpu of pid %d: bad utime/stime in /proc/%d/stat", pid, pid)
		}
		out[i] = time.Duration(ut+st) * time.Second / clockTicks
	}
	return out, nil
}
