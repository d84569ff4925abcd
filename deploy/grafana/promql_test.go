package grafana_test

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// metricNames returns the metric names (and recording rule names) a PromQL
// expression reads, in order of appearance, or an error for what it cannot
// take apart (an unterminated string, unbalanced brackets).
//
// It is a lexer, not a parser: the Prometheus parser is a module with a
// large dependency tree, and names are all this check needs. A name is an
// identifier that is
//   - not followed by "(" (functions and aggregations are),
//   - not a keyword, operator word or aggregation (words; by, without,
//     on, ignoring, group_left, group_right, offset),
//   - not inside a label list: the parentheses after by, without, on,
//     ignoring, group_left and group_right, or the braces of a selector
//     (where {__name__="x"} does name x),
//   - not inside a range or subquery's brackets, nor the duration after
//     offset or @,
//   - not a Grafana variable ($job, ${job}, $__rate_interval).
//
// Strings (", ' and `) and comments (# to the end of the line) are skipped.
// words are PromQL's keywords, binary operator words, aggregation operators
// (which may be followed by by/without before their parenthesis) and
// number literals: never metric names.
var words = []string{
	"bool", "and", "or", "unless", "atan2", "inf", "nan",
	"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
	"count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}

func metricNames(expr string) ([]string, error) {
	var (
		names      []string
		i          int
		braceDepth int    // inside {...}: label matchers
		labelList  bool   // the next "(" opens a label list
		lastLabel  string // the label name of the matcher being read
	)
	isIdentStart := func(c byte) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	skipSpace := func(j int) int {
		for j < len(expr) && strings.IndexByte(" \t\r\n", expr[j]) >= 0 {
			j++
		}
		return j
	}
	// skipString returns the index after the string starting at i.
	skipString := func(i int) (int, error) {
		q := expr[i]
		for j := i + 1; j < len(expr); j++ {
			switch {
			case expr[j] == '\\' && q != '`':
				j++
			case expr[j] == q:
				return j + 1, nil
			}
		}
		return 0, fmt.Errorf("unterminated string at %d", i)
	}
	// closing returns the index after the bracket closing the one at i,
	// skipping strings within.
	closing := func(i int, open, close byte) (int, error) {
		depth := 0
		for j := i; j < len(expr); j++ {
			switch expr[j] {
			case '"', '\'', '`':
				k, err := skipString(j)
				if err != nil {
					return 0, err
				}
				j = k - 1
			case open:
				depth++
			case close:
				if depth--; depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unbalanced %c at %d", open, i)
	}
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(i)
			if err != nil {
				return nil, err
			}
			if braceDepth > 0 && lastLabel == "__name__" {
				if v := strings.Trim(expr[i:j], "\"'`"); v != "" {
					names = append(names, v)
				}
			}
			i = j
		case c == '$':
			// A Grafana variable: $name, ${name} or ${name:format}.
			i++
			if i < len(expr) && expr[i] == '{' {
				j, err := closing(i, '{', '}')
				if err != nil {
					return nil, err
				}
				i = j
			} else {
				for i < len(expr) && isIdent(expr[i]) {
					i++
				}
			}
		case c == '[':
			// A range or subquery: durations, variables, steps.
			j, err := closing(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{':
			braceDepth++
			i++
		case c == '}':
			if braceDepth == 0 {
				return nil, fmt.Errorf("unbalanced } at %d", i)
			}
			braceDepth--
			i++
		case c == '(' && labelList:
			j, err := closing(i, '(', ')')
			if err != nil {
				return nil, err
			}
			labelList = false
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(expr) && expr[i+1] >= '0' && expr[i+1] <= '9':
			// A number or a duration (5m, 1h30m, 0x1F, 1e-3).
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.' ||
				(expr[i] == '-' || expr[i] == '+') && (expr[i-1] == 'e' || expr[i-1] == 'E')) {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			id := expr[i:j]
			i = j
			next := skipSpace(i)
			switch {
			case braceDepth > 0:
				lastLabel = id // a label name of a matcher
			case slices.Contains([]string{"by", "without", "on", "ignoring", "group_left", "group_right"}, strings.ToLower(id)):
				labelList = true
			case strings.EqualFold(id, "offset"):
				// The duration that follows is skipped as a number; a
				// negative one starts with '-', an operator here.
			case slices.Contains(words, strings.ToLower(id)):
			case next < len(expr) && expr[next] == '(':
				// A function or aggregation.
			default:
				names = append(names, id)
			}
			if labelList && (next >= len(expr) || expr[next] != '(') {
				labelList = false // group_left without labels
			}
			continue
		case c == ',':
			lastLabel = ""
			i++
		default:
			if c >= utf8.RuneSelf {
				return nil, fmt.Errorf("non-ASCII byte at %d", i)
			}
			i++
		}
	}
	if braceDepth != 0 {
		return nil, fmt.Errorf("unbalanced {")
	}
	return names, nil
}
