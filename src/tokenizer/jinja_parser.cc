#include "tokenizer/jinja_parser.h"

#include "tokenizer/jinja_builtins.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <initializer_list>

namespace formiga::jinja {

namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Result<std::shared_ptr<const Template>> Run() {
    auto tmpl = std::make_shared<Template>();
    std::string which;
    FORMIGA_ASSIGN_OR_RETURN(tmpl->body, ParseBody({}, &which, nullptr));
    return std::shared_ptr<const Template>(std::move(tmpl));
  }

 private:
  // ---- token helpers ----
  const Token& Peek(size_t ahead = 0) const { return toks_[std::min(pos_ + ahead, toks_.size() - 1)]; }
  const Token& Next() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool IsOp(const Token& t, std::string_view op) const { return t.type == TokenType::kOperator && t.text == op; }
  bool IsName(const Token& t, std::string_view name) const { return t.type == TokenType::kName && t.text == name; }
  bool AcceptOp(std::string_view op) {
    if (!IsOp(Peek(), op)) return false;
    Next();
    return true;
  }
  bool AcceptName(std::string_view name) {
    if (!IsName(Peek(), name)) return false;
    Next();
    return true;
  }
  static SourceLoc Loc(const Token& t) { return SourceLoc{t.line, t.col}; }
  static std::string Describe(const Token& t) {
    switch (t.type) {
      case TokenType::kText: return "template text";
      case TokenType::kVarBegin: return "'{{'";
      case TokenType::kVarEnd: return "'}}'";
      case TokenType::kBlockBegin: return "'{%'";
      case TokenType::kBlockEnd: return "'%}'";
      case TokenType::kString: return "a string";
      case TokenType::kInt:
      case TokenType::kFloat: return "number " + t.text;
      case TokenType::kEnd: return "the end of the template";
      default: return "'" + t.text + "'";
    }
  }
  Status SyntaxError(const Token& t, const std::string& msg) const {
    return Status::InvalidArgument("chat template syntax error at " + FormatLoc(t.line, t.col) + ": " + msg);
  }
  Status UnsupportedAt(const Token& t, const std::string& what) const {
    return Status::Unsupported("chat template uses " + what + " at " + FormatLoc(t.line, t.col) +
                               ", which formiga's Jinja subset does not support (see docs/chat_templates.md)");
  }
  Status ExpectOp(std::string_view op) {
    if (AcceptOp(op)) return Status::Ok();
    return SyntaxError(Peek(), "expected '" + std::string(op) + "', found " + Describe(Peek()));
  }
  Status ExpectName(std::string_view name) {
    if (AcceptName(name)) return Status::Ok();
    return SyntaxError(Peek(), "expected '" + std::string(name) + "', found " + Describe(Peek()));
  }
  Status ExpectBlockEnd() {
    if (Peek().type == TokenType::kBlockEnd) {
      Next();
      return Status::Ok();
    }
    return SyntaxError(Peek(), "expected '%}', found " + Describe(Peek()));
  }
  Result<std::string> ExpectIdent() {
    if (Peek().type != TokenType::kName) return SyntaxError(Peek(), "expected a name, found " + Describe(Peek()));
    return Next().text;
  }
  Status Enter(const Token& t) {
    if (++depth_ > kMaxNesting) {
      return Status::OutOfRange("chat template nests blocks or expressions deeper than " +
                                std::to_string(kMaxNesting) + " levels at " + FormatLoc(t.line, t.col));
    }
    return Status::Ok();
  }
  struct DepthGuard {
    int* d;
    ~DepthGuard() { --*d; }
  };

