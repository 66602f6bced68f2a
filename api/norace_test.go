//go:build !race

package api

// raceEnabled is true under -race, where bcrypt runs about ten times
// slower; the storm test then fires fewer logins.
const raceEnabled = false
