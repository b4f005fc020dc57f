// Lexer for the Jinja subset used by chat templates.
//
// Splits template source into text and tag tokens, applying the whitespace
// rules of the Jinja environment that transformers builds for chat templates:
// trim_blocks=True (the first newline after a block or comment tag is dropped),
// lstrip_blocks=True (spaces/tabs before a block or comment tag at the start of
// a line are dropped), the "-" and "+" modifiers on tags, newline
// normalization to "\n" and the removal of one trailing newline
// (keep_trailing_newline=False). {% raw %} blocks become plain text.
//
// Thread safety: pure function. Ownership: tokens own their text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace formiga::jinja {

enum class TokenType {
  kText,        // literal template text (after whitespace control)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,        // identifier or keyword
  kString,      // string literal, escapes already decoded
  kInt,
  kFloat,
  kOperator,    // + - * / // % ** ~ == != < <= > >= = . , : | ( ) [ ] { }
  kEnd,         // end of template
};

struct Token {
  TokenType type = TokenType::kEnd;
  std::string text;  // text, name, decoded string, number spelling or operator
  int line = 1;
  int col = 1;
};

// Limits on what the lexer accepts (hostile templates).
inline constexpr size_t kMaxTemplateBytes = 1 << 20;  // 1 MiB of template source

// Tokenizes `source`. Errors name the line and column ("line 3, column 7: ...").
Result<std::vector<Token>> Tokenize(std::string_view source);

// "line L, column C" for error messages.
std::string FormatLoc(int line, int col);

}  // namespace formiga::jinja
