//go:build !unix

package api

import "net"

// listenUnixPrivate binds the admin socket. Windows has no umask: the
// socket file takes the folder's ACL, which the store's folder (created
// for the user alone) keeps private.
func listenUnixPrivate(path string) (net.Listener, error) {
	return net.Listen("unix", path)
}
