package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chatctl/chatctl/admin"
)

// FuzzDecodeTokenRequest feeds arbitrary bodies and content types to the
// request decoding of /token (forms) and of the JSON endpoints. Nothing
// may panic, and every failure must be one the handlers map to 413, 415
// or 422.
func FuzzDecodeTokenRequest(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "username=alice&password=secret")
	f.Add("application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token=abc")
	f.Add("application/x-www-form-urlencoded", "%zz=%")
	f.Add("multipart/form-data; boundary=X", "--X\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n--X--\r\n")
	f.Add("multipart/form-data", "--X")
	f.Add("application/json", `{"username":"alice","password":"secret"}`)
	f.Add("application/json", `{"username":1}`)
	f.Add("application/json; charset=utf-8", `{"username":"a","password":"b","role":"admin","x":1}`)
	f.Add("", "")
	f.Add("text/plain", strings.Repeat("a", 5000))
	const maxBody = 4096
	f.Fuzz(func(t *testing.T, contentType, body string) {
		newReq := func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
			if contentType != "" {
				r.Header.Set("Content-Type", contentType)
			}
			r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, maxBody)
			return r
		}

		r := newReq()
		status, msg := parseForm(r, maxBody)
		switch status {
		case 0:
			_ = r.PostForm.Get("username")
		case http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			if msg == "" {
				t.Errorf("status %d without a message", status)
			}
		default:
			t.Errorf("parseForm status %d", status)
		}

		_, err := decode[signupRequest](newReq())
		if err != nil && !errors.Is(err, errUnsupportedMedia) && !errors.Is(err, errBodyTooLarge) && !errors.Is(err, admin.ErrBadRequest) {
			t.Errorf("decode error %v maps to no client status", err)
		}
		if err != nil {
			w := httptest.NewRecorder()
			writeError(w, newReq(), nil, err)
			if w.Code != http.StatusUnsupportedMediaType && w.Code != http.StatusRequestEntityTooLarge && w.Code != http.StatusUnprocessableEntity {
				t.Errorf("decode error %v answered %d", err, w.Code)
			}
		}
	})
}
