package configs

import (
	"strings"
	"testing"
)

const testHash = "$2a$10$HwhPlplaIAZBG9Nhx/z/eOS1Ywhm9yGqwxKVZJw0fkAmfx7UVqgoq"

// Ensure rooms.default_access, auth.users and auth.access are validated
// with errors that name the key and never the hash.
func TestValidateRoomsAuth(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  func(c *Config)
		want string
	}{
		{"DefaultAccess", func(c *Config) { c.Rooms.DefaultAccess = "rw" }, "rooms.default_access: permission must be"},
		{"UserFormat", func(c *Config) { c.Auth.Users = []string{"alice"} }, "auth.users entry 1: want NAME:HASH:ROLE"},
		{"UserRole", func(c *Config) { c.Auth.Users = []string{"alice:" + testHash + ":god"} }, "role must be user or admin"},
		{"UserHash", func(c *Config) { c.Auth.Users = []string{"alice:$2a$10$short:user"} }, "alice: hash (inline): not a bcrypt hash"},
		{"UserTwice", func(c *Config) { c.Auth.Users = []string{"a:" + testHash + ":user", "A:" + testHash + ":user"} }, "a is declared twice"},
		{"HashFile", func(c *Config) { c.Auth.Users = []string{"bob:file:/nonexistent/h:user"} }, "bob: hash file"},
		{"HashEnv", func(c *Config) { c.Auth.Users = []string{"bob:env:CHATCTL_TEST_UNSET_HASH:user"} }, "CHATCTL_TEST_UNSET_HASH is not set"},
		{"AccessFormat", func(c *Config) { c.Auth.Access = []string{"bob:x"} }, "auth.access entry 1: want USER:PATTERN:PERMISSION"},
		{"AccessPattern", func(c *Config) { c.Auth.Access = []string{"bob:a*b:deny"} }, "room pattern must be"},
		{"AccessPerm", func(c *Config) { c.Auth.Access = []string{"*:x:all"} }, "permission must be"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.set(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "HwhPlpl") {
				t.Fatalf("the error shows the hash: %v", err)
			}
		})
	}
	c := Default()
	c.Auth.Users = []string{"alice:" + testHash + ":admin", "bob:file:/run/secrets/bob:user"}
	c.Auth.Access = []string{"*:ops-*:deny"}
	if c.Rooms.DefaultAccess != "read-write" {
		t.Errorf("default rooms.default_access %q", c.Rooms.DefaultAccess)
	}
	for _, e := range c.Entries() {
		if e.Key != "auth.users" {
			continue
		}
		got := e.Value.([]string)
		if got[0] != "alice:<redacted>:admin" || got[1] != "bob:file:/run/secrets/bob:user" {
			t.Errorf("config show auth.users = %v", got)
		}
	}
}
