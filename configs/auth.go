package configs

import (
	"fmt"
	"os"
	"strings"

	"github.com/chatctl/chatctl/access"
	"github.com/chatctl/chatctl/auth"
)

// Declarative users and access rules (auth.users, auth.access), in the
// formats of ntfy's auth-users and auth-access:
//
//	auth.users:  NAME:HASH:ROLE     HASH is a bcrypt hash, file:PATH (a file
//	                                holding one) or env:VAR (a variable
//	                                holding one); ROLE is user or admin
//	auth.access: USER:PATTERN:PERM  USER a declared or stored user, or *
//
// Each is a list in the file, or comma-separated in CHATCTL_AUTH_USERS /
// CHATCTL_AUTH_ACCESS (bcrypt hashes hold no comma or colon).

// DeclaredUser is one entry of auth.users with its hash resolved.
type DeclaredUser struct {
	Name string
	Role string
	Hash string
	// HashFrom says where the hash came from: "inline", "file PATH" or
	// "env VAR"; for messages (never the hash itself).
	HashFrom string
}

// DeclaredRule is one entry of auth.access.
type DeclaredRule struct {
	User    string
	Pattern string
	Perm    string
}

// DeclaredUsers parses auth.users, reading hashes from their files and
// variables. Errors name the entry by user, never by hash.
func (c *Config) DeclaredUsers() ([]DeclaredUser, error) {
	var out []DeclaredUser
	seen := map[string]bool{}
	for i, e := range c.Auth.Users {
		u, err := parseDeclaredUser(e)
		if err != nil {
			return nil, fmt.Errorf("auth.users entry %d: %w", i+1, err)
		}
		if seen[u.Name] {
			return nil, fmt.Errorf("auth.users: %s is declared twice", u.Name)
		}
		seen[u.Name] = true
		out = append(out, u)
	}
	return out, nil
}

func parseDeclaredUser(e string) (DeclaredUser, error) {
	name, rest, ok1 := strings.Cut(strings.TrimSpace(e), ":")
	i := strings.LastIndex(rest, ":")
	if !ok1 || i < 0 {
		return DeclaredUser{}, fmt.Errorf("want NAME:HASH:ROLE (HASH a bcrypt hash, file:PATH or env:VAR)")
	}
	spec, role := rest[:i], rest[i+1:]
	n, err := auth.NormalizeName(name)
	if err != nil {
		return DeclaredUser{}, err
	}
	if role != auth.RoleUser && role != auth.RoleAdmin {
		return DeclaredUser{}, fmt.Errorf("%s: role must be user or admin, not %q", n, role)
	}
	u := DeclaredUser{Name: n, Role: role, HashFrom: "inline"}
	switch {
	case strings.HasPrefix(spec, "file:"):
		path := strings.TrimPrefix(spec, "file:")
		data, err := os.ReadFile(path)
		if err != nil {
			return DeclaredUser{}, fmt.Errorf("%s: hash file: %w", n, err)
		}
		u.Hash, u.HashFrom = strings.TrimSpace(string(data)), "file "+path
	case strings.HasPrefix(spec, "env:"):
		v := strings.TrimPrefix(spec, "env:")
		u.Hash, u.HashFrom = strings.TrimSpace(os.Getenv(v)), "env "+v
		if u.Hash == "" {
			return DeclaredUser{}, fmt.Errorf("%s: environment variable %s is not set", n, v)
		}
	default:
		u.Hash = spec
	}
	if err := auth.ValidateHash(u.Hash); err != nil {
		return DeclaredUser{}, fmt.Errorf("%s: hash (%s): %w", n, u.HashFrom, err)
	}
	return u, nil
}

// DeclaredRules parses auth.access.
func (c *Config) DeclaredRules() ([]DeclaredRule, error) {
	var out []DeclaredRule
	for i, e := range c.Auth.Access {
		parts := strings.Split(strings.TrimSpace(e), ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("auth.access entry %d: want USER:PATTERN:PERMISSION, got %q", i+1, e)
		}
		user := strings.ToLower(parts[0])
		if user != access.Everyone {
			n, err := auth.NormalizeName(user)
			if err != nil {
				return nil, fmt.Errorf("auth.access entry %d: %w", i+1, err)
			}
			user = n
		}
		if err := access.CheckPattern(parts[1]); err != nil {
			return nil, fmt.Errorf("auth.access entry %d: %w", i+1, err)
		}
		p, err := access.ParsePerm(parts[2])
		if err != nil {
			return nil, fmt.Errorf("auth.access entry %d: %w", i+1, err)
		}
		out = append(out, DeclaredRule{User: user, Pattern: parts[1], Perm: string(p)})
	}
	return out, nil
}

// redactUsers is auth.users as config show prints it: inline hashes
// replaced by <redacted>; file: and env: references are not secret.
func redactUsers(list []string) []string {
	out := make([]string, 0, len(list))
	for _, e := range list {
		name, rest, ok := strings.Cut(e, ":")
		i := strings.LastIndex(rest, ":")
		if !ok || i < 0 {
			out = append(out, "<redacted>")
			continue
		}
		spec := rest[:i]
		if !strings.HasPrefix(spec, "file:") && !strings.HasPrefix(spec, "env:") {
			spec = "<redacted>"
		}
		out = append(out, name+":"+spec+rest[i:])
	}
	return out
}
