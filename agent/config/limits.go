package config

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Bounds on config input. HCL's parser recurses once per nesting level and per chained
// operator, so a hostile or generated file (100,000 brackets) would overflow the stack and
// kill the process; these limits are checked on the tokens, which the lexer produces without
// recursion, before the parser sees the file. Real configs stay far below every one of them.
const (
	// MaxConfigFileSize bounds one config file.
	MaxConfigFileSize = 1 << 20
	// MaxConfigTotalSize bounds all the files of a config directory together.
	MaxConfigTotalSize = 4 << 20
	// MaxConfigNesting bounds how deep brackets, braces, parentheses, strings and template
	// sequences nest.
	MaxConfigNesting = 64
	// MaxConfigOperators bounds the operators (arithmetic, comparison, logic, conditional)
	// of one file.
	MaxConfigOperators = 1000
	// MaxConfigTokens bounds the tokens of one file.
	MaxConfigTokens = 200_000
)

// The smallest values of the agent's settings that drive a loop: below them a typo
// ("1ns") would keep a core busy.
const (
	MinCheckpointInterval = time.Millisecond
	MinRetryInitial       = time.Millisecond
	MinCallTimeout        = 10 * time.Millisecond
)

// Bounds of a plugin block's memory_limit: below the minimum the Go runtime of the plugin
// collects garbage all the time; the maximum catches a unit typo.
const (
	MinMemoryLimit = 32 << 20
	MaxMemoryLimit = 1 << 40
)

// checkLimits checks a file's size and tokens against the limits above. It returns at the
// first limit passed, with the position where it was passed.
func checkLimits(name string, src []byte) hcl.Diagnostics {
	if len(src) > MaxConfigFileSize {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Config file too large",
			Detail: fmt.Sprintf("%s has %d bytes; a config file may have at most %d (1 MiB). Split it into "+
				"several files of a config directory, or check that this is the config you meant.",
				name, len(src), MaxConfigFileSize),
			Subject: &hcl.Range{Filename: name, Start: hcl.InitialPos, End: hcl.InitialPos}}}
	}
	tokens, _ := hclsyntax.LexConfig(src, name, hcl.InitialPos)
	depth, operators := 0, 0
	for i, tok := range tokens {
		if i == MaxConfigTokens {
			r := tok.Range
			return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Config file too complex",
				Detail: fmt.Sprintf("%s has more than %d tokens (names, values, operators, brackets). Split it "+
					"into several files of a config directory.", name, MaxConfigTokens),
				Subject: &r}}
		}
		switch tok.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen, hclsyntax.TokenOQuote,
			hclsyntax.TokenOHeredoc, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			depth++
			if depth > MaxConfigNesting {
				r := tok.Range
				return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Config nested too deeply",
					Detail: fmt.Sprintf("Brackets, braces, parentheses, strings and templates nest at most %d deep; "+
						"this one is the %dth. A tda config needs a handful of levels: look for a missing closing "+
						"bracket, or a generator that ran away.", MaxConfigNesting, depth),
					Subject: &r}}
			}
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenCQuote,
			hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			if depth > 0 {
				depth--
			}
		case hclsyntax.TokenBang, hclsyntax.TokenMinus, hclsyntax.TokenPlus, hclsyntax.TokenStar,
			hclsyntax.TokenSlash, hclsyntax.TokenPercent, hclsyntax.TokenAnd, hclsyntax.TokenOr,
			hclsyntax.TokenEqualOp, hclsyntax.TokenNotEqual, hclsyntax.TokenLessThan,
			hclsyntax.TokenLessThanEq, hclsyntax.TokenGreaterThan, hclsyntax.TokenGreaterThanEq,
			hclsyntax.TokenQuestion:
			operators++
			if operators > MaxConfigOperators {
				r := tok.Range
				return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Too many operators",
					Detail: fmt.Sprintf("%s has more than %d operators (+ - * / %% ! && || == != < > <= >= ?). "+
						"tda's settings are values, names and lists; rule conditions are strings, which do not "+
						"count.", name, MaxConfigOperators),
					Subject: &r}}
			}
		}
	}
	return nil
}
