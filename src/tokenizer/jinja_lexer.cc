#include "tokenizer/jinja_lexer.h"

#include <algorithm>
#include <cstring>

namespace formiga::jinja {

std::string FormatLoc(int line, int col) {
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  explicit Lexer(std::string src) : src_(std::move(src)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  Result<std::vector<Token>> Run() {
    size_t pos = 0;
    const size_t n = src_.size();
    while (pos < n) {
      size_t tag = FindTagStart(pos);
      // Leading whitespace control left by the previous tag.
      if (strip_next_ws_) {
        while (pos < tag && IsSpace(src_[pos])) ++pos;
      } else if (trim_next_newline_ && pos < tag && src_[pos] == '\n') {
        ++pos;
      }
      strip_next_ws_ = trim_next_newline_ = false;
      std::string_view text(src_.data() + pos, tag - pos);
      size_t text_pos = pos;
      if (tag < n) {
        char kind = src_[tag + 1];
        char mod = tag + 2 < n ? src_[tag + 2] : '\0';
        if (mod == '-') {
          while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
        } else if ((kind == '%' || kind == '#') && mod != '+') {
          // lstrip_blocks: drop spaces/tabs between the line start and the tag.
          size_t nl = text.rfind('\n');
          size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
          bool line_starting = text_pos == 0 || src_[text_pos - 1] == '\n';
          if (l_pos > 0 || line_starting) {
            bool blank = std::all_of(text.begin() + static_cast<std::ptrdiff_t>(l_pos), text.end(),
                                     [](char c) { return c == ' ' || c == '\t'; });
            if (blank) text = text.substr(0, l_pos);
          }
        }
      }
      if (!text.empty()) Push(TokenType::kText, std::string(text), text_pos);
      if (tag >= n) break;
      FORMIGA_ASSIGN_OR_RETURN(pos, LexTag(tag));
    }
    Push(TokenType::kEnd, "", n);
    return std::move(tokens_);
  }

 private:
  size_t FindTagStart(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return src_.size();
  }

  void LocOf(size_t off, int* line, int* col) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), off);
    size_t idx = static_cast<size_t>(it - line_starts_.begin()) - 1;
    *line = static_cast<int>(idx) + 1;
    *col = static_cast<int>(off - line_starts_[idx]) + 1;
  }

  Status ErrorAt(size_t off, const std::string& msg) const {
    int line, col;
    LocOf(off, &line, &col);
    return Status::InvalidArgument("chat template syntax error at " + FormatLoc(line, col) + ": " + msg);
  }

  void Push(TokenType type, std::string text, size_t off) {
    Token t;
    t.type = type;
    t.text = std::move(text);
    LocOf(off, &t.line, &t.col);
    tokens_.push_back(std::move(t));
  }

  // Sets the whitespace control that the closing marker imposes on the text after it.
  void AfterBlockEnd(char modifier) {
    if (modifier == '-') strip_next_ws_ = true;
    else if (modifier != '+') trim_next_newline_ = true;  // trim_blocks
  }

  // Returns the offset after `{% raw %}` if the block at `tag` opens raw text.
  size_t MatchRawOpen(size_t tag) const {
    size_t p = tag + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    while (p < src_.size() && IsSpace(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return 0;
    p += 3;
    if (p < src_.size() && IsNameChar(src_[p])) return 0;
    while (p < src_.size() && IsSpace(src_[p])) ++p;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    if (src_.compare(p, 2, "%}") != 0) return 0;
    return p + 2;
  }

  Result<size_t> LexRaw(size_t tag, size_t body) {
    char open_mod = src_[body - 3];
    size_t p = body;
    while (true) {
      size_t s = src_.find("{%", p);
      if (s == std::string::npos) return ErrorAt(tag, "{% raw %} without {% endraw %}");
      size_t q = s + 2;
      char mod_begin = q < src_.size() ? src_[q] : '\0';
      if (mod_begin == '-' || mod_begin == '+') ++q;
      while (q < src_.size() && IsSpace(src_[q])) ++q;
      if (src_.compare(q, 6, "endraw") != 0) {
        p = s + 2;
        continue;
      }
      q += 6;
      while (q < src_.size() && IsSpace(src_[q])) ++q;
      char mod_end = '\0';
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) mod_end = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) {
        p = s + 2;
        continue;
      }
      std::string_view text(src_.data() + body, s - body);
      if (open_mod == '-') {
        while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
      }
      if (mod_begin == '-') {
        while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
      }
      if (!text.empty()) Push(TokenType::kText, std::string(text), body);
      AfterBlockEnd(mod_end);
      return q + 2;
    }
  }

  Result<size_t> LexTag(size_t tag) {
    const size_t n = src_.size();
    char kind = src_[tag + 1];
    if (kind == '#') {
      size_t end = src_.find("#}", tag + 2);
      if (end == std::string::npos) return ErrorAt(tag, "comment {# is never closed with #}");
      char mod = end > tag + 2 ? src_[end - 1] : '\0';
      AfterBlockEnd(mod == '-' || mod == '+' ? mod : '\0');
      return end + 2;
    }
    if (kind == '%') {
      if (size_t body = MatchRawOpen(tag)) return LexRaw(tag, body);
    }
    size_t p = tag + 2;
    if (p < n && (src_[p] == '-' || (kind == '%' && src_[p] == '+'))) ++p;
    Push(kind == '%' ? TokenType::kBlockBegin : TokenType::kVarBegin, kind == '%' ? "{%" : "{{", tag);
    std::vector<char> balance;
    while (true) {
      while (p < n && IsSpace(src_[p])) ++p;
      if (p >= n) {
        return ErrorAt(tag, std::string(kind == '%' ? "block tag {%" : "expression {{") +
                                " is never closed with " + (kind == '%' ? "%}" : "}}"));
      }
      if (balance.empty()) {
        const char* close = kind == '%' ? "%}" : "}}";
        char c = src_[p];
        if ((c == '-' || (kind == '%' && c == '+')) && src_.compare(p + 1, 2, close) == 0) {
          Push(kind == '%' ? TokenType::kBlockEnd : TokenType::kVarEnd, close, p);
          if (kind == '%') AfterBlockEnd(c);
          else if (c == '-') strip_next_ws_ = true;
          return p + 3;
        }
        if (src_.compare(p, 2, close) == 0) {
          Push(kind == '%' ? TokenType::kBlockEnd : TokenType::kVarEnd, close, p);
          if (kind == '%') AfterBlockEnd('\0');
          return p + 2;
        }
      }
      FORMIGA_ASSIGN_OR_RETURN(p, LexExprToken(p, &balance));
    }
  }

  Result<size_t> LexExprToken(size_t p, std::vector<char>* balance) {
    const size_t n = src_.size();
    char c = src_[p];
    if (c == '\'' || c == '"') return LexString(p);
    if (IsDigit(c)) {
      size_t q = p;
      while (q < n && (IsDigit(src_[q]) || (src_[q] == '_' && q + 1 < n && IsDigit(src_[q + 1])))) ++q;
      bool is_float = false;
      if (q + 1 < n && src_[q] == '.' && IsDigit(src_[q + 1])) {
        is_float = true;
        ++q;
        while (q < n && (IsDigit(src_[q]) || (src_[q] == '_' && q + 1 < n && IsDigit(src_[q + 1])))) ++q;
      }
      if (q < n && (src_[q] == 'e' || src_[q] == 'E')) {
        size_t r = q + 1;
        if (r < n && (src_[r] == '+' || src_[r] == '-')) ++r;
        if (r < n && IsDigit(src_[r])) {
          is_float = true;
          q = r;
          while (q < n && IsDigit(src_[q])) ++q;
        }
      }
      std::string num;
      for (size_t i = p; i < q; ++i) {
        if (src_[i] != '_') num += src_[i];
      }
      Push(is_float ? TokenType::kFloat : TokenType::kInt, num, p);
      return q;
    }
    if (IsNameStart(c)) {
      size_t q = p;
      while (q < n && IsNameChar(src_[q])) ++q;
      Push(TokenType::kName, src_.substr(p, q - p), p);
      return q;
    }
    static const char* kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : kTwo) {
      if (src_.compare(p, 2, op) == 0) {
        Push(TokenType::kOperator, op, p);
        return p + 2;
      }
    }
    if (std::strchr("+-*/%~<>=.,:|()[]{}", c) != nullptr) {
      if (c == '(' || c == '[' || c == '{') {
        balance->push_back(c);
      } else if (c == ')' || c == ']' || c == '}') {
        char want = c == ')' ? '(' : c == ']' ? '[' : '{';
        if (balance->empty() || balance->back() != want) {
          return ErrorAt(p, std::string("unexpected '") + c + "'");
        }
        balance->pop_back();
      }
      Push(TokenType::kOperator, std::string(1, c), p);
      return p + 1;
    }
    return ErrorAt(p, std::string("unexpected character '") + c + "' in expression");
  }

  Result<size_t> LexString(size_t p) {
    const size_t n = src_.size();
    char q = src_[p];
    std::string out;
    size_t i = p + 1;
    while (true) {
      if (i >= n) return ErrorAt(p, "string literal is never closed");
      char c = src_[i];
      if (c == q) break;
      if (c != '\\') {
        out += c;
        ++i;
        continue;
      }
      if (i + 1 >= n) return ErrorAt(p, "string literal is never closed");
      char e = src_[i + 1];
      i += 2;
      switch (e) {
        case '\n': break;  // line continuation
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case 'x':
        case 'u':
        case 'U': {
          size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (size_t k = 0; k < digits; ++k) {
            int h = i + k < n ? HexVal(src_[i + k]) : -1;
            if (h < 0) return ErrorAt(i - 2, std::string("truncated \\") + e + " escape in string literal");
            cp = cp * 16 + static_cast<uint32_t>(h);
          }
          if (cp > 0x10FFFF) return ErrorAt(i - 2, "escape names a code point past U+10FFFF");
          i += digits;
          AppendUtf8(cp, &out);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && i < n && src_[i] >= '0' && src_[i] <= '7'; ++k) cp = cp * 8 + (src_[i++] - '0');
            AppendUtf8(cp, &out);
          } else {
            // Python keeps unknown escapes verbatim.
            out += '\\';
            out += e;
          }
      }
    }
    Push(TokenType::kString, std::move(out), p);
    return i + 1;
  }

  std::string src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
  bool strip_next_ws_ = false;
  bool trim_next_newline_ = false;
};

}  // namespace

Result<std::vector<Token>> Tokenize(std::string_view source) {
  if (source.size() > kMaxTemplateBytes) {
    return Status::OutOfRange("chat template is " + std::to_string(source.size()) + " bytes; the limit is " +
                              std::to_string(kMaxTemplateBytes));
  }
  // Jinja normalizes newlines to "\n" and drops one trailing newline.
  std::string src;
  src.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      src += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      src += source[i];
    }
  }
  if (!src.empty() && src.back() == '\n') src.pop_back();
  return Lexer(std::move(src)).Run();
}

}  // namespace formiga::jinja
