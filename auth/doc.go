// Package auth holds chatctl's credential rules: usernames, bcrypt
// password hashes and HS256 access tokens. It knows neither HTTP nor bbolt,
// so the CLI, the admin service and the server all share one copy of every
// check.
package auth
