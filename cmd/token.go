package cmd

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chatctl/chatctl/admin"
	"github.com/chatctl/chatctl/auth"
	"github.com/chatctl/chatctl/store"
)

func (a *app) newTokenCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "token",
		Short: "Issue, inspect and revoke access tokens and sessions",
		Example: `  TOKEN=$(chatctl token issue alice)
  chatctl token inspect "$TOKEN"`,
	}
	c.AddCommand(a.newTokenIssueCommand(), a.newTokenInspectCommand(), a.newTokenListCommand(), a.newTokenRevokeCommand())
	return c
}

func (a *app) newTokenIssueCommand() *cobra.Command {
	var ttl time.Duration
	c := &cobra.Command{
		Use:   "issue NAME",
		Short: "Print a signed access token for a user",
		Long: `Print a signed access token (HS256 JWT) for an existing, enabled user. Only the
token goes to stdout, so scripts can capture it; -o json adds its jti and
expiry.`,
		Example: `  TOKEN=$(chatctl token issue alice)
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/users/me
  chatctl token issue alice --ttl 5m -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("ttl") && ttl <= 0 {
				return fmt.Errorf("--ttl must be positive, got %s", ttl)
			}
			return a.withAdminFor(store.Write, func(adm admin.Admin) error {
				tok, err := adm.IssueToken(cmd.Context(), args[0], ttl)
				if err != nil {
					return err
				}
				if a.json() {
					return writeJSON(cmd.OutOrStdout(), tok)
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), tok.AccessToken)
				return err
			})
		},
	}
	c.Flags().DurationVar(&ttl, "ttl", 0, "lifetime of the token (default token.ttl, 30m)")
	return c
}

// ErrTokenInvalid is returned by token inspect for a token that fails a check.
var ErrTokenInvalid = errors.New("token is not valid")

func (a *app) newTokenInspectCommand() *cobra.Command {
	var noVerify bool
	c := &cobra.Command{
		Use:   "inspect [TOKEN|-]",
		Short: "Decode a token and say whether it is valid",
		Long: `Print a token's header and claims, with times in local time and RFC 3339, then
"valid" or the exact reason it is not: malformed, wrong algorithm, unknown key,
bad signature, expired, not yet valid, wrong issuer, user removed, user disabled
or revoked. Exits 1 when the token is not valid. Reads the token from stdin when
it is "-" or missing; a leading "Bearer " is ignored.`,
		Example: `  chatctl token inspect "$TOKEN"
  chatctl token issue alice | chatctl token inspect -
  chatctl token inspect --no-verify "$TOKEN"    # decode only, no store needed`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw := "-"
			if len(args) == 1 {
				raw = args[0]
			}
			if raw == "-" {
				b, err := io.ReadAll(io.LimitReader(a.stdin, 64<<10))
				if err != nil {
					return fmt.Errorf("read token from stdin: %w", err)
				}
				raw = string(b)
			}
			raw = strings.TrimSpace(raw)
			if len(raw) > 7 && strings.EqualFold(raw[:7], "bearer ") {
				raw = strings.TrimSpace(raw[7:])
			}
			if raw == "" {
				return errors.New("no token given (pass it as an argument or on stdin)")
			}
			var in admin.Inspection
			if noVerify {
				h, c, err := auth.Decode(raw)
				if err != nil {
					return err
				}
				in = admin.Inspection{Header: h, Claims: c}
			} else {
				err := a.withAdminFor(store.Read, func(adm admin.Admin) error {
					var err error
					in, err = adm.InspectToken(cmd.Context(), raw)
					return err
				})
				if err != nil {
					return err
				}
			}
			if a.json() {
				if err := writeJSON(cmd.OutOrStdout(), in); err != nil {
					return err
				}
			} else {
				printInspection(cmd.OutOrStdout(), in, noVerify)
			}
			if !noVerify && !in.Valid {
				return fmt.Errorf("%w: %s", ErrTokenInvalid, in.Detail)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&noVerify, "no-verify", false, "only decode; check nothing")
	return c
}

// printInspection writes the header, the claims and the verdict.
func printInspection(w io.Writer, in admin.Inspection, noVerify bool) {
	section := func(title string, m map[string]any) {
		if m == nil {
			return
		}
		fmt.Fprintln(w, title+":")
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		tw := table(w)
		for _, k := range keys {
			fmt.Fprintf(tw, "  %s:\t%s\n", k, claimValue(k, m[k]))
		}
		tw.Flush()
	}
	section("header", in.Header)
	section("claims", in.Claims)
	switch {
	case noVerify:
		fmt.Fprintln(w, "status: not verified (--no-verify)")
	case in.Valid:
		fmt.Fprintln(w, "status: valid")
	default:
		fmt.Fprintf(w, "status: invalid: %s\n", in.Reason)
	}
}

// claimValue formats a claim; the NumericDate claims also as times.
func claimValue(key string, v any) string {
	f, ok := v.(float64)
	if !ok {
		return fmt.Sprint(v)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		n := int64(f)
		switch key {
		case "exp", "iat", "nbf":
			return fmt.Sprintf("%d  %s", n, when(time.Unix(n, 0)))
		}
		return fmt.Sprint(n)
	}
	return fmt.Sprint(f)
}
