//go:build unix

package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Ensure CheckPermissions refuses a store, store folder or secret file
// that others could read or change, with the chmod that fixes it, and
// accepts private files, a readable 0755 folder and a missing store.
func TestCheckPermissions(t *testing.T) {
	tests := []struct {
		name      string
		dirMode   os.FileMode
		storeMode os.FileMode // 0: no store file
		secret    os.FileMode // 0: no secret file
		want      string      // "" for no error
	}{
		{"PrivateOK", 0o700, 0o600, 0o600, ""},
		{"ReadableFolderOK", 0o755, 0o600, 0o400, ""},
		{"NoStoreYetOK", 0o700, 0, 0, ""},
		{"StoreGroupReadable", 0o700, 0o640, 0, "store %s is readable or writable by group or others (mode 0640); fix: chmod 600 %s"},
		{"StoreWorldReadable", 0o700, 0o644, 0, "(mode 0644); fix: chmod 600"},
		{"StoreWorldWritable", 0o700, 0o602, 0, "(mode 0602)"},
		{"FolderGroupWritable", 0o770, 0o600, 0, "store folder %[3]s is writable by group or others (mode 0770); fix: chmod go-w %[3]s"},
		{"FolderWorldWritableNoStore", 0o777, 0, 0, "(mode 0777); fix: chmod go-w"},
		{"SecretWorldWritable", 0o700, 0o600, 0o666, "token.secret_file %[4]s is readable or writable by group or others (mode 0666); fix: chmod 600 %[4]s"},
		{"SecretGroupReadable", 0o700, 0o600, 0o640, "(mode 0640)"},
		{"StickySharedFolderOK", 0o777 | os.ModeSticky, 0o600, 0, ""},
		{"TLSKeyGroupReadable", 0o700, 0o600, 0, "tls.key %[5]s is readable or writable by group or others (mode 0640); fix: chmod 600 %[5]s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			c := Default()
			c.DB = filepath.Join(dir, "c.db")
			if tc.storeMode != 0 {
				writeMode(t, c.DB, tc.storeMode)
			}
			secret := filepath.Join(t.TempDir(), "secret")
			if tc.secret != 0 {
				writeMode(t, secret, tc.secret)
				c.Token.SecretFile = secret
			}
			tlsKey := filepath.Join(t.TempDir(), "key.pem")
			if strings.HasPrefix(tc.name, "TLSKey") {
				writeMode(t, tlsKey, 0o640)
				c.TLS.Key = tlsKey
			}
			if err := os.Chmod(dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			err := c.CheckPermissions()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckPermissions = %v, want nil", err)
				}
				return
			}
			want := tc.want
			if strings.Contains(want, "%") {
				want = strings.ReplaceAll(want, "%s", "%[1]s")
				want = strings.ReplaceAll(want, "%[1]s", c.DB)
				want = strings.ReplaceAll(want, "%[3]s", dir)
				want = strings.ReplaceAll(want, "%[4]s", secret)
				want = strings.ReplaceAll(want, "%[5]s", tlsKey)
			}
			if err == nil || !errors.Is(err, ErrLoosePermissions) || !strings.Contains(err.Error(), want) {
				t.Fatalf("CheckPermissions = %v, want ErrLoosePermissions with %q", err, want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

// Ensure a store planted by another user in a shared sticky folder (the
// /tmp case) is refused, while our own store there is accepted. Needs
// root to give the file away.
func TestCheckPermissionsStickyOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a file to another user")
	}
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.DB = filepath.Join(dir, "c.db")
	writeMode(t, c.DB, 0o600)
	if err := c.CheckPermissions(); err != nil {
		t.Fatalf("own store in a sticky folder: %v", err)
	}
	if err := os.Chown(c.DB, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err := c.CheckPermissions()
	if !errors.Is(err, ErrLoosePermissions) || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("planted store = %v, want a refusal naming uid 65534", err)
	}
}

func writeMode(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("0123456789abcdef0123456789abcdef0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
