package main

import (
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The repository's documents must stand alone: a clone has nothing beside
// it, so every link of README.md and docs/*.md has to resolve inside the
// repository (or point at the reader's own server on localhost).

var (
	fencedCode = regexp.MustCompile("(?ms)^[ \t]*```.*?^[ \t]*```[ \t]*$")
	inlineCode = regexp.MustCompile("`[^`\n]*`")
	// [text](target "title") and ![alt](target); text may hold code spans,
	// which are blanked before matching, and one level of brackets.
	inlineLink = regexp.MustCompile(`!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	refDef     = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$`)
	autoLink   = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]*)>`)
	heading    = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$`)
)

// markdownLinks returns the link targets of a markdown document, code
// blocks and code spans left out.
func markdownLinks(doc string) []string {
	doc = fencedCode.ReplaceAllString(doc, "")
	doc = inlineCode.ReplaceAllStringFunc(doc, func(s string) string { return strings.Repeat("x", len(s)) })
	var out []string
	for _, re := range []*regexp.Regexp{inlineLink, refDef, autoLink} {
		for _, m := range re.FindAllStringSubmatch(doc, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// anchors returns the fragment ids GitHub gives the headings of doc.
func anchors(doc string) map[string]bool {
	doc = fencedCode.ReplaceAllString(doc, "")
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(doc, -1) {
		out[slug(m[1])] = true
	}
	return out
}

// slug is GitHub's heading id: lower case, punctuation dropped, spaces as
// hyphens.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// checkLinks returns a problem for each link of the document file (a
// slash-separated path relative to root) that does not resolve inside
// root: a missing file, a path that leaves the repository, an anchor no
// heading has, or an absolute URL to anywhere but localhost.
func checkLinks(root, file, doc string) []string {
	var problems []string
	bad := func(target, why string) { problems = append(problems, file+": link "+target+": "+why) }
	for _, target := range markdownLinks(doc) {
		u, err := url.Parse(target)
		if err != nil {
			bad(target, "not a URL")
			continue
		}
		if u.Scheme != "" || u.Host != "" {
			if (u.Scheme == "http" || u.Scheme == "https") && (u.Hostname() == "127.0.0.1" || u.Hostname() == "localhost") {
				continue // the reader's own chatctl serve
			}
			bad(target, "points outside the repository")
			continue
		}
		if strings.HasPrefix(u.Path, "/") {
			bad(target, "absolute path; use a path relative to the document")
			continue
		}
		if slices.Contains(strings.Split(u.Path, "/"), "..") {
			// Even when it lands inside the tree, a ../ link reads as one
			// leaving it, and breaks where docs/ is published alone.
			bad(target, "climbs out of the document's folder (..)")
			continue
		}
		dest, destDoc := file, doc
		if u.Path != "" {
			dest = path.Join(path.Dir(file), u.Path)
			if dest == ".." || strings.HasPrefix(dest, "../") {
				bad(target, "leaves the repository")
				continue
			}
			b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(dest)))
			if err != nil {
				if _, serr := os.Stat(filepath.Join(root, filepath.FromSlash(dest))); serr != nil {
					bad(target, "no such file in the repository")
					continue
				}
			}
			destDoc = string(b)
		}
		if u.Fragment != "" && strings.HasSuffix(dest, ".md") && !anchors(destDoc)[u.Fragment] {
			bad(target, "no heading #"+u.Fragment+" in "+dest)
		}
	}
	return problems
}

// Ensure every link of README.md and docs/*.md resolves inside the
// repository.
func TestMarkdownLinks(t *testing.T) {
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"README.md"}, files...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		links := markdownLinks(string(b))
		if len(links) == 0 {
			t.Errorf("%s: no links found; is the link parser broken?", f)
		}
		for _, p := range checkLinks(".", filepath.ToSlash(f), string(b)) {
			t.Error(p)
		}
	}
}

// Ensure the link check itself catches what it is for.
func TestCheckLinks(t *testing.T) {
	doc := "# Title\n\n## Reconnecting with `since`\n\n" +
		"[ok](README.md) [ok](#title) [ok](#reconnecting-with-since) ![img](docs/chat.png)\n" +
		"[ok](docs/protocol.md#close-codes) <http://127.0.0.1:8000/chat>\n" +
		"`[in code](nowhere.md)`\n```\n[in a block](nowhere.md)\n```\n" +
		"[spec](../shared/SPEC.md) [gone](docs/nowhere.md) [web](https://example.com/x)\n" +
		"[anchor](#nowhere) [other anchor](docs/protocol.md#nowhere) [abs](/etc/passwd)\n" +
		"[ref]: https://example.org/y\n"
	got := checkLinks(".", "README.md", doc)
	want := []string{"../shared/SPEC.md", "docs/nowhere.md", "https://example.com/x", "#nowhere",
		"docs/protocol.md#nowhere", "/etc/passwd", "https://example.org/y"}
	if len(got) != len(want) {
		t.Errorf("checkLinks found %d problems, want %d: %q", len(got), len(want), got)
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.Contains(g, "link "+w+":")
		}
		if !found {
			t.Errorf("checkLinks missed %s: %q", w, got)
		}
	}
}

// Ensure a link from docs/ that climbs back into the tree (../configs/…)
// is refused too: it reads as leaving the folder.
func TestCheckLinksClimb(t *testing.T) {
	got := checkLinks(".", "docs/operations.md", "[cfg](../configs/chatctl.yaml) [ok](protocol.md)\n")
	if len(got) != 1 || !strings.Contains(got[0], "link ../configs/chatctl.yaml: climbs out") {
		t.Errorf("checkLinks = %q, want one climb-out problem", got)
	}
}
