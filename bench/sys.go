package bench

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
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