  // ---- statements ----
  // Parses until one of `ends` opens a block; consumes "{% end_name", stores it in *which.
  Result<StmtList> ParseBody(std::initializer_list<std::string_view> ends, std::string* which, const Token* opener) {
    StmtList out;
    while (true) {
      const Token& t = Peek();
      switch (t.type) {
        case TokenType::kEnd:
          if (ends.size() != 0) {
            return SyntaxError(*opener, "'" + opener->text + "' block is never closed (expected {% " +
                                            std::string(*ends.begin()) + " %} or another closing tag)");
          }
          return out;
        case TokenType::kText: {
          auto s = std::make_unique<Stmt>();
          s->kind = Stmt::Kind::kText;
          s->loc = Loc(t);
          s->text = Next().text;
          out.push_back(std::move(s));
          break;
        }
        case TokenType::kVarBegin: {
          Next();
          auto s = std::make_unique<Stmt>();
          s->kind = Stmt::Kind::kOutput;
          s->loc = Loc(t);
          FORMIGA_ASSIGN_OR_RETURN(s->expr, ParseTuple(true));
          if (Peek().type != TokenType::kVarEnd) {
            return SyntaxError(Peek(), "expected '}}', found " + Describe(Peek()));
          }
          Next();
          out.push_back(std::move(s));
          break;
        }
        case TokenType::kBlockBegin: {
          const Token& name = Peek(1);
          if (name.type != TokenType::kName) return SyntaxError(name, "expected a tag name after '{%'");
          if (std::find(ends.begin(), ends.end(), name.text) != ends.end()) {
            Next();
            *which = Next().text;
            return out;
          }
          Next();
          FORMIGA_RETURN_IF_ERROR(Enter(name));
          DepthGuard g{&depth_};
          FORMIGA_ASSIGN_OR_RETURN(auto stmt, ParseStatement());
          out.push_back(std::move(stmt));
          break;
        }
        default: return SyntaxError(t, "unexpected " + Describe(t));
      }
    }
  }

