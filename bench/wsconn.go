package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsConn is the client end of a WebSocket (RFC 6455) that the fanout
// connections use instead of gorilla's Conn, for the one job where the
// load generator's own cost decides what can be measured: reading a fast
// stream of small frames on one core.
//
// Each read takes in everything the socket holds, up to a 64 KiB buffer,
// and the frames in it are handed out in place, without a copy, a reader
// per frame or a buffer refill per frame; at is the time of that read, for
// every frame it brought. Writes (join, send, pong, close) are masked, whole
// frames under a mutex, so a sender and the reader may share a connection.
//
// One goroutine reads (next); a payload it returns is valid until the next
// call.
type wsConn struct {
	nc  net.Conn
	buf []byte // buf[r:w]: received, not yet handed out
	r   int
	w   int
	at  int64 // time of the last read, Unix nanoseconds

	frag   []byte // a fragmented message being reassembled
	fragOp byte

	wmu  sync.Mutex // guards wbuf and writes to nc
	wbuf []byte
}

const (
	wsReadBuffer = 64 << 10
	wsWriteWait  = 5 * time.Second
	wsGUID       = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

	opContinuation = 0
	opText         = 1
	opBinary       = 2
	opClose        = 8
	opPing         = 9
	opPong         = 10
)

var (
	errBadHandshake = fmt.Errorf("bad handshake: %w", websocket.ErrBadHandshake)
	errBadFrame     = errors.New("websocket: protocol error from server")
	errFrameTooBig  = errors.New("websocket: frame larger than the bench reads")
)

// dialConn opens a WebSocket to endpoint (ws:// or wss://) with the given
// request headers. On failure it returns the cause label, as dialWS does.
func dialConn(ctx context.Context, endpoint string, header http.Header, timeout time.Duration) (*wsConn, string) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") {
		return nil, "bad_url"
	}
	timeout = defaultDuration(timeout, DefaultDialTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"ws": "80", "wss": "443"}[u.Scheme])
	}
	var nc net.Conn
	if u.Scheme == "wss" {
		d := tls.Dialer{Config: &tls.Config{ServerName: u.Hostname()}}
		nc, err = d.DialContext(ctx, "tcp", host)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", host)
	}
	if err != nil {
		return nil, errKind(err)
	}
	c, cause := handshake(ctx, nc, u, header)
	if c == nil {
		nc.Close()
	}
	return c, cause
}

// handshake sends the upgrade request on nc and checks the answer.
func handshake(ctx context.Context, nc net.Conn, u *url.URL, header http.Header) (*wsConn, string) {
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := &http.Request{
		Method: http.MethodGet,
		URL:    &url.URL{Scheme: "http", Host: u.Host, Path: u.Path, RawQuery: u.RawQuery},
		Host:   u.Host,
		Header: header.Clone(),
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Version", "13")
	if err := req.Write(nc); err != nil {
		return nil, errKind(err)
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "timeout"
		}
		return nil, errKind(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, "http_" + strconv.Itoa(resp.StatusCode)
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") ||
		resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return nil, errKind(errBadHandshake)
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, errKind(err)
	}
	c := &wsConn{nc: nc, buf: make([]byte, wsReadBuffer)}
	// Whatever the server sent after its answer is the start of the stream.
	c.w, _ = br.Read(c.buf[:br.Buffered()])
	return c, ""
}

// next returns the next data message (opcode and payload), reading from the
// socket only when no complete frame is buffered. It answers pings itself.
// A close frame from the server is echoed and returned as a
// *websocket.CloseError, so closeCause labels it as for gorilla.
func (c *wsConn) next() (byte, []byte, error) {
	for {
		fin, op, p, ok, err := c.frame()
		if err != nil {
			return 0, nil, err
		}
		if !ok {
			if err := c.fill(); err != nil {
				return 0, nil, err
			}
			continue
		}
		switch {
		case op == opPing:
			if err := c.write(opPong, p); err != nil {
				return 0, nil, err
			}
		case op == opPong:
		case op == opClose:
			return 0, nil, c.closed(p)
		case op > opBinary:
			return 0, nil, errBadFrame
		case op != opContinuation && fin:
			return op, p, nil
		case op != opContinuation: // first fragment
			c.fragOp, c.frag = op, append(c.frag[:0], p...)
		case c.fragOp == 0:
			return 0, nil, errBadFrame // continuation of nothing
		default:
			c.frag = append(c.frag, p...)
			if len(c.frag) > maxFrame {
				return 0, nil, errFrameTooBig
			}
			if fin {
				op := c.fragOp
				c.fragOp = 0
				return op, c.frag, nil
			}
		}
	}
}

// frame takes the next complete frame from the buffer; ok is false if
// there is none yet (the buffer is grown if the frame would not fit).
func (c *wsConn) frame() (fin bool, op byte, payload []byte, ok bool, err error) {
	b := c.buf[c.r:c.w]
	if len(b) < 2 {
		return false, 0, nil, false, nil
	}
	if b[0]&0x70 != 0 || b[1]&0x80 != 0 { // reserved bits, or a masked server frame
		return false, 0, nil, false, errBadFrame
	}
	hdr, n := 2, uint64(b[1]&0x7f)
	switch n {
	case 126:
		hdr = 4
	case 127:
		hdr = 10
	}
	if len(b) < hdr {
		return false, 0, nil, false, nil
	}
	switch hdr {
	case 4:
		n = uint64(binary.BigEndian.Uint16(b[2:4]))
	case 10:
		n = binary.BigEndian.Uint64(b[2:10])
	}
	if n > maxFrame {
		return false, 0, nil, false, errFrameTooBig
	}
	size := hdr + int(n)
	if len(b) < size {
		if size > len(c.buf) {
			c.buf = append(c.buf, make([]byte, size-len(c.buf))...)
		}
		return false, 0, nil, false, nil
	}
	c.r += size
	return b[0]&0x80 != 0, b[0] & 0x0f, b[hdr:size:size], true, nil
}

// fill reads once from the socket, after moving what is left to the front
// of the buffer.
func (c *wsConn) fill() error {
	if c.r > 0 {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	n, err := c.nc.Read(c.buf[c.w:])
	c.w += n
	c.at = time.Now().UnixNano()
	if n > 0 {
		return nil
	}
	return err
}

// closed echoes the server's close frame and returns it as an error.
func (c *wsConn) closed(p []byte) error {
	ce := &websocket.CloseError{Code: websocket.CloseNoStatusReceived}
	var echo []byte // no status: an empty close frame
	if len(p) >= 2 {
		ce.Code, ce.Text = int(binary.BigEndian.Uint16(p)), string(p[2:])
		echo = p[:2]
	}
	_ = c.write(opClose, echo)
	return ce
}

// write sends one masked frame.
func (c *wsConn) write(op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	b = append(b, key[:]...)
	start := len(b)
	b = append(b, p...)
	for i := range b[start:] {
		b[start+i] ^= key[i&3]
	}
	c.wbuf = b
	_ = c.nc.SetWriteDeadline(time.Now().Add(wsWriteWait))
	_, err := c.nc.Write(b)
	return err
}

// WriteText sends one text message.
func (c *wsConn) WriteText(p []byte) error { return c.write(opText, p) }

// Close sends a close frame with 1000 and reason, then closes the socket.
func (c *wsConn) Close(reason string) {
	_ = c.write(opClose, append([]byte{0x03, 0xe8}, reason...))
	c.nc.Close()
}
