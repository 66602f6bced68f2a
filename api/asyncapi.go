package api

import (
	_ "embed"
	"net/http"
)

// asyncAPI is the AsyncAPI 3 description of the /ws protocol
// (docs/protocol.md in prose). TestAsyncAPIFrameTypes holds it to the frame
// types the hub accepts and sends; .ci/run validates it with the AsyncAPI
// parser.
//
//go:embed asyncapi.json
var asyncAPI []byte

func handleAsyncAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(asyncAPI)
	})
}
