package catalog

import (
	"regexp"
	"strings"
)

// Template matches resource URIs against an RFC 6570 URI template, loosely:
// it is used only to decide which server a URI belongs to.
type Template struct {
	re *regexp.Regexp
}

// CompileTemplate compiles an RFC 6570 template into a matcher.
func CompileTemplate(tmpl string) (*Template, error) {
	var b strings.Builder
	b.WriteString("^")
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(regexp.QuoteMeta(tmpl))
			break
		}
		b.WriteString(regexp.QuoteMeta(tmpl[:i]))
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			b.WriteString(regexp.QuoteMeta(tmpl[i:]))
			break
		}
		expr := tmpl[i+1 : i+j]
		op := byte(0)
		if expr != "" {
			op = expr[0]
		}
		switch op {
		case '+', '#':
			b.WriteString(`.*`)
		case '/':
			b.WriteString(`(?:/[^/?#]*)*`)
		case '.':
			b.WriteString(`(?:\.[^/?#]*)*`)
		case ';':
			b.WriteString(`(?:;[^/?#]*)*`)
		case '?', '&':
			b.WriteString(`(?:[?&][^#]*)?`)
		default:
			b.WriteString(`[^/?#]*`)
		}
		tmpl = tmpl[i+j+1:]
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, err
	}
	return &Template{re: re}, nil
}

// Match reports whether uri can be an expansion of the template.
func (t *Template) Match(uri string) bool { return t.re.MatchString(uri) }
