package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// applyYAML walks a YAML document and sets every key it holds. Nested
// mappings form dotted keys (token: {ttl: 5m} is token.ttl). Errors carry
// the line and the key so the operator can find them.
func (c *Config) applyYAML(data []byte, source string) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file sets nothing
		}
		return fmt.Errorf("invalid YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: the top level must be a mapping of keys", root.Line)
	}
	byKey := map[string]any{}
	for _, f := range c.fields() {
		byKey[f.key] = f.ptr
	}
	return c.walk(root, "", byKey, source)
}

func (c *Config) walk(m *yaml.Node, prefix string, byKey map[string]any, source string) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := prefix + k.Value
		ptr, known := byKey[key]
		if !known {
			if v.Kind == yaml.MappingNode && hasPrefix(byKey, key+".") {
				if err := c.walk(v, key+".", byKey, source); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("line %d: %w", k.Line, unknownKey(key))
		}
		if err := setNode(ptr, v); err != nil {
			return fmt.Errorf("line %d: %s: %w", v.Line, key, err)
		}
		c.sources[key] = source
	}
	return nil
}

func hasPrefix(byKey map[string]any, prefix string) bool {
	for k := range byKey {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// setNode sets a value from a YAML node: a scalar for single values, a
// sequence of scalars for lists.
func setNode(ptr any, n *yaml.Node) error {
	if list, ok := ptr.(*[]string); ok {
		switch n.Kind {
		case yaml.SequenceNode:
			*list = nil
			for _, item := range n.Content {
				if item.Kind != yaml.ScalarNode {
					return fmt.Errorf("list items must be plain values")
				}
				*list = append(*list, item.Value)
			}
			return nil
		case yaml.ScalarNode:
			if n.Tag == "!!null" {
				*list = nil
				return nil
			}
			return setString(ptr, n.Value)
		}
		return fmt.Errorf("want a list")
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a single value, not a %s", kindName(n.Kind))
	}
	if n.Tag == "!!null" {
		return fmt.Errorf("missing value")
	}
	return setString(ptr, n.Value)
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}
