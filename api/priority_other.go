//go:build !linux

package api

// lowerThreadPriority does nothing here: elsewhere nice applies to the
// whole process, which would slow every request, not only bcrypt.
func lowerThreadPriority() {}