  Result<std::unique_ptr<Stmt>> ParseStatement() {
    const Token& tag = Next();
    auto s = std::make_unique<Stmt>();
    s->loc = Loc(tag);
    const std::string& n = tag.text;
    std::string which;
    if (n == "if") {
      s->kind = Stmt::Kind::kIf;
      while (true) {
        FORMIGA_ASSIGN_OR_RETURN(auto cond, ParseTuple(false));
        FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
        FORMIGA_ASSIGN_OR_RETURN(auto body, ParseBody({"elif", "else", "endif"}, &which, &tag));
        s->conditions.push_back(std::move(cond));
        s->bodies.push_back(std::move(body));
        if (which == "elif") continue;
        if (which == "else") {
          FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
          FORMIGA_ASSIGN_OR_RETURN(auto else_body, ParseBody({"endif"}, &which, &tag));
          s->bodies.push_back(std::move(else_body));
          s->has_else = true;
        }
        break;
      }
      FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (n == "for") {
      s->kind = Stmt::Kind::kFor;
      FORMIGA_ASSIGN_OR_RETURN(s->target, ParseTarget(false));
      FORMIGA_RETURN_IF_ERROR(ExpectName("in"));
      FORMIGA_ASSIGN_OR_RETURN(s->expr, ParseTuple(false));
      if (AcceptName("if")) {
        FORMIGA_ASSIGN_OR_RETURN(s->cond, ParseExpression(true));
      }
      if (IsName(Peek(), "recursive")) return UnsupportedAt(Peek(), "a recursive for loop");
      FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
      FORMIGA_ASSIGN_OR_RETURN(auto body, ParseBody({"else", "endfor"}, &which, &tag));
      s->bodies.push_back(std::move(body));
      if (which == "else") {
        FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
        FORMIGA_ASSIGN_OR_RETURN(auto else_body, ParseBody({"endfor"}, &which, &tag));
        s->bodies.push_back(std::move(else_body));
        s->has_else = true;
      }
      FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (n == "set") {
      FORMIGA_ASSIGN_OR_RETURN(s->target, ParseTarget(true));
      if (AcceptOp("=")) {
        s->kind = Stmt::Kind::kSet;
        FORMIGA_ASSIGN_OR_RETURN(s->expr, ParseTuple(true));
        FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
        return s;
      }
      if (s->target.is_tuple || !s->target.attr.empty()) {
        return SyntaxError(Peek(), "a block {% set %} assigns a single plain name");
      }
      if (IsOp(Peek(), "|")) return UnsupportedAt(Peek(), "filters on a block {% set %}");
      s->kind = Stmt::Kind::kSetBlock;
      FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
      FORMIGA_ASSIGN_OR_RETURN(s->body, ParseBody({"endset"}, &which, &tag));
      FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (n == "macro") {
      s->kind = Stmt::Kind::kMacro;
      FORMIGA_ASSIGN_OR_RETURN(s->text, ExpectIdent());
      FORMIGA_RETURN_IF_ERROR(ExpectOp("("));
      while (!IsOp(Peek(), ")")) {
        if (!s->params.empty()) FORMIGA_RETURN_IF_ERROR(ExpectOp(","));
        if (IsOp(Peek(), ")")) break;
        MacroParam p;
        FORMIGA_ASSIGN_OR_RETURN(p.name, ExpectIdent());
        if (AcceptOp("=")) {
          FORMIGA_ASSIGN_OR_RETURN(p.default_value, ParseExpression(true));
        }
        s->params.push_back(std::move(p));
      }
      Next();
      FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
      FORMIGA_ASSIGN_OR_RETURN(s->body, ParseBody({"endmacro"}, &which, &tag));
      FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (n == "break" || n == "continue") {
      s->kind = n == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
      FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (n == "generation") {
      // transformers' AssistantTracker tag: renders its body unchanged.
      s->kind = Stmt::Kind::kGeneration;
      FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
      FORMIGA_ASSIGN_OR_RETURN(s->body, ParseBody({"endgeneration"}, &which, &tag));
      FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    if (n == "filter") {
      s->kind = Stmt::Kind::kFilterBlock;
      auto f = std::make_unique<Expr>();
      f->kind = Expr::Kind::kFilter;
      f->loc = Loc(Peek());
      FORMIGA_ASSIGN_OR_RETURN(f->name, ExpectIdent());
      if (!IsSupportedFilter(f->name)) return UnsupportedAt(tag, "the filter '" + f->name + "'");
      f->children.push_back(nullptr);  // the body's text goes here
      if (IsOp(Peek(), "(")) FORMIGA_RETURN_IF_ERROR(ParseCallArgs(f.get()));
      if (IsOp(Peek(), "|")) return UnsupportedAt(Peek(), "a chain of filters in {% filter %}");
      s->expr = std::move(f);
      FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
      FORMIGA_ASSIGN_OR_RETURN(s->body, ParseBody({"endfilter"}, &which, &tag));
      FORMIGA_RETURN_IF_ERROR(ExpectBlockEnd());
      return s;
    }
    static const char* kKnownUnsupported[] = {"include", "import",   "from",  "extends", "block", "call",
                                              "with",    "autoescape", "do", "trans",   "pluralize"};
    for (const char* u : kKnownUnsupported) {
      if (n == u) return UnsupportedAt(tag, "the {% " + n + " %} tag");
    }
    if (n.rfind("end", 0) == 0 || n == "elif" || n == "else") {
      return SyntaxError(tag, "unexpected {% " + n + " %} (no open block it could close)");
    }
    return UnsupportedAt(tag, "an unknown tag {% " + n + " %}");
  }

  Result<Target> ParseTarget(bool allow_namespace) {
    Target t;
    bool parens = AcceptOp("(");
    FORMIGA_ASSIGN_OR_RETURN(std::string first, ExpectIdent());
    t.names.push_back(first);
    if (allow_namespace && !parens && AcceptOp(".")) {
      FORMIGA_ASSIGN_OR_RETURN(t.attr, ExpectIdent());
      return t;
    }
    while (AcceptOp(",")) {
      t.is_tuple = true;
      if (Peek().type != TokenType::kName || IsName(Peek(), "in")) break;  // trailing comma
      FORMIGA_ASSIGN_OR_RETURN(std::string nm, ExpectIdent());
      t.names.push_back(nm);
    }
    if (parens) FORMIGA_RETURN_IF_ERROR(ExpectOp(")"));
    return t;
  }

  // ---- expressions ----
  static ExprPtr Make(Expr::Kind kind, SourceLoc loc) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->loc = loc;
    return e;
  }

  // expr (',' expr)* -> tuple when a comma appears.
  Result<ExprPtr> ParseTuple(bool with_condexpr) {
    SourceLoc loc = Loc(Peek());
    FORMIGA_ASSIGN_OR_RETURN(ExprPtr first, ParseExpression(with_condexpr));
    if (!IsOp(Peek(), ",")) return first;
    auto tup = Make(Expr::Kind::kTuple, loc);
    tup->children.push_back(std::move(first));
    while (AcceptOp(",")) {
      const Token& t = Peek();
      if (t.type == TokenType::kVarEnd || t.type == TokenType::kBlockEnd || IsOp(t, ")") || IsName(t, "if")) break;
      FORMIGA_ASSIGN_OR_RETURN(ExprPtr e, ParseExpression(with_condexpr));
      tup->children.push_back(std::move(e));
    }
    return tup;
  }

  Result<ExprPtr> ParseExpression(bool with_condexpr) {
    FORMIGA_RETURN_IF_ERROR(Enter(Peek()));
    DepthGuard g{&depth_};
    SourceLoc loc = Loc(Peek());
    FORMIGA_ASSIGN_OR_RETURN(ExprPtr e, ParseOr());
    if (!with_condexpr) return e;
    while (IsName(Peek(), "if")) {
      Next();
      auto c = Make(Expr::Kind::kCond, loc);
      FORMIGA_ASSIGN_OR_RETURN(ExprPtr cond, ParseOr());
      ExprPtr other;
      if (AcceptName("else")) {
        FORMIGA_ASSIGN_OR_RETURN(other, ParseExpression(true));
      }
      c->children.push_back(std::move(e));
      c->children.push_back(std::move(cond));
      c->children.push_back(std::move(other));
      e = std::move(c);
    }
    return e;
  }

  Result<ExprPtr> ParseOr() {
    FORMIGA_ASSIGN_OR_RETURN(ExprPtr l, ParseAnd());
    while (IsName(Peek(), "or")) {
      SourceLoc loc = Loc(Next());
      FORMIGA_ASSIGN_OR_RETURN(ExprPtr r, ParseAnd());
      auto e = Make(Expr::Kind::kOr, loc);
      e->children.push_back(std::move(l));
      e->children.push_back(std::move(r));
      l = std::move(e);
    }
    return l;
  }

  Result<ExprPtr> ParseAnd() {
    FORMIGA_ASSIGN_OR_RETURN(ExprPtr l, ParseNot());
    while (IsName(Peek(), "and")) {
      SourceLoc loc = Loc(Next());
      FORMIGA_ASSIGN_OR_RETURN(ExprPtr r, ParseNot());
      auto e = Make(Expr::Kind::kAnd, loc);
      e->children.push_back(std::move(l));
      e->children.push_back(std::move(r));
      l = std::move(e);
    }
    return l;
  }

  Result<ExprPtr> ParseNot() {
    if (IsName(Peek(), "not")) {
      SourceLoc loc = Loc(Next());
      FORMIGA_RETURN_IF_ERROR(Enter(Peek()));
      DepthGuard g{&depth_};
      FORMIGA_ASSIGN_OR_RETURN(ExprPtr inner, ParseNot());
      auto e = Make(Expr::Kind::kNot, loc);
      e->children.push_back(std::move(inner));
      return e;
    }
    return ParseCompare();
  }

  Result<ExprPtr> ParseCompare() {
    SourceLoc loc = Loc(Peek());
    FORMIGA_ASSIGN_OR_RETURN(ExprPtr first, ParseMath1());
    ExprPtr cmp;
    while (true) {
      std::string op;
      const Token& t = Peek();
      if (t.type == TokenType::kOperator &&
          (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == "<=" || t.text == ">" || t.text == ">=")) {
        op = t.text;
        Next();
      } else if (IsName(t, "in")) {
        op = "in";
        Next();
      } else if (IsName(t, "not") && IsName(Peek(1), "in")) {
        op = "notin";
        Next();
        Next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = Make(Expr::Kind::kCompare, loc);
        cmp->children.push_back(std::move(first));
      }
      FORMIGA_ASSIGN_OR_RETURN(ExprPtr r, ParseMath1());
      cmp->ops.push_back(op);
      cmp->children.push_back(std::move(r));
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  Result<ExprPtr> Binary(ExprPtr l, const Token& op, ExprPtr r) {
    auto e = Make(Expr::Kind::kBinary, Loc(op));
    e->name = op.text;
    e->children.push_back(std::move(l));
    e->children.push_back(std::move(r));
    return e;
  }

  Result<ExprPtr> ParseMath1() {
    FORMIGA_ASSIGN_OR_RETURN(ExprPtr l, ParseConcat());
    while (IsOp(Peek(), "+") || IsOp(Peek(), "-")) {
      const Token& op = Next();
      FORMIGA_ASSIGN_OR_RETURN(ExprPtr r, ParseConcat());
      FORMIGA_ASSIGN_OR_RETURN(l, Binary(std::move(l), op, std::move(r)));
    }
    return l;
  }

  Result<ExprPtr> ParseConcat() {
    FORMIGA_ASSIGN_OR_RETURN(ExprPtr l, ParseMath2());
    while (IsOp(Peek(), "~")) {
      const Token& op = Next();
      FORMIGA_ASSIGN_OR_RETURN(ExprPtr r, ParseMath2());
      FORMIGA_ASSIGN_OR_RETURN(l, Binary(std::move(l), op, std::move(r)));
    }
    return l;
  }

  Result<ExprPtr> ParseMath2() {
    FORMIGA_ASSIGN_OR_RETURN(ExprPtr l, ParsePow());
    while (IsOp(Peek(), "*") || IsOp(Peek(), "/") || IsOp(Peek(), "//") || IsOp(Peek(), "%")) {
      const Token& op = Next();
      FORMIGA_ASSIGN_OR_RETURN(ExprPtr r, ParsePow());
      FORMIGA_ASSIGN_OR_RETURN(l, Binary(std::move(l), op, std::move(r)));
    }
    return l;
  }

  Result<ExprPtr> ParsePow() {
    FORMIGA_ASSIGN_OR_RETURN(ExprPtr l, ParseUnary(true));
    while (IsOp(Peek(), "**")) {
      const Token& op = Next();
      FORMIGA_ASSIGN_OR_RETURN(ExprPtr r, ParseUnary(true));
      FORMIGA_ASSIGN_OR_RETURN(l, Binary(std::move(l), op, std::move(r)));
    }
    return l;
  }

  Result<ExprPtr> ParseUnary(bool with_filter) {
    FORMIGA_RETURN_IF_ERROR(Enter(Peek()));
    DepthGuard g{&depth_};
    ExprPtr node;
    if (IsOp(Peek(), "-") || IsOp(Peek(), "+")) {
      const Token& op = Next();
      FORMIGA_ASSIGN_OR_RETURN(ExprPtr inner, ParseUnary(false));
      node = Make(op.text == "-" ? Expr::Kind::kNeg : Expr::Kind::kPos, Loc(op));
      node->children.push_back(std::move(inner));
    } else {
      FORMIGA_ASSIGN_OR_RETURN(node, ParsePrimary());
      FORMIGA_ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
    }
    if (with_filter) return ParseFilterExpr(std::move(node));
    return node;
  }

  Result<ExprPtr> ParsePrimary() {
    const Token& t = Peek();
    SourceLoc loc = Loc(t);
    switch (t.type) {
      case TokenType::kName: {
        Next();
        auto e = Make(Expr::Kind::kLiteral, loc);
        if (t.text == "true" || t.text == "True") e->value = Value::Bool(true);
        else if (t.text == "false" || t.text == "False") e->value = Value::Bool(false);
        else if (t.text == "none" || t.text == "None") e->value = Value::None();
        else {
          e->kind = Expr::Kind::kName;
          e->name = t.text;
        }
        return e;
      }
      case TokenType::kString: {
        std::string s = Next().text;
        while (Peek().type == TokenType::kString) s += Next().text;  // adjacent literals concatenate
        auto e = Make(Expr::Kind::kLiteral, loc);
        e->value = Value::String(std::move(s));
        return e;
      }
      case TokenType::kInt: {
        Next();
        int64_t v = 0;
        auto res = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
        if (res.ec != std::errc()) return SyntaxError(t, "integer literal " + t.text + " does not fit in 64 bits");
        auto e = Make(Expr::Kind::kLiteral, loc);
        e->value = Value::Int(v);
        return e;
      }
      case TokenType::kFloat: {
        Next();
        auto e = Make(Expr::Kind::kLiteral, loc);
        e->value = Value::Float(std::strtod(t.text.c_str(), nullptr));
        return e;
      }
      case TokenType::kOperator:
        if (t.text == "(") {
          Next();
          if (AcceptOp(")")) return Make(Expr::Kind::kTuple, loc);
          FORMIGA_ASSIGN_OR_RETURN(ExprPtr first, ParseExpression(true));
          if (AcceptOp(")")) return first;
          auto tup = Make(Expr::Kind::kTuple, loc);
          tup->children.push_back(std::move(first));
          while (AcceptOp(",")) {
            if (IsOp(Peek(), ")")) break;
            FORMIGA_ASSIGN_OR_RETURN(ExprPtr e, ParseExpression(true));
            tup->children.push_back(std::move(e));
          }
          FORMIGA_RETURN_IF_ERROR(ExpectOp(")"));
          return tup;
        }
        if (t.text == "[") {
          Next();
          auto list = Make(Expr::Kind::kList, loc);
          while (!IsOp(Peek(), "]")) {
            if (!list->children.empty()) FORMIGA_RETURN_IF_ERROR(ExpectOp(","));
            if (IsOp(Peek(), "]")) break;
            FORMIGA_ASSIGN_OR_RETURN(ExprPtr e, ParseExpression(true));
            list->children.push_back(std::move(e));
          }
          Next();
          return list;
        }
        if (t.text == "{") {
          Next();
          auto dict = Make(Expr::Kind::kDict, loc);
          while (!IsOp(Peek(), "}")) {
            if (!dict->children.empty()) FORMIGA_RETURN_IF_ERROR(ExpectOp(","));
            if (IsOp(Peek(), "}")) break;
            FORMIGA_ASSIGN_OR_RETURN(ExprPtr k, ParseExpression(true));
            FORMIGA_RETURN_IF_ERROR(ExpectOp(":"));
            FORMIGA_ASSIGN_OR_RETURN(ExprPtr v, ParseExpression(true));
            dict->children.push_back(std::move(k));
            dict->children.push_back(std::move(v));
          }
          Next();
          return dict;
        }
        break;
      default: break;
    }
    return SyntaxError(t, "expected an expression, found " + Describe(t));
  }

  Result<ExprPtr> ParsePostfix(ExprPtr node) {
    while (true) {
      const Token& t = Peek();
      if (IsOp(t, ".")) {
        Next();
        const Token& attr = Peek();
        if (attr.type == TokenType::kName) {
          Next();
          auto e = Make(Expr::Kind::kGetAttr, Loc(attr));
          e->name = attr.text;
          e->children.push_back(std::move(node));
          node = std::move(e);
        } else if (attr.type == TokenType::kInt) {
          Next();
          auto idx = Make(Expr::Kind::kLiteral, Loc(attr));
          idx->value = Value::Int(std::strtoll(attr.text.c_str(), nullptr, 10));
          auto e = Make(Expr::Kind::kGetItem, Loc(attr));
          e->children.push_back(std::move(node));
          e->children.push_back(std::move(idx));
          node = std::move(e);
        } else {
          return SyntaxError(attr, "expected an attribute name after '.', found " + Describe(attr));
        }
      } else if (IsOp(t, "[")) {
        Next();
        FORMIGA_ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node), Loc(t)));
      } else if (IsOp(t, "(")) {
        auto call = Make(Expr::Kind::kCall, Loc(t));
        call->children.push_back(std::move(node));
        FORMIGA_RETURN_IF_ERROR(ParseCallArgs(call.get()));
        node = std::move(call);
      } else {
        return node;
      }
    }
  }

  Result<ExprPtr> ParseSubscript(ExprPtr obj, SourceLoc loc) {
    ExprPtr parts[3];
    int part = 0;
    bool is_slice = false;
    while (true) {
      if (IsOp(Peek(), "]")) {
        Next();
        break;
      }
      if (IsOp(Peek(), ":")) {
        Next();
        is_slice = true;
        if (++part > 2) return SyntaxError(Peek(), "a slice has at most three parts");
        continue;
      }
      if (parts[part]) return SyntaxError(Peek(), "expected ']' or ':', found " + Describe(Peek()));
      FORMIGA_ASSIGN_OR_RETURN(parts[part], ParseExpression(true));
      if (IsOp(Peek(), ",")) return UnsupportedAt(Peek(), "a tuple subscript a[x, y]");
    }
    if (!is_slice) {
      if (!parts[0]) return SyntaxError(Peek(), "empty subscript []");
      auto e = Make(Expr::Kind::kGetItem, loc);
      e->children.push_back(std::move(obj));
      e->children.push_back(std::move(parts[0]));
      return e;
    }
    auto e = Make(Expr::Kind::kSlice, loc);
    e->children.push_back(std::move(obj));
    for (auto& p : parts) e->children.push_back(std::move(p));
    return e;
  }

  // '(' args ')' appended to e->children, keyword names in e->kwarg_names.
  Status ParseCallArgs(Expr* e) {
    FORMIGA_RETURN_IF_ERROR(ExpectOp("("));
    bool first = true;
    while (!IsOp(Peek(), ")")) {
      if (!first) FORMIGA_RETURN_IF_ERROR(ExpectOp(","));
      first = false;
      if (IsOp(Peek(), ")")) break;
      if (IsOp(Peek(), "*") || IsOp(Peek(), "**")) return UnsupportedAt(Peek(), "*args/**kwargs in a call");
      if (Peek().type == TokenType::kName && IsOp(Peek(1), "=")) {
        std::string kw = Next().text;
        Next();
        FORMIGA_ASSIGN_OR_RETURN(ExprPtr v, ParseExpression(true));
        e->kwarg_names.push_back(kw);
        e->children.push_back(std::move(v));
      } else {
        if (!e->kwarg_names.empty()) return SyntaxError(Peek(), "positional argument after a keyword argument");
        FORMIGA_ASSIGN_OR_RETURN(ExprPtr v, ParseExpression(true));
        e->children.push_back(std::move(v));
      }
    }
    Next();
    return Status::Ok();
  }

  Result<ExprPtr> ParseFilterExpr(ExprPtr node) {
    while (true) {
      const Token& t = Peek();
      if (IsOp(t, "|")) {
        Next();
        const Token& name = Peek();
        FORMIGA_ASSIGN_OR_RETURN(std::string fname, ExpectIdent());
        if (!IsSupportedFilter(fname)) return UnsupportedAt(name, "the filter '" + fname + "'");
        auto f = Make(Expr::Kind::kFilter, Loc(name));
        f->name = fname;
        f->children.push_back(std::move(node));
        if (IsOp(Peek(), "(")) FORMIGA_RETURN_IF_ERROR(ParseCallArgs(f.get()));
        node = std::move(f);
      } else if (IsName(t, "is")) {
        Next();
        auto test = Make(Expr::Kind::kTest, Loc(t));
        test->negated = AcceptName("not");
        const Token& name = Peek();
        if (name.type != TokenType::kName) return SyntaxError(name, "expected a test name after 'is'");
        if (!IsSupportedTest(name.text)) return UnsupportedAt(name, "the test '" + name.text + "'");
        test->name = Next().text;
        test->children.push_back(std::move(node));
        const Token& nx = Peek();
        if (IsOp(nx, "(")) {
          FORMIGA_RETURN_IF_ERROR(ParseCallArgs(test.get()));
        } else if ((nx.type == TokenType::kName || nx.type == TokenType::kString || nx.type == TokenType::kInt ||
                    nx.type == TokenType::kFloat || IsOp(nx, "[") || IsOp(nx, "{")) &&
                   !IsName(nx, "else") && !IsName(nx, "or") && !IsName(nx, "and")) {
          if (IsName(nx, "is")) return SyntaxError(nx, "tests cannot be chained with 'is'");
          FORMIGA_ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
          FORMIGA_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
          test->children.push_back(std::move(arg));
        }
        node = std::move(test);
      } else if (IsOp(t, "(")) {
        auto call = Make(Expr::Kind::kCall, Loc(t));
        call->children.push_back(std::move(node));
        FORMIGA_RETURN_IF_ERROR(ParseCallArgs(call.get()));
        node = std::move(call);
      } else {
        return node;
      }
    }
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

Result<std::shared_ptr<const Template>> Parse(std::string_view source) {
  FORMIGA_ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(source));
  return Parser(std::move(tokens)).Run();
}

}  // namespace formiga::jinja
