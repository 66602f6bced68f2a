// Command refserver is the reference that `chatctl bench http` figures are
// compared with: a minimal net/http server whose one handler verifies an
// HS256 bearer token with golang-jwt (algorithm pinned) and answers 200.
// It does nothing else: no store, no logging, no metrics. Run it on the
// same core and with the same secret as the server under test:
//
//	CHATCTL_JWT_SECRET=… taskset -c 0 go run ./bench/refserver -listen 127.0.0.1:8100
//	taskset -c 1 chatctl bench http --url http://127.0.0.1:8100 --token "$TOKEN"
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8100", "address to listen on")
	flag.Parse()
	secret := []byte(os.Getenv("CHATCTL_JWT_SECRET"))
	if len(secret) < 32 {
		log.Fatal("set CHATCTL_JWT_SECRET (32 bytes or more) to the server's secret")
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	keyFunc := func(*jwt.Token) (any, error) { return secret, nil }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/me", func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			http.Error(w, `{"detail":"Could not validate credentials"}`, http.StatusUnauthorized)
			return
		}
		var c jwt.RegisteredClaims
		if _, err := parser.ParseWithClaims(tok, &c, keyFunc); err != nil {
			http.Error(w, `{"detail":"Could not validate credentials"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"username":"` + c.Subject + `"}`))
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	log.Fatal(http.ListenAndServe(*listen, mux))
}
